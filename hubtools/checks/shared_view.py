"""The text view in one memory-mapped Arrow file that the worker processes read in place.

Without it, every batch a check sends to a worker is copied out of the view, pickled, written
through a pipe and unpickled on the other side: about 5 CPU seconds per check and million
records on this machine (1 s of it in the main process, serially, while the workers wait), and a
window of batch copies in the main process. With it, the view is written once per run into an
Arrow IPC file (in ``/dev/shm`` when it has room, else the temporary directory); the main process
and each worker memory-map that file, and a batch is sent as ``(field names, first row, rows)``.
The pages are shared, so the view is in memory once for all processes (what PSS counts).

Between passes a process hands the view's pages back (:func:`drop_pages`): a worker after each
batch, the main process after each check. They stay in the page cache, shared and reclaimable, and
a later read maps them again; what a process holds mapped is then its batch in flight, not the
whole view (about 0.9 GB per million Alpaca records, counted in every process's PSS otherwise).

The file is removed when the run ends (:meth:`SharedView.close`); a mapping made before stays
valid until its arrays are dropped (POSIX keeps an unlinked file while it is mapped). A run that
was killed cannot remove its file (in ``/dev/shm`` that is memory): the next :func:`share` removes
the files of processes that no longer run.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
import pyarrow as pa

__all__ = ["SharedView", "drop_mapped", "drop_pages", "read_batch", "remove_stale", "share"]

#: where a view goes when it fits with this much to spare (tmpfs: never written to disk)
_SHM = "/dev/shm"
_SPARE = 2.0


@dataclass
class SharedView:
    """A view's fields written to ``path``; ``arrays`` are the memory-mapped copies (the ones
    :meth:`CheckData.map <hubtools.checks.base.CheckData.map>` recognises by identity)."""

    path: str
    arrays: dict[str, pa.Array] = field(default_factory=dict)

    def covers(self, fields: Mapping[str, pa.Array], names: list[str]) -> bool:
        """Whether every named field of ``fields`` is the shared array itself (a view derived
        later, e.g. with templates stripped, is shipped batch by batch as before)."""
        return all(name in self.arrays and fields.get(name) is self.arrays[name] for name in names)

    def drop_pages(self) -> None:
        """Hand this process's mapped pages of the view back to the kernel (:func:`drop_pages`)."""
        drop_pages(self.arrays.values())

    def close(self) -> None:
        if os.path.isdir(self.path):  # a view built into files on disk (:mod:`.disk_view`)
            shutil.rmtree(self.path, ignore_errors=True)
            return
        try:
            os.unlink(self.path)
        except OSError:  # already gone; or a platform that cannot unlink a mapped file
            pass


_MADV_DONTNEED = 4  # Linux's value (mmap.MADV_DONTNEED where Python exposes it)
_PAGE = mmap.PAGESIZE


def _madvise():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.madvise
    except (OSError, AttributeError):  # not a POSIX libc: nothing to hand back
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_MADVISE = _madvise() if hasattr(mmap, "MADV_DONTNEED") else None


def drop_pages(arrays: Iterable[pa.Array]) -> None:
    """Unmap the resident pages of memory-mapped arrays from this process: the data stays in the
    file (and the page cache), and the next read faults it back in, unchanged.

    Only for arrays whose every buffer lies in a read-only file mapping (the views of
    :func:`share`, :func:`.disk_view.build_view` and :func:`.disk_view.open_view`): on heap
    memory ``MADV_DONTNEED`` would discard the data."""
    if _MADVISE is None:
        return
    for arr in arrays:
        for buf in arr.buffers():
            if buf is None or buf.size == 0:
                continue
            start = buf.address - buf.address % _PAGE  # still inside the mapping: it starts on a page
            _MADVISE(start, buf.address + buf.size - start, _MADV_DONTNEED)


def _directory(nbytes: int) -> str:
    if os.path.isdir(_SHM):
        try:
            if shutil.disk_usage(_SHM).free > _SPARE * nbytes:
                return _SHM
        except OSError:
            pass
    return tempfile.gettempdir()


#: a view file, or a folder of files mapped back (:mod:`.disk_view`), named by its process
_NAME = re.compile(r"hubtools-(?:view-(\d+)-[0-9a-f]+\.arrow|disk-(\d+)-[0-9a-f]+)$")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but another user's
        return True
    return True


def remove_stale(directory: str) -> list[str]:
    """Remove the view files (and disk-view folders) in ``directory`` whose process no longer
    runs; return their names."""
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = _NAME.match(name)
        if match and not _running(int(match.group(1) or match.group(2))):
            path = os.path.join(directory, name)
            try:
                if os.path.isdir(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
                removed.append(name)
            except OSError:
                pass
    return removed


def _open(path: str) -> pa.Table:
    return pa.ipc.open_file(pa.memory_map(path, "r")).read_all()


def share(fields: Mapping[str, pa.Array]) -> SharedView:
    """Write ``fields`` (equal-length arrays) to a new Arrow file and map it back.

    Raises:
        OSError: the file cannot be written (no room, no temporary directory).
    """
    names = list(fields)
    table = pa.table({name: fields[name] for name in names})
    nbytes = table.nbytes
    directory = _directory(nbytes)
    remove_stale(directory)
    path = os.path.join(directory, f"hubtools-view-{os.getpid()}-{uuid.uuid4().hex[:12]}.arrow")
    try:
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=max(len(table), 1))
        mapped = _open(path)
    except BaseException:
        SharedView(path).close()
        raise
    return SharedView(path, {name: _only_chunk(mapped.column(name)) for name in names})


def _only_chunk(column: pa.ChunkedArray) -> pa.Array:
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


#: the view this worker process has mapped (one run at a time per pool)
_MAPPED: dict[str, dict[str, pa.Array]] = {}


def read_batch(path: str, names: list[str], start: int, rows: int) -> dict[str, pa.Array]:
    """In a worker: the batch ``rows`` rows from ``start`` of the shared view at ``path`` (an
    Arrow file, or a folder of field files made by :func:`.disk_view.build_view`)."""
    arrays = _MAPPED.get(path)
    if arrays is None:
        _MAPPED.clear()  # a new run's view: drop the old mapping
        if os.path.isdir(path):
            from .disk_view import open_view

            arrays = open_view(path)
        else:
            table = _open(path)
            arrays = {name: _only_chunk(table.column(name)) for name in table.column_names}
        _MAPPED[path] = arrays
    return {name: arrays[name].slice(start, rows) for name in names}


def drop_mapped(path: str) -> None:
    """In a worker, after a batch: hand back the pages of the view at ``path`` (:func:`drop_pages`)."""
    arrays = _MAPPED.get(path)
    if arrays is not None:
        drop_pages(arrays.values())
