"""The MinHash / LSH engine of ``near_duplicates``, shared by the local and the Ray engines.

The steps (the check, :mod:`hubtools.checks.near_duplicates`, strings them together; the Ray
engine, :mod:`hubtools.checks.engines.ray_shuffle`, runs the same functions on Ray Data):

1. **Words, compiled** (:func:`word_hashes`): one pass of a numba kernel
   (:mod:`hubtools.checks._kernels_text`) over the batch's UTF-8 bytes cuts each text into the
   words of :func:`hubtools.text.words` (case-folded, runs of letters/digits, every
   Chinese/Japanese character a word of its own) and hashes each over its code points; a text
   with a character the kernel's tables cannot settle (none today) goes through the regular
   expression, each distinct whitespace-separated piece once.
2. **Shingles and MinHash, compiled** (:func:`sketch_batch`): the kernel combines each window of
   ``shingle_size`` consecutive words of a record into one 64-bit shingle hash (as
   :func:`shingle_hashes` does with numpy) and keeps, per permutation ``(a, b)``, the minimum of
   the top 32 bits of ``a * x + b`` over the shingles ``x``: rensa-core's R-MinHash of
   pre-hashed tokens and its permutations. No Python object is made per word or per record.
   (rensa 0.5 itself computes another variant and has no array export: reading its signatures
   back cost more than computing them.)
3. **LSH banding** (:func:`band_keys`, :class:`Buckets`): each signature is cut into ``bands``
   bands of ``rows_per_band`` values and each band is hashed to one key (in the worker, so only
   ``bands`` keys per record travel back, not the signature). Records sharing a key in any band
   are candidates; a bucket pairs each member with its :data:`WINDOW` nearest bucket-mates by
   position (:func:`window_pairs`). Banding is done with numpy rather than with
   ``rensa.RMinHashLSH``: in rensa 0.5 that index answers queries only for one ``RMinHash``
   object at a time (objects that cannot be built from a digest matrix, and digest matrices do
   not pickle out of worker processes), and its whole-matrix calls return a yes/no flag per row,
   not which rows collide. The bands are chosen so that a pair exactly at the threshold becomes
   a candidate with probability >= 99.5% (``r=6, b=21`` for 0.8/128: 99.8% at Jaccard 0.8,
   99.995% at 0.85), which favours recall; step 4 removes the extra candidates this lets in.
4. **Verification** (:func:`decide`): the MinHash estimate settles the clear cases; the rest get
   the exact Jaccard similarity of their shingle sets (:class:`ShingleSets`, re-shingled for the
   rows involved only), which must reach ``threshold``.
5. **Clusters**: connected components of the verified pairs (:func:`components`, vectorised
   hooking and pointer jumping; the Ray engine computes them in rounds on the cluster).

The result depends only on which pairs are candidates and how each is decided, not on the order
pairs are compared in, so both engines find the same clusters.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..text import TOKEN_RE

__all__ = [
    "WINDOW",
    "Buckets",
    "ShingleSets",
    "band_keys",
    "choose_bands",
    "components",
    "decide",
    "distinct",
    "estimate",
    "joined",
    "shingle_hashes",
    "similar_pairs",
    "sketch_batch",
    "window_pairs",
]

#: A pair exactly at the threshold must become an LSH candidate with at least this probability
#: (at 0.98, 18 bands of 7, a few true pairs at Jaccard 0.80-0.81 in 200k records were missed).
CANDIDATE_PROBABILITY = 0.995
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

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)
_CUT = np.uint64(24)



# --------------------------------------------------------------------------- shingling, signatures, band keys


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


def _slow_word_hashes(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(hash of every word, row of every word) by the regular expression: Arrow splits the texts
    on whitespace and dictionary-encodes the pieces; each distinct piece goes through Python once
    (case-folded, cut by TOKEN_RE); the words are hashed as :func:`_kernels_text.word_hashes`
    hashes them (for the texts it leaves: a character its tables cannot settle)."""
    from . import _kernels_text as kernels

    pieces = pc.utf8_split_whitespace(texts)
    flat = pc.list_flatten(pieces)
    if len(flat) == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    parents = pc.list_parent_indices(pieces).to_numpy(zero_copy_only=False).astype(np.int64)
    encoded = pc.dictionary_encode(flat)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    per_piece_tokens = [TOKEN_RE.findall(piece.casefold()) for piece in encoded.dictionary.to_pylist()]
    per_piece = np.fromiter(map(len, per_piece_tokens), dtype=np.int64, count=len(per_piece_tokens))
    tokens = list(chain.from_iterable(per_piece_tokens))
    cps = np.frombuffer("".join(tokens).encode("utf-32-le"), dtype=np.uint32)
    hashes = kernels.hash_tokens(cps, np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens)))
    piece_start = np.cumsum(per_piece) - per_piece
    counts = per_piece[codes]
    return hashes[_expand(piece_start[codes], counts)], np.repeat(parents, counts)


def word_hashes(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, counts)``: the hash of every word of the texts, in text order, and each text's
    number of words (the words of :func:`hubtools.text.words`; hashed by
    :mod:`~hubtools.checks._kernels_text` in one compiled pass over the UTF-8 bytes, the rare
    text it leaves by the regular expression)."""
    from . import _kernels_text as kernels
    from ._langid import _utf8

    if texts.null_count:
        texts = pc.fill_null(texts, "")
    offsets, data = _utf8(texts)
    hashes, counts, slow = kernels.word_hashes(offsets, data, *kernels.tables())
    if slow.any():
        rows = np.flatnonzero(slow)
        extra, extra_row = _slow_word_hashes(texts.take(pa.array(rows)))
        counts[rows] = np.bincount(extra_row, minlength=len(rows))
        merged = np.empty(len(hashes) + len(extra), dtype=np.uint64)
        from_slow = np.repeat(slow, counts)
        merged[~from_slow] = hashes
        merged[from_slow] = extra
        hashes = merged
    return hashes, counts


def shingle_hashes(texts: pa.Array, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The word ``n``-shingles of each text, hashed, as one flat buffer.

    Returns ``(hashes, offsets, word_counts)``: row ``i``'s shingle hashes (uint64, in text
    order, repeats kept) are ``hashes[offsets[i]:offsets[i + 1]]``. Same sets as
    :func:`word_shingles` (up to 64-bit hash collisions).
    """
    rows = len(texts)
    tok, counts = word_hashes(texts)
    tok_row = np.repeat(np.arange(rows, dtype=np.int64), counts)
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


def joined(fields: dict[str, pa.Array], names: list[str]) -> pa.Array:
    if len(names) == 1:
        return fields[names[0]]
    return pc.binary_join_element_wise(*(fields[name] for name in names), "\n")


def choose_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band): the longest bands that still make a pair at ``threshold`` a
    candidate with probability >= :data:`CANDIDATE_PROBABILITY`.

    >>> choose_bands(0.8, 128)
    (21, 6)
    """
    for r in range(num_perm, 0, -1):
        b = num_perm // r
        if 1 - (1 - threshold ** r) ** b >= CANDIDATE_PROBABILITY:
            return b, r
    return num_perm, 1


def band_keys(digests: np.ndarray, bands: int, rows_per_band: int) -> np.ndarray:
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


def sketch_batch(batch: dict[str, pa.Array], *, fields: list[str], shingle_size: int, num_perm: int,
                  seed: int, bands: int, rows_per_band: int) -> dict[str, np.ndarray]:
    """Shingle, MinHash and band one batch (runs in a worker process with ``num_proc > 1``).

    Done :data:`SKETCH_ROWS` rows at a time (every row is sketched on its own, so the result
    is the same), which bounds the word-hash buffer of a worker."""
    rows = len(next(iter(batch.values()))) if batch else 0
    if rows > SKETCH_ROWS:
        kw = {"fields": fields, "shingle_size": shingle_size, "num_perm": num_perm, "seed": seed,
              "bands": bands, "rows_per_band": rows_per_band}
        parts = [sketch_batch({k: v.slice(s, SKETCH_ROWS) for k, v in batch.items()}, **kw)
                 for s in range(0, rows, SKETCH_ROWS)]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    from . import _kernels_text as kernels

    words, counts = word_hashes(joined(batch, fields))
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    digests, sums = kernels.minhash_rows(words, offsets, shingle_size, *kernels.permutations(num_perm, seed))
    return {"keys": band_keys(digests, bands, rows_per_band), "signature": digests.astype(np.uint16),
            "words": counts, "multiset": sums}


# --------------------------------------------------------------------------- candidates, verification, clusters


def distinct(codes: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique's hash path is very slow on these pair codes)."""
    codes = np.sort(codes)
    return codes[np.r_[True, codes[1:] != codes[:-1]]] if len(codes) else codes


def _isin_sorted(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[at] == values


class Buckets:
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
        codes = distinct(np.concatenate(found)) if found else np.zeros(0, np.int64)
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


class ShingleSets:
    """Sorted unique shingle hashes of some rows, to compute exact Jaccard similarities."""

    @classmethod
    def of_pairs(cls, texts_a: pa.Array, texts_b: pa.Array, n: int) -> np.ndarray:
        """Exact Jaccard of ``texts_a[i]`` and ``texts_b[i]`` (the Ray engine's verification)."""
        k = len(texts_a)
        sets = cls({"t": pa.concat_arrays([texts_a, texts_b])}, ["t"], np.arange(2 * k), n)
        return sets.jaccard(np.arange(k), np.arange(k, 2 * k))

    def __init__(self, fields: dict[str, pa.Array], names: list[str], rows: np.ndarray, n: int,
                 after_chunk: Callable[[], None] | None = None):
        """Hash the shingles of ``rows`` (ascending) of ``fields``, :data:`SKETCH_ROWS` at a
        time; ``after_chunk`` runs after each (the local engine hands a mapped view's pages back
        there, so what this process maps is one chunk's stretch of the view)."""
        self.rows = rows
        flats, sizes = [np.zeros(0, np.uint64)], [np.zeros(0, np.int64)]
        # SKETCH_ROWS bounds the shingling temporaries; with pages to hand back, fewer rows at a
        # time bound the stretch of the view mapped in between (see CheckData.take)
        step = SKETCH_ROWS if after_chunk is None else SKETCH_ROWS // 10
        for start in range(0, len(rows), step):
            take = pa.array(rows[start:start + step])
            hashes, offsets, _ = shingle_hashes(joined({f: pc.take(fields[f], take) for f in names}, names), n)
            row_id = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
            order = np.lexsort((hashes, row_id))
            hashes, row_id = hashes[order], row_id[order]
            keep = np.r_[True, (hashes[1:] != hashes[:-1]) | (row_id[1:] != row_id[:-1])][: len(hashes)]
            flats.append(hashes[keep])
            sizes.append(np.bincount(row_id[keep], minlength=len(offsets) - 1))
            if after_chunk is not None:
                after_chunk()
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


def decide(sim: np.ndarray, threshold: float,
           verify: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How a candidate pair is decided, by both engines: ``sim`` holds the pairs' MinHash
    estimates; below ``threshold - REJECT_MARGIN`` a pair is not similar, at or above
    ``threshold + ACCEPT_MARGIN`` it is (reported with the estimate), and ``verify(mask)`` gives
    the exact Jaccard of the pairs in between. Returns ``(similarity, unsure, similar)``.

    >>> decide(np.array([0.5, 0.8, 0.99]), 0.8, lambda m: np.array([0.75]))[2].tolist()
    [False, False, True]
    """
    sim = sim.copy()
    unsure = (sim >= threshold - REJECT_MARGIN) & (sim < threshold + ACCEPT_MARGIN)
    if unsure.any():
        sim[unsure] = verify(unsure)
    return sim, unsure, sim >= threshold - 1e-9


def window_pairs(bucket: np.ndarray, members: np.ndarray, window: int = WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """The candidate pairs of some buckets: ``members`` sorted by (``bucket``, position), each
    paired with its next ``window`` bucket-mates (as :meth:`Buckets.pairs` for d = 1..window);
    returned as ``(a, b)`` with ``a < b``, repeats possible.

    >>> [x.tolist() for x in window_pairs(np.array([1, 1, 1, 2]), np.array([3, 5, 9, 4]), 1)]
    [[3, 5], [5, 9]]
    """
    found_a, found_b = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for d in range(1, min(window, len(members) - 1) + 1):
        hit = bucket[d:] == bucket[:-d]
        found_a.append(members[:-d][hit])
        found_b.append(members[d:][hit])
    a, b = np.concatenate(found_a), np.concatenate(found_b)
    return np.minimum(a, b), np.maximum(a, b)


def similar_pairs(buckets: Buckets, signature: np.ndarray, verify: Callable[[np.ndarray, np.ndarray], np.ndarray],
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
        sim, unsure, ok = decide(estimate(signature, a, b), threshold, lambda m, a=a, b=b: verify(a[m], b[m]))
        counts["candidate_pairs"] += len(a)
        counts["exact_pairs"] += int(unsure.sum())
        counts["similar_pairs"] += int(ok.sum())
        found_a.append(a[ok])
        found_b.append(b[ok])
        found_j.append(sim[ok])
        rejected = distinct(np.concatenate([rejected, a[~ok] * (1 << 32) + b[~ok]]))
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
