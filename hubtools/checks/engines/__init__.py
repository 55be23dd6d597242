"""Engines: how batches of the text view reach the check functions.

The checks are the same functions whatever the engine (see :mod:`hubtools.checks.base`); an
engine only decides where :meth:`CheckData.map` runs their batch functions:

* ``local`` (:class:`LocalEngine`): this process, or a pool of ``num_proc`` worker processes;
* ``ray`` (:class:`RayEngine`): Ray Data ``map_batches`` on a local Ray it starts, or on an
  existing cluster (``address``). Needs the ``ray`` extra: ``pip install 'hubtools[ray]'``.

Each engine records, per check, the records in, the flagged count, the time and where each
step ran (``describe()``, written to ``quality.json`` under ``dataset.engine``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import HubtoolsError
from .local import LocalEngine

__all__ = ["ENGINES", "SHARD_ROWS", "LocalEngine", "get_engine", "parse_memory", "write_flagged_shards", "write_record_shards"]

#: The engine names ``--engine`` accepts.
ENGINES = ("local", "ray")


def parse_memory(value: str | int | None) -> int | None:
    """Bytes from ``"2GB"``, ``"512MB"``, ``"1.5G"`` or a plain number of bytes (None stays None).

    >>> parse_memory("512MB"), parse_memory("2G"), parse_memory(1000)
    (536870912, 2147483648, 1000)
    """
    if value is None or isinstance(value, int):
        return value
    text = value.strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    scale = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        return int(float(number) * scale)
    except ValueError:
        raise HubtoolsError(f"not a memory size: {value!r}", hint="e.g. 512MB, 2GB or a number of bytes") from None


def get_engine(engine: str | Any | None = None, *, address: str | None = None, workers: int | None = None,
               memory: str | int | None = None, spill_dir: str | None = None,
               worker_memory: str | int | None = None) -> Any:
    """An engine object from its name (an engine object is returned as is).

    Args:
        engine: ``"local"`` (default) or ``"ray"``.
        address: the Ray cluster to use (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``);
            None starts a local Ray for the run.
        workers: Ray workers (CPUs of a local Ray, and the actor pool size for model checks).
        memory: object store memory of a local Ray (beyond it Ray spills to disk); on an
            existing cluster, the object store memory Ray Data may use for this run.
        spill_dir: where a local Ray spills objects (default: its temporary directory).
        worker_memory: memory each Ray task and actor reserves (Ray's ``memory`` resource): Ray
            runs no more of them on a node than its memory holds; more than any node has is an
            error when the run starts.

    Raises:
        HubtoolsError: an unknown engine name, or Ray options with the local engine.
    """
    if engine is not None and not isinstance(engine, str):
        return engine
    name = (engine or "local").lower()
    if name == "local":
        if address or workers or memory or spill_dir or worker_memory:
            raise HubtoolsError("Ray options given with the local engine",
                                hint="add --engine ray, or drop --ray-address/--ray-workers/--ray-memory/"
                                     "--ray-worker-memory")
        return LocalEngine()
    if name == "ray":
        from .ray import RayEngine

        return RayEngine(address=address, workers=workers, object_store_memory=parse_memory(memory),
                         spill_dir=spill_dir, worker_memory=parse_memory(worker_memory))
    raise HubtoolsError(f"unknown engine {engine!r}", hint=f"choose from: {', '.join(ENGINES)}")


#: Rows per Parquet / JSONL shard written for large outputs.
SHARD_ROWS = 1_000_000


def write_record_shards(table: Any, directory: str | Path, fmt: str = "parquet", *,
                        rows_per_shard: int = SHARD_ROWS) -> int:
    """Write an Arrow table as ``part-00000.parquet`` (or ``.jsonl``) shards of ``rows_per_shard``
    rows in ``directory``, each atomically; return the rows written (one empty shard for none).

    >>> import pyarrow as pa, tempfile
    >>> write_record_shards(pa.table({"a": [1, 2, 3]}), tempfile.mkdtemp(), "jsonl", rows_per_shard=2)
    3
    """
    import orjson
    import pyarrow.parquet as pq

    from ...io import atomic_write

    if fmt not in ("parquet", "jsonl"):
        raise HubtoolsError(f"cannot write shards as {fmt!r}", hint="use parquet or jsonl")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for k, start in enumerate(range(0, max(table.num_rows, 1), rows_per_shard)):
        part = table.slice(start, rows_per_shard)
        with atomic_write(out / f"part-{k:05d}.{fmt}") as fh:
            if fmt == "parquet":
                pq.write_table(part, fh)
            else:
                fh.write(b"".join(orjson.dumps(row) + b"\n" for row in part.to_pylist()))
        written += part.num_rows
    return written


def write_flagged_shards(quality: Any, out_dir: str | Path, *, rows_per_shard: int = SHARD_ROWS) -> Path:
    """Write every flag of ``quality`` as Parquet shards in ``out_dir/flagged/`` (columns
    ``index``, ``check``, ``reason``; sorted by index, then check), replacing earlier shards.

    For inputs whose flags a JSON list would make unreadable; ``quality.json`` keeps them too.
    Returns the folder.
    """
    import shutil
    import tempfile

    import pyarrow as pa

    # columns per check, sorted by Arrow (no Python tuple per flag)
    schema = pa.schema({"index": pa.int64(), "check": pa.string(), "reason": pa.string()})
    parts = [pa.table({"index": pa.array(result.flagged, pa.int64()),
                       "check": pa.repeat(pa.scalar(name, pa.string()), result.count),
                       "reason": pa.array([result.reasons.get(i, "") for i in result.flagged], pa.string())},
                      schema=schema)
             for name, result in quality.results.items() if result.count]
    table = (pa.concat_tables(parts) if parts else schema.empty_table()).sort_by(
        [("index", "ascending"), ("check", "ascending")])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".flagged.", dir=out))
    try:
        write_record_shards(table, stage, "parquet", rows_per_shard=rows_per_shard)
        shutil.rmtree(out / "flagged", ignore_errors=True)
        stage.rename(out / "flagged")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out / "flagged"
