"""What a generation run keeps on disk: a row-level checkpoint and a completion cache.

* :class:`Checkpoint`: an append-only JSON Lines file, one finished row a line, each line
  written with one ``write`` and ``fsync``-ed before the row counts as done. A run killed at
  any moment (``kill -9``) leaves at most a cut-short last line, which :meth:`Checkpoint.open`
  cuts off, so a resumed run redoes that row and no other: nothing lost, nothing twice.
* :class:`CompletionCache`: SQLite, keyed by a hash of model, parameters and messages, so
  asking the same thing twice (in one run or across runs) costs one request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson

from ..errors import RunStateError

__all__ = ["Checkpoint", "CompletionCache", "cache_key"]

logger = logging.getLogger(__name__)

_VERSION = 1


def cache_key(model: str, params: dict[str, Any], messages: list[dict[str, Any]]) -> str:
    """A stable hash of what determines an answer: the model, the parameters and the messages."""
    payload = orjson.dumps({"model": model, "params": params, "messages": messages},
                           option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(payload).hexdigest()


class Checkpoint:
    """Finished rows of one run, by key, persisted line by line.

    Args:
        path: the JSON Lines file (created with a header line naming the run).
        header: what identifies the run (stage, model, parameters); a resume must match it.
        resume: continue a run found at ``path``; without it an existing run is an error.

    Raises:
        RunStateError: a run exists and ``resume`` is off, or it belongs to a different run.
    """

    def __init__(self, path: str | os.PathLike, header: dict[str, Any], *, resume: bool = False):
        self.path = Path(path)
        self.header = header
        self.rows: dict[str, dict[str, Any]] = {}
        self.dropped_tail = False
        self._lock = threading.Lock()
        self._fh = None
        self._pending: list = []
        self._flusher: asyncio.Task | None = None
        self._error: Exception | None = None
        self._open(resume)

    def _open(self, resume: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size and not self._header_only():
            if not resume:
                raise RunStateError(f"{self.path.parent}: a run is already there ({self.path.name})",
                                    hint="pass --resume to continue it, or choose another --out")
            self._load()
        else:
            with open(self.path, "wb") as fh:
                fh.write(orjson.dumps({"hubtools_checkpoint": _VERSION, **self.header}) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
        self._fh = open(self.path, "ab")

    def _header_only(self) -> bool:
        """A run that stopped before its first row (a wrong model, say): nothing to resume or lose."""
        with open(self.path, "rb") as fh:
            first = fh.readline()
            return fh.read(1) == b"" and first.endswith(b"\n")

    def _load(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            # killed in the middle of a write: that row was not done, cut it off
            logger.info("%s: dropping a cut-short last line (%d bytes)", self.path, len(data) - end)
            self.dropped_tail = True
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
                os.fsync(fh.fileno())
        lines = data[:end].split(b"\n")[:-1]
        try:
            found = orjson.loads(lines[0]) if lines else {}
        except orjson.JSONDecodeError:
            found = {}
        if found.get("hubtools_checkpoint") != _VERSION:
            raise RunStateError(f"{self.path}: not a hubtools checkpoint", hint="choose another --out")
        found.pop("hubtools_checkpoint")
        mismatch = sorted(k for k in set(found) | set(self.header) if found.get(k) != self.header.get(k))
        if mismatch:
            raise RunStateError(
                f"{self.path.parent}: the run there used other settings ({', '.join(mismatch)})",
                hint="resume with the same options, or choose another --out")
        for line in lines[1:]:
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                logger.warning("%s: skipping an unreadable line; its row will be redone", self.path)
                continue
            self.rows[row["key"]] = row

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, row: dict[str, Any]) -> None:
        """Persist one finished row (it must have a ``key``); returns once it is on disk."""
        line = orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS) + b"\n"
        with self._lock:
            if row["key"] in self.rows:
                return
            assert self._fh is not None
            self._fh.write(line)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self.rows[row["key"]] = row

    def submit(self, row: dict[str, Any]) -> asyncio.Future:
        """Queue one finished row for the next group commit and return at once (from a coroutine).

        Rows that finish while a commit is on disk go out together, with one ``write`` and one
        ``fsync``, in a thread: the event loop never waits for the disk, and neither does the
        worker that finished the row, so its next request starts right away. A row counts as
        done only once committed; a run killed before that redoes it on resume (nothing lost,
        nothing twice). :meth:`drain` waits for every queued row. The returned future is done
        when this row is on disk.

        Raises:
            OSError: an earlier commit failed (disk full, ...): the run must stop.
        """
        if self._error is not None:
            raise self._error
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((row, orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS) + b"\n", future))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return future

    async def aadd(self, row: dict[str, Any]) -> None:
        """:meth:`add` for a coroutine: :meth:`submit` and wait until this row is on disk."""
        await self.submit(row)

    async def drain(self) -> None:
        """Wait until every submitted row is on disk.

        Raises:
            OSError: a commit failed; the rows committed before it are on disk.
        """
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        if self._error is not None:
            raise self._error

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._write_batch, batch)
            except Exception as exc:  # noqa: BLE001 - kept and raised by submit/drain
                self._error = self._error or exc
                for _, _, future in batch + self._pending:
                    if not future.done():
                        future.set_exception(exc)
                        future.exception()  # retrieved here: drain() is where it is raised
                self._pending = []
                return
            for _, _, future in batch:
                if not future.done():
                    future.set_result(None)

    def _write_batch(self, batch: list) -> None:
        with self._lock:
            fresh, seen = [], set()
            for row, line, _ in batch:
                if row["key"] not in self.rows and row["key"] not in seen:
                    seen.add(row["key"])
                    fresh.append((row, line))
            if not fresh:
                return
            assert self._fh is not None
            self._fh.write(b"".join(line for _, line in fresh))
            self._fh.flush()
            os.fsync(self._fh.fileno())
            for row, _ in fresh:
                self.rows[row["key"]] = row

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class CompletionCache:
    """An SQLite table of answers by :func:`cache_key`; safe to share between runs and processes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        self._db.commit()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM completions WHERE key = ?", (key,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO completions VALUES (?, ?)", (key, orjson.dumps(value)))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        self._db.close()
