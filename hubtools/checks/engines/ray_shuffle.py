"""The dataset-wide steps of the duplicate checks on Ray Data: shuffles, not the driver's memory.

:class:`RayShuffle` is what the checks find as ``data.shuffle`` on the Ray engine's view
(:class:`~hubtools.checks.engines.ray.RayCheckData`); the local view has none, and the checks
then do these steps in their own process. The functions that decide anything are the local
ones (:mod:`hubtools.checks.minhash`, ``exact_duplicates._hash_batch``), so the answers match.

One primitive, :meth:`RayShuffle.by_partition`: each row gets the shuffle partition of its key
(a hash), a Ray task per block cuts the block into partitions and a Ray task per partition brings
every row of a key together, and numpy groups the whole partition at once (a group-by per key
would call Python once per key, and ``Dataset.join`` needs polars). Ray Data's own group-by sorts
by a sampled range first and reads its input twice; its hash shuffle starts an aggregator actor
per partition, which costs seconds before any row moves. Between the shuffles the steps' data
are :class:`Blocks`, object references to Arrow blocks (in the object store, spilled beyond its
bound) with the few Ray Data methods the steps use, each a plain Ray task per block: a Ray Data
execution costs about 0.25 s however small its input, a task a millisecond or two, and the
near-duplicate check takes some forty steps.

* **exact duplicates**: the keys are hashed in ``map_batches``; each key's rows meet in one
  partition, which gives each its lowest position; only the rows that repeat an earlier one
  (position, first) come back to the driver.
* **near duplicates**: MinHash signatures and band keys in ``map_batches``; identical shingle
  multisets grouped (only the first enters LSH); the band keys exploded to ``(band key,
  position)`` rows and grouped into candidate pairs (each member with its
  :data:`~hubtools.checks.minhash.WINDOW` nearest bucket-mates, as locally), each pair once;
  a pair meets its first row's signature in that row's partition, then its second row's in the
  second's (a semi-join: only the rows some pair names, a bit per row in the object store,
  enter these two shuffles), and the MinHash estimate decides it where it is decisive
  (:func:`~hubtools.checks.minhash.decide`); the pairs it leaves unsure (a tenth of them on
  the bench's data) meet their rows' texts, read from the view, the same way, and the exact
  Jaccard of the shingle sets decides; the connected components of
  the similar pairs are computed in rounds on the cluster (large-star / small-star, Kiveris et
  al. 2014: each round two shuffles of the edge list, until a round changes nothing; the
  edges then form one star per component around its lowest position). The driver gets the
  similar pairs and each clustered row's root, never a signature, a bucket or a candidate.

The driver holds the clustered rows with their roots and the similar pairs (what grows with the
duplicates, not with the input); its text view is files it maps (:mod:`..disk_view`). Locally a pair whose rows are already in one
cluster is not compared; here every candidate is, so the pair counts and the neighbour a reason
names may differ; the clusters and the flagged records do not.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from .ray import POS
from .ray_blocks import (
    _FIRST,
    _band_rows,
    _both_ways,
    _bucket_pairs,
    _columns,
    _distinct_pairs,
    _identical_edges,
    _joined,
    _large_star,
    _later,
    _join_rows,
    _meet_estimate,
    _meet_exact,
    _pair_nodes,
    _ship,
    _sketch,
    _small_star,
    _split,
    _where,
    _with_first,
)

if TYPE_CHECKING:
    from ..near_duplicates import Graph, NearDuplicateOptions
    from .ray import RayCheckData

__all__ = ["RayShuffle"]

#: Round limit of the connected components (large-star / small-star needs O(log² n) rounds).
MAX_ROUNDS = 200


# --------------------------------------------------------------------------- driver side


def _partial(table: pa.Table, columns: list[str]) -> pa.Table:
    """One row per block: each column's sum and maximum (merged on the driver)."""
    values = {name: table.column(name).to_numpy() for name in columns}
    return pa.table({f"{how}({name})": [int(getattr(v, how)()) if len(v) else 0]
                     for name, v in values.items() for how in ("sum", "max")})


def _totals(ds: Blocks, columns: list[str]) -> dict[str, int]:
    """Sums and maxima of integer columns, as per-block partial aggregates merged on the driver
    (a Dataset.sum is a shuffle of its own)."""
    table = _collect(ds.map_batches(_partial, columns=columns))
    return {key: int(getattr(table.column(key).to_numpy(), key[:3])()) if table is not None else 0
            for key in (f"{how}({name})" for name in columns for how in ("sum", "max"))}


def _collect(ds: Any) -> pa.Table | None:
    import ray

    tables = [t for t in ray.get(ds.to_arrow_refs()) if t.num_rows]
    return pa.concat_tables(tables) if tables else None


def _rows(ds: Blocks) -> int:
    return ds.count()


def _apply(table: pa.Table, ops: tuple) -> pa.Table:
    """A block through :class:`Blocks`' pending steps: maps, column selections and renames. An
    empty block passes untouched, as through a Ray Data map (its columns may differ)."""
    for kind, arg, kwargs in ops:
        if not table.num_rows:
            return table
        if kind == "map":
            table = arg(table, **kwargs)
        elif kind == "select":
            table = table.select(arg)
        else:
            table = table.rename_columns([arg.get(name, name) for name in table.column_names])
    return table


def _num_rows(table: pa.Table) -> int:
    return table.num_rows


class Blocks:
    """A dataset as object references to its Arrow blocks, with the Ray Data methods the
    shuffles' steps use (``map_batches`` over whole blocks, ``select_columns``,
    ``rename_columns``, ``union``, ``materialize``, ``count``, ``to_arrow_refs``), each a plain Ray
    task per block. Steps are kept until the blocks are needed, then run as one task per block;
    the result replaces them (a Ray Data dataset would run them again for each use)."""

    def __init__(self, refs: list[Any], ops: tuple = (), remote_args: dict[str, Any] | None = None) -> None:
        self._refs, self._ops, self._args = list(refs), tuple(ops), dict(remote_args or {})

    def _then(self, kind: str, arg: Any, kwargs: dict[str, Any] | None = None) -> Blocks:
        return Blocks(self._refs, (*self._ops, (kind, arg, kwargs or {})), self._args)

    def map_batches(self, func: Any, /, **kwargs: Any) -> Blocks:
        """``func(block, **kwargs)`` over every non-empty block."""
        return self._then("map", func, kwargs)

    def select_columns(self, columns: list[str]) -> Blocks:
        return self._then("select", list(columns))

    def rename_columns(self, names: dict[str, str]) -> Blocks:
        return self._then("rename", dict(names))

    def to_arrow_refs(self) -> list[Any]:
        if self._ops:
            import ray

            task = ray.remote(_apply).options(**self._args)
            self._refs, self._ops = [task.remote(ref, self._ops) for ref in self._refs], ()
        return list(self._refs)

    def union(self, *others: Blocks) -> Blocks:
        return Blocks([ref for blocks in (self, *others) for ref in blocks.to_arrow_refs()], (), self._args)

    def materialize(self) -> Blocks:
        """Every block made (waited for, not fetched): a step's time is its own."""
        import ray

        refs = self.to_arrow_refs()
        if refs:
            ray.wait(refs, num_returns=len(refs), fetch_local=False)
        return self

    def count(self) -> int:
        import ray

        task = ray.remote(_num_rows).options(**self._args)
        return int(sum(ray.get([task.remote(ref) for ref in self.to_arrow_refs()])))


#: band rows (a key and a row number) per partition of the LSH shuffle: at 10M records x 21 bands
#: in 20 partitions (one per 500k records) a worker's heap reached 1.1 GB in that step; with
#: this many a worker peaked at 0.85 GB (so per GiB of ``--ray-worker-memory``, see below)
KEY_ROWS_PER_PARTITION = 4_000_000


def shuffle_partitions(partitions: int, key_rows: int | None = None, worker_memory: int | None = None) -> int:
    """A shuffle's partitions: the view's (``partitions``), or more for ``key_rows`` small key
    rows, at most :data:`KEY_ROWS_PER_PARTITION` in each, or that many per GiB of
    ``worker_memory`` when the run reserves more than 1 GiB a task (fewer, bigger partitions:
    the driver owns split tasks x partitions objects, so at a billion records the partitions'
    number matters more than their size).

    >>> shuffle_partitions(20), shuffle_partitions(20, 21 * 10_000_000), shuffle_partitions(4, 1_000)
    (20, 53, 4)
    >>> shuffle_partitions(20, 21 * 10**9), shuffle_partitions(20, 21 * 10**9, worker_memory=8 << 30)
    (5250, 657)
    """
    if key_rows is None:
        return partitions
    per = KEY_ROWS_PER_PARTITION * max(1.0, (worker_memory or 0) / (1 << 30))
    return max(partitions, -(-key_rows // int(per)))


#: most blocks one split task of a shuffle reads (each at most four batches)
SPLIT_BLOCKS = 8


def split_blocks(blocks: int, parts: int) -> int:
    """Blocks per split task of a shuffle: enough that the split tasks are about as many as the
    partitions, at most :data:`SPLIT_BLOCKS`.

    >>> split_blocks(125, 53), split_blocks(145, 20), split_blocks(12, 4), split_blocks(3, 20)
    (3, 8, 3, 1)
    """
    return max(1, min(SPLIT_BLOCKS, -(-blocks // max(parts, 1))))


class RayShuffle:
    """The duplicate checks' dataset-wide steps for one Ray view (see the module docstring)."""

    def __init__(self, data: RayCheckData) -> None:
        self.data = data
        self.engine = data.engine
        cpus = int(self.engine.workers or self.engine._cluster.get("cpus") or 1)
        #: shuffle partitions: a few per CPU, and at most about 500k rows each (Ray's default,
        #: 200, is for far bigger data)
        self.partitions = max(2 * cpus, -(-len(data) // 500_000))

    def _source(self, data: RayCheckData, names: list[str]) -> Blocks:
        from ..base import BATCH_SIZE

        refs = self.engine.dataset(data, BATCH_SIZE).to_arrow_refs()  # the view's blocks, put once
        return Blocks(refs, (), self.engine.task_args()).select_columns([POS, *names])

    def _timed(self, started: float, desc: str, where: str = "ray shuffle") -> float:
        now = time.perf_counter()
        self.engine.step(where, 0, now - started, desc)
        return now

    def by_partition(self, ds: Any, by: str, func: Any, *, key_rows: int | None = None, **kwargs: Any) -> Any:
        """``func`` over whole shuffle partitions of ``ds`` by its ``by`` column (every row of a
        key in one call), as a dataset of the calls' tables. ``key_rows``: the rows of a shuffle
        of small key rows that outnumbers the records (LSH: one per record and band), so
        partitions grow with them and a worker's share stays bounded.

        A hash shuffle in Ray tasks: one task per block cuts it into the partitions
        (``num_returns``), one task per partition joins its pieces in block order and calls
        ``func``. Ray Data's group-by sorted each partition by a sampled range first (reading
        its input twice) and ran four operators per shuffle; this is about a quarter faster on
        the near-duplicate steps, with the same answers (the functions group within the call).
        """
        import ray

        parts = shuffle_partitions(self.partitions, key_rows, self.engine.worker_memory)
        split = ray.remote(_split).options(num_returns=parts, **self.engine.task_args())
        joined = ray.remote(_joined).options(**self.engine.task_args())
        refs = ds.to_arrow_refs()
        # consecutive blocks split together, so there are about as many split tasks as
        # partitions: the driver owns every piece (tasks x partitions objects, each held in its
        # own memory when small), and with a split per block they grew as the input squared
        per = split_blocks(len(refs), parts)
        pieces = [split.remote(by, parts, *refs[k:k + per]) for k in range(0, len(refs), per)]
        if parts == 1:
            pieces = [[piece] for piece in pieces]
        return Blocks([joined.remote(func, kwargs, *[p[k] for p in pieces]) for k in range(parts)], (),
                      self.engine.task_args())

    def _map(self, ds: Blocks, func: Any, /, **kwargs: Any) -> Blocks:
        return ds.map_batches(func, **kwargs)

    # exact duplicates --------------------------------------------------------------------
    def group_firsts(self, fn: Any, names: list[str], keys: dict[str, str | None], *, desc: str,
                     **kwargs: Any) -> dict[str, np.ndarray]:
        """For each key column ``fn`` makes: each row's first position with the same key (as
        :func:`~hubtools.checks.exact_duplicates.group_firsts`), rows whose ``keys[key]`` column
        is set left out; grouped on Ray, only the repeats come back."""
        started = time.perf_counter()
        hashed = self._map(self._source(self.data, names), _columns, fn=fn, kwargs=kwargs).materialize()
        started = self._timed(started, f"{desc}: hash", "ray tasks")
        out = {}
        for key, skip in keys.items():
            rows = hashed.select_columns([POS, key] + ([skip] if skip else []))
            if skip:
                rows = self._map(rows, _where, column=skip, value=False)
            first = np.arange(len(self.data), dtype=np.int64)
            table = _collect(self._map(self.by_partition(rows.select_columns([POS, key]), key, _with_first,
                                                         key=key), _later))
            if table is not None:
                first[table.column(POS).to_numpy()] = table.column(_FIRST).to_numpy()
            out[key] = first
            started = self._timed(started, f"{desc}: group by {key}")
        return out

    # near duplicates ---------------------------------------------------------------------
    def near_duplicate_graph(self, data: RayCheckData, names: list[str], opts: NearDuplicateOptions, bands: int,
                             rows_per_band: int) -> Graph:
        """The near-duplicate clusters of ``data`` computed on Ray (``data`` may carry fields
        with templates stripped)."""
        from ..minhash import WINDOW
        from ..near_duplicates import Graph

        started = time.perf_counter()
        sketch = self._map(self._source(data, names), _columns, fn=_sketch, kwargs={
            "fields": names, "shingle_size": opts.shingle_size, "num_perm": opts.num_perm, "seed": opts.seed,
            "bands": bands, "rows_per_band": rows_per_band}).materialize()
        figures = _totals(sketch.select_columns(["compared", "short"]), ["compared", "short"])
        started = self._timed(started, "near duplicates: signatures", "ray tasks")
        counts = {"candidate_pairs": 0, "exact_pairs": 0, "similar_pairs": 0}
        edges_parts, identical, largest = [], 0, 0
        if int(figures["sum(compared)"]):
            # identical shingle multisets: the first of each enters LSH, the others join it directly
            compared = self._map(sketch.select_columns([POS, "multiset", "keys", "compared"]), _where,
                                 column="compared", value=True).select_columns([POS, "multiset", "keys"])
            firsts = self.by_partition(compared, "multiset", _with_first, key="multiset").materialize()
            same = self._map(firsts, _identical_edges).materialize()
            identical = _rows(same)
            edges_parts.append(same)
            started = self._timed(started, "near duplicates: identical shingles")

            # LSH: buckets by band key to candidate pairs, each pair once
            found = self.by_partition(self._map(firsts, _band_rows, bands=bands), "bk", _bucket_pairs,
                                      key_rows=int(figures["sum(compared)"]) * bands,
                                      window=WINDOW).materialize()
            if _rows(found):
                largest = _totals(found.select_columns(["largest"]), ["largest"])["max(largest)"]
                pairs = self.by_partition(found.select_columns(["code"]), "code", _distinct_pairs).materialize()
                started = self._timed(started, "near duplicates: LSH buckets to candidate pairs")
                # verification, a semi-join twice (only the rows some pair names enter a shuffle,
                # a bit per row): each pair meets its first row's signature, then its second
                # row's, and the estimate decides; the pairs it leaves unsure meet their rows'
                # texts the same way and the exact Jaccard decides
                decided = self.join_pairs(sketch.select_columns([POS, "signature"]), pairs, len(data), _meet_estimate,
                                          column="signature", kind=pa.binary(2 * opts.num_perm),
                                          threshold=opts.threshold, num_perm=opts.num_perm)
                sums = _totals(decided.select_columns(["unsure", "ok"]), ["unsure", "ok"])
                counts = {"candidate_pairs": _rows(decided), "exact_pairs": int(sums["sum(unsure)"]),
                          "similar_pairs": int(sums["sum(ok)"])}
                edges_parts.append(self._map(decided, _where, column="ok", value=True)
                                   .select_columns(["a", "b", "j"]).materialize())
                if counts["exact_pairs"]:
                    unsure = self._map(decided, _where, column="unsure", value=True).select_columns(["a", "b"])
                    exact = self.join_pairs(self._source(data, names), unsure.materialize(), len(data), _meet_exact,
                                            fields=names, kind=pa.large_string(), threshold=opts.threshold,
                                            shingle_size=opts.shingle_size)
                    counts["similar_pairs"] += _totals(exact.select_columns(["ok"]), ["ok"])["sum(ok)"]
                    edges_parts.append(self._map(exact, _where, column="ok", value=True)
                                       .select_columns(["a", "b", "j"]).materialize())
                started = self._timed(started, "near duplicates: pairs verified")
        counts["rejected_pairs"] = counts["candidate_pairs"] - counts["similar_pairs"]

        node = root = np.zeros(0, np.int64)
        edge = {"a": np.zeros(0, np.int64), "b": np.zeros(0, np.int64), "j": np.zeros(0)}
        edges_parts = [e for e in edges_parts if _rows(e)]
        if edges_parts:
            edges = edges_parts[0].union(*edges_parts[1:]) if len(edges_parts) > 1 else edges_parts[0]
            table = _collect(edges)
            edge = {k: table.column(k).to_numpy() for k in edge}
            node, root, rounds = self.components(edges.select_columns(["a", "b"]).rename_columns({"a": "u", "b": "v"}))
            self._timed(started, f"near duplicates: connected components ({rounds} rounds)")
        return Graph(node, root, edge["a"], edge["b"], edge["j"], identical, counts, largest,
                     int(figures["sum(compared)"]), int(figures["sum(short)"]))

    def join_pairs(self, rows: Any, pairs: Any, n: int, meet: Any, *, kind: Any, column: str = "",
                   fields: list[str] | None = None, **kwargs: Any) -> Any:
        """Each pair of ``pairs`` (columns ``a``, ``b``) with both rows' values from ``rows``
        (``column``, or ``fields`` joined), given to ``meet`` in the second row's partition:
        two shuffles that carry only the rows some pair names (:meth:`named_rows`)."""
        bits = self.named_rows(pairs, n)
        # made once (each sort shuffle reads its input twice: to sample, then to sort)
        records = self._map(rows, _join_rows, data=True, column=column, fields=fields, kind=kind,
                            bits=bits).materialize()
        shipped = self.by_partition(records.union(self._map(pairs, _join_rows, data=False, kind=kind)), "node", _ship)
        return self.by_partition(records.union(shipped), "node", meet, **kwargs).materialize()

    def named_rows(self, pairs: Any, n: int) -> Any:
        """One bit per row (``np.packbits`` little-endian), set for the rows some pair of ``pairs``
        names, in the object store: each block's distinct rows are set as they come, so the
        driver holds the n / 8 bytes and one block of row numbers at a time."""
        import ray

        bits = np.zeros((n + 7) // 8, np.uint8)
        for ref in self._map(pairs, _pair_nodes).to_arrow_refs():
            table = ray.get(ref)
            if not table.num_rows:  # an empty block passes a map untouched
                continue
            node = table.column("node").to_numpy()  # sorted, distinct
            byte = node >> 3
            starts = np.flatnonzero(np.r_[True, byte[1:] != byte[:-1]]) if len(node) else np.zeros(0, np.int64)
            # distinct rows of one byte have distinct bits: their sum is their union
            bits[byte[starts]] |= np.add.reduceat(np.left_shift(1, node & 7), starts).astype(np.uint8)
        return ray.put(bits)

    def components(self, edges: Any) -> tuple[np.ndarray, np.ndarray, int]:
        """Connected components of an edge dataset (columns ``u``, ``v``) in rounds on Ray.

        Large-star then small-star (Kiveris et al. 2014), each a group-by over the edges in
        both directions, until a round changes nothing: then every component is a star around
        its lowest node. Returns ``(node, root)`` for every node that is not its component's
        root, and the rounds taken.
        """
        from ...errors import HubtoolsError

        for rounds in range(1, MAX_ROUNDS + 1):
            changed = 0
            for star in (_large_star, _small_star):
                edges = self.by_partition(self._map(edges, _both_ways), "node", star).materialize()
                changed += _totals(edges.select_columns(["changed"]), ["changed"])["sum(changed)"]
                edges = edges.select_columns(["u", "v"])
            if not changed:
                break
        else:
            raise HubtoolsError(f"connected components did not settle in {MAX_ROUNDS} rounds",
                                hint="please report this with the Ray version")
        table = _collect(edges)
        if table is None:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), rounds
        u, v = table.column("u").to_numpy(), table.column("v").to_numpy()
        node, at = np.unique(np.maximum(u, v), return_index=True)  # a leaf may be listed twice
        return node, np.minimum(u, v)[at], rounds
