"""A JSON array read element by element, recovering from bad records: a malformed record becomes
one bad record and reading goes on with the next one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from .. import _guard
from ..errors import ErrorCode, Issue
from ._issues import has_surrogates, too_deep_issue
from .sources import RawItem

#: how far a bad record's brackets are followed before looking for the next record another way
_MAX_RECORD_CHARS = 10_000_000
_RECORD_BOUNDARY = re.compile(r"[}\]][ \t\r\n]*,[ \t\r\n]*(?=[{\[])")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class _Rejected(ValueError):
    """A value the strict decoder refuses: what a lenient parser would change silently."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = code


def _strict_number(parse):
    def check(token: str):
        problem = _guard.unsafe_number(token)
        if problem:
            raise _Rejected(ErrorCode.UNSAFE_NUMBER, problem)
        return parse(token)

    return check


def _reject_constant(name: str):
    raise _Rejected(ErrorCode.INVALID_JSON, f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        keys = [k for k, _ in pairs]
        key = next(k for i, k in enumerate(keys) if k in keys[:i])
        raise _Rejected(ErrorCode.DUPLICATE_KEY, f"the key {key!r} appears twice in one object")
    return out


#: Python's decoder, strict: NaN, numbers a float cannot hold and repeated keys are refused
_DECODER = json.JSONDecoder(parse_float=_strict_number(float), parse_int=_strict_number(int),
                            parse_constant=_reject_constant, object_pairs_hook=_unique_keys)


class _NaN:
    """Where a ``NaN`` stood in a record read by :func:`read_nan_members`."""


def _nan_constant(name: str):
    if name != "NaN":
        _reject_constant(name)
    return _NaN


_NAN_DECODER = json.JSONDecoder(parse_float=_strict_number(float), parse_int=_strict_number(int),
                                parse_constant=_nan_constant, object_pairs_hook=_unique_keys)


def read_nan_members(raw: bytes | str, fields: frozenset[str]) -> dict | None:
    """The record in ``raw`` with each ``NaN`` read as a missing value (``None``), where every
    ``NaN`` is the whole value of one of the record's own ``fields``; else ``None``.

    For formats whose exports write an empty cell as ``NaN`` (pandas' missing value, as in
    PandaLM's test set). Everything else stays as strict as the readers: a ``NaN`` anywhere else,
    ``Infinity``, a number a float cannot hold, a repeated key, deep nesting or a lone
    surrogate gives ``None`` (the record keeps its quarantine).

    >>> read_nan_members('{"instruction": "Hi", "input": NaN}', frozenset({"input"}))
    {'instruction': 'Hi', 'input': None}
    >>> read_nan_members('{"instruction": "Hi", "score": NaN}', frozenset({"input"})) is None
    True
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if _guard.too_deep(text):
            return None
        value = _NAN_DECODER.decode(text.strip())
    except (ValueError, RecursionError):  # JSONDecodeError, _Rejected and UnicodeDecodeError are ValueErrors
        return None
    if not isinstance(value, dict) or has_surrogates({k: v for k, v in value.items() if v is not _NaN}):
        return None
    missing = {k for k, v in value.items() if v is _NaN}
    if not missing or not missing <= fields or _NaN in _nested_values(value):
        return None
    return {k: None if v is _NaN else v for k, v in value.items()}


def _nested_values(value: dict) -> Iterator[Any]:
    """Every value below the record's own fields (a NaN there is not a missing field)."""
    stack = [v for v in value.values() if isinstance(v, (dict, list))]
    while stack:
        item = stack.pop()
        for v in item.values() if isinstance(item, dict) else item:
            yield v
            if isinstance(v, (dict, list)):
                stack.append(v)


def _value_end(text: str, pos: int) -> int | None:
    """Where the object or array starting at ``pos`` ends, by its brackets alone (strings skipped).

    Malformed JSON inside (a trailing comma, a missing comma, NaN, a raw newline in a string)
    leaves the brackets balanced, so this finds the record's end where a parser cannot.
    """
    depth, i, n = 0, pos, min(len(text), pos + _MAX_RECORD_CHARS)
    while i < n:
        ch = text[i]
        if ch == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _resync(text: str, pos: int, ws: re.Pattern) -> int | None:
    """After a bad record at ``pos``: where the next record starts, or None when none can be found.

    First by the bad record's brackets; if they do not balance (an unclosed string or brace),
    at the first later ``}, {`` from which a whole record parses.
    """
    end = _value_end(text, pos) if text.startswith(("{", "["), pos) else None
    if end is not None:
        after = ws.match(text, end).end()
        if text.startswith(",", after):
            return ws.match(text, after + 1).end()
        if text.startswith("]", after):
            return after
    for match in _RECORD_BOUNDARY.finditer(text, pos + 1):
        start = match.end()
        try:
            _, value_end = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):  # JSONDecodeError is a ValueError, as is _Rejected
            continue
        if text.startswith((",", "]"), ws.match(text, value_end).end()):
            return start
    return None


def read_json_array(data: bytes) -> Iterator[RawItem]:
    """Yield the elements of a JSON array one by one.

    A malformed record becomes one bad record and reading goes on with the next one (found by
    :func:`_resync`); a cut-short tail, or a bad record with no recognisable end, becomes one
    bad record holding the rest of the file. Python's decoder refuses nesting past its recursion
    limit by itself (a RecursionError, never a crash); records deeper than ``MAX_DEPTH`` are
    quarantined either way.
    """
    lossy = False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="surrogateescape")
        lossy = True
    ws = re.compile(r"[ \t\r\n]*")
    pos = ws.match(text, text.index("[") + 1).end()
    index = 0
    if text.startswith("]", pos):
        return
    while pos < len(text):
        try:
            value, end = _DECODER.raw_decode(text, pos)
            if _guard.too_deep(text, pos, end):
                raise RecursionError
        except (json.JSONDecodeError, _Rejected, RecursionError) as exc:
            if isinstance(exc, json.JSONDecodeError):
                cut = exc.pos >= len(text.rstrip()) or not text.rstrip().endswith("]")
                code = ErrorCode.TRUNCATED if cut else ErrorCode.INVALID_JSON
                message = ("the file ends in the middle of this record" if cut
                           else f"not valid JSON ({exc.msg} at char {exc.pos})")
            else:
                cut = False
                code = exc.code if isinstance(exc, _Rejected) else ErrorCode.TOO_DEEP
                message = str(exc) if isinstance(exc, _Rejected) else too_deep_issue(index).message
            resume = None if cut else _resync(text, pos, ws)
            tail = text[pos:] if resume is None else text[pos:resume].rstrip().removesuffix(",").rstrip()
            yield RawItem(index, None, tail, Issue(code, message, index,
                                                   "restore the full file, or fix the record"))
            if resume is None:
                return
            index += 1
            pos = resume
            if text.startswith("]", pos):
                return
            continue
        item = RawItem(index, value, None)
        if (lossy or _SURROGATE_ESCAPE.search(text, pos, end)) and has_surrogates(value):
            item.value, item.raw = None, text[pos:end]
            item.issue = (Issue(ErrorCode.INVALID_UTF8, "the record is not valid UTF-8", index,
                                "re-encode the file as UTF-8") if lossy else
                          Issue(ErrorCode.INVALID_JSON, "a lone surrogate escape (such as \\ud800) is not "
                                "a character", index, "fix or drop the escape"))
        yield item
        index += 1
        pos = ws.match(text, end).end()
        if text.startswith(",", pos):
            pos = ws.match(text, pos + 1).end()
        elif text.startswith("]", pos):
            return
        elif pos < len(text):
            yield RawItem(index, None, text[pos:pos + 1000], Issue(
                ErrorCode.INVALID_JSON, "expected ',' or ']' between records", index))
            return
