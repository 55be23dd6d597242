"""Read records from files, directories and Hub datasets; write files atomically.

Readers stream: they yield one :class:`RawItem` at a time (a parsed JSON value, or the
reason it could not be parsed), so a million-record file never becomes a list of dicts.
Blank lines are skipped and not counted; every other record gets the next ``index``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from .errors import DatasetFileNotFound, ErrorCode, HubNetworkError, InputUnusableError, Issue

__all__ = [
    "CONTAINERS",
    "RawItem",
    "Source",
    "atomic_write",
    "iter_raw",
    "open_source",
    "union_keys",
    "write_jsonl",
    "write_records",
]

logger = logging.getLogger(__name__)

#: File containers hubtools reads and writes, by the extension that selects them.
CONTAINERS = ("jsonl", "json", "csv", "parquet", "txt")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
               ".parquet": "parquet", ".txt": "txt"}
_HUB_ID = re.compile(r"^(?:hf://datasets/)?[\w.-]+/[\w.-]+(?::[\w.-]+)?$")
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
        raw = self.raw if self.raw is not None else self.value
        if isinstance(raw, bytes):
            return raw.decode("utf-8", errors="replace")
        return raw


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
    if split is not None and (path.exists() or not _HUB_ID.match(text)):
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
    if _HUB_ID.match(text) and not text.startswith((".", "/")):
        return Source(text.removeprefix("hf://datasets/"), "hub", split=split)
    raise DatasetFileNotFound(
        f"{text}: no such file or directory",
        hint="check the path, or give a Hub dataset id such as 'user/name'",
    )


def iter_raw(source: Source) -> Iterator[RawItem]:
    """Yield every non-blank record of ``source`` in order, indexed from 0."""
    if source.container == "dir":
        files = _dataset_files(Path(source.location))
        index = 0
        for path in files:
            container, compressed = _container_of(path)
            sub = Source(str(path), container, compressed)  # type: ignore[arg-type]
            for item in _READERS[sub.container](sub):
                item.index = index
                item.file = str(path.relative_to(source.location))
                index += 1
                yield item
        return
    yield from _READERS[source.container](source)


def _dataset_files(root: Path) -> list[Path]:
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and _container_of(p)[0] is not None
    )
    if not files:
        raise InputUnusableError(
            f"{root}: no dataset files in this directory",
            hint=f"put {', '.join('.' + c for c in CONTAINERS)} files in it",
        )
    return files


def _open_binary(source: Source) -> IO[bytes]:
    if source.compressed:
        return gzip.open(source.location, "rb")
    return open(source.location, "rb")


def _refuse_binary(head: bytes, source: Source) -> None:
    if b"\x00" in head[:8192]:
        raise InputUnusableError(
            f"{source.name}: this is a binary file, not {source.container.upper()} text",
            hint="check that the file was not saved in another format and renamed",
        )


def _parse_line(line: bytes, index: int) -> RawItem:
    try:
        return RawItem(index, orjson.loads(line), line)
    except orjson.JSONDecodeError as exc:
        return RawItem(index, None, line, _parse_issue(str(exc), index))


def _parse_issue(message: str, index: int) -> Issue:
    if "UTF-8" in message:
        return Issue(ErrorCode.INVALID_UTF8, "the record is not valid UTF-8", index,
                     "re-encode the file as UTF-8")
    if "end of data" in message:
        return Issue(ErrorCode.TRUNCATED, f"the record is cut short ({message})", index,
                     "the file was probably truncated while copying; restore the full record")
    return Issue(ErrorCode.INVALID_JSON, f"not valid JSON ({message})", index)


def _iter_lines(source: Source) -> Iterator[bytes]:
    """The file's lines, without BOM, checked for binary content."""
    with _open_binary(source) as fh:
        first = True
        for line in fh:
            if first:
                _refuse_binary(line, source)
                line = line.removeprefix(_BOM)
                first = False
            yield line


def _parse_lines(lines: Iterable[bytes]) -> Iterator[RawItem]:
    """Parse JSON Lines: line endings dropped, blank lines skipped and not counted."""
    index = 0
    for line in lines:
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield _parse_line(line, index)
            index += 1


def _read_jsonl(source: Source) -> Iterator[RawItem]:
    yield from _parse_lines(_iter_lines(source))


def _read_txt(source: Source) -> Iterator[RawItem]:
    lines = (line.rstrip(b"\r\n") for line in _iter_lines(source))
    for index, line in enumerate(line for line in lines if line.strip()):
        try:
            yield RawItem(index, {"text": line.decode("utf-8")}, line)
        except UnicodeDecodeError:
            yield RawItem(index, None, line, Issue(
                ErrorCode.INVALID_UTF8, "the line is not valid UTF-8", index,
                "re-encode the file as UTF-8"))


def _read_json(source: Source) -> Iterator[RawItem]:
    with _open_binary(source) as fh:
        data = fh.read()
    _refuse_binary(data, source)
    data = data.removeprefix(_BOM)
    stripped = data.lstrip()
    if not stripped:
        return
    if stripped[:1] == b"[":
        yield from _read_json_array(data)
        return
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        # JSON Lines saved with a .json extension: parse the bytes already read
        yield from _parse_lines(data.split(b"\n"))
        return
    yield RawItem(0, value, None)


#: how far a bad record's brackets are followed before looking for the next record another way
_MAX_RECORD_CHARS = 10_000_000
_RECORD_BOUNDARY = re.compile(r"[}\]][ \t\r\n]*,[ \t\r\n]*(?=[{\[])")


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


def _resync(text: str, pos: int, decoder: json.JSONDecoder, ws: re.Pattern) -> int | None:
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
            _, value_end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if text.startswith((",", "]"), ws.match(text, value_end).end()):
            return start
    return None


def _read_json_array(data: bytes) -> Iterator[RawItem]:
    """Yield the elements of a JSON array one by one.

    A malformed record becomes one bad record and reading goes on with the next one (found by
    :func:`_resync`); a cut-short tail, or a bad record with no recognisable end, becomes one
    bad record holding the rest of the file.
    """
    lossy = False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="surrogateescape")
        lossy = True
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\r\n]*")
    pos = ws.match(text, text.index("[") + 1).end()
    index = 0
    if text.startswith("]", pos):
        return
    while pos < len(text):
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            cut = exc.pos >= len(text.rstrip()) or not text.rstrip().endswith("]")
            resume = None if cut else _resync(text, pos, decoder, ws)
            tail = text[pos:] if resume is None else text[pos:resume].rstrip().removesuffix(",").rstrip()
            code = ErrorCode.TRUNCATED if cut else ErrorCode.INVALID_JSON
            message = ("the file ends in the middle of this record" if code is ErrorCode.TRUNCATED
                       else f"not valid JSON ({exc.msg} at char {exc.pos})")
            raw = tail if len(tail) <= 100_000 else tail[:100_000] + "…"
            yield RawItem(index, None, raw, Issue(code, message, index,
                                                  "restore the full file, or fix the record"))
            if resume is None:
                return
            index += 1
            pos = resume
            if text.startswith("]", pos):
                return
            continue
        item = RawItem(index, value, None)
        if lossy and _has_surrogates(value):
            item.issue = Issue(ErrorCode.INVALID_UTF8, "the record is not valid UTF-8", index,
                               "re-encode the file as UTF-8")
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
        orjson.dumps(value)
    except TypeError:
        return True
    return False


def _json_or_none(cell: str) -> tuple[bool, Any]:
    try:
        value = orjson.loads(cell)
    except orjson.JSONDecodeError:
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


def _read_csv(source: Source) -> Iterator[RawItem]:
    import pandas as pd

    with _open_binary(source) as fh:
        _refuse_binary(fh.read(8192), source)
    index = 0
    try:
        chunks = pd.read_csv(
            source.location, dtype=str, keep_default_na=False, chunksize=_BATCH,
            encoding="utf-8-sig", encoding_errors="surrogateescape",
            compression="gzip" if source.compressed else None,
        )
        for chunk in chunks:
            columns = {name: _decode_csv_column(name, chunk[name].tolist()) for name in chunk.columns}
            for row in zip(*columns.values()):
                # as in Arrow containers, an empty non-text cell means the key was absent
                value = {k: v for k, v in zip(columns, row) if v is not None}
                item = RawItem(index, value, None)
                if _has_surrogates(value):
                    item.issue = Issue(ErrorCode.INVALID_UTF8, "the row is not valid UTF-8",
                                       index, "re-encode the file as UTF-8")
                yield item
                index += 1
    except pd.errors.EmptyDataError:
        return
    except pd.errors.ParserError as exc:
        raise InputUnusableError(f"{source.name}: not a readable CSV file ({exc})",
                                 hint="check the quoting and the delimiter") from exc


def _iter_arrow_rows(batches: Iterable[Any]) -> Iterator[RawItem]:
    index = 0
    for batch in batches:
        for row in batch.to_pylist():
            # Arrow gives every row every column; a null there means the key was absent
            yield RawItem(index, {k: v for k, v in row.items() if v is not None}, None)
            index += 1


def _read_parquet(source: Source) -> Iterator[RawItem]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source.location)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputUnusableError(f"{source.name}: not a readable Parquet file ({exc})",
                                 hint="check that the file is complete") from exc
    yield from _iter_arrow_rows(parquet.iter_batches(batch_size=_BATCH))


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
