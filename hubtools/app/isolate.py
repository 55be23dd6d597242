"""Parse what visitors send in a child process, so that input that crashes a parser (or never
ends) costs that child, never the app.

Workers are started with ``spawn`` (no copy of the app's threads or locks) and reused: one
import of the readers per worker, not per call. A worker that dies or runs out of time is
killed and replaced; the caller gets a :class:`~hubtools.errors.ReaderCrashedError`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ReaderCrashedError

__all__ = ["run_isolated"]

T = TypeVar("T")

_CTX = multiprocessing.get_context("spawn")
#: how long one call may take before its worker is killed (seconds)
TIMEOUT = 600.0
_KEEP = 2  # idle workers kept for the next calls (the Load tab runs two at a time)
_idle: list[_Worker] = []
_lock = threading.Lock()


def _serve(conn) -> None:
    """The worker's loop: call what it is sent, send back ("ok", result) or ("error", exception)."""
    while True:
        try:
            fn, args, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = ("ok", fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
            reply = ("error", exc)
        try:
            conn.send(reply)
        except Exception as exc:  # noqa: BLE001 - an exception or result that does not pickle
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


@contextlib.contextmanager
def _without_main():
    """Start a child without re-importing ``__main__`` (``app.py`` builds the whole app at import;
    the child needs none of it)."""
    main = sys.modules["__main__"]
    saved = {k: getattr(main, k) for k in ("__file__", "__spec__") if hasattr(main, k)}
    if "__file__" in saved:
        del main.__file__
    main.__spec__ = None
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(main, key, value)


class _Worker:
    def __init__(self) -> None:
        self.conn, child = _CTX.Pipe()
        self.process = _CTX.Process(target=_serve, args=(child,), daemon=True, name="hubtools-reader")
        with _lock, _without_main():
            self.process.start()
        child.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()


def run_isolated(fn: Callable[..., T], *args: Any, timeout: float | None = None, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a child process: its result, or the exception it raised.

    ``fn`` and its arguments must pickle (a module-level function with plain arguments).

    Raises:
        ReaderCrashedError: the child died (a parser crash) or took longer than ``timeout``
            (default :data:`TIMEOUT`) and was stopped.
    """
    with _lock:
        worker = _idle.pop() if _idle else None
    if worker is None or not worker.process.is_alive():
        worker = _Worker()
    limit = TIMEOUT if timeout is None else timeout
    try:
        worker.conn.send((fn, args, kwargs))
        if not worker.conn.poll(limit):
            worker.kill()
            raise ReaderCrashedError(f"reading took longer than {limit:,.0f} s and was stopped",
                                     hint="try a smaller file, or the hubtools command line")
        status, value = worker.conn.recv()
    except (EOFError, OSError, BrokenPipeError):
        worker.kill()
        code = worker.process.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        raise ReaderCrashedError(f"the reader crashed on this input ({how}) and was stopped; the app is fine",
                                 hint="check the file; the hubtools command line shows more") from None
    with _lock:
        if len(_idle) < _KEEP:
            _idle.append(worker)
            worker = None
    if worker is not None:
        worker.kill()
    if status == "error":
        raise value
    return value
