"""``near_duplicates``: records whose word shingles overlap an earlier record's by Jaccard >= 0.8.

How it works, and why it is fast:

1. **Shingles, vectorised** (in :meth:`CheckData.map` batches, so in worker processes with
   ``num_proc > 1``). Arrow splits the text on whitespace and dictionary-encodes the pieces;
   only the distinct pieces of a batch go through Python, once each, to be case-folded, cut
   into words (:data:`TOKEN_RE`: runs of letters/digits; every Chinese/Japanese character is a
   word of its own) and hashed with xxh3. numpy then expands the pieces back into a word-hash
   stream and combines each window of ``shingle_size`` consecutive words of a record into one
   64-bit shingle hash. No Python loop runs per word or per record.
2. **MinHash with rensa**: ``RMinHash.digest_matrix_from_flat_token_hashes`` turns the flat
   shingle-hash buffer into one ``num_perm`` signature per record in Rust.
3. **LSH banding**: each signature is cut into ``bands`` bands of ``rows_per_band`` values and
   each band is hashed to one key (in the worker, so only ``bands`` keys per record travel back,
   not the signature). Records sharing a key in any band are candidates. Banding is done with
   numpy (sort each band's keys; runs of equal keys are the buckets) rather than with
   ``rensa.RMinHashLSH``: in rensa 0.5 that index answers queries only for one ``RMinHash``
   object at a time (objects that cannot be built from a digest matrix, and digest matrices do
   not pickle out of worker processes), and its whole-matrix calls return a yes/no flag per row,
   not which rows collide. The bands are chosen so that a pair exactly at the threshold becomes
   a candidate with probability >= 98% (``r=7, b=18`` for 0.8/128: 99.9% at Jaccard 0.85),
   which favours recall; step 4 removes the extra candidates this lets in.
4. **Verification**: the exact Jaccard similarity of every candidate pair's shingle sets
   (re-shingled for the rows involved only) must reach ``threshold``; LSH false positives
   are dropped. Records with identical shingle multisets are joined directly (Jaccard 1.0).
5. **Clusters**: connected components of the verified pairs (vectorised union-find). Every
   member after the first (lowest source index) of a cluster is flagged, with the reason
   "near-duplicate of #i (jaccard 0.87)", ``i`` being its lowest-index verified neighbour.

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
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.metadata import version
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from rensa import RMinHash

from ..errors import UnknownCheckError
from ..text import TOKEN_RE, jaccard, word_shingles, words
from ._templates import find_templates, strip_templates
from .base import CheckData, CheckResult, register, release_memory
from .exact_duplicates import group_firsts, preview

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

#: A pair exactly at the threshold must become an LSH candidate with at least this probability.
CANDIDATE_PROBABILITY = 0.98
#: Buckets larger than this + 1 pair each member with its WINDOW nearest bucket-mates only.
WINDOW = 8
#: A MinHash estimate this far below the threshold rejects a pair without an exact check
#: (4 standard deviations of a 128-value estimate at Jaccard 0.8)...
REJECT_MARGIN = 0.15
#: ...and this far above accepts it; pairs in between get their exact Jaccard.
ACCEPT_MARGIN = 0.12
#: Rows shingled and MinHashed at once inside a batch (bounds a worker's memory).
SKETCH_ROWS = 10_000
#: Shingle hashes compared at once when verifying pairs (bounds memory).
VERIFY_CHUNK = 4_000_000
TOP_CLUSTERS = 5
MEMBERS_SHOWN = 10

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)
_CUT = np.uint64(24)


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


# --------------------------------------------------------------------------- vectorised shingling


def _finalise(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the 64 output bits."""
    h = h ^ (h >> np.uint64(30))
    h = h * _M2
    h = h ^ (h >> np.uint64(27))
    h = h * _M3
    return h ^ (h >> np.uint64(31))


def _expand(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ``range(start, start + count)`` for each pair, without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    return np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - counts), counts)


def _word_hashes(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(xxh3 hash of every word, row of every word), words in text order."""
    pieces = pc.utf8_split_whitespace(texts)
    flat = pc.list_flatten(pieces)
    if len(flat) == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    parents = pc.list_parent_indices(pieces).to_numpy(zero_copy_only=False).astype(np.int64)
    encoded = pc.dictionary_encode(flat)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    digest = xxhash.xxh3_64_intdigest
    # each distinct whitespace-separated piece once: casefold, cut into words, hash
    tokens = [TOKEN_RE.findall(piece.casefold()) for piece in encoded.dictionary.to_pylist()]
    per_piece = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    hashes = np.fromiter((digest(t.encode()) for t in chain.from_iterable(tokens)), dtype=np.uint64,
                         count=int(per_piece.sum()))
    piece_start = np.cumsum(per_piece) - per_piece
    counts = per_piece[codes]
    if (counts == 1).all():
        return hashes[piece_start[codes]], parents
    return hashes[_expand(piece_start[codes], counts)], np.repeat(parents, counts)


def shingle_hashes(texts: pa.Array, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The word ``n``-shingles of each text, hashed, as one flat buffer.

    Returns ``(hashes, offsets, word_counts)``: row ``i``'s shingle hashes (uint64, in text
    order, repeats kept) are ``hashes[offsets[i]:offsets[i + 1]]``. Same sets as
    :func:`word_shingles` (up to 64-bit hash collisions).
    """
    rows = len(texts)
    tok, tok_row = _word_hashes(texts)
    counts = np.bincount(tok_row, minlength=rows).astype(np.int64)
    row_start = np.cumsum(counts) - counts
    per_row = np.where(counts >= n, counts - n + 1, (counts > 0).astype(np.int64))
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(per_row, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint64)
    window = tok  # window[p]: hash of the k words starting at word p
    for k in range(1, n + 1):
        if k > 1:
            window = (window[:-1] * _M1) ^ tok[k - 1:]
        if k < n:  # records with exactly k < n words: one shingle, all their words
            short = np.flatnonzero(counts == k)
            out[offsets[short]] = window[row_start[short]]
    if len(window):
        starts = np.flatnonzero(tok_row[: len(window)] == tok_row[n - 1:])
        rows_of = tok_row[starts]
        out[offsets[rows_of] + starts - row_start[rows_of]] = window[starts]
    return _finalise(out), offsets, counts


def _joined(fields: dict[str, pa.Array], names: list[str]) -> pa.Array:
    if len(names) == 1:
        return fields[names[0]]
    return pc.binary_join_element_wise(*(fields[name] for name in names), "\n")


def choose_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band): the longest bands that still make a pair at ``threshold`` a
    candidate with probability >= :data:`CANDIDATE_PROBABILITY`.

    >>> choose_bands(0.8, 128)
    (18, 7)
    """
    for r in range(num_perm, 0, -1):
        b = num_perm // r
        if 1 - (1 - threshold ** r) ** b >= CANDIDATE_PROBABILITY:
            return b, r
    return num_perm, 1


def _band_keys(digests: np.ndarray, bands: int, rows_per_band: int) -> np.ndarray:
    """One 32-bit key per band (random key collisions only add candidates, which the
    similarity estimate then drops)."""
    values = digests.astype(np.uint64)
    keys = np.empty((len(values), bands), dtype=np.uint32)
    for j in range(bands):
        key = np.zeros(len(values), dtype=np.uint64)
        for col in range(j * rows_per_band, (j + 1) * rows_per_band):
            key = (key ^ values[:, col]) * _M1
        keys[:, j] = (_finalise(key) >> np.uint64(32)).astype(np.uint32)
    return keys


def _sketch_batch(batch: dict[str, pa.Array], *, fields: list[str], shingle_size: int, num_perm: int,
                  seed: int, bands: int, rows_per_band: int) -> dict[str, np.ndarray]:
    """Shingle, MinHash and band one batch (runs in a worker process with ``num_proc > 1``).

    Done :data:`SKETCH_ROWS` rows at a time (every row is sketched on its own, so the result
    is the same): the word and shingle arrays of 20,000 Alpaca rows peak at about 280 MB in
    a worker, those of 10,000 at about 150 MB, in the same time."""
    rows = len(next(iter(batch.values()))) if batch else 0
    if rows > SKETCH_ROWS:
        kw = dict(fields=fields, shingle_size=shingle_size, num_perm=num_perm, seed=seed, bands=bands,
                  rows_per_band=rows_per_band)
        parts = [_sketch_batch({k: v.slice(s, SKETCH_ROWS) for k, v in batch.items()}, **kw)
                 for s in range(0, rows, SKETCH_ROWS)]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    texts = _joined(batch, fields)
    hashes, offsets, counts = shingle_hashes(texts, shingle_size)
    matrix = RMinHash.digest_matrix_from_flat_token_hashes(hashes, offsets.astype(np.uint64), num_perm, seed)
    digests = np.fromiter(chain.from_iterable(matrix.to_rows()), dtype=np.uint32,
                          count=len(texts) * num_perm).reshape(len(texts), num_perm)
    sums = np.zeros(len(hashes) + 1, dtype=np.uint64)
    np.cumsum(hashes, out=sums[1:])  # wraps mod 2**64: an order-free hash of each multiset
    return {"keys": _band_keys(digests, bands, rows_per_band), "signature": digests.astype(np.uint16),
            "words": counts, "multiset": sums[offsets[1:]] - sums[offsets[:-1]]}


# --------------------------------------------------------------------------- candidates, verification, clusters


def _distinct(codes: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique's hash path is very slow on these pair codes)."""
    codes = np.sort(codes)
    return codes[np.r_[True, codes[1:] != codes[:-1]]] if len(codes) else codes


def _isin_sorted(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[at] == values


class _Buckets:
    """The LSH buckets with more than one member, band by band.

    For each band, ``members`` are row positions sorted by (band key, position) and ``bucket``
    numbers the runs of equal keys, so rows ``d`` apart in ``members`` with the same ``bucket``
    are candidates (:meth:`pairs`).
    """

    def __init__(self, keys: np.ndarray, rows: np.ndarray):
        self.bands: list[tuple[np.ndarray, np.ndarray]] = []
        for j in range(keys.shape[1]):
            order = np.argsort(keys[:, j], kind="stable")
            self._add(rows[order], keys[order, j])
        self.largest = max((int(np.bincount(b).max()) for _, b in self.bands), default=0)

    def _add(self, members: np.ndarray, ordered: np.ndarray) -> None:
        """Keep the runs of equal ``ordered`` values longer than one (ordered must be sorted)."""
        same = ordered[1:] == ordered[:-1]
        if not same.any():
            return
        keep = np.zeros(len(members), dtype=bool)
        keep[1:] |= same
        keep[:-1] |= same
        ordered = ordered[keep]
        self.bands.append((members[keep], np.cumsum(np.r_[True, ordered[1:] != ordered[:-1]])))

    def pairs(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        """Distinct pairs ``(a, b)``, ``a < b``, ``d`` apart within a bucket of some band."""
        found = []
        for members, bucket in self.bands:
            hit = bucket[d:] == bucket[:-d]
            found.append(np.minimum(members[:-d][hit], members[d:][hit]) * (1 << 32)
                         + np.maximum(members[:-d][hit], members[d:][hit]))
        codes = _distinct(np.concatenate(found)) if found else np.zeros(0, np.int64)
        return codes >> 32, codes & ((1 << 32) - 1)

    def prune(self, label: np.ndarray) -> None:
        """Drop the buckets whose members are all in one cluster already: they add nothing."""
        bands, self.bands = self.bands, []
        for members, bucket in bands:
            starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
            lab = label[members]
            mixed = np.minimum.reduceat(lab, starts) != np.maximum.reduceat(lab, starts)
            keep = np.repeat(mixed, np.diff(np.r_[starts, len(members)]))
            self._add(members[keep], bucket[keep])


class _ShingleSets:
    """Sorted unique shingle hashes of some rows, to compute exact Jaccard similarities."""

    def __init__(self, fields: dict[str, pa.Array], names: list[str], rows: np.ndarray, n: int):
        self.rows = rows
        flats, sizes = [np.zeros(0, np.uint64)], [np.zeros(0, np.int64)]
        for start in range(0, len(rows), SKETCH_ROWS):  # SKETCH_ROWS bounds the shingling temporaries
            take = pa.array(rows[start:start + SKETCH_ROWS])
            hashes, offsets, _ = shingle_hashes(_joined({f: pc.take(fields[f], take) for f in names}, names), n)
            row_id = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
            order = np.lexsort((hashes, row_id))
            hashes, row_id = hashes[order], row_id[order]
            keep = np.r_[True, (hashes[1:] != hashes[:-1]) | (row_id[1:] != row_id[:-1])][: len(hashes)]
            flats.append(hashes[keep])
            sizes.append(np.bincount(row_id[keep], minlength=len(offsets) - 1))
        self.flat = np.concatenate(flats)
        self.size = np.concatenate(sizes)
        self.offsets = np.cumsum(self.size) - self.size

    def jaccard(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Exact Jaccard similarity of the sets of rows ``a[i]`` and ``b[i]`` (rows held here).

        Both sets of a pair are tagged with the pair number in the top bits of one uint64 key
        (the shingle hash keeps its top 40 bits: a false match inside one pair has odds of
        about 1e-8) and sorted once; equal neighbours are the intersection.
        """
        la, lb = np.searchsorted(self.rows, a), np.searchsorted(self.rows, b)
        out = np.zeros(len(a))
        start = 0
        while start < len(a):
            # as many pairs as fit in VERIFY_CHUNK hashes
            cum = np.cumsum(self.size[la[start:]] + self.size[lb[start:]])
            stop = start + max(1, int(np.searchsorted(cum, VERIFY_CHUNK)))
            sa, sb = self.size[la[start:stop]], self.size[lb[start:stop]]
            pair = np.arange(stop - start, dtype=np.uint64)
            keys = np.concatenate([
                (np.repeat(pair, sa) << np.uint64(40)) | (self.flat[_expand(self.offsets[la[start:stop]], sa)] >> _CUT),
                (np.repeat(pair, sb) << np.uint64(40)) | (self.flat[_expand(self.offsets[lb[start:stop]], sb)] >> _CUT)])
            keys.sort()
            dup = keys[1:][keys[1:] == keys[:-1]]
            inter = np.bincount((dup >> np.uint64(40)).astype(np.int64), minlength=len(pair))
            union = sa + sb - inter
            out[start:stop] = np.divide(inter, union, out=np.zeros(len(pair)), where=union > 0)
            start = stop
        return out


def estimate(signature: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """MinHash estimate of the Jaccard similarity of rows ``a[i]`` and ``b[i]``: the share of
    equal signature values (``chunk`` pairs at a time: about 5 bytes per pair and permutation)."""
    out = np.empty(len(a))
    for s in range(0, len(a), chunk):
        out[s:s + chunk] = (signature[a[s:s + chunk]] == signature[b[s:s + chunk]]).mean(axis=1)
    return out


def similar_pairs(buckets: _Buckets, signature: np.ndarray, verify: Callable[[np.ndarray, np.ndarray], np.ndarray],
                  threshold: float, label: np.ndarray,
                  window: int = WINDOW) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Near-duplicate pairs ``(a, b, jaccard)`` among the LSH candidates, and pair counts.

    Candidates are taken by distance within their bucket (1, 2, ... ``window``). A pair whose
    rows are already in one cluster (``label``, updated as pairs are found) is not compared,
    since it cannot change the clusters, and buckets whose members all share a cluster are
    dropped: a bucket of 100 near-copies costs about 100 comparisons, not 4,950. The MinHash
    estimate settles the clear cases (below ``threshold - REJECT_MARGIN``: not similar; at or
    above ``threshold + ACCEPT_MARGIN``: similar, reported with the estimate); ``verify`` gives
    the exact Jaccard of the rest.
    """
    found_a, found_b, found_j = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    counts = {"candidate_pairs": 0, "exact_pairs": 0, "similar_pairs": 0}
    rejected = np.zeros(0, np.int64)  # pair codes, sorted: a pair seen in several bands is compared once
    for d in range(1, window + 1):
        if not buckets.bands:
            break
        a, b = buckets.pairs(d)
        keep = (label[a] != label[b]) & ~_isin_sorted(a * (1 << 32) + b, rejected)
        a, b = a[keep], b[keep]
        sim = estimate(signature, a, b)
        unsure = (sim >= threshold - REJECT_MARGIN) & (sim < threshold + ACCEPT_MARGIN)
        sim[unsure] = verify(a[unsure], b[unsure])
        ok = sim >= threshold - 1e-9
        counts["candidate_pairs"] += len(a)
        counts["exact_pairs"] += int(unsure.sum())
        counts["similar_pairs"] += int(ok.sum())
        found_a.append(a[ok])
        found_b.append(b[ok])
        found_j.append(sim[ok])
        rejected = _distinct(np.concatenate([rejected, a[~ok] * (1 << 32) + b[~ok]]))
        label = components(len(label), label[a[ok]], label[b[ok]])[label]
        buckets.prune(label)
    counts["rejected_pairs"] = counts["candidate_pairs"] - counts["similar_pairs"]
    return np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_j), counts


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of the graph with edges ``(a[i], b[i])`` over ``n`` nodes: each
    node's label is the smallest node of its component (hooking + pointer jumping, vectorised).
    """
    label = np.arange(n, dtype=np.int64)
    while len(a):
        before = label.copy()
        la, lb = label[a], label[b]
        low = np.minimum(la, lb)
        np.minimum.at(label, la, low)
        np.minimum.at(label, lb, low)
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
        if np.array_equal(label, before):
            break
    return label


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


@register("near_duplicates", options=NearDuplicateOptions,
          description="records whose word shingles overlap an earlier record's (MinHash LSH, Jaccard)")
def check_near_duplicates(data: CheckData, opts: NearDuplicateOptions) -> CheckResult:
    names = _fields(data, opts)
    templates = [t for name in names for t in find_templates(data.fields[name], name)] if opts.strip_templates else []
    if templates:
        data = replace(data, fields={**data.fields, **{
            name: strip_templates(data.fields[name], [t for t in templates if t.field == name])
            for name in {t.field for t in templates}}})
    bands, rows_per_band = choose_bands(opts.threshold, opts.num_perm)
    parts = data.map(_sketch_batch, names, desc="near duplicates", fields=names, shingle_size=opts.shingle_size,
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
    buckets = _Buckets(keys[reps], reps)
    largest = buckets.largest

    def verify(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        rows = _distinct(np.concatenate([a, b]))
        return _ShingleSets(data.fields, names, rows, opts.shingle_size).jaccard(a, b)

    pair_a, pair_b, pair_j, counts = similar_pairs(buckets, signature, verify, opts.threshold, label)
    edge_a = np.concatenate([same_first[identical], pair_a])
    edge_b = np.concatenate([identical, pair_b])
    edge_j = np.concatenate([np.ones(len(identical)), pair_j])
    label = components(n, edge_a, edge_b)
    flagged = np.flatnonzero(label != positions)

    reasons = _reasons(data, flagged, edge_a, edge_b, edge_j)
    sizes = np.bincount(label, minlength=n)
    stats: dict[str, Any] = {
        "rows": n,
        "compared": int(compared.sum()),
        "no_words": int(n - compared.sum()),
        "short": int(((word_counts > 0) & (word_counts < opts.shingle_size)).sum()),
        "clusters": int((sizes > 1).sum()),
        "flagged": len(flagged),
        "share_flagged": round(len(flagged) / n, 6) if n else 0.0,
        "identical_shingles": len(identical),
        **counts,
        "largest_bucket": largest,
        "jaccard_histogram": _histogram(edge_j, opts.threshold),
        "largest_clusters": _largest_clusters(data, names, label, sizes, edge_a, edge_j),
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
                counts["candidate_pairs"], counts["similar_pairs"], len(flagged))
    return CheckResult("near_duplicates", flagged=[int(i) for i in data.index[flagged]], reasons=reasons,
                       stats=stats, versions={"rensa": version("rensa"), "xxhash": xxhash.VERSION})


def _reasons(data: CheckData, flagged: np.ndarray, a: np.ndarray, b: np.ndarray, j: np.ndarray) -> dict[int, str]:
    """For each flagged row: its lowest-position verified neighbour and their Jaccard."""
    if len(flagged) == 0:
        return {}
    src, dst, sim = np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([j, j])
    order = np.lexsort((dst, src))
    src, dst, sim = src[order], dst[order], sim[order]
    heads, first = np.unique(src, return_index=True)
    at = first[np.searchsorted(heads, flagged)]
    return {int(data.index[row]): f"near-duplicate of #{data.index[dst[k]]} (jaccard {sim[k]:.2f})"
            for row, k in zip(flagged.tolist(), at.tolist())}


def _histogram(similarity: np.ndarray, threshold: float) -> dict[str, list]:
    """Jaccard of the near-duplicate pairs, in four bins from the threshold to 1."""
    if threshold >= 1:
        return {"edges": [1.0, 1.0], "counts": [len(similarity)]}
    edges = np.linspace(threshold, 1.0, 5)
    counts, _ = np.histogram(np.clip(similarity, threshold, 1.0), bins=edges)
    return {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts]}


def _largest_clusters(data: CheckData, names: list[str], label: np.ndarray, sizes: np.ndarray,
                      edge_a: np.ndarray, edge_j: np.ndarray) -> list[dict[str, Any]]:
    roots = np.flatnonzero(sizes > 1)
    if len(roots) == 0:
        return []
    top = roots[np.lexsort((roots, -sizes[roots]))[:TOP_CLUSTERS]]
    lowest = np.full(len(label), np.inf)
    np.minimum.at(lowest, label[edge_a], edge_j)
    out = []
    for root in top.tolist():
        members = np.flatnonzero(label == root)[:MEMBERS_SHOWN]
        text = " | ".join(t for t in (data.fields[f][root].as_py() for f in names) if t)
        out.append({"size": int(sizes[root]), "first": int(data.index[root]),
                    "indices": [int(i) for i in data.index[members]],
                    "min_jaccard": round(float(lowest[root]), 4), "text": preview(text)})
    return out
