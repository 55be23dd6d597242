"""What each Ray task of the duplicate checks' shuffles does to one block (:mod:`.ray_shuffle`
runs them): pyarrow tables in, pyarrow tables out, numpy inside. The decisions are the local
engine's functions (:mod:`hubtools.checks.minhash`), so the answers match.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from ..minhash import ShingleSets, _finalise, decide, distinct, joined, sketch_batch, window_pairs
from .ray import POS

_FIRST = "first"


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
    """:func:`~hubtools.checks.minhash.sketch_batch` plus the per-row figures the report sums
    (the text is not kept: verification reads the few rows it needs from the view)."""
    out = sketch_batch(batch, fields=fields, shingle_size=shingle_size, **kwargs)
    words = out.pop("words")
    out.update(compared=(words > 0).astype(np.int64), short=((words > 0) & (words < shingle_size)).astype(np.int64))
    return out


def _where(table: pa.Table, column: str, value: bool) -> pa.Table:
    """Rows whose boolean/integer ``column`` is (not) set."""
    mask = table.column(column).to_numpy().astype(bool)
    return table.filter(pa.array(mask if value else ~mask))


def _split(key: str, parts: int, *tables: pa.Table) -> tuple[pa.Table, ...]:
    """Consecutive blocks cut into their ``parts`` shuffle partitions by their ``key`` column
    (rows keep their block order inside each piece; empty blocks, which may have no columns at
    all, are left out; all empty: empty pieces)."""
    full = [t for t in tables if t.num_rows]
    if not full:
        return tuple(tables[0] for _ in range(parts)) if parts > 1 else tables[0]
    table = pa.concat_tables(full) if len(full) > 1 else full[0]
    keys = table.column(key).to_numpy().astype(np.uint64)
    part = (_finalise(keys) % np.uint64(parts)).astype(np.int64)
    order = np.argsort(part, kind="stable")
    ends = np.searchsorted(part[order], np.arange(1, parts + 1))
    ordered = table.take(pa.array(order))
    pieces = tuple(ordered.slice(start, end - start) for start, end in zip(np.r_[0, ends[:-1]], ends))
    return pieces if parts > 1 else pieces[0]


def _joined(fn: Any, kwargs: dict[str, Any], *pieces: pa.Table) -> pa.Table:
    """``fn`` over one whole partition: its pieces from every block, in block order (an empty
    partition is an empty block: ``fn`` is not called, as Ray Data's group-by makes no group)."""
    pieces = [p for p in pieces if p.num_rows]  # an empty block passes a map untouched: its columns may differ
    if not pieces:
        return pa.table({})
    return fn(pa.concat_tables(pieces).combine_chunks(), **kwargs)


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


def _join_rows(table: pa.Table, *, data: bool, column: str = "", kind: Any = None, bits: Any = None,
               fields: list[str] | None = None) -> pa.Table:
    """Rows of the two-step join of pairs with a per-row value, one schema: a record (``node``:
    its position, ``other`` -1, its ``val``: ``column``, or the ``fields`` joined as the sketch
    joins them; only the rows set in ``bits``, those some pair names) or a pair (``node``,
    ``other``, and the other row's ``val_o`` once shipped). ``kind``: the value's Arrow type."""
    if bits is not None:
        table = _named(table, bits)
    n = len(table)
    if data:
        value = joined({f: table.column(f).combine_chunks() for f in fields}, fields) if fields else table.column(column)
        return pa.table({"node": table.column(POS), "other": pa.array(np.full(n, -1, np.int64)),
                         "val": value.cast(kind), "val_o": pa.nulls(n, kind)})
    return pa.table({"node": table.column("a"), "other": table.column("b"), "val": pa.nulls(n, kind),
                     "val_o": pa.nulls(n, kind)})


def _records_and_pairs(table: pa.Table) -> tuple[pa.Table, pa.Table, pa.Array]:
    """A partition of the join split into records and pairs, with the record of each pair's ``node``."""
    other = table.column("other").to_numpy()
    data, pairs = table.filter(pa.array(other < 0)), table.filter(pa.array(other >= 0))
    nodes = data.column("node").to_numpy()
    order = np.argsort(nodes)
    return data, pairs, pa.array(order[np.searchsorted(nodes[order], pairs.column("node").to_numpy())])


def _ship(table: pa.Table) -> pa.Table:
    """A partition of records and pairs keyed by the pairs' first row: each pair goes on,
    keyed by its second row, carrying the first row's value."""
    data, pairs, at = _records_and_pairs(table)
    kind = table.schema.field("val").type
    return pa.table({"node": pairs.column("other"), "other": pairs.column("node"),
                     "val": pa.nulls(len(pairs), kind), "val_o": data.column("val").take(at)})


def _meet_estimate(table: pa.Table, *, threshold: float, num_perm: int) -> pa.Table:
    """A partition of records and shipped pairs keyed by the pairs' second row, the values being
    signatures: each pair's MinHash estimate, decided where it is decisive
    (:func:`~hubtools.checks.minhash.decide`); ``unsure`` pairs go on to :func:`_meet_exact`."""
    data, pairs, at = _records_and_pairs(table)
    sig_b, sig_a = data.column("val").take(at), pairs.column("val_o")
    estimate = (_fixed(sig_a, np.uint16, num_perm) == _fixed(sig_b, np.uint16, num_perm)).mean(axis=1)
    sim, unsure, ok = decide(estimate, threshold, lambda m: np.full(int(m.sum()), np.nan))
    return pa.table({"a": pairs.column("other"), "b": pairs.column("node"), "j": pa.array(sim),
                     "unsure": pa.array(unsure.astype(np.int64)), "ok": pa.array((ok & ~unsure).astype(np.int64))})


def _meet_exact(table: pa.Table, *, threshold: float, shingle_size: int) -> pa.Table:
    """As :func:`_meet_estimate`, the values being texts, for the pairs the estimate left
    unsure: the exact Jaccard of their shingle sets decides."""
    data, pairs, at = _records_and_pairs(table)
    text_b, text_a = data.column("val").take(at).combine_chunks(), pairs.column("val_o").combine_chunks()
    sim = ShingleSets.of_pairs(text_a, text_b, shingle_size) if len(pairs) else np.zeros(0)
    ok = sim >= threshold - 1e-9
    return pa.table({"a": pairs.column("other"), "b": pairs.column("node"), "j": pa.array(sim, pa.float64()),
                     "unsure": pa.array(np.ones(len(pairs), np.int64)), "ok": pa.array(ok.astype(np.int64))})


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
