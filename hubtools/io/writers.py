"""Write files atomically: one file (:func:`atomic_write`), records in the container a path's
extension names (:func:`write_records`, :func:`write_jsonl`)."""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from ..errors import InputUnusableError
from .sources import container_for_path

__all__ = ["atomic_write", "union_keys", "write_jsonl", "write_records"]


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
