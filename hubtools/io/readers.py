"""Read records from files, directories and Hub datasets.

Readers stream: they yield one :class:`RawItem` at a time (a parsed JSON value, or the
reason it could not be parsed), so a million-record file never becomes a list of dicts.
Blank lines are skipped and not counted; every other record gets the next ``index``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import orjson

from .. import _guard
from ..errors import ErrorCode, InputTooLargeError, InputUnusableError, Issue
from ._issues import parse_issue, refuse_binary, too_deep_issue, value_issue
from ._json_array import read_json_array
from ._streams import BOM, Cut, cut_item, iter_lines, open_binary, stream_cut
from ._tables import read_csv, read_hub, read_parquet
from .sources import CONTAINERS, RawItem, Source, container_of

__all__ = ["iter_raw"]


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
        yield from read_hub(source)
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
        container, compressed = container_of(path)
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
    files = sorted(p for p in files if p.is_file() and container_of(p)[0] is not None)
    if not files:
        raise InputUnusableError(
            f"{root}: no dataset files in this directory",
            hint=f"put {', '.join('.' + c for c in CONTAINERS)} files in it",
        )
    return files


def _parse_line(line: bytes, index: int) -> RawItem:
    if _guard.too_deep(line):
        return RawItem(index, None, line, too_deep_issue(index))
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        problem = _guard.number_problem(line)
        issue = (Issue(ErrorCode.UNSAFE_NUMBER, problem, index, "write such numbers as strings") if problem
                 else parse_issue(str(exc), index))
        return RawItem(index, None, line, issue)
    issue = value_issue(line, value, index)
    return RawItem(index, None if issue else value, line, issue)


def _parse_lines(lines: Iterable[bytes | Cut]) -> Iterator[RawItem]:
    """Parse JSON Lines: line endings dropped, blank lines skipped and not counted."""
    index = 0
    for line in lines:
        if isinstance(line, Cut):
            yield cut_item(index, line.cut)
            return
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield _parse_line(line, index)
            index += 1


def _read_jsonl(source: Source, limit: int | None, notes: list[str] | None) -> Iterator[RawItem]:
    yield from _parse_lines(iter_lines(source, limit))


def _read_txt(source: Source, limit: int | None, notes: list[str] | None) -> Iterator[RawItem]:
    index = 0
    for line in iter_lines(source, limit):
        if isinstance(line, Cut):
            yield cut_item(index, line.cut)
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
    with open_binary(source, limit) as fh:
        data = fh.read()
        cut = stream_cut(fh)
    if cut:
        data += cut[1]
    refuse_binary(data, source)
    data = data.removeprefix(BOM)
    stripped = data.lstrip()
    if not stripped:
        if cut:
            yield cut_item(0, cut)
        return
    if stripped[:1] == b"[":
        items = read_json_array(data)
    else:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            # JSON Lines saved with a .json extension: parse the bytes already read
            items = _parse_lines(data.split(b"\n"))
        else:
            if _guard.too_deep(data):
                issue = too_deep_issue(0)
            else:
                issue = value_issue(data, value, 0)
            items = iter([RawItem(0, None if issue else value, data if issue else None, issue)])
    last = None
    for last in items:
        yield last
    if cut and not (last is not None and last.issue is not None and last.issue.code is ErrorCode.TRUNCATED):
        yield cut_item(last.index + 1 if last is not None else 0, cut)


_READERS = {
    "jsonl": _read_jsonl,
    "json": _read_json,
    "csv": read_csv,
    "parquet": read_parquet,
    "txt": _read_txt,
    "hub": read_hub,
}
