"""Read records from files, directories and Hub datasets; write files atomically.

Readers stream: they yield one :class:`RawItem` at a time (a parsed JSON value, or the
reason it could not be parsed), so a million-record file never becomes a list of dicts.
Blank lines are skipped and not counted; every other record gets the next ``index``.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import gzip
import io
import json
import logging
import os
import re
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import orjson

from . import _guard
from .errors import DatasetFileNotFound, ErrorCode, HubNetworkError, InputTooLargeError, InputUnusableError, Issue
from .hub_ids import DATASET_URI

__all__ = [
    "CONTAINERS",
    "RawItem",
    "Source",
    "atomic_write",
    "iter_raw",
    "open_source",
    "output_set",
    "union_keys",
    "write_jsonl",
    "write_records",
]

logger = logging.getLogger(__name__)

#: File containers hubtools reads and writes, by the extension that selects them.
CONTAINERS = ("jsonl", "json", "csv", "parquet", "txt")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
               ".parquet": "parquet", ".txt": "txt"}
_BOM = b"\xef\xbb\xbf"
#: CSV columns that are always text: never decoded.
_CSV_TEXT_COLUMNS = frozenset({
    "instruction", "input", "output", "text", "system", "output_1", "output_2",
    "system_prompt", "prompt_template", "question", "answer", "response", "query", "problem",
    "solution", "context",
})
#: CSV columns that are text in flat formats and message lists in others.
_CSV_MESSAGE_COLUMNS = frozenset({"prompt", "chosen", "rejected", "completion"})
_BATCH = 10_000


@dataclass(slots=True)
class RawItem:
    """One record as read: its index, the parsed value, or the issue that kept it from parsing.

    ``raw`` is what a person would recognise as the record: the line for line-based files,
    the parsed value otherwise. ``lossy`` marks text decoded with replaced bytes.
    """

    index: int
    value: Any = None
    raw: Any = None
    issue: Issue | None = None
    lossy: bool = False
    file: str | None = None

    def raw_for_report(self) -> Any:
        """The raw record for a quarantine row (bytes as read: the row decodes and caps them)."""
        return self.raw if self.raw is not None else self.value


@dataclass(frozen=True)
class Source:
    """Where records come from: a file, a directory or a Hub dataset id."""

    location: str
    container: str  # one of CONTAINERS, "dir" or "hub"
    compressed: bool = False
    split: str | None = None
    #: a Hub dataset's reader identity: None uses HF_TOKEN or the saved login, False no token, a str that token
    token: str | bool | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return Path(self.location).name if self.container != "hub" else self.location


def _container_of(path: Path) -> tuple[str | None, bool]:
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    return (_EXTENSIONS.get(suffixes[-1]) if suffixes else None), compressed


def open_source(location: str | os.PathLike | Source, *, split: str | None = None) -> Source:
    """Resolve a path or Hub dataset id into a :class:`Source` (a :class:`Source` is returned as it is).

    Raises:
        DatasetFileNotFound: the path does not exist and is not a Hub id.
        InputUnusableError: the file has an extension hubtools does not read, or a ``split``
            was given for something that is not a Hub id.
    """
    if isinstance(location, Source):
        return location
    text = os.fspath(location)
    path = Path(text)
    if split is not None and (path.exists() or not DATASET_URI.match(text)):
        raise InputUnusableError(f"{text}: a split applies to Hub dataset ids only",
                                 hint="drop --split for files and directories")
    if path.is_dir():
        return Source(text, "dir")
    if path.exists():
        container, compressed = _container_of(path)
        if container is None:
            raise InputUnusableError(
                f"{path.name}: unknown file type",
                hint=f"use one of {', '.join('.' + c for c in CONTAINERS)} (optionally .gz)",
            )
        return Source(text, container, compressed)
    if DATASET_URI.match(text):
        return Source(text.removeprefix("hf://datasets/"), "hub", split=split)
    raise DatasetFileNotFound(
        f"{text}: no such file or directory",
        hint="check the path, or give a Hub dataset id such as 'user/name'",
    )


def iter_raw(source: Source, *, max_bytes: int | None = None, notes: list[str] | None = None) -> Iterator[RawItem]:
    """Yield every non-blank record of ``source`` in order, indexed from 0.

    ``max_bytes`` bounds what one file may hold once decompressed (the app passes its upload
    limit; None: no bound). ``notes`` collects what a reader changed the representation of (a
    Parquet binary column kept as base64 text, ...).

    Raises:
        InputUnusableError: a file (or the directory) cannot be read at all, or is over ``max_bytes``.
            In a directory, a file that cannot be read becomes one ``unreadable`` record instead.
    """
    if source.container == "hub":
        yield from _read_hub(source)
        return
    if source.container != "dir":
        try:
            yield from _READERS[source.container](source, max_bytes, notes)
        except OSError as exc:
            raise InputUnusableError(f"{source.name}: cannot read this file ({exc.strerror or exc})",
                                     hint="check that it exists and that hubtools may read it") from exc
        return
    root = Path(source.location)
    index = 0
    for path in _dataset_files(root):
        container, compressed = _container_of(path)
        sub = Source(str(path), container, compressed)  # type: ignore[arg-type]
        name = str(path.relative_to(root))
        try:
            for item in _READERS[sub.container](sub, max_bytes, notes):
                item.index = index
                if item.issue is not None:  # the reader numbered it within its file
                    item.issue = replace(item.issue, index=index)
                item.file = name
                index += 1
                yield item
        except InputTooLargeError:
            raise
        except (InputUnusableError, OSError) as exc:
            # one file that cannot be read (binary, corrupt, no permission) is one record; the rest is read
            reason = exc.message if isinstance(exc, InputUnusableError) else (exc.strerror or str(exc))
            yield RawItem(index, None, name, Issue(
                ErrorCode.UNREADABLE, f"this file (or its rest) could not be read: {reason}", index,
                "fix or remove the file; the other files were read"), file=name)
            index += 1


def _dataset_files(root: Path) -> list[Path]:
    def refuse(exc: OSError) -> None:
        raise InputUnusableError(f"{exc.filename}: cannot list this directory ({exc.strerror})",
                                 hint="give hubtools permission to read it, or leave it out") from exc

    files = []
    for folder, dirs, names in os.walk(root, onerror=refuse):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [Path(folder, n) for n in names if not n.startswith(".")]
    files = sorted(p for p in files if p.is_file() and _container_of(p)[0] is not None)
    if not files:
        raise InputUnusableError(
            f"{root}: no dataset files in this directory",
            hint=f"put {', '.join('.' + c for c in CONTAINERS)} files in it",
        )
    return files


_CHUNK = 1 << 20
_GZIP_READ = 1 << 14  # compressed bytes a step: a corrupt stream loses at most what one step inflates


class _Gunzip(io.RawIOBase):
    """The decompressed bytes of a gzip file, at most ``limit`` of them.

    A corrupt or cut-short stream ends at the last whole line read before the damage; ``cut``
    then says what went wrong and ``tail`` holds the partial line after it. Several gzip members
    one after the other read as one stream, as ``gzip`` reads them.
    """

    def __init__(self, path: str, name: str, limit: int | None):
        self._file = open(path, "rb")  # noqa: SIM115 (closed with this reader)
        self._name, self._limit = name, limit
        self._inflate = zlib.decompressobj(wbits=31)
        self._pending: list[bytes] = []  # decompressed, after the last newline: held back until whole
        self._ready = memoryview(b"")
        self._total = 0
        self._eof = False
        self.cut: str | None = None
        self.tail = b""
        if self._file.read(2) != b"\x1f\x8b":
            self._file.close()
            raise InputUnusableError(f"{name}: not a gzip file, though its name ends in .gz",
                                     hint="rename it without .gz, or compress it with gzip")
        self._file.seek(0)

    def readable(self) -> bool:
        return True

    def _inflated(self) -> bytes:
        """The next piece of decompressed bytes (b"" at the end of the stream)."""
        while True:
            if self._inflate.eof:
                data = self._inflate.unused_data or self._file.read(_GZIP_READ)
                if not data:
                    return b""
                if not data.startswith(b"\x1f\x8b"):
                    while data:  # zero padding after the last member is allowed, as gzip allows it
                        if data.strip(b"\x00"):
                            raise EOFError("bytes that are not gzip follow the compressed data")
                        data = self._file.read(_CHUNK)
                    return b""
                self._inflate = zlib.decompressobj(wbits=31)  # the next member
            else:
                data = self._inflate.unconsumed_tail or self._file.read(_GZIP_READ)
                if not data:
                    out = self._inflate.decompress(b"", _CHUNK)
                    if out:
                        return out
                    raise EOFError("the gzip file ends before its end marker")
            out = self._inflate.decompress(data, _CHUNK)
            if out:
                return out

    def readinto(self, buffer) -> int:
        while not self._ready and not self._eof:
            try:
                out = self._inflated()
            except (EOFError, zlib.error) as exc:
                self.cut = f"the gzip stream is {'cut short' if isinstance(exc, EOFError) else 'corrupt'} " \
                           f"after {self._total:,} bytes ({exc})"
                self.tail, self._pending, self._eof = b"".join(self._pending), [], True
                break
            if not out:
                self._ready, self._pending, self._eof = memoryview(b"".join(self._pending)), [], True
                break
            self._total += len(out)
            if self._limit is not None and self._total > self._limit:
                raise InputTooLargeError(
                    f"{self._name}: over {self._limit / 1024 / 1024:,.0f} MB once decompressed",
                    hint="the limit applies to the decompressed data (HUBTOOLS_MAX_UPLOAD_MB); "
                         "use the hubtools command line for bigger files")
            cut = out.rfind(b"\n") + 1
            if cut:  # joined once a line is whole: a 1 GB line costs one copy, not a thousand
                self._ready = memoryview(b"".join([*self._pending, out[:cut]]))
                self._pending = [out[cut:]]
            else:
                self._pending.append(out)
        n = min(len(buffer), len(self._ready))
        buffer[:n] = self._ready[:n]
        self._ready = self._ready[n:]
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def _open_binary(source: Source, limit: int | None = None) -> IO[bytes]:
    """The file's bytes (decompressed for .gz), refused past ``limit`` bytes."""
    if source.compressed:
        return io.BufferedReader(_Gunzip(source.location, source.name, limit), _CHUNK)
    fh = open(source.location, "rb")  # noqa: SIM115 (the caller closes it)
    if limit is not None and os.fstat(fh.fileno()).st_size > limit:
        fh.close()
        raise InputTooLargeError(f"{source.name}: over {limit / 1024 / 1024:,.0f} MB",
                                 hint="use the hubtools command line for bigger files")
    return fh


def _cut(fh: IO[bytes]) -> tuple[str, bytes] | None:
    """(what went wrong, the partial line after the last whole one) when a gzip stream broke off."""
    raw = getattr(fh, "raw", None)
    return (raw.cut, raw.tail) if isinstance(raw, _Gunzip) and raw.cut else None


def _cut_item(index: int, cut: tuple[str, bytes]) -> RawItem:
    reason, tail = cut
    return RawItem(index, None, tail, Issue(
        ErrorCode.TRUNCATED, f"{reason}: this record and whatever followed it are lost", index,
        "the file was probably truncated while copying; restore the full file"))


def _refuse_binary(head: bytes, source: Source) -> None:
    if b"\x00" in head[:8192]:
        raise InputUnusableError(
            f"{source.name}: this is a binary file, not {source.container.upper()} text",
            hint="check that the file was not saved in another format and renamed",
        )


def _parse_line(line: bytes, index: int) -> RawItem:
    if _guard.too_deep(line):
        return RawItem(index, None, line, _too_deep(index))
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        problem = _guard.number_problem(line)
        issue = (Issue(ErrorCode.UNSAFE_NUMBER, problem, index, "write such numbers as strings") if problem
                 else _parse_issue(str(exc), index))
        return RawItem(index, None, line, issue)
    issue = _value_issue(line, value, index)
    return RawItem(index, None if issue else value, line, issue)


def _too_deep(index: int) -> Issue:
    return Issue(ErrorCode.TOO_DEEP, f"the record nests deeper than {_guard.MAX_DEPTH} levels", index,
                 "flatten the record")


def _value_issue(raw: bytes | str, value: Any, index: int, start: int = 0, end: int | None = None) -> Issue | None:
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


def _parse_issue(message: str, index: int) -> Issue:
    if "UTF-8" in message:
        return Issue(ErrorCode.INVALID_UTF8, "the record is not valid UTF-8", index,
                     "re-encode the file as UTF-8")
    if "depth limit" in message or "recursion limit" in message.lower():
        return _too_deep(index)
    if "infinity" in message:
        return Issue(ErrorCode.UNSAFE_NUMBER, f"a number is too large for a float ({message})", index,
                     "write such numbers as strings")
    if "end of data" in message:
        return Issue(ErrorCode.TRUNCATED, f"the record is cut short ({message})", index,
                     "the file was probably truncated while copying; restore the full record")
    return Issue(ErrorCode.INVALID_JSON, f"not valid JSON ({message})", index)


class _Cut:
    """The end of a gzip stream that broke off: what went wrong and the partial last line."""

    def __init__(self, cut: tuple[str, bytes]):
        self.cut = cut


def _iter_lines(source: Source, limit: int | None) -> Iterator[bytes | _Cut]:
    """The file's lines, without BOM, checked for binary content; a :class:`_Cut` last when a
    gzip stream broke off."""
    with _open_binary(source, limit) as fh:
        first = True
        for line in fh:
            if first:
                _refuse_binary(line, source)
                line = line.removeprefix(_BOM)
                first = False
            yield line
        cut = _cut(fh)
        if cut:
            yield _Cut(cut)


def _parse_lines(lines: Iterable[bytes | _Cut]) -> Iterator[RawItem]:
    """Parse JSON Lines: line endings dropped, blank lines skipped and not counted."""
    index = 0
    for line in lines:
        if isinstance(line, _Cut):
            yield _cut_item(index, line.cut)
            return
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield _parse_line(line, index)
            index += 1


def _read_jsonl(source: Source, limit: int | None, notes: list[str] | None) -> Iterator[RawItem]:
    yield from _parse_lines(_iter_lines(source, limit))


def _read_txt(source: Source, limit: int | None, notes: list[str] | None) -> Iterator[RawItem]:
    index = 0
    for line in _iter_lines(source, limit):
        if isinstance(line, _Cut):
            yield _cut_item(index, line.cut)
            return
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        try:
            yield RawItem(index, {"text": line.decode("utf-8")}, line)
        except UnicodeDecodeError:
            yield RawItem(index, None, line, Issue(
                ErrorCode.INVALID_UTF8, "the line is not valid UTF-8", index,
                "re-encode the file as UTF-8"))
        index += 1


def _read_json(source: Source, limit: int | None, notes: list[str] | None) -> Iterator[RawItem]:
    with _open_binary(source, limit) as fh:
        data = fh.read()
        cut = _cut(fh)
    if cut:
        data += cut[1]
    _refuse_binary(data, source)
    data = data.removeprefix(_BOM)
    stripped = data.lstrip()
    if not stripped:
        if cut:
            yield _cut_item(0, cut)
        return
    if stripped[:1] == b"[":
        items = _read_json_array(data)
    else:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            # JSON Lines saved with a .json extension: parse the bytes already read
            items = _parse_lines(data.split(b"\n"))
        else:
            if _guard.too_deep(data):
                issue = _too_deep(0)
            else:
                issue = _value_issue(data, value, 0)
            items = iter([RawItem(0, None if issue else value, data if issue else None, issue)])
    last = None
    for last in items:
        yield last
    if cut and not (last is not None and last.issue is not None and last.issue.code is ErrorCode.TRUNCATED):
        yield _cut_item(last.index + 1 if last is not None else 0, cut)


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


def _read_json_array(data: bytes) -> Iterator[RawItem]:
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
                message = str(exc) if isinstance(exc, _Rejected) else _too_deep(index).message
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
        if (lossy or _SURROGATE_ESCAPE.search(text, pos, end)) and _has_surrogates(value):
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


def _has_surrogates(value: Any) -> bool:
    try:
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return True
    return False


def _json_or_none(cell: str) -> tuple[bool, Any]:
    """(True, value) for a cell that reads as JSON exactly (a number it would change, a repeated
    key or deep nesting keep it text), else (False, None)."""
    if _guard.too_deep(cell):
        return False, None
    try:
        value = orjson.loads(cell)
    except ValueError:  # JSONDecodeError, or text with surrogates (a non-UTF-8 file)
        return False, None
    if _value_issue(cell, value, 0) is not None:
        return False, None
    return not isinstance(value, str), value


def _decode_csv_column(name: str, cells: list[str]) -> list[Any]:
    """Decode one CSV column: JSON cells back to lists, objects, numbers and booleans.

    CSV has no types, so a column is decoded only when every non-empty cell is JSON that is
    not a string (then empty cells are null). Text columns are never decoded; columns that
    are text or message lists depending on the format decode only cells holding messages.
    """
    if name in _CSV_TEXT_COLUMNS:
        return cells
    if name in _CSV_MESSAGE_COLUMNS:
        out = []
        for cell in cells:
            ok, value = _json_or_none(cell.strip()) if cell.lstrip()[:1] in ("[", "{") else (False, None)
            is_messages = ok and (isinstance(value, dict) or (
                isinstance(value, list) and all(isinstance(m, dict) for m in value)))
            out.append(value if is_messages else cell)
        return out
    decoded = []
    for cell in cells:
        stripped = cell.strip()
        if not stripped:
            decoded.append(None)
            continue
        ok, value = _json_or_none(stripped)
        if not ok:
            return cells
        decoded.append(value)
    return decoded


def _is_utf8(source: Source, limit: int | None) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    with _open_binary(source, limit) as fh:
        try:
            while chunk := fh.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _refuse_repeated_columns(names: list[str], source: Source) -> None:
    """Two columns of one name: a reader would rename one (pandas) or keep the last (Arrow)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputUnusableError(f"{source.name}: two columns are named {name!r}",
                                     hint="rename one of them, so that neither is lost or renamed")
        seen.add(name)


def _read_csv(source: Source, limit: int | None, notes: list[str] | None) -> Iterator[RawItem]:
    import csv

    import pandas as pd

    with _open_binary(source, limit) as fh:
        _refuse_binary(fh.read(8192), source)
    with _open_binary(source, limit) as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="surrogateescape", newline="")
        _refuse_repeated_columns(next(csv.reader(text), []), source)
    # pandas' C parser cannot hold bytes that are not UTF-8: such a file takes the Python parser,
    # which keeps them (as surrogates) so that their rows are quarantined, not changed
    utf8 = _is_utf8(source, limit)
    index = 0
    with _open_binary(source, limit) as fh:
        try:
            chunks = pd.read_csv(fh, dtype=str if utf8 else object, keep_default_na=False, chunksize=_BATCH, compression=None,
                                 encoding="utf-8-sig", engine="c" if utf8 else "python",
                                 encoding_errors="strict" if utf8 else "surrogateescape")
            for chunk in chunks:
                columns = {name: _decode_csv_column(name, chunk[name].tolist()) for name in chunk.columns}
                for row in zip(*columns.values()):
                    # as in Arrow containers, an empty non-text cell means the key was absent
                    value = {k: v for k, v in zip(columns, row) if v is not None}
                    item = RawItem(index, value, None)
                    if _has_surrogates(value):
                        item.value, item.raw = None, value
                        item.issue = Issue(ErrorCode.INVALID_UTF8, "the row is not valid UTF-8",
                                           index, "re-encode the file as UTF-8")
                    yield item
                    index += 1
        except pd.errors.EmptyDataError:
            pass
        except (pd.errors.ParserError, csv.Error, UnicodeError) as exc:
            raise InputUnusableError(f"{source.name}: not a readable CSV file ({exc})",
                                     hint="check the quoting, the delimiter and the encoding") from exc
        cut = _cut(fh)
    if cut:
        yield _cut_item(index, cut)


def _plain_value(value: Any) -> Any:
    """An Arrow value as JSON can hold it: bytes as UTF-8 text or base64, decimals and times as text."""
    if isinstance(value, dict):
        return {k: _plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_value(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if hasattr(value, "isoformat"):  # datetime, date, time
        return value.isoformat()
    return str(value)  # Decimal (exact), timedelta, ...


def _non_json_types(type_: Any) -> bool:
    import pyarrow as pa

    if isinstance(type_, pa.Schema):
        return any(_non_json_types(f.type) for f in type_)
    if (pa.types.is_binary(type_) or pa.types.is_large_binary(type_) or pa.types.is_fixed_size_binary(type_)
            or pa.types.is_decimal(type_) or pa.types.is_temporal(type_)):
        return True
    return any(_non_json_types(type_.field(i).type) for i in range(type_.num_fields))


def _type_notes(schema: Any) -> list[str]:
    """What the columns of types JSON has no place for become, one note a column."""
    notes = []
    for field_ in schema:
        if _non_json_types(field_.type):
            notes.append(f"column {field_.name!r} is {field_.type}: kept as text (binary as UTF-8 text, or "
                         "base64 when it is not UTF-8; decimals exactly; times in ISO 8601)")
    return notes


def _nonfinite(value: Any) -> bool:
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    if isinstance(value, dict):
        return any(_nonfinite(v) for v in value.values())
    if isinstance(value, list):
        return any(_nonfinite(v) for v in value)
    return False


def _arrow_rows(batch: Any) -> Iterator[dict | None]:
    """The rows of a batch as dicts; None for a row whose text is not UTF-8 (a damaged file)."""
    try:
        yield from batch.to_pylist()
    except UnicodeDecodeError:
        for i in range(batch.num_rows):
            try:
                yield batch.slice(i, 1).to_pylist()[0]
            except UnicodeDecodeError:
                yield None


def _iter_arrow_rows(batches: Iterable[Any], start: int = 0) -> Iterator[RawItem]:
    index = start
    for batch in batches:
        plain = _non_json_types(batch.schema)
        for row in _arrow_rows(batch):
            if row is None:
                yield RawItem(index, None, f"row {index}", Issue(
                    ErrorCode.INVALID_UTF8, "the row's text is not valid UTF-8", index, "restore the file"))
                index += 1
                continue
            # Arrow gives every row every column; a null there means the key was absent
            value = {k: _plain_value(v) if plain else v for k, v in row.items() if v is not None}
            if _nonfinite(value):
                yield RawItem(index, None, value, Issue(
                    ErrorCode.UNSAFE_NUMBER, "a number is NaN or infinite, which JSON cannot hold", index,
                    "replace it with null or a finite number"))
            else:
                yield RawItem(index, value, None)
            index += 1


def _read_parquet(source: Source, limit: int | None, notes: list[str] | None) -> Iterator[RawItem]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source.location)
        size = sum(parquet.metadata.row_group(i).total_byte_size for i in range(parquet.num_row_groups))
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise InputUnusableError(f"{source.name}: not a readable Parquet file ({exc})",
                                 hint="check that the file is complete") from exc
    if limit is not None and size > limit:
        raise InputTooLargeError(f"{source.name}: over {limit / 1024 / 1024:,.0f} MB once decompressed",
                                 hint="use the hubtools command line for bigger files")
    _refuse_repeated_columns(schema.names, source)
    if notes is not None:
        notes += _type_notes(schema)
    index = 0
    for group in range(parquet.num_row_groups):
        rows = parquet.metadata.row_group(group).num_rows
        done = 0
        try:
            for item in _iter_arrow_rows(parquet.iter_batches(batch_size=_BATCH, row_groups=[group]), index):
                done += 1
                yield item
        except (pa.ArrowException, OSError) as exc:
            # a corrupt page: the rows of its row group not read yet are one record
            yield RawItem(index + done, None, f"row group {group}: {rows - done:,} rows", Issue(
                ErrorCode.UNREADABLE, f"{rows - done:,} rows of row group {group} could not be read "
                f"(a corrupt page: {exc})", index + done, "restore the file from its source"))
            done += 1
        index += done


def _read_hub(source: Source) -> Iterator[RawItem]:
    import datasets

    from ._hub_read import load_hub_dataset

    repo_id, _, config = source.location.partition(":")
    try:
        loaded = load_hub_dataset(repo_id, config or None, token=source.token)
    except FileNotFoundError as exc:
        raise DatasetFileNotFound(
            f"{repo_id}: no such dataset on the Hub ({exc.__class__.__name__})",
            hint="check the id; a private or gated dataset needs a token with access to it (HF_TOKEN or "
                 "`hf auth login`; in the app, signing in)",
        ) from exc
    except ValueError as exc:
        if "Config name is missing" not in str(exc):
            raise
        configs = datasets.get_dataset_config_names(repo_id, token=source.token)
        raise InputUnusableError(
            f"{repo_id} has several configs ({', '.join(configs)}): say which",
            hint=f"give it as {repo_id}:{configs[0] if configs else 'CONFIG'}") from None
    except ConnectionError:  # datasets' own "Couldn't reach ..." and socket errors alike
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            raise HubNetworkError(f"{repo_id}: not in the local cache, and HF_HUB_OFFLINE=1 keeps the Hub out",
                                  hint="unset HF_HUB_OFFLINE to download it, or load a local file") from None
        raise HubNetworkError(f"{repo_id}: the Hub at {constants.ENDPOINT} could not be reached",
                              hint="check the network (or HF_ENDPOINT); a dataset loaded before is "
                                   "read from the cache with HF_HUB_OFFLINE=1") from None
    split = source.split or ("train" if "train" in loaded else next(iter(loaded)))
    if split not in loaded:
        raise InputUnusableError(f"{repo_id} has no split {split!r}",
                                 hint=f"use one of {', '.join(loaded)}")
    table = loaded[split].data.table
    yield from _iter_arrow_rows(table.to_batches(max_chunksize=_BATCH))


_READERS = {
    "jsonl": _read_jsonl,
    "json": _read_json,
    "csv": _read_csv,
    "parquet": _read_parquet,
    "txt": _read_txt,
    "hub": _read_hub,
}


# ---- writing ------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it over ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> int:
    """Write one JSON value per line, atomically; return how many were written."""
    count = 0
    with atomic_write(path) as fh:
        for record in records:
            fh.write(_dumps(record) + b"\n")
            count += 1
    return count


def union_keys(rows: Iterable[Any]) -> list[str]:
    """Every key of the dict rows, in first-seen order (non-dicts are skipped)."""
    keys: dict[str, None] = {}
    for row in rows:
        if isinstance(row, dict):
            keys.update(dict.fromkeys(row))
    return list(keys)


def _write_json(path: Path, records: Iterable[Any]) -> int:
    count = 0
    with atomic_write(path) as fh:
        fh.write(b"[")
        for record in records:
            fh.write((b",\n  " if count else b"\n  ") + orjson.dumps(record))
            count += 1
        fh.write(b"\n]\n" if count else b"]\n")
    return count


def _write_txt(path: Path, records: Iterable[Any]) -> int:
    count = 0
    with atomic_write(path) as fh:
        for record in records:
            fh.write(record["text"].encode("utf-8") + b"\n")
            count += 1
    return count


def _csv_cell(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _write_csv(path: Path, records: Iterable[Any]) -> int:
    import csv

    rows = list(records)
    with atomic_write(path, "w") as fh:
        writer = csv.DictWriter(fh, fieldnames=union_keys(rows), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return len(rows)


def _write_parquet(path: Path, records: Iterable[Any]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(records)
    # from_pylist would keep only the first row's keys; build every column instead
    table = pa.Table.from_pydict({c: [row.get(c) for row in rows] for c in union_keys(rows)})
    with atomic_write(path) as fh:
        pq.write_table(table, fh)
    return len(rows)


_WRITERS = {
    "jsonl": write_jsonl,
    "json": _write_json,
    "csv": _write_csv,
    "parquet": _write_parquet,
    "txt": _write_txt,
}


def container_for_path(path: str | os.PathLike) -> tuple[str, bool]:
    """Return the container and compression that ``path``'s extension selects."""
    container, compressed = _container_of(Path(path))
    if container is None:
        raise InputUnusableError(
            f"{Path(path).name}: unknown output type",
            hint=f"end the name with one of {', '.join('.' + c for c in CONTAINERS)}",
        )
    return container, compressed


def write_records(path: str | os.PathLike, records: Iterable[dict], *, container: str | None = None) -> int:
    """Write wire-format records to ``path`` in the container its extension names, atomically."""
    detected, compressed = container_for_path(path)
    container = container or detected
    if not compressed:
        return _WRITERS[container](Path(path), records)
    if container == "parquet":
        raise InputUnusableError("Parquet compresses itself; .parquet.gz is not a thing",
                                 hint="write .parquet")
    target = Path(path)
    plain = target.with_name(f".{target.name}.plain")
    try:
        count = _WRITERS[container](plain, records)
        with atomic_write(target) as out, open(plain, "rb") as src, gzip.GzipFile(fileobj=out, mode="wb") as gz:
            while chunk := src.read(1 << 20):
                gz.write(chunk)
    finally:
        plain.unlink(missing_ok=True)
    return count


#: Prefix of the staging folders :func:`output_set` makes inside an output directory.
STAGING_PREFIX = ".hubtools-staging-"


def _remove_stale_staging(out: Path) -> None:
    """Remove staging folders left by killed writers (their pid is gone) so they do not pile up."""
    import shutil

    if os.name == "nt":  # os.kill(pid, 0) would end the process there
        return
    for folder in out.glob(f"{STAGING_PREFIX}*"):
        try:
            pid = int(folder.name[len(STAGING_PREFIX):].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, OSError):
            continue


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def output_set(out_dir: str | os.PathLike, *, replaces: Iterable[str] = (),
               last: Iterable[str] = ("summary.json",)) -> Iterator[Path]:
    """Write a stage's files as one set: they reach ``out_dir`` together or not at all.

    The block writes its files into the folder this yields (a hidden staging folder inside
    ``out_dir``, so on the same file system; directory readers skip hidden folders). If the
    block fails (a full disk, an error, Ctrl-C) the staging folder is removed and ``out_dir``
    keeps its previous complete set. If it succeeds, each file is fsync-ed and renamed into
    place, the names in ``last`` (the summary that describes the others) after the rest; then
    files matching a ``replaces`` glob that the new set does not have (a quarantine from an
    earlier run, a plot with no data this time) are removed. Renames need no space, so a full
    disk cannot stop the set half-way; only a kill during those few renames could.

    Sets nest: a writer that makes its own set can be given a staging folder.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> with output_set(out) as stage:
        ...     _ = (stage / "data.jsonl").write_text("{}\\n")
        ...     _ = (stage / "summary.json").write_text("{}")
        >>> sorted(p.name for p in out.iterdir())
        ['data.jsonl', 'summary.json']
    """
    import secrets
    import shutil

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    stage = out / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    stage.mkdir()
    try:
        yield stage
        files = sorted(p.relative_to(stage) for p in stage.rglob("*") if p.is_file())
        late = set(last)
        files.sort(key=lambda rel: rel.as_posix() in late)  # stable: the summary goes in last
        for rel in files:
            with open(stage / rel, "rb") as fh:
                os.fsync(fh.fileno())
        for rel in files:
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, out / rel)
        new = {rel.as_posix() for rel in files}
        for pattern in replaces:
            for old in out.glob(pattern):
                if old.is_file() and old.relative_to(out).as_posix() not in new:
                    old.unlink()
        for folder in {(out / rel).parent for rel in files} | {out}:
            _fsync_dir(folder)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
