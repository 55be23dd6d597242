"""Tables and text views built piece by piece into files and mapped back: held on disk, not in RAM.

The Ray engine's driver must not need memory in proportion to its input: the records come back
from the read tasks a block at a time, and the text view the checks read is made from them a
chunk at a time. Here each goes to a file as it comes (:class:`TableFile` for the canonical
records, :class:`StringColumnFile` per text field, :class:`IntColumnFile` for the source
indices), and is then memory-mapped back as one Arrow table / array / numpy array. The mapped
pages are the page cache's: the kernel reads them in when a check touches them and drops them
under pressure, so the process's own (anonymous) memory stays the size of one chunk.

Each file is unlinked as soon as it is mapped (POSIX keeps a mapped file until its last
mapping goes), so nothing is left behind by a run that ends, however it ends. A run killed
while writing leaves its folder (``hubtools-disk-<pid>-<hex>``): :func:`run_folder` removes the
folders of processes that no longer run (as :func:`.shared_view.remove_stale` does for views).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from ..shapes import Kind
from .shared_view import remove_stale

__all__ = ["IntColumnFile", "StringColumnFile", "TableFile", "build_view", "open_view", "run_folder"]

#: bytes of text a string array may hold with 32-bit offsets
_STRING_LIMIT = 2**31 - 1


def run_folder(parent: str | None = None) -> str:
    """A new folder for one run's files under ``parent`` (default: the temporary directory),
    after removing the folders of runs whose process is gone."""
    parent = parent or tempfile.gettempdir()
    os.makedirs(parent, exist_ok=True)
    remove_stale(parent)
    path = os.path.join(parent, f"hubtools-disk-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    os.makedirs(path)
    return path


def remove_folder(path: str | None) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)


def _mapped(path: str, keep: bool = False) -> pa.Buffer:
    """The whole file as a buffer over its memory map (empty files have no map), then unlinked
    unless ``keep`` (other processes will map it too)."""
    if os.path.getsize(path) == 0:
        buf = pa.py_buffer(b"")
    else:
        buf = pa.memory_map(path, "r").read_buffer()
    if not keep:
        try:
            os.unlink(path)
        except OSError:  # a platform that cannot unlink a mapped file: removed with the run's folder
            pass
    return buf


class IntColumnFile:
    """int64 values appended chunk by chunk; :meth:`finish` maps them back as a numpy array."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh = open(path, "wb")  # noqa: SIM115 - closed in finish()

    def append(self, values: np.ndarray) -> None:
        self._fh.write(np.ascontiguousarray(values, dtype=np.int64).tobytes())

    def finish(self) -> np.ndarray:
        self._fh.close()
        return np.frombuffer(_mapped(self.path), dtype=np.int64)


class StringColumnFile:
    """A string column appended chunk by chunk (its text bytes and its offsets in two files);
    :meth:`finish` maps them back as one Arrow array: ``string`` while the text fits 32-bit
    offsets, ``large_string`` beyond (where an array in memory could not hold it at all)."""

    def __init__(self, path: str, keep: bool = False) -> None:
        self.path, self.keep = path, keep
        self._data = open(path + ".data", "wb")  # noqa: SIM115 - closed in finish()
        self._offsets = open(path + ".offsets", "wb")  # noqa: SIM115
        self._offsets.write(np.zeros(1, dtype=np.int64).tobytes())
        self.rows = self.nbytes = 0

    def append(self, arr: pa.Array) -> None:
        if isinstance(arr, pa.ChunkedArray):
            for chunk in arr.chunks:
                self.append(chunk)
            return
        n = len(arr)
        if n == 0:
            return
        if arr.null_count:
            raise ValueError("a text view field has nulls")
        wide = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
        dtype = np.int64 if wide else np.int32
        _, off_buf, data_buf = arr.buffers()
        offsets = np.frombuffer(off_buf, dtype=dtype, count=n + 1, offset=arr.offset * dtype().itemsize)
        first, last = int(offsets[0]), int(offsets[-1])
        if last > first:
            self._data.write(memoryview(data_buf)[first:last])
        self._offsets.write((offsets[1:].astype(np.int64) - first + self.nbytes).tobytes())
        self.rows += n
        self.nbytes += last - first

    def finish(self) -> pa.Array:
        self._data.close()
        self._offsets.close()
        data = _mapped(self.path + ".data", self.keep)
        if self.nbytes <= _STRING_LIMIT:
            # 32-bit offsets, as a view in memory has: 4 bytes a record, written and mapped too
            offsets = np.frombuffer(_mapped(self.path + ".offsets"), dtype=np.int64)
            narrow = np.memmap(self.path + ".offsets32", dtype=np.int32, mode="w+", shape=(self.rows + 1,))
            step = 1 << 20
            for start in range(0, self.rows + 1, step):
                narrow[start:start + step] = offsets[start:start + step]
            narrow.flush()
            del narrow, offsets
            return pa.StringArray.from_buffers(self.rows, _mapped(self.path + ".offsets32", self.keep), data)
        offsets = _mapped(self.path + ".offsets", self.keep)
        return pa.LargeStringArray.from_buffers(self.rows, offsets, data)


class TableFile:
    """Record batches appended in order to an Arrow IPC stream file; :meth:`finish` maps the file
    back as one table (zero-copy: its columns are views into the map)."""

    def __init__(self, path: str, schema: pa.Schema) -> None:
        self.path, self.schema = path, schema
        self._sink = pa.OSFile(path, "wb")
        self._writer = pa.ipc.new_stream(self._sink, schema)

    def append(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table.cast(self.schema) if table.schema != self.schema else table)

    def finish(self) -> pa.Table:
        self._writer.close()
        self._sink.close()
        table = pa.ipc.open_stream(pa.memory_map(self.path, "r")).read_all()
        try:
            os.unlink(self.path)
        except OSError:
            pass
        return table


def build_view(chunks: Iterable[pa.Table], kind: Kind, folder: str,
               keep: bool = False) -> tuple[np.ndarray, dict[str, pa.Array]]:
    """The text view of ``kind`` (source indices, fields by name) of the canonical records in
    ``chunks``, each chunk's view written to files in ``folder`` as it is made. With ``keep`` the
    fields' files stay for other processes to map (:func:`open_view`) until the folder is removed."""
    from ..records import INDEX
    from ..shapes import SHAPES
    from .base import _views

    names = [text.name for text in SHAPES[kind].text_fields]
    index = IntColumnFile(os.path.join(folder, "view-index"))
    columns = {name: StringColumnFile(os.path.join(folder, f"field-{k}"), keep) for k, name in enumerate(names)}
    start = 0
    for chunk in chunks:
        if INDEX in chunk.column_names:
            index.append(chunk.column(INDEX).to_numpy())
        else:
            index.append(np.arange(start, start + chunk.num_rows))
        start += chunk.num_rows
        for name, arr in _views(chunk, kind).items():
            columns[name].append(arr)
    fields = {name: column.finish() for name, column in columns.items()}
    if keep:
        manifest = {name: {"file": os.path.basename(column.path), "rows": column.rows,
                           "large": column.nbytes > _STRING_LIMIT} for name, column in columns.items()}
        with open(os.path.join(folder, VIEW_MANIFEST), "w", encoding="utf-8") as fh:
            json.dump(manifest, fh)
    return index.finish(), fields


#: what :func:`build_view` with ``keep`` writes beside the fields: each one's file, rows and width
VIEW_MANIFEST = "view.json"


def open_view(folder: str) -> dict[str, pa.Array]:
    """In another process: the fields of a view kept in ``folder``, mapped (not read)."""
    with open(os.path.join(folder, VIEW_MANIFEST), encoding="utf-8") as fh:
        manifest = json.load(fh)
    out = {}
    for name, entry in manifest.items():
        path = os.path.join(folder, entry["file"])
        if entry["large"]:
            out[name] = pa.LargeStringArray.from_buffers(entry["rows"], _mapped(path + ".offsets", True),
                                                         _mapped(path + ".data", True))
        else:
            out[name] = pa.StringArray.from_buffers(entry["rows"], _mapped(path + ".offsets32", True),
                                                    _mapped(path + ".data", True))
    return out
