"""The dataset-wide steps of the duplicate checks on Ray Data: shuffles, not the driver's memory.

:class:`RayShuffle` is what the checks find as ``data.shuffle`` on the Ray engine's view
(:class:`~hubtools.checks.engines.ray.RayCheckData`); the local view has none, and the checks
then do these steps in their own process. The functions that decide anything are the local
ones (:mod:`hubtools.checks.minhash`, ``exact_duplicates._hash_batch``), so the answers match.

One primitive, :meth:`RayShuffle.by_partition`: each row gets the shuffle partition of its key
(a hash), a Ray Data group-by on that partition brings every row of a key into one task, and
numpy groups the whole partition at once (a group-by per key would call Python once per key,
and ``Dataset.join`` needs polars). Sort-based shuffles run as tasks; Ray's hash shuffle starts
an aggregator actor per partition, which costs seconds before any row moves.

* **exact duplicates**: the keys are hashed in ``map_batches``; each key's rows meet in one
  partition, which gives each its lowest position; only the rows that repeat an earlier one
  (position, first) come back to the driver.
* **near duplicates**: MinHash signatures and band keys in ``map_batches``; identical shingle
  multisets grouped (only the first enters LSH); the band keys exploded to ``(band key,
  position)`` rows and grouped into candidate pairs (each member with its
  :data:`~hubtools.checks.minhash.WINDOW` nearest bucket-mates, as locally), each pair once;
  a pair meets its first row's signature and text in that row's partition, then its second
  row's in the second's (a semi-join: only the rows some pair names, a bit per row in the
  object store, enter these two shuffles, not every record's text), and is decided there (:func:`~hubtools.checks.minhash.decide`: the
  MinHash estimate, else the exact Jaccard of the shingle sets); the connected components of
  the similar pairs are computed in rounds on the cluster (large-star / small-star, Kiveris et
  al. 2014: each round two shuffles of the edge list, until a round changes nothing; the
  edges then form one star per component around its lowest position). The driver gets the
  similar pairs and each clustered row's root, never a signature, a bucket or a candidate.

The driver still holds the text view (it reads the input, see the engine's ``input`` note) and
one label per row (8 bytes) to write the report. Locally a pair whose rows are already in one
cluster is not compared; here every candidate is, so the pair counts and the neighbour a reason
names may differ; the clusters and the flagged records do not.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..minhash import ShingleSets, _finalise, decide, distinct, joined, sketch_batch, window_pairs
from .ray import POS

if TYPE_CHECKING:
    from ..near_duplicates import Graph, NearDuplicateOptions
    from .ray import RayCheckData

__all__ = ["RayShuffle"]

_FIRST = "first"
#: The shuffle partition of a row (a hash of its key): a group-by on it brings every row of a
#: key into one task, where numpy does the grouping of the whole partition at once.
_PART = "__hubtools_part__"
#: Round limit of the connected components (large-star / small-star needs O(log² n) rounds).
MAX_ROUNDS = 200


# --------------------------------------------------------------------------- block functions (Ray tasks)


def _as_column(values: Any) -> pa.Array:
    """A numpy column as Arrow; a 2-D array as one fixed-size binary value per row."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    if values.ndim == 1:
        return pa.array(values)
    rows = np.ascontiguousarray(values)
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(rows.shape[1] * rows.itemsize), len(rows),
                                                [None, pa.py_buffer(rows.tobytes())])


def _fixed(column: Any, dtype: Any, width: int) -> np.ndarray:
    """A fixed-size binary column back as a (rows, width) numpy array."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    size = np.dtype(dtype).itemsize
    return np.frombuffer(column.buffers()[1], dtype=dtype, count=len(column) * width,
                         offset=column.offset * size * width).reshape(len(column), width)


def _columns(table: pa.Table, fn: Any, kwargs: dict[str, Any]) -> pa.Table:
    """``fn`` over a block's fields, its arrays as columns beside the positions."""
    batch = {name: table.column(name).combine_chunks() for name in table.column_names if name != POS}
    out = {POS: table.column(POS)}
    out.update((name, _as_column(values)) for name, values in fn(batch, **kwargs).items())
    return pa.table(out)


def _sketch(batch: dict[str, pa.Array], *, fields: list[str], shingle_size: int, **kwargs: Any) -> dict[str, Any]:
    """:func:`~hubtools.checks.minhash.sketch_batch` plus the joined text (for verification)
    and the per-row figures the report sums."""
    out = sketch_batch(batch, fields=fields, shingle_size=shingle_size, **kwargs)
    words = out.pop("words")
    out.update(compared=(words > 0).astype(np.int64), short=((words > 0) & (words < shingle_size)).astype(np.int64),
               text=joined(batch, fields))
    return out


def _where(table: pa.Table, column: str, value: bool) -> pa.Table:
    """Rows whose boolean/integer ``column`` is (not) set."""
    mask = table.column(column).to_numpy().astype(bool)
    return table.filter(pa.array(mask if value else ~mask))


def _tag(table: pa.Table, key: str, parts: int) -> pa.Table:
    """The shuffle partition of each row, from its ``key`` column."""
    keys = table.column(key).to_numpy().astype(np.uint64)
    return table.append_column(_PART, pa.array((_finalise(keys) % np.uint64(parts)).astype(np.int64)))


def _untagged(table: pa.Table, fn: Any, kwargs: dict[str, Any]) -> pa.Table:
    """``fn`` over one whole partition."""
    return fn(table.drop_columns([_PART]).combine_chunks(), **kwargs)


def _with_first(table: pa.Table, key: str) -> pa.Table:
    """Each row with the lowest position of its ``key`` (a whole partition: every row of a key)."""
    pos, keys = table.column(POS).to_numpy(), table.column(key).to_numpy()
    first = pos.copy()
    if len(pos):
        order = np.lexsort((pos, keys))
        start = np.r_[True, keys[order][1:] != keys[order][:-1]]
        first[order] = pos[order][np.flatnonzero(start)][np.cumsum(start) - 1]
    return table.append_column(_FIRST, pa.array(first))


def _later(table: pa.Table) -> pa.Table:
    """Rows that repeat an earlier one: (position, first position of their key)."""
    pos, first = table.column(POS).to_numpy(), table.column(_FIRST).to_numpy()
    later = pos != first
    return pa.table({POS: pa.array(pos[later]), _FIRST: pa.array(first[later])})


def _identical_edges(table: pa.Table) -> pa.Table:
    pos, first = table.column(POS).to_numpy(), table.column(_FIRST).to_numpy()
    later = pos != first
    return pa.table({"a": pa.array(first[later]), "b": pa.array(pos[later]), "j": pa.array(np.ones(int(later.sum())))})


def _band_rows(table: pa.Table, bands: int) -> pa.Table:
    """The LSH representatives (first of their multiset) exploded to (band key, position) rows:
    ``band << 32 | key``, so equal keys of different bands never meet."""
    pos, first = table.column(POS).to_numpy(), table.column(_FIRST).to_numpy()
    rep = pos == first
    keys = _fixed(table.column("keys"), np.uint32, bands)[rep].astype(np.int64)
    band_key = (np.arange(bands, dtype=np.int64) << 32)[None, :] | keys
    return pa.table({"bk": pa.array(band_key.reshape(-1)), POS: pa.array(np.repeat(pos[rep], bands))})


def _bucket_pairs(table: pa.Table, window: int) -> pa.Table:
    """The buckets of a partition (rows of equal band keys) to candidate pairs: each member with
    its next ``window`` bucket-mates by position, as :class:`~hubtools.checks.minhash.Buckets`."""
    bk, pos = table.column("bk").to_numpy(), table.column(POS).to_numpy()
    order = np.lexsort((pos, bk))
    bk, pos = bk[order], pos[order]
    a, b = window_pairs(bk, pos, window)
    starts = np.flatnonzero(np.r_[True, bk[1:] != bk[:-1]]) if len(bk) else np.zeros(0, np.int64)
    largest = int(np.diff(np.r_[starts, len(bk)]).max()) if len(starts) else 0
    return pa.table({"a": pa.array(a), "b": pa.array(b), "code": pa.array(a * (1 << 32) + b),
                     "largest": pa.array(np.full(len(a), largest, np.int64))})


def _distinct_pairs(table: pa.Table) -> pa.Table:
    code = np.unique(table.column("code").to_numpy())
    return pa.table({"a": pa.array(code >> 32), "b": pa.array(code & ((1 << 32) - 1))})


def _pair_nodes(table: pa.Table) -> pa.Table:
    """The distinct rows a block of candidate pairs names."""
    return pa.table({"node": pa.array(distinct(np.concatenate([table.column("a").to_numpy(),
                                                                 table.column("b").to_numpy()])))})


def _named(table: pa.Table, bits: Any) -> pa.Table:
    """The rows of a block whose bit is set in ``bits`` (one bit per row position, as
    :func:`np.packbits` little-endian; given as an object reference, fetched in the task)."""
    if not isinstance(bits, np.ndarray):
        import ray

        bits = ray.get(bits)
    pos = table.column(POS).to_numpy()
    return table.filter(pa.array(((bits[pos >> 3] >> (pos & 7).astype(np.uint8)) & 1).astype(bool)))


def _verify_rows(table: pa.Table, *, data: bool, width: int, bits: Any = None) -> pa.Table:
    """Rows of the two-step join of pairs with their rows' signatures and texts, one schema:
    a record (``node``: its position, ``other`` -1, its ``sig`` and ``text``; only the rows set
    in ``bits``, those some pair names) or a pair (``node``, ``other``, and the other row's
    ``sig_o`` / ``text_o`` once shipped)."""
    if bits is not None:
        table = _named(table, bits)
    n, sig = len(table), pa.binary(width)
    if data:
        return pa.table({"node": table.column(POS), "other": pa.array(np.full(n, -1, np.int64)),
                         "sig": table.column("signature").cast(sig), "text": table.column("text").cast(pa.large_string()),
                         "sig_o": pa.nulls(n, sig), "text_o": pa.nulls(n, pa.large_string())})
    return pa.table({"node": table.column("a"), "other": table.column("b"), "sig": pa.nulls(n, sig),
                     "text": pa.nulls(n, pa.large_string()), "sig_o": pa.nulls(n, sig),
                     "text_o": pa.nulls(n, pa.large_string())})


def _ship(table: pa.Table) -> pa.Table:
    """A partition of records and pairs keyed by the pairs' first row: each pair goes on,
    keyed by its second row, carrying the first row's signature and text."""
    other = table.column("other").to_numpy()
    data, pairs = table.filter(pa.array(other < 0)), table.filter(pa.array(other >= 0))
    nodes = data.column("node").to_numpy()
    order = np.argsort(nodes)
    at = pa.array(order[np.searchsorted(nodes[order], pairs.column("node").to_numpy())])
    n = len(pairs)
    return pa.table({"node": pairs.column("other"), "other": pairs.column("node"),
                     "sig": pa.nulls(n, table.schema.field("sig").type), "text": pa.nulls(n, pa.large_string()),
                     "sig_o": data.column("sig").take(at), "text_o": data.column("text").take(at)})


def _meet(table: pa.Table, *, threshold: float, shingle_size: int, num_perm: int) -> pa.Table:
    """A partition of records and shipped pairs keyed by the pairs' second row: each pair
    decided (:func:`~hubtools.checks.minhash.decide`) with both rows' signatures and texts."""
    other = table.column("other").to_numpy()
    data, pairs = table.filter(pa.array(other < 0)), table.filter(pa.array(other >= 0))
    nodes = data.column("node").to_numpy()
    order = np.argsort(nodes)
    at = pa.array(order[np.searchsorted(nodes[order], pairs.column("node").to_numpy())])
    sig_b, text_b = data.column("sig").take(at), data.column("text").take(at).combine_chunks()
    sig_a, text_a = pairs.column("sig_o"), pairs.column("text_o").combine_chunks()
    estimate = (_fixed(sig_a, np.uint16, num_perm) == _fixed(sig_b, np.uint16, num_perm)).mean(axis=1)
    sim, unsure, ok = decide(estimate, threshold, lambda m: ShingleSets.of_pairs(
        text_a.filter(pa.array(m)), text_b.filter(pa.array(m)), shingle_size))
    return pa.table({"a": pairs.column("other"), "b": pairs.column("node"), "j": pa.array(sim),
                     "unsure": pa.array(unsure.astype(np.int64)), "ok": pa.array(ok.astype(np.int64))})


def _both_ways(table: pa.Table) -> pa.Table:
    u, v = table.column("u").to_numpy(), table.column("v").to_numpy()
    return pa.table({"node": pa.array(np.concatenate([u, v])), "nbr": pa.array(np.concatenate([v, u]))})


def _adjacency(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(node, neighbour) without repeats, sorted, and where each node's run starts."""
    node, nbr = table.column("node").to_numpy(), table.column("nbr").to_numpy()
    order = np.lexsort((nbr, node))
    node, nbr = node[order], nbr[order]
    keep = np.r_[True, (node[1:] != node[:-1]) | (nbr[1:] != nbr[:-1])] if len(node) else np.zeros(0, bool)
    node, nbr = node[keep], nbr[keep]
    return node, nbr, np.flatnonzero(np.r_[True, node[1:] != node[:-1]]) if len(node) else np.zeros(0, np.int64)


def _stars(u: np.ndarray, v: np.ndarray, changed: np.ndarray) -> pa.Table:
    return pa.table({"u": pa.array(u.astype(np.int64)), "v": pa.array(v.astype(np.int64)),
                     "changed": pa.array(changed.astype(np.int64))})


def _large_star(table: pa.Table) -> pa.Table:
    """Large-star over a partition of nodes: each node's larger neighbours to the lowest of its
    neighbourhood (itself included)."""
    node, nbr, starts = _adjacency(table)
    if not len(node):
        return _stars(node, nbr, node)
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(node)]))
    low = np.minimum(node[starts], np.minimum.reduceat(nbr, starts))
    larger = nbr > node
    changed = (low < node[starts]) & (np.add.reduceat(larger.astype(np.int64), starts) > 0)
    return _stars(nbr[larger], low[group][larger], changed[group][larger])


def _small_star(table: pa.Table) -> pa.Table:
    """Small-star over a partition of nodes: each node and its smaller neighbours to the lowest
    of them."""
    node, nbr, _ = _adjacency(table)
    smaller = nbr < node
    node, nbr = node[smaller], nbr[smaller]
    if not len(node):
        return _stars(node, nbr, node)
    starts = np.flatnonzero(np.r_[True, node[1:] != node[:-1]])
    sizes = np.diff(np.r_[starts, len(node)])
    low = nbr[starts]  # sorted by neighbour within a node: its lowest neighbour first
    rest = np.ones(len(node), bool)
    rest[starts] = False
    group = np.repeat(np.arange(len(starts)), sizes)
    many = sizes > 1
    return _stars(np.concatenate([nbr[rest], node[starts]]), np.concatenate([low[group][rest], low]),
                  np.concatenate([many[group][rest], many]))


# --------------------------------------------------------------------------- driver side


def _partial(table: pa.Table, columns: list[str]) -> pa.Table:
    """One row per block: each column's sum and maximum (merged on the driver)."""
    values = {name: table.column(name).to_numpy() for name in columns}
    return pa.table({f"{how}({name})": [int(getattr(v, how)()) if len(v) else 0]
                     for name, v in values.items() for how in ("sum", "max")})


def _totals(ds: Any, columns: list[str]) -> dict[str, int]:
    """Sums and maxima of integer columns, as per-block partial aggregates merged on the driver
    (a Dataset.sum is a shuffle of its own)."""
    table = _collect(ds.map_batches(_partial, fn_kwargs={"columns": columns}, batch_format="pyarrow",
                                    batch_size=None))
    return {key: int(getattr(table.column(key).to_numpy(), key[:3])()) if table is not None else 0
            for key in (f"{how}({name})" for name in columns for how in ("sum", "max"))}


def _collect(ds: Any) -> pa.Table | None:
    import ray

    tables = [t for t in ray.get(ds.to_arrow_refs()) if t.num_rows]
    return pa.concat_tables(tables) if tables else None


def _rows(ds: Any) -> int:
    return int(ds.count())


class RayShuffle:
    """The duplicate checks' dataset-wide steps for one Ray view (see the module docstring)."""

    def __init__(self, data: RayCheckData) -> None:
        self.data = data
        self.engine = data.engine
        cpus = int(self.engine.workers or self.engine._cluster.get("cpus") or 1)
        #: shuffle partitions: a few per CPU, and at most about 500k rows each (Ray's default,
        #: 200, is for far bigger data)
        self.partitions = max(2 * cpus, -(-len(data) // 500_000))

    def _source(self, data: RayCheckData, names: list[str]) -> Any:
        from ..base import BATCH_SIZE

        return self.engine.dataset(data, BATCH_SIZE).select_columns([POS, *names])

    def _timed(self, started: float, desc: str, where: str = "ray shuffle") -> float:
        now = time.perf_counter()
        self.engine.step(where, 0, now - started, desc)
        return now

    def by_partition(self, ds: Any, by: str, func: Any, **kwargs: Any) -> Any:
        """``func`` over whole shuffle partitions of ``ds`` by its ``by`` column (every row of a
        key in one call): a Ray Data group-by on the partition of the key."""
        from ray.data.context import ShuffleStrategy

        tagged = ds.map_batches(_tag, fn_kwargs={"key": by, "parts": self.partitions}, batch_format="pyarrow",
                                batch_size=None)
        # a sort-based shuffle runs as tasks; the hash shuffle starts an aggregator actor per
        # partition, seconds each before any row moves (a dataset keeps the context it was
        # made with, shared along its chain: set there, not in the process's current one)
        tagged.context.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
        return (tagged.groupby(_PART, num_partitions=self.partitions)
                .map_groups(_untagged, fn_kwargs={"fn": func, "kwargs": kwargs}, batch_format="pyarrow"))

    def _map(self, ds: Any, func: Any, **kwargs: Any) -> Any:
        return ds.map_batches(func, fn_kwargs=kwargs, batch_format="pyarrow", batch_size=None, zero_copy_batch=True)

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
                                      window=WINDOW).materialize()
            if _rows(found):
                largest = _totals(found.select_columns(["largest"]), ["largest"])["max(largest)"]
                pairs = self.by_partition(found.select_columns(["code"]), "code", _distinct_pairs).materialize()
                started = self._timed(started, "near duplicates: LSH buckets to candidate pairs")
                # verification: each pair meets its first row's data, then its second row's; a
                # semi-join: only the rows some pair names enter the two shuffles (a bit per row)
                width = 2 * opts.num_perm
                bits = self.named_rows(pairs, len(data))
                # made once (each sort shuffle reads its input twice: to sample, then to sort)
                records = self._map(sketch.select_columns([POS, "signature", "text"]), _verify_rows, data=True,
                                    width=width, bits=bits).materialize()
                shipped = self.by_partition(records.union(self._map(pairs, _verify_rows, data=False, width=width)),
                                            "node", _ship)
                decided = self.by_partition(records.union(shipped), "node", _meet, threshold=opts.threshold,
                                            shingle_size=opts.shingle_size, num_perm=opts.num_perm).materialize()
                sums = _totals(decided.select_columns(["unsure", "ok"]), ["unsure", "ok"])
                counts = {"candidate_pairs": _rows(decided), "exact_pairs": int(sums["sum(unsure)"]),
                          "similar_pairs": int(sums["sum(ok)"])}
                edges_parts.append(self._map(decided, _where, column="ok", value=True)
                                   .select_columns(["a", "b", "j"]).materialize())
                started = self._timed(started, "near duplicates: pairs verified")
        counts["rejected_pairs"] = counts["candidate_pairs"] - counts["similar_pairs"]

        label = np.arange(len(data), dtype=np.int64)
        edge = {"a": np.zeros(0, np.int64), "b": np.zeros(0, np.int64), "j": np.zeros(0)}
        edges_parts = [e for e in edges_parts if _rows(e)]
        if edges_parts:
            edges = edges_parts[0].union(*edges_parts[1:]) if len(edges_parts) > 1 else edges_parts[0]
            table = _collect(edges)
            edge = {k: table.column(k).to_numpy() for k in edge}
            node, root, rounds = self.components(edges.select_columns(["a", "b"]).rename_columns({"a": "u", "b": "v"}))
            label[node] = root
            self._timed(started, f"near duplicates: connected components ({rounds} rounds)")
        return Graph(label, edge["a"], edge["b"], edge["j"], identical, counts, largest,
                     int(figures["sum(compared)"]), int(figures["sum(short)"]))

    def named_rows(self, pairs: Any, n: int) -> Any:
        """One bit per row (``np.packbits`` little-endian), set for the rows some pair of ``pairs``
        names, in the object store: each block's distinct rows are set as they come, so the
        driver holds the n / 8 bytes and one block of row numbers at a time."""
        import ray

        bits = np.zeros((n + 7) // 8, np.uint8)
        for ref in self._map(pairs, _pair_nodes).to_arrow_refs():
            node = ray.get(ref).column("node").to_numpy()  # sorted, distinct
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
