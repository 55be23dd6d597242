"""The Ray engine: the checks' batch functions as Ray Data ``map_batches`` over Arrow blocks.

The check functions are the local ones; :class:`RayCheckData` is the same text view whose
:meth:`~RayCheckData.map` sends the batches through Ray Data instead of a process pool:

* the view's fields go into the object store once per batch size, one block per batch, each
  row with its position, so a batch reaches the function with the same rows as locally and the
  results come back in order (a lost or repeated batch is an error, never a silent gap);
* cheap functions run as Ray tasks; functions a check marks ``parallel=False`` that can be
  shipped (the model backends of toxicity) run in an actor pool of ``workers`` actors, so a
  model is loaded once per actor; closures that keep state between batches run on the driver;
* the duplicate checks' steps over the whole dataset (grouping hashes, LSH buckets, pair
  verification, clusters) run on Ray too, as shuffles (:mod:`.ray_shuffle`, which the checks
  find as ``data.shuffle``); the diversity and category figures are partials made by Ray tasks
  and joined on the driver (:mod:`.ray_aggregate`, found as ``data.aggregate``); the other
  dataset-wide steps (quantile limits, distributions) run on the driver over the per-record
  results, as locally; ``describe()`` says so per check, with each step's place, batches and time.

A path or Hub id is read by Ray Data read tasks, one per file, each converting and validating
its records in the worker (:mod:`.ray_input`); an input loaded before (a ``LoadResult``) is used
as it is. ``quality.json`` says which under ``dataset.engine.input``.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pyarrow as pa

from ...errors import HubtoolsError
from ..base import BATCH_SIZE, CheckData, CheckResult, release_memory

__all__ = ["RayCheckData", "RayEngine", "block_rows", "import_ray"]

logger = logging.getLogger(__name__)

#: Row position column added to every block (the view's row number, not the source index).
POS = "__hubtools_pos__"
_START, _ROWS, _RESULT = "start", "rows", "result"

#: Where dataset-wide steps run today, written beside every check's figures.
DRIVER_NOTE = ("batch functions on Ray; exact_duplicates and near_duplicates group on Ray (shuffles "
               "by hash, LSH band keys to candidate pairs, pairs verified in parallel, connected "
               "components in rounds on the cluster), the driver gets the repeats, the "
               "similar pairs and one cluster label per record; categories and diversity: each Ray "
               "task returns a partial (counts per category or per distinct opening, opening word "
               "and template key with first positions, the sample's distinct words and bigrams), "
               "joined on the driver, which gets no per-record result (diversity's shared "
               "templates are still counted on the driver); the other checks' steps over the "
               "whole dataset (thresholds, distributions) run on the driver over the per-record results")
INPUT_NOTE = "loaded before the run (hubtools.load on the driver)"


def import_ray():
    """``ray`` with Ray Data, or a clear error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise HubtoolsError("the Ray engine needs Ray Data, which is not installed",
                            hint="pip install 'hubtools[ray]'") from None
    return ray


# --------------------------------------------------------------------------- batch functions


#: records of the canonical table per chunk of the driver's text view (:meth:`RayEngine.view`)
VIEW_CHUNK = 65_536

#: most local batches in one block of the in-store view
BLOCK_BATCHES = 4


def block_rows(rows: int, cpus: int, batch_size: int) -> int:
    """Rows per block of the in-store view: whole batches of ``batch_size`` (not one tiny block per
    32-text batch), one to :data:`BLOCK_BATCHES` local batches' worth, and at least four blocks per
    CPU where the input has the rows. Ray Data pays its cost per task and per shuffle partition
    block by block: at 1M records on 2 CPUs, 80k-row blocks instead of 20k took the default scan
    from 187 s to 164 s with the same flags."""
    target = min(BLOCK_BATCHES * BATCH_SIZE, max(BATCH_SIZE, -(-rows // (4 * max(cpus, 1)))))
    return batch_size * max(1, target // batch_size)


def _pieces(pos: np.ndarray, batch_size: int) -> list[tuple[int, int]]:
    """Row ranges of a block that are one local batch each: cut where a batch starts or the
    positions jump (Ray may hand several blocks over as one batch)."""
    if len(pos) == 0:
        return []
    cuts = np.flatnonzero((pos[1:] % batch_size == 0) | (np.diff(pos) != 1)) + 1
    bounds = [0, *cuts.tolist(), len(pos)]
    return list(zip(bounds[:-1], bounds[1:]))


def _run_block(table: pa.Table, fn: Callable[..., Any], kwargs: dict[str, Any], batch_size: int) -> pa.Table:
    pos = table.column(POS).to_numpy()
    names = [n for n in table.column_names if n != POS]
    starts, rows, results = [], [], []
    for a, b in _pieces(pos, batch_size):
        batch = {name: table.column(name).slice(a, b - a).combine_chunks() for name in names}
        results.append(pickle.dumps(fn(batch, **kwargs), protocol=5))
        starts.append(int(pos[a]))
        rows.append(b - a)
    release_memory()
    return pa.table({_START: pa.array(starts, pa.int64()), _ROWS: pa.array(rows, pa.int64()),
                     _RESULT: pa.array(results, pa.large_binary())})


def _task(table: pa.Table, fn: Callable[..., Any], kwargs: dict[str, Any], batch_size: int) -> pa.Table:
    """A Ray task: one block of the view through the check's batch function."""
    return _run_block(table, fn, kwargs, batch_size)


class _Actor:
    """A Ray actor: the batch function and its arguments (e.g. a model backend) are unpickled
    once per actor, so whatever they load stays loaded for every later block."""

    def __init__(self, fn: Callable[..., Any], kwargs: dict[str, Any], batch_size: int) -> None:
        self.fn, self.kwargs, self.batch_size = fn, kwargs, batch_size

    def __call__(self, table: pa.Table) -> pa.Table:
        return _run_block(table, self.fn, self.kwargs, self.batch_size)


def _without_budget_backpressure(ds: Any) -> None:
    """Let every map over ``ds`` (and what is made from it) use all the CPUs from its first task.

    Ray Data's resource-budget backpressure splits the CPUs between the operators that have not
    finished, the input buffer of a dataset already in the object store among them, so a map
    over it runs one task at a time until that buffer has handed out its blocks (measured: the
    first 4 of 10 blocks on one worker of two, each pass). Its other purpose, bounding what a
    streaming read puts in the object store, does not apply: these blocks are in the store
    already, and what the maps make is collected or kept whole. Set on the dataset's own
    context (shared along its chain), so Ray Data's reads keep the default."""
    from ray.data._internal.execution import backpressure_policy as policies

    enabled = ds.context.get_config(policies.ENABLED_BACKPRESSURE_POLICIES_CONFIG_KEY,
                                    policies.ENABLED_BACKPRESSURE_POLICIES)
    ds.context.set_config(policies.ENABLED_BACKPRESSURE_POLICIES_CONFIG_KEY,
                          [p for p in enabled if p.__name__ != "ResourceBudgetBackpressurePolicy"])


def _worker_version() -> str:
    """hubtools' version as a Ray worker imports it."""
    from ..._version import __version__

    return __version__


#: the Ray jobs (driver sessions) whose workers were sent :func:`_warm`
_WARMED: set[str] = set()


def _warm() -> None:
    """Import what a read task and the checks' batch functions need (a second or two of imports,
    ``datasets`` among them), so a worker's first task does not pay for it."""
    from ...records import schema_for
    from ...shapes import Kind
    from .. import REGISTRY  # noqa: F401 - every check module
    from . import ray_input  # noqa: F401

    schema_for(Kind.SFT)


def _shippable(fn: Callable[..., Any]) -> bool:
    """A module-level function (pickled by reference); lambdas and closures keep local state."""
    return "<" not in getattr(fn, "__qualname__", "<") and getattr(fn, "__closure__", None) is None


# --------------------------------------------------------------------------- the view


@dataclass
class RayCheckData(CheckData):
    """The text view of :class:`CheckData` whose :meth:`map` runs on Ray Data."""

    engine: Any = None

    @classmethod
    def wrap(cls, data: CheckData, engine: RayEngine) -> RayCheckData:
        values = {f.name: getattr(data, f.name) for f in fields(CheckData)}
        values.update(pool=None, num_proc=1)
        return cls(**values, engine=engine)

    @property
    def shuffle(self) -> Any:
        """The duplicate checks' dataset-wide steps on Ray (:mod:`.ray_shuffle`)."""
        from .ray_shuffle import RayShuffle

        return RayShuffle(self)

    @property
    def aggregate(self) -> Any:
        """The diversity and categories figures as partials merged from Ray tasks
        (:mod:`.ray_aggregate`); None for empty data (the checks' own path)."""
        from .ray_aggregate import RayAggregate

        return RayAggregate(self) if len(self) else None

    def map(self, fn: Callable[..., Any], names: Sequence[str], *, desc: str = "",
            batch_size: int = BATCH_SIZE, parallel: bool = True, **kwargs: Any) -> list[Any]:
        """As :meth:`CheckData.map`, on Ray: tasks, an actor pool (``parallel=False``) or the
        driver (closures, and empty data)."""
        started = time.perf_counter()
        if not _shippable(fn) or len(self) == 0:
            results = CheckData.map(self, fn, names, desc=desc, batch_size=batch_size, parallel=False, **kwargs)
            self.engine.step("driver", len(results), time.perf_counter() - started, desc)
            return results
        where = "ray tasks" if parallel else "ray actors"
        results = self.engine.run_map(self, fn, list(names), batch_size, kwargs, actors=not parallel)
        self.engine.step(where, len(results), time.perf_counter() - started, desc)
        return results


# --------------------------------------------------------------------------- the engine


@dataclass
class RayEngine:
    """Runs the checks' batches on Ray Data; see the module docstring."""

    address: str | None = None
    workers: int | None = None
    object_store_memory: int | None = None
    spill_dir: str | None = None
    #: memory every task and actor of the run reserves (Ray's ``memory`` resource): Ray starts
    #: no more of them on a node than its memory holds, so workers never overcommit a machine
    worker_memory: int | None = None
    name: str = field(default="ray", init=False)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    _started: bool = field(default=False, init=False)
    _blocks: dict[tuple, tuple[list, Any]] = field(default_factory=dict, init=False)
    _steps: list[dict[str, Any]] = field(default_factory=list, init=False)
    _cluster: dict[str, Any] = field(default_factory=dict, init=False)
    _input: str = field(default=INPUT_NOTE, init=False)
    _read: dict[str, Any] = field(default_factory=dict, init=False)
    _folder: str | None = field(default=None, init=False)

    # session -----------------------------------------------------------------------------
    def connect(self) -> Any:
        """Join the cluster at ``address``, reuse a Ray this process already runs, or start a
        local one (with ``workers`` CPUs and ``object_store_memory``, spilling beyond it)."""
        ray = import_ray()
        # under `ray job submit` RAY_ADDRESS names the job's cluster: join it, never start another
        self.address = self.address or os.environ.get("RAY_ADDRESS") or None
        if ray.is_initialized():
            pass  # a Ray the caller started (e.g. a test's): used as it is, left running
        elif self.address:
            ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING)
            self._started = True
        else:
            extra = {"object_spilling_directory": self.spill_dir} if self.spill_dir else {}
            ray.init(num_cpus=self.workers or os.cpu_count() or 1, object_store_memory=self.object_store_memory,
                     include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING, **extra)
            self._started = True
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        # one INFO line per dataset execution (two per check) would bury the CLI's own output
        logging.getLogger("ray.data").setLevel(max(logging.getLogger("ray.data").getEffectiveLevel(),
                                                   logging.WARNING))
        ctx.execution_options.preserve_order = False  # results carry their positions
        if self.address and self.object_store_memory:
            limits = ctx.execution_options.resource_limits
            ctx.execution_options.resource_limits = limits.copy(object_store_memory=self.object_store_memory)
        self._check_workers(ray)
        resources = ray.cluster_resources()
        job = ray.get_runtime_context().get_job_id()
        if job not in _WARMED:
            # a job's workers start cold: each imports hubtools while the driver plans the read
            # (not waited for: the read's tasks queue behind these)
            _WARMED.add(job)
            for _ in range(int(resources.get("CPU", 0))):
                ray.remote(_warm).remote()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        self._cluster = {"nodes": len(nodes), "cpus": int(resources.get("CPU", 0)),
                         "object_store_memory": int(resources.get("object_store_memory", 0))}
        if self.worker_memory:
            self._cluster["task_slots"] = self._slots(nodes)
        return ray

    def _slots(self, nodes: list[dict[str, Any]]) -> int:
        """How many tasks of ``worker_memory`` the cluster's nodes hold at once (Ray's ``memory``
        resource of each node: by default most of its free RAM); none is an error that says so."""
        memory = [float(n.get("Resources", {}).get("memory", 0)) for n in nodes]
        if not (slots := sum(int(m // self.worker_memory) for m in memory)):
            self.close()
            raise HubtoolsError(f"no node of the Ray cluster has {self.worker_memory / (1 << 30):.2f} GB of memory for "
                                f"a task (the largest has {max(memory, default=0) / (1 << 30):.2f} GB)",
                                hint="lower --ray-worker-memory, or add nodes with more memory")
        return slots

    def task_args(self) -> dict[str, Any]:
        """Ray options for every task and actor of the run: the memory each reserves."""
        return {"memory": self.worker_memory} if self.worker_memory else {}

    def _check_workers(self, ray: Any) -> None:
        """The workers must run this hubtools (other code could give other answers)."""
        from ..._version import __version__

        try:
            theirs = ray.get(ray.remote(num_cpus=0)(_worker_version).remote(), timeout=300)
        except Exception as exc:  # noqa: BLE001 - whatever stops a worker from importing hubtools
            self.close()
            raise HubtoolsError(f"the Ray workers cannot run hubtools ({type(exc).__name__}: "
                                f"{str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else ''})",
                                hint=f"install hubtools {__version__} on every node of the cluster") from None
        if theirs != __version__:
            self.close()
            raise HubtoolsError(f"the Ray workers run hubtools {theirs}, this process {__version__}",
                                hint="install the same hubtools version on every node of the cluster")

    def folder(self) -> str:
        """This run's folder for the driver's files (:mod:`..disk_view`), under ``spill_dir`` or
        the temporary directory; removed by :meth:`close`."""
        if self._folder is None:
            from ..disk_view import run_folder

            self._folder = run_folder(self.spill_dir)
        return self._folder

    def close(self) -> None:
        """Free this run's blocks and files; stop Ray only if this engine started it."""
        from ..disk_view import remove_folder

        self._blocks.clear()
        remove_folder(self._folder)
        self._folder = None
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    @contextmanager
    def session(self, data: CheckData, *, num_proc: int = 1) -> Iterator[RayCheckData]:
        """The Ray view of ``data`` for the length of the block (``num_proc`` is the local
        engine's setting and is not used: Ray schedules on the cluster's CPUs)."""
        self.connect()
        try:
            yield RayCheckData.wrap(data, self)
        finally:
            self.close()

    def load(self, source: Any, *, format: str | None = None, progress: bool = False) -> Any:
        """:func:`hubtools.load`'s result for a path or Hub id, its files read and validated by
        Ray Data read tasks (:func:`.ray_input.read_on_ray`); Ray stays up for the checks."""
        from .ray_input import read_on_ray

        self.connect()
        started = time.perf_counter()
        try:
            result, self._input = read_on_ray(source, format=format, folder=self.folder(),
                                              remote_args=self.task_args())
        except BaseException:
            self.close()
            raise
        self._read = {"records_in": result.total, "valid": result.valid, "quarantined": result.quarantined,
                      "seconds": round(time.perf_counter() - started, 3)}
        return result

    def view(self, dataset: Any, kind: Any = None, **kwargs: Any) -> CheckData:
        """The text view of a canonical dataset, made chunk by chunk into files and mapped back
        (:func:`..disk_view.build_view`): the driver's memory holds one chunk of it at a time."""
        from ..base import kind_of_dataset
        from ..disk_view import build_view

        table = dataset.data.table if hasattr(dataset.data, "table") else dataset.data
        kind = kind_of_dataset(table, kind)
        index, fields = build_view((pa.Table.from_batches([b]) for b in table.to_batches(VIEW_CHUNK)),
                                   kind, self.folder())
        return CheckData(kind=kind, index=index, fields=fields, dataset=dataset, **kwargs)

    # per-check records ---------------------------------------------------------------------
    def begin(self, name: str) -> None:
        self._steps = []

    def step(self, where: str, batches: int, seconds: float, desc: str) -> None:
        self._steps.append({"step": desc, "where": where, "batches": batches, "seconds": round(seconds, 3)})

    def end(self, name: str, result: CheckResult, records: int, seconds: float) -> None:
        self.checks[name] = {"records_in": records, "flagged": result.count, "seconds": round(seconds, 3),
                             "steps": self._steps}
        self._steps = []

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address or "local", "workers": self.workers,
                "object_store_memory": self.object_store_memory, "worker_memory": self.worker_memory,
                "cluster": self._cluster,
                "input": self._input, **({"read": self._read} if self._read else {}), "dataset_wide": DRIVER_NOTE,
                "checks": self.checks}

    # batches -------------------------------------------------------------------------------
    def dataset(self, data: CheckData, batch_size: int) -> Any:
        """The view's fields as a Ray dataset in blocks of whole batches (put once per field
        arrays and block size; a check that replaces fields, e.g. stripped templates, gets its own)."""
        import ray
        import ray.data

        block = block_rows(len(data), int(self.workers or self._cluster.get("cpus") or 1), batch_size)
        key = (block, tuple((name, id(arr)) for name, arr in data.fields.items()))
        if key not in self._blocks:
            n = len(data)
            refs = []
            for start in range(0, n, block):
                rows = min(block, n - start)
                # a slice would carry its parent's whole buffer into the object store: copy; and
                # into the store block by block, so the driver holds one block's copy at a time
                columns = {POS: pa.array(np.arange(start, start + rows, dtype=np.int64))}
                columns.update({name: pa.concat_arrays([arr.slice(start, rows)])
                                for name, arr in data.fields.items()})
                refs.append(ray.put(pa.table(columns)))
                del columns
            ds = ray.data.from_arrow_refs(refs)
            _without_budget_backpressure(ds)
            self._blocks[key] = (list(data.fields.values()), ds)
        return self._blocks[key][1]

    def run_map(self, data: CheckData, fn: Callable[..., Any], names: list[str], batch_size: int,
                kwargs: dict[str, Any], *, actors: bool) -> list[Any]:
        """``fn`` over every batch on Ray; the results in row order, every row exactly once."""
        import ray.data

        ds = self.dataset(data, batch_size).select_columns([POS, *names])
        common = {"batch_size": None, "batch_format": "pyarrow", "zero_copy_batch": True, **self.task_args()}
        if actors:
            # no more actors than the nodes' memory holds: a pool waiting for one would wait forever
            size = max(1, min(self.workers or self._cluster.get("cpus") or 1, self._cluster.get("task_slots") or 1 << 30))
            out = ds.map_batches(_Actor, fn_constructor_args=(fn, kwargs, batch_size),
                                 compute=ray.data.ActorPoolStrategy(size=size), **common)
        else:
            out = ds.map_batches(_task, fn_kwargs={"fn": fn, "kwargs": kwargs, "batch_size": batch_size}, **common)
        table = pa.concat_tables(ray.get(out.to_arrow_refs())) if out is not None else None
        order = np.argsort(table.column(_START).to_numpy(), kind="stable")
        starts = table.column(_START).to_numpy()[order]
        rows = table.column(_ROWS).to_numpy()[order]
        expected = np.arange(0, len(data), batch_size)
        if len(starts) != len(expected) or not np.array_equal(starts, expected) or int(rows.sum()) != len(data):
            raise HubtoolsError(f"the Ray engine got {int(rows.sum())} rows in {len(starts)} batches back for "
                                f"{len(data)} rows in {len(expected)} batches",
                                hint="a batch was lost or repeated: please report this with the Ray version")
        column = table.column(_RESULT)
        return [pickle.loads(column[int(i)].as_py()) for i in order]
