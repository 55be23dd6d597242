"""What a generation run keeps on disk: a row-level checkpoint and a completion cache.

* :class:`Checkpoint`: an append-only JSON Lines file, one finished row a line, each line
  written with one ``write`` and ``fsync``-ed before the row counts as done. A run killed at
  any moment (``kill -9``) leaves at most a cut-short last line, which :meth:`Checkpoint.open`
  cuts off, so a resumed run redoes that row and no other: nothing lost, nothing twice.
* :class:`CompletionCache`: SQLite, keyed by a hash of model, parameters and messages, so
  asking the same thing twice (in one run or across runs) costs one request.
* :func:`run_lock`: one live run per folder. A second run into the same ``--out`` (or a
  ``--resume`` beside a live run) is refused, naming the run that holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ..errors import RunLockedError, RunStateError

__all__ = ["LOCK_FILE", "Checkpoint", "CompletionCache", "RunLock", "cache_key", "run_lock"]

logger = logging.getLogger(__name__)

_VERSION = 1


def cache_key(model: str, params: dict[str, Any], messages: list[dict[str, Any]]) -> str:
    """A stable hash of what determines an answer: the model, the parameters and the messages."""
    payload = orjson.dumps({"model": model, "params": params, "messages": messages},
                           option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(payload).hexdigest()


#: The lock file of a run folder: the owner as JSON, and an OS lock on the file while it runs.
LOCK_FILE = ".hubtools-run.lock"


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would end the process there: count it alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    except OSError:
        return False
    return True


def _describe(holder: dict[str, Any]) -> str:
    if not holder.get("pid"):
        return "another run (it is just starting)"
    started = holder.get("started")
    since = time.strftime(" since %Y-%m-%d %H:%M:%S UTC", time.gmtime(started)) if started else ""
    return f"pid {holder['pid']} on {holder.get('host', '?')}{since}"


class RunLock:
    """An exclusive lock on a run folder, held for the life of a run.

    ``DIR/.hubtools-run.lock`` holds the owner (``pid``, ``host``, ``started``) as JSON and
    carries an OS lock (``flock`` on Unix, ``LockFileEx`` on Windows, through ``filelock``)
    for as long as the run lives. The kernel drops that lock when the process ends, however
    it ends, so a lock file left by a killed run is taken over with a warning; on a file
    system without locks the pid is checked instead (a live pid on this host holds it).
    The file is removed on release. Use :func:`run_lock`, which lets the stage and its
    checkpoints in one thread share the lock.

    Raises:
        RunLockedError: a live run holds the folder; ``.holder`` says which.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.previous: dict[str, Any] = {}
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        from filelock import lock_descriptor

        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                try:
                    locked: bool | None = lock_descriptor(fd, blocking=False)
                except OSError as exc:  # no locks on this file system (some network mounts)
                    logger.debug("%s: no OS lock (%s); checking the pid instead", self.path, exc)
                    locked = None
                if locked is False:
                    raise self._refusal(self._read(fd, wait=True))
                try:
                    current = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    current = False
                if not current:  # the holder removed the file as we opened it: lock the new one
                    os.close(fd)
                    continue
                previous = self._read(fd)
                if locked is None and previous.get("host") == socket.gethostname() and previous.get("pid") \
                        and previous["pid"] != os.getpid() and _pid_alive(previous["pid"]):
                    raise self._refusal(previous)
                if previous.get("pid"):
                    state = ("no longer running" if previous.get("host") == socket.gethostname()
                             and not _pid_alive(previous["pid"]) else "its lock is free")
                    logger.warning("%s: taking over the lock left by %s (%s)", self.folder,
                                   _describe(previous), state)
                me = {"pid": os.getpid(), "host": socket.gethostname(), "started": round(time.time(), 3)}
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, orjson.dumps(me) + b"\n")
                os.fsync(fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
            self._fd, self.previous = fd, previous
            return self
        raise RunStateError(f"{self.folder}: could not lock the run folder", hint="try again")

    def _refusal(self, holder: dict[str, Any]) -> RunLockedError:
        return RunLockedError(f"{self.folder}: a run is writing here ({_describe(holder)})", holder=holder,
                              hint="wait for it to finish (or stop it), or choose another --out")

    def _read(self, fd: int, *, wait: bool = False) -> dict[str, Any]:
        """The owner written in the file; a holder that has just locked it gets a moment to write."""
        for _ in range(20 if wait else 1):
            try:
                os.lseek(fd, 0, os.SEEK_SET)
                data = os.read(fd, 4096)
                return dict(orjson.loads(data)) if data.strip() else {}
            except (OSError, orjson.JSONDecodeError, TypeError, ValueError):
                pass
            if wait:
                time.sleep(0.01)
        return {}

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # removed while locked: a waiter cannot lock a stale file
            os.unlink(self.path)
        os.close(self._fd)  # drops the OS lock
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


_HELD: dict[tuple[str, int], list] = {}  # (folder, thread) -> [lock, depth]
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike) -> Iterator[RunLock]:
    """Hold the run lock of ``folder`` for the block (see :class:`RunLock`).

    Re-entrant in one thread: a stage that holds it can open checkpoints in the same folder.
    Another thread or process asking for it gets :class:`~hubtools.errors.RunLockedError`.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder, run_lock(folder) as lock:
    ...     lock.held
    True
    """
    Path(folder).mkdir(parents=True, exist_ok=True)
    key = (os.path.realpath(folder), threading.get_ident())
    with _HELD_GUARD:
        entry = _HELD.get(key)
        if entry is not None:
            entry[1] += 1
    if entry is None:
        lock = RunLock(folder).acquire()
        entry = [lock, 1]
        with _HELD_GUARD:
            _HELD[key] = entry
    try:
        yield entry[0]
    finally:
        with _HELD_GUARD:
            entry[1] -= 1
            done = entry[1] == 0
            if done:
                del _HELD[key]
        if done:
            entry[0].release()


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
        # one live run per folder: a second run (or a --resume beside this one) is refused
        self._run_lock = run_lock(self.path.parent)
        self._run_lock.__enter__()
        try:
            self._open(resume)
        except BaseException:
            self._run_lock.__exit__(None, None, None)
            raise

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
        if self._run_lock is not None:
            self._run_lock.__exit__(None, None, None)
            self._run_lock = None


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
