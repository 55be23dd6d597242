"""The issue a reader records instead of a value a parser would have refused or changed silently:
invalid JSON or UTF-8, a record cut short, nesting too deep, a number a float cannot hold, a key
given twice, a binary file. The checks on the raw text are in :mod:`hubtools._guard`."""

from __future__ import annotations

from typing import Any

import orjson

from .. import _guard
from ..errors import ErrorCode, InputUnusableError, Issue
from .sources import Source


def refuse_binary(head: bytes, source: Source) -> None:
    if b"\x00" in head[:8192]:
        raise InputUnusableError(
            f"{source.name}: this is a binary file, not {source.container.upper()} text",
            hint="check that the file was not saved in another format and renamed",
        )


def too_deep_issue(index: int) -> Issue:
    return Issue(ErrorCode.TOO_DEEP, f"the record nests deeper than {_guard.MAX_DEPTH} levels", index,
                 "flatten the record")


def value_issue(raw: bytes | str, value: Any, index: int, start: int = 0, end: int | None = None) -> Issue | None:
    """What a parser would have changed silently in ``raw`` (read as ``value``): a number it
    cannot hold, or a key given twice."""
    problem = _guard.number_problem(raw, start, end)
    if problem:
        return Issue(ErrorCode.UNSAFE_NUMBER, problem, index, "write such numbers as strings")
    key = _guard.duplicate_key(raw if start == 0 and end is None else raw[start:end], value)
    if key is not None:
        return Issue(ErrorCode.DUPLICATE_KEY, f"the key {key!r} appears twice in one object", index,
                     "keep one of the two values")
    return None


def parse_issue(message: str, index: int) -> Issue:
    if "UTF-8" in message:
        return Issue(ErrorCode.INVALID_UTF8, "the record is not valid UTF-8", index,
                     "re-encode the file as UTF-8")
    if "depth limit" in message or "recursion limit" in message.lower():
        return too_deep_issue(index)
    if "infinity" in message:
        return Issue(ErrorCode.UNSAFE_NUMBER, f"a number is too large for a float ({message})", index,
                     "write such numbers as strings")
    if "end of data" in message:
        return Issue(ErrorCode.TRUNCATED, f"the record is cut short ({message})", index,
                     "the file was probably truncated while copying; restore the full record")
    return Issue(ErrorCode.INVALID_JSON, f"not valid JSON ({message})", index)


def has_surrogates(value: Any) -> bool:
    try:
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return True
    return False
