"""Inputs read on Ray: the files of an input are read by Ray Data read tasks, in parallel.

A JSON Lines / Parquet / JSON / CSV / text file, a folder of such shards, or a Hub dataset's
Parquet and JSON Lines files (resolved with ``datasets``' own data-file rules, downloaded by the
workers with ``huggingface_hub``) becomes one read task per file (:class:`InputDatasource`); a
single uncompressed JSON Lines file over :data:`SPLIT_BYTES` one task per byte range (the lines
that start in it).
Each task reads its file with hubtools' own readers (:func:`hubtools.io.iter_raw`), converts and
validates its records in blocks of :data:`CHUNK` with the function :func:`hubtools.load` uses
(:func:`~hubtools.load.check_item`), so a record gets the same quarantine code and reason as
with the local load.

The driver reads only the detection sample (the first records, as :func:`hubtools.load` does) and
then the blocks' results. Each task numbers its records from 0 in its file; the driver checks
that every file's records came back exactly once (a lost or repeated block is an error) and
shifts each file's numbers by the records of the files before it, so the source indices are
the local load's. Records in = valid + quarantined, per file and in all.

Read on the driver instead (said in ``quality.json``): message trees (OpenAssistant), whose
trees span records, and Hub datasets whose files are not Parquet or JSON Lines. A Hub JSON Lines
record is read as ``datasets`` shows it to the local load (a null is an absent key; its raw form
is the row); one difference is left: ``datasets`` gives nested objects every key their siblings
have (as nulls), the workers' reader does not.
"""

from __future__ import annotations

import functools
import itertools
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..._fastpath import fast_part, has_columnar_path
from ...errors import (
    ErrorCode,
    HubtoolsError,
    InputTooLargeError,
    InputUnusableError,
    Issue,
)
from ...io import RawItem, Source, iter_raw, open_source, union_keys
from ...io._streams import BOM
from ...io.readers import _READERS as READERS
from ...io.readers import _dataset_files as dataset_files
from ...io.readers import _parse_lines as parse_lines
from ...load import (
    DETECT_SAMPLE,
    LoadResult,
    _config,
    canonical_dataset,
    check_item,
    detect_head,
    load,
)
from ...records import INDEX, schema_for
from ...validate import QuarantineRow, ValidationConfig

__all__ = ["CHUNK", "InputDatasource", "Part", "plan_parts", "read_on_ray"]

#: Records a read task converts and validates at a time (one block out per chunk).
CHUNK = 10_000
#: A single uncompressed JSON Lines file over this many bytes is read in byte ranges, one task each.
SPLIT_BYTES = 128 << 20
#: Blocks a read task may leave waiting for the driver (Ray Data's 2 ran the read tasks one at a time)
STREAMED_BLOCKS = 64
#: Containers whose Hub files the workers read themselves (others: ``datasets`` on the driver).
HUB_CONTAINERS = ("parquet", "jsonl")

_PART, _FIRST, _COUNT, _VALID, _QUARANTINE, _NOTES = "part", "first", "count", "valid", "quarantine", "notes"
_COLUMNAR = "columnar"

NOTE_RAY = ("read by Ray Data read tasks, {tasks} task(s) over {files} file(s), converted and validated in "
            "the workers")
NOTE_DRIVER = "read and validated on the driver (hubtools.load): {why}"


@dataclass(frozen=True)
class Part:
    """One file of the input, read by one task."""

    number: int
    location: str  # a local path, or the path in a Hub repository
    container: str
    compressed: bool = False
    #: the file's name in quarantine rows (a folder's file); None for a single file or a Hub file
    name: str | None = None
    #: (repo_id, revision) of a Hub file
    hub: tuple[str, str] | None = None
    size: int | None = None
    #: the byte range [start, end) of a JSON Lines file whose lines this part reads
    span: tuple[int, int] | None = None


def _hub_parts(src: Source) -> list[Part] | str:
    """The split's data files in the order ``datasets`` reads them; or why the workers cannot."""
    import datasets
    from huggingface_hub import HfFileSystem

    from ..._hub_read import _check_builder, _check_card

    repo_id, _, config = src.location.partition(":")
    try:
        _check_card(repo_id, src.token)
        builder = datasets.load_dataset_builder(f"hf://datasets/{repo_id}", config or None, token=src.token)
        _check_builder(repo_id, builder, strict=src.token is not None)
    except Exception:  # noqa: BLE001 - hubtools.load says what is wrong, in its words
        return "the dataset's files could not be resolved here"
    files = builder.config.data_files or {}
    split = src.split or ("train" if "train" in files else next(iter(files), None))
    if split not in files:
        return f"no split {split!r} among the data files"
    fs = HfFileSystem(token=src.token)
    parts = []
    for number, url in enumerate(files[split]):
        resolved = fs.resolve_path(str(url))
        suffixes = [x.lower() for x in Path(resolved.path_in_repo).suffixes]
        container = {".parquet": "parquet", ".jsonl": "jsonl"}.get(suffixes[-1] if suffixes else "")
        if container not in HUB_CONTAINERS:
            return f"{resolved.path_in_repo} is read by datasets' own reader"
        parts.append(Part(number, resolved.path_in_repo, container, hub=(resolved.repo_id, resolved.revision)))
    return parts or "the split has no data files"


def plan_parts(src: Source, split_bytes: int = SPLIT_BYTES, cpus: int = 1) -> list[Part] | str:
    """The files of ``src``, one :class:`Part` each (a big JSON Lines file: one per byte range of
    at most ``split_bytes``, as many ranges as a multiple of ``cpus``, so no CPU idles through
    the last round), in the local load's order; or why the workers cannot read them."""
    if src.container == "dir":
        root = Path(src.location)
        files = [open_source(p) for p in dataset_files(root)]
        return [Part(k, f.location, f.container, f.compressed, name=str(Path(f.location).relative_to(root)),
                     size=Path(f.location).stat().st_size) for k, f in enumerate(files)]
    if src.container == "hub":
        return _hub_parts(src)
    size = Path(src.location).stat().st_size
    if src.container == "jsonl" and not src.compressed and size > split_bytes:
        ranges = -(-size // split_bytes)
        split_bytes = -(-size // (-(-ranges // cpus) * cpus))
        return [Part(k, src.location, src.container, size=min(split_bytes, size - start),
                     span=(start, min(start + split_bytes, size)))
                for k, start in enumerate(range(0, size, split_bytes))]
    return [Part(0, src.location, src.container, src.compressed, size=size)]


def _lines_in(path: str, start: int, end: int) -> Iterator[bytes]:
    """The lines of a file that start in [start, end) (the first line without its BOM)."""
    with open(path, "rb") as fh:
        if start:
            fh.seek(start - 1)
            fh.readline()  # the line under way at ``start`` belongs to the range before
        pos = fh.tell()
        while pos < end and (line := fh.readline()):
            pos += len(line)
            yield line.removeprefix(BOM) if pos == len(line) else line


def _range_bytes(path: str, start: int, end: int) -> bytes:
    r"""``b"".join(_lines_in(path, start, end))``, read in one call: the bytes from the first line
    that starts at or after ``start`` through the end of the last line that starts before ``end``.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(delete=False) as fh:
    ...     _ = fh.write(BOM + b"ab\ncd\nef")
    >>> [_range_bytes(fh.name, s, e) for s, e in ((0, 6), (6, 9), (9, 12), (12, 13))]
    [b'ab\n', b'cd\n', b'ef', b'']
    >>> all(_range_bytes(fh.name, s, e) == b"".join(_lines_in(fh.name, s, e)) for s in range(12) for e in range(s, 12))
    True
    """
    with open(path, "rb") as fh:
        if start:
            fh.seek(start - 1)
            fh.readline()  # the line under way at ``start`` belongs to the range before
        first = fh.tell()
        if first >= end:
            return b""
        data = fh.read(end - first)
        if data and not data.endswith(b"\n"):
            data += fh.readline()  # the last line started before ``end``: all of it
    return data.removeprefix(BOM) if first == 0 else data


def part_items(part: Part, notes: list[str], token: str | bool | None = None) -> Iterator[RawItem]:
    """The records of one file as the local load reads them, numbered from 0 in the file."""
    if part.hub is not None:
        from huggingface_hub import hf_hub_download

        repo_id, revision = part.hub
        path = hf_hub_download(repo_id, part.location, repo_type="dataset", revision=revision, token=token)
        for item in iter_raw(Source(path, part.container, part.compressed), notes=notes):
            if part.container == "jsonl" and item.issue is None and isinstance(item.value, dict):
                # as the local load sees it through datasets' Arrow table: a null is an absent
                # key, and a record's raw form is its row, not its line
                item.value = {k: v for k, v in item.value.items() if v is not None}
                item.raw = None
            yield item
        return
    if part.span is not None:  # numbered from 0 in the range, as the file's reader numbers a file
        yield from parse_lines(_lines_in(part.location, *part.span))
        return
    source = Source(part.location, part.container, part.compressed)
    if part.name is None:
        yield from iter_raw(source, notes=notes)
        return
    # a folder's file: as the folder reader does, a file that cannot be read (or its rest) is one record
    index = 0
    try:
        for item in READERS[source.container](source, None, notes):
            item.file = part.name
            index = item.index + 1
            yield item
    except InputTooLargeError:
        raise
    except (InputUnusableError, OSError) as exc:
        reason = exc.message if isinstance(exc, InputUnusableError) else (exc.strerror or str(exc))
        yield RawItem(index, None, part.name, Issue(
            ErrorCode.UNREADABLE, f"this file (or its rest) could not be read: {reason}", index,
            "fix or remove the file; the other files were read"), file=part.name)


def _envelope(part: int, first: int, count: int, table: pa.Table, quarantine: list[QuarantineRow],
              notes: list[str], columnar: bool = False) -> pa.Table:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    stream = sink.getvalue()  # the stream's buffer, made the value as it is (no copy)
    valid = pa.LargeBinaryArray.from_buffers(pa.large_binary(), 1, [None, pa.py_buffer(
        np.array([0, stream.size], np.int64).tobytes()), stream])
    return pa.table({_PART: pa.array([part], pa.int64()), _FIRST: pa.array([first], pa.int64()),
                     _COUNT: pa.array([count], pa.int64()), _VALID: valid,
                     _QUARANTINE: pa.array([pickle.dumps(quarantine, protocol=5)], pa.large_binary()),
                     _NOTES: pa.array([pickle.dumps(notes)], pa.large_binary()),
                     _COLUMNAR: pa.array([columnar])})


def _part_bytes(part: Part) -> bytes | None:
    """The bytes of a part the columnar path can read: a local, uncompressed JSON Lines file or
    byte range of one (its lines, as the record reader takes them); None for any other part."""
    if part.hub is not None or part.name is not None or part.container != "jsonl" or part.compressed:
        return None
    if part.span is not None:
        return _range_bytes(part.location, *part.span)
    with open(part.location, "rb") as fh:
        return fh.read().removeprefix(BOM)


def read_part(part: Part, format_name: str, config: ValidationConfig, token: str | bool | None = None,
              chunk: int = CHUNK, columnar: bool = False) -> Iterator[pa.Table]:
    """A read task: one file, converted and validated ``chunk`` records at a time; one block each.

    With ``columnar`` (the load would take its columnar path for this format), a clean JSON Lines
    part is parsed and converted by Arrow in one go (:func:`hubtools._fastpath.fast_part`), the
    records the record-by-record path gives; a part it refuses is read record by record."""
    from ...formats import get_format

    fmt = get_format(format_name)
    schema = schema_for(fmt.kind)
    data = _part_bytes(part) if columnar else None
    table = fast_part(data, format_name, config.max_chars, part.location) if data is not None else None
    del data
    if table is not None:
        for first in range(0, table.num_rows, chunk):
            piece = table.slice(first, chunk)
            yield _envelope(part.number, first, piece.num_rows, piece, [], [], columnar=True)
        if table.num_rows:
            return
    notes: list[str] = []
    told = 0
    items = part_items(part, notes, token)
    sent = False
    while batch := list(itertools.islice(items, chunk)):
        valid, quarantine = [], []
        for item in batch:
            out = check_item(item, fmt, config, notes)
            (quarantine if isinstance(out, QuarantineRow) else valid).append(out)
        yield _envelope(part.number, batch[0].index, len(batch), pa.Table.from_pylist(valid, schema=schema),
                        quarantine, notes[told:])
        told, sent = len(notes), True
    if not sent:  # an empty file still says so (and its notes)
        yield _envelope(part.number, 0, 0, schema.empty_table(), [], notes)


try:  # the Datasource base class when Ray is installed (the module is imported with the engine)
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask
except ImportError:  # pragma: no cover - import_ray() says how to install it
    Datasource = object  # type: ignore[assignment,misc]


class InputDatasource(Datasource):  # type: ignore[misc]
    """A Ray Data datasource: one read task per :class:`Part`."""

    def __init__(self, parts: list[Part], format_name: str, config: ValidationConfig,
                 token: str | bool | None = None, columnar: bool = False) -> None:
        self.parts, self.format_name, self.config, self.token = parts, format_name, config, token
        self.columnar = columnar

    def get_name(self) -> str:
        return "HubtoolsInput"

    def estimate_inmemory_data_size(self) -> int | None:
        sizes = [p.size for p in self.parts]
        return None if None in sizes else int(sum(sizes))  # type: ignore[arg-type]

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[Any]:
        return [ReadTask(functools.partial(read_part, part, self.format_name, self.config, self.token,
                                           columnar=self.columnar),
                         BlockMetadata(num_rows=None, size_bytes=part.size, exec_stats=None,
                                       input_files=(part.location,)))
                for part in self.parts]


class _Spill:
    """The envelopes' record blocks as they come back, appended to one file (the driver keeps
    only where each is); read back mapped, in file order, by :func:`_assemble`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh = open(path, "wb")  # noqa: SIM115 - closed in mapped()
        self.size = 0

    def keep_block(self, block: pa.Table) -> list[dict[str, Any]]:
        """A block's envelopes, their record streams written straight from its buffer (no copy)."""
        envelopes, at = block.drop_columns([_VALID]).to_pylist(), 0
        for chunk in (c for c in block.column(_VALID).cast(pa.large_binary()).chunks if len(c)):
            offsets = np.frombuffer(chunk.buffers()[1], np.int64, len(chunk) + 1, chunk.offset * 8)
            self._fh.write(memoryview(chunk.buffers()[2])[offsets[0]:offsets[-1]])
            for k in range(len(chunk)):
                envelopes[at + k][_VALID] = (self.size + int(offsets[k] - offsets[0]), int(offsets[k + 1] - offsets[k]))
            self.size, at = self.size + int(offsets[-1] - offsets[0]), at + len(chunk)
        return envelopes

    def mapped(self) -> pa.Buffer:
        from ..disk_view import _mapped

        self._fh.close()
        return _mapped(self.path)


def _assemble(envelopes: list[dict[str, Any]], parts: list[Part], spill: pa.Buffer | None = None
              ) -> tuple[Iterator[pa.Table], list[QuarantineRow], list[str]]:
    """Every file's records in file order, with the local load's source indices (with a
    ``spill``, each block is read from it as the iterator goes); the quarantine and the notes."""
    envelopes.sort(key=lambda e: (e[_PART], e[_FIRST]))
    offsets, total = {}, 0
    for number, group in itertools.groupby(envelopes, key=lambda e: e[_PART]):
        expected = 0
        for e in group:
            if e[_FIRST] != expected and e[_COUNT]:
                raise HubtoolsError(f"the Ray read of {parts[number].location} got records from {e[_FIRST]} where "
                                    f"{expected} was expected",
                                    hint="a block was lost or repeated: please report this with the Ray version")
            expected += e[_COUNT]
        offsets[number], total = total, total + expected
    if sorted(offsets) != [p.number for p in parts]:
        raise HubtoolsError(f"the Ray read got {len(offsets)} of {len(parts)} files back",
                            hint="a file was lost: please report this with the Ray version")
    quarantine, notes = [], []
    for e in envelopes:
        shift = offsets[e[_PART]]
        quarantine += [replace(row, index=row.index + shift) if row.index >= 0 else row
                       for row in pickle.loads(e[_QUARANTINE])]
        notes += pickle.loads(e[_NOTES])

    def tables() -> Iterator[pa.Table]:
        for e in envelopes:
            shift = offsets[e[_PART]]
            table = pa.ipc.open_stream(e[_VALID] if spill is None else spill.slice(*e[_VALID])).read_all()
            if shift and table.num_rows:
                where = table.schema.get_field_index(INDEX)
                table = table.set_column(where, INDEX, pa.compute.add(table.column(INDEX), shift))
            yield table

    return tables(), quarantine, notes


def read_on_ray(source: Any, *, format: str | None = None, max_chars: int | None = None,
                split_bytes: int = SPLIT_BYTES, folder: str | None = None,
                remote_args: dict[str, Any] | None = None) -> tuple[LoadResult, str]:
    """:func:`hubtools.load`'s result for ``source``, the files read and validated by Ray Data
    read tasks (Ray must be connected); and how it was read, for ``quality.json``.

    The blocks go to files in ``folder`` as they come back and the dataset is those files mapped
    back (:mod:`..disk_view`): the driver holds one block at a time, not the input. Without a
    folder (or for the inputs read on the driver) the dataset is in memory, as the local load's.
    ``remote_args``: Ray options of the read tasks (the engine's reserved memory)."""
    import pyarrow.compute  # noqa: F401 - pa.compute in _assemble
    import ray
    import ray.data

    src = open_source(source)
    parts = plan_parts(src, split_bytes, max(int(ray.cluster_resources().get("CPU", 1)), 1))
    if isinstance(parts, str):
        return load(src, format=format, max_chars=max_chars), NOTE_DRIVER.format(why=parts)
    token = src.token
    limit = max_chars or ValidationConfig.max_chars
    sample: list[str] = []
    # the sample as the local load reads it (a Hub dataset: from its first files, not through datasets)
    items = (iter_raw(src, notes=sample) if src.container != "hub"
             else itertools.chain.from_iterable(part_items(p, sample, token) for p in parts))
    head = list(itertools.islice(items, DETECT_SAMPLE))
    parsed, detection = detect_head(src, head, format)
    from ...formats import get_format

    fmt = get_format(detection.format)
    if fmt.expands:
        return load(src, format=format, max_chars=max_chars), NOTE_DRIVER.format(
            why="message trees span records")
    config = _config(fmt, limit)
    # the columnar path where the local load would take it: a format it converts, detected for sure
    columnar = has_columnar_path(fmt.name) and (format is not None or detection.confidence >= 1.0)
    ds = ray.data.read_datasource(InputDatasource(parts, fmt.name, config, token, columnar),
                                  ray_remote_args=remote_args or None)
    ds.context._max_num_blocks_in_streaming_gen_buffer = STREAMED_BLOCKS
    from ..disk_view import TableFile

    spill = _Spill(os.path.join(folder, "read-blocks")) if folder else None
    envelopes = []
    try:
        for block in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            envelopes += spill.keep_block(block) if spill else block.to_pylist()
            del block
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, HubtoolsError):
            raise cause from None
        raise
    blocks = spill.mapped() if spill else None
    tables, quarantine, notes = _assemble(envelopes, parts, blocks)
    schema = schema_for(fmt.kind)
    if folder:
        sink = TableFile(os.path.join(folder, "records.arrow"), schema)
        for table in tables:
            sink.append(table)
        table = sink.finish()
    else:
        table = pa.concat_tables(list(tables)) if envelopes else schema.empty_table()
    del blocks
    result = LoadResult(canonical_dataset(table, fmt.kind), quarantine, detection, src, config,
                        union_keys(parsed), parsed[:2], None, notes)
    how = NOTE_RAY.format(tasks=len(parts), files=len({(p.location, p.hub) for p in parts}))
    fast = len({e[_PART] for e in envelopes if e[_COLUMNAR]})
    return result, how + (f" ({fast} of them parsed and converted column by column by Arrow)" if fast else "")
