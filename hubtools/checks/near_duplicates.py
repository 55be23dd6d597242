"""``near_duplicates``: records whose word shingles overlap an earlier record's by Jaccard >= 0.8.

How it works (the MinHash / LSH engine is :mod:`hubtools.checks.minhash`, shared with the Ray
engine): word shingles of each record, hashed and MinHashed in batches by compiled kernels
(worker processes with ``num_proc > 1``, Ray tasks on Ray); LSH band keys make candidate pairs; the MinHash estimate
settles the clear pairs and the exact Jaccard of the shingle sets the rest; the clusters are the
connected components of the similar pairs. Every member after the first (lowest source index)
of a cluster is flagged, with the reason "near-duplicate of #i (jaccard 0.87)", ``i`` being its
lowest-index verified neighbour. Records with identical shingle multisets are joined directly
(Jaccard 1.0) and only the first enters LSH.

On the Ray engine the steps over the whole dataset run on the cluster too
(:mod:`hubtools.checks.engines.ray_shuffle`): same candidates, same decisions, same clusters
and flagged records; a pair already inside one cluster is not compared locally but is on Ray,
so the pair counts, the Jaccard histogram and the neighbour a reason names may differ.

Shared templates (a long prefix or suffix that many records carry around different content: a
system prompt, a tool description) are stripped first (:mod:`hubtools.checks._templates`), so
similarity is measured on what differs; ``stats["templates_stripped"]`` names them.

Records with no word at all are skipped. A record with fewer words than ``shingle_size`` has
one shingle, its whole word sequence, so it only matches a record with exactly the same words
(never an unrelated short text). Exact duplicates are near duplicates too.

Example:
    >>> from hubtools.checks import REGISTRY
    >>> result = REGISTRY["near_duplicates"].run(dataset)  # doctest: +SKIP
    >>> result.reasons  # doctest: +SKIP
    {41: 'near-duplicate of #3 (jaccard 0.87)'}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from importlib.metadata import version
from typing import Any

import numpy as np

from ..errors import UnknownCheckError
from ..text import TOKEN_RE, jaccard, word_shingles, words
from ._templates import find_templates, strip_templates
from .base import CheckData, CheckResult, FormattedReasons, register, release_memory
from .exact_duplicates import group_firsts, preview
from .minhash import (
    Buckets,
    ShingleSets,
    choose_bands,
    components,
    distinct,
    shingle_hashes,
    similar_pairs,
    sketch_batch,
)

__all__ = [
    "TOKEN_RE",
    "NearDuplicateOptions",
    "check_near_duplicates",
    "choose_bands",
    "components",
    "jaccard",
    "shingle_hashes",
    "similar_pairs",
    "word_shingles",
    "words",
]

logger = logging.getLogger(__name__)

TOP_CLUSTERS = 5
#: A flagged record's reason: its lowest-position verified neighbour and their Jaccard
REASON = "near-duplicate of #{} (jaccard {:.2f})"
MEMBERS_SHOWN = 10


@dataclass
class NearDuplicateOptions:
    """Options of the ``near_duplicates`` check."""

    #: Jaccard similarity of word-shingle sets at or above which two records are near duplicates
    threshold: float = 0.8
    #: MinHash permutations (signature length)
    num_perm: int = 128
    #: words per shingle; 3 suits instruction data: one changed word in a 30-word record keeps
    #: Jaccard at 0.8 (with 5-word shingles it falls to 0.68)
    shingle_size: int = 3
    seed: int = 42
    #: fields compared (joined); None: the whole example (prompt and every reply)
    fields: list[str] | None = None
    #: compare what differs: strip the prefixes and suffixes many records share (a system prompt,
    #: a tool description; see :mod:`hubtools.checks._templates`) before shingling
    strip_templates: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError(f"near_duplicates threshold must be in (0, 1], got {self.threshold}")
        if self.num_perm < 2 or self.shingle_size < 1:
            raise ValueError("near_duplicates needs num_perm >= 2 and shingle_size >= 1")


# the reference (pure Python) definitions, words / word_shingles / jaccard, are in hubtools.text


# --------------------------------------------------------------------------- the check


def _fields(data: CheckData, opts: NearDuplicateOptions) -> list[str]:
    if opts.fields is None:
        return list(data.fields)
    names = [opts.fields] if isinstance(opts.fields, str) else list(opts.fields)
    unknown = [name for name in names if name not in data.fields]
    if unknown or not names:
        raise UnknownCheckError(f"near_duplicates: no field(s) {unknown or names} in {data.kind.value} data",
                                hint=f"use fields among: {', '.join(data.fields)}")
    return names


def _gather(parts: list[dict[str, np.ndarray]], name: str) -> np.ndarray:
    """``np.concatenate`` of ``part[name]`` over the parts, popping each part's array as it is
    copied (so the pieces and the whole never all exist together)."""
    if not parts:
        return np.concatenate([])  # as np.concatenate would: no parts is an error
    first = parts[0][name]
    out = np.empty((sum(len(p[name]) for p in parts), *first.shape[1:]),
                   dtype=np.result_type(*(p[name].dtype for p in parts)))
    del first
    at = 0
    for i, p in enumerate(parts):
        piece = p.pop(name)
        out[at:at + len(piece)] = piece
        at += len(piece)
        if i % 8 == 7:  # the freed pieces stay resident in malloc's heap unless trimmed
            del piece
            release_memory()
    release_memory()
    return out


@dataclass
class Graph:
    """What the dataset-wide steps find: the rows that join an earlier row's cluster (``node``,
    sorted) with their cluster's lowest position (``root``), the similar pairs ``(edge_a, edge_b,
    edge_j)`` they were built from, and figures. Only clustered rows are listed (not a label per
    record), so what the Ray engine's driver holds grows with the duplicates, not the input."""

    node: np.ndarray
    root: np.ndarray
    edge_a: np.ndarray
    edge_b: np.ndarray
    edge_j: np.ndarray
    identical: int
    counts: dict[str, int]
    largest: int
    compared: int
    short: int

    def labels(self, n: int) -> np.ndarray:
        """Every row's cluster (its lowest position; a row alone is its own), for ``n`` rows."""
        label = np.arange(n, dtype=np.int64)
        label[self.node] = self.root
        return label


def _graph(data: CheckData, names: list[str], opts: NearDuplicateOptions, bands: int, rows_per_band: int) -> Graph:
    """Sketches in :meth:`CheckData.map` batches, then buckets, pairs and clusters in this process."""
    parts = data.map(sketch_batch, names, desc="near duplicates", fields=names, shingle_size=opts.shingle_size,
                     num_perm=opts.num_perm, seed=opts.seed, bands=bands, rows_per_band=rows_per_band)
    # filled part by part, each part dropped once copied: concatenating would hold the parts
    # and the whole arrays at once (the signatures alone are 256 MB per million rows)
    keys = _gather(parts, "keys")
    signature = _gather(parts, "signature")
    word_counts = _gather(parts, "words")
    multiset = _gather(parts, "multiset")
    del parts
    n = len(data)
    positions = np.arange(n, dtype=np.int64)
    compared = word_counts > 0

    # identical shingle multisets: joined directly (Jaccard 1), only the first enters LSH
    same_first = group_firsts(multiset, valid=compared)
    identical = np.flatnonzero(same_first != positions)
    label = components(n, same_first[identical], identical)
    reps = np.flatnonzero(compared & (same_first == positions))
    buckets = Buckets(keys[reps], reps)
    del keys  # the buckets hold what pairs need (84 MB per million rows)
    release_memory()
    largest = buckets.largest

    def verify(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        rows = distinct(np.concatenate([a, b]))
        # a mapped view's pages go back chunk by chunk, once the chunk's text is hashed
        return ShingleSets(data.fields, names, rows, opts.shingle_size, after_chunk=data.drop_pages).jaccard(a, b)

    pair_a, pair_b, pair_j, counts = similar_pairs(buckets, signature, verify, opts.threshold, label)
    edge_a = np.concatenate([same_first[identical], pair_a])
    edge_b = np.concatenate([identical, pair_b])
    edge_j = np.concatenate([np.ones(len(identical)), pair_j])
    label = components(n, edge_a, edge_b)
    node = np.flatnonzero(label != positions)
    return Graph(node, label[node], edge_a, edge_b, edge_j, len(identical), counts, largest,
                 int(compared.sum()), int(((word_counts > 0) & (word_counts < opts.shingle_size)).sum()))


@register("near_duplicates", options=NearDuplicateOptions,
          description="records whose word shingles overlap an earlier record's (MinHash LSH, Jaccard)")
def check_near_duplicates(data: CheckData, opts: NearDuplicateOptions) -> CheckResult:
    names = _fields(data, opts)
    templates = [t for name in names
                 for t in find_templates(data.fields[name], name, lambda rows, name=name: data.take(name, rows))
                 ] if opts.strip_templates else []
    if templates:
        data = replace(data, fields={**data.fields, **{
            name: strip_templates(data.fields[name], [t for t in templates if t.field == name])
            for name in {t.field for t in templates}}})
    bands, rows_per_band = choose_bands(opts.threshold, opts.num_perm)
    shuffle = getattr(data, "shuffle", None)  # an engine that runs the dataset-wide steps itself (Ray)
    graph = (shuffle.near_duplicate_graph if shuffle is not None else _graph)(data, names, opts, bands, rows_per_band)
    n = len(data)
    edge_a, edge_j = graph.edge_a, graph.edge_j
    flagged = graph.node
    reasons = _reasons(data, flagged, edge_a, graph.edge_b, edge_j)
    roots, members = np.unique(graph.root, return_counts=True)
    stats: dict[str, Any] = {
        "rows": n,
        "compared": graph.compared,
        "no_words": n - graph.compared,
        "short": graph.short,
        "clusters": len(roots),
        "flagged": len(flagged),
        "share_flagged": round(len(flagged) / n, 6) if n else 0.0,
        "identical_shingles": graph.identical,
        **graph.counts,
        "largest_bucket": graph.largest,
        "jaccard_histogram": _histogram(edge_j, opts.threshold),
        "largest_clusters": _largest_clusters(data, names, graph, roots, members + 1),
        "threshold": opts.threshold,
        "num_perm": opts.num_perm,
        "shingle_size": opts.shingle_size,
        "bands": bands,
        "rows_per_band": rows_per_band,
        "fields": names,
        "templates_stripped": "; ".join(f"{t.field} {t.where} in {t.records:,} records: {preview(t.text)}"
                                        for t in templates) or "none",
    }
    logger.info("near_duplicates: %d pairs compared, %d similar, %d flagged",
                graph.counts["candidate_pairs"], graph.counts["similar_pairs"], len(flagged))
    return CheckResult("near_duplicates", flagged=reasons.keys_array, reasons=reasons,
                       stats=stats, versions={"numba": version("numba")})


def _reasons(data: CheckData, flagged: np.ndarray, a: np.ndarray, b: np.ndarray, j: np.ndarray) -> FormattedReasons:
    """For each flagged row: its lowest-position verified neighbour and their Jaccard (as
    columns, written out when read: a few bytes per flagged record, not a string each)."""
    if len(flagged) == 0:
        return FormattedReasons([], REASON)
    src, dst, sim = np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([j, j])
    order = np.lexsort((dst, src))
    src, dst, sim = src[order], dst[order], sim[order]
    heads, first = np.unique(src, return_index=True)
    at = first[np.searchsorted(heads, flagged)]
    index = np.asarray(data.index)
    return FormattedReasons(index[flagged], REASON, (index[dst[at]], sim[at]))


def _histogram(similarity: np.ndarray, threshold: float) -> dict[str, list]:
    """Jaccard of the near-duplicate pairs, in four bins from the threshold to 1."""
    if threshold >= 1:
        return {"edges": [1.0, 1.0], "counts": [len(similarity)]}
    edges = np.linspace(threshold, 1.0, 5)
    counts, _ = np.histogram(np.clip(similarity, threshold, 1.0), bins=edges)
    return {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts]}


def _largest_clusters(data: CheckData, names: list[str], graph: Graph, roots: np.ndarray,
                      sizes: np.ndarray) -> list[dict[str, Any]]:
    """The biggest clusters (``roots`` and their ``sizes``), largest first, ties by position."""
    if len(roots) == 0:
        return []
    order = np.lexsort((roots, -sizes))[:TOP_CLUSTERS]
    # each pair's cluster, from its first row: that row's root, or the row itself if it is one
    at = np.minimum(np.searchsorted(graph.node, graph.edge_a), max(len(graph.node) - 1, 0))
    joined = (graph.node[at] == graph.edge_a) if len(graph.node) else np.zeros(len(graph.edge_a), bool)
    cluster = np.where(joined, graph.root[at] if len(graph.node) else graph.edge_a, graph.edge_a)
    out = []
    for root, size in zip(roots[order].tolist(), sizes[order].tolist()):
        members = np.concatenate([[root], graph.node[graph.root == root]])[:MEMBERS_SHOWN]
        similar = graph.edge_j[cluster == root]
        text = " | ".join(t for t in (data.fields[f][root].as_py() for f in names) if t)
        out.append({"size": int(size), "first": int(data.index[root]),
                    "indices": [int(i) for i in data.index[members]],
                    "min_jaccard": round(float(similar.min()) if len(similar) else float("inf"), 4),
                    "text": preview(text)})
    return out
