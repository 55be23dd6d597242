"""Compiled loops (numba) of ``near_duplicates``' sketching, over a batch's UTF-8 bytes and offsets.

* :func:`word_hashes`: the words of every text as 64-bit hashes, in one pass over the bytes:
  :data:`~hubtools.text.TOKEN_RE`'s words of the case-folded text (runs of word characters;
  every Chinese/Japanese character a word of its own), each hashed over its case-folded code
  points (:func:`hash_tokens` hashes words given as strings the same way). A code point's case
  fold and class come from a table of all of Unicode built with ``str.casefold`` and
  ``TOKEN_RE``'s own classes (:func:`tables`; a fold of several characters, ``ß`` -> ``ss``,
  kept inline); a text holding a character the table cannot settle (none today) is left to the
  caller (``slow``), which cuts it with the regular expression.
* :func:`minhash_rows`: each text's word ``n``-shingles (the same hashes as
  :func:`hubtools.checks.minhash.shingle_hashes`), their order-free sum, and the MinHash
  signature: per permutation ``(a, b)``, the minimum over the shingles ``x`` of the top 32 bits
  of ``a * x + b`` (mod 2**64) -- rensa-core's R-MinHash of pre-hashed tokens, with its
  permutations (:func:`permutations`: xoshiro256++ seeded by SplitMix64), checked in the tests
  against rensa-core's golden vector.
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np

__all__ = ["hash_tokens", "minhash_rows", "permutations", "tables", "word_hashes"]

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)
_SEED = np.uint64(0x243F6A8885A308D3)
_LOW32 = np.uint64(0xFFFFFFFF)
#: code point classes of :func:`tables`
SEPARATOR, WORD, SINGLE, SLOW, MULTI = 0, 1, 2, 3, 4


def _runs(pattern: str, text: str) -> np.ndarray:
    """True at each character of ``text`` inside a match of ``pattern``."""
    import regex

    edges = np.zeros(len(text) + 1, dtype=np.int64)
    for match in regex.finditer(pattern, text):
        edges[match.start()] += 1
        edges[match.end()] -= 1
    return np.cumsum(edges[:-1]) > 0


@lru_cache(maxsize=1)
def tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(case fold, several-character folds, class) of every code point: ``fold[c]`` is
    ``c.casefold()`` when that is one character, ``multi[c]`` its characters (up to 3, then
    zeros) when it is several (``ß`` -> ``ss``, BMP only); ``cls[c]`` the class of the folded
    character(s) under ``TOKEN_RE``: SEPARATOR, WORD (part of a run), SINGLE (a word of its own),
    MULTI (several word characters), or SLOW (anything else; a surrogate)."""
    from ..text import _CJK  # TOKEN_RE is "[{_CJK}]|[^\W{_CJK}]+": its two branches, one character each

    size = 0x110000
    points = np.arange(size, dtype=np.uint32)
    points[0xD800:0xE000] = 0x20  # surrogates: not characters
    fold = points.astype(np.int32)
    multi = np.zeros((0x10000, 3), dtype=np.int32)
    several = []
    for c in range(0x10000):  # per character: some fold to several
        f = chr(fold[c]).casefold()
        if len(f) == 1:
            fold[c] = ord(f)
        else:
            several.append(c)
            multi[c, :len(f)] = [ord(ch) for ch in f[:3]]
            fold[c] = 0x20
    astral = points[0x10000:].tobytes().decode("utf-32-le").casefold()  # at once: one character each
    if len(astral) == size - 0x10000:
        fold[0x10000:] = np.frombuffer(astral.encode("utf-32-le"), dtype=np.uint32)
    folded = fold.astype(np.uint32).tobytes().decode("utf-32-le")
    word, single = _runs(rf"[^\W{_CJK}]+", folded), _runs(rf"[{_CJK}]+", folded)
    cls = np.where(single, SINGLE, np.where(word, WORD, SEPARATOR)).astype(np.uint8)
    if len(astral) != size - 0x10000:
        cls[0x10000:] = SLOW
    for c in several:
        chars = [int(v) for v in multi[c] if v]
        ok = len(chr(c).casefold()) <= 3 and all(cls[v] == WORD and fold[v] == v for v in chars)
        cls[c] = MULTI if ok else SLOW
    cls[0xD800:0xE000] = SLOW
    return fold, multi, cls


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``num_perm`` pairs ``(a | 1, b)`` of xoshiro256++ outputs, the generator seeded from
    ``seed`` by SplitMix64 (rensa-core's ``build_permutations``)."""
    mask = (1 << 64) - 1

    def rotl(x: int, k: int) -> int:
        return ((x << k) | (x >> (64 - k))) & mask

    state, s = seed & mask, []
    for _ in range(4):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        s.append(z ^ (z >> 31))
    out = []
    for _ in range(2 * num_perm):
        out.append((rotl((s[0] + s[3]) & mask, 23) + s[0]) & mask)
        t = (s[1] << 17) & mask
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
    values = np.array(out, dtype=np.uint64)
    return values[0::2] | np.uint64(1), values[1::2]


@numba.njit(cache=True, nogil=True, inline="always")
def _mix(h: np.uint64, cp: np.uint64) -> np.uint64:
    return (((h << np.uint64(26)) | (h >> np.uint64(38))) ^ cp) * _M1


@numba.njit(cache=True, nogil=True, inline="always")
def _finalise(h: np.uint64) -> np.uint64:
    """splitmix64's finaliser (as :func:`hubtools.checks.minhash._finalise`)."""
    h = h ^ (h >> np.uint64(30))
    h = h * _M2
    h = h ^ (h >> np.uint64(27))
    h = h * _M3
    return h ^ (h >> np.uint64(31))


@numba.njit(cache=True, nogil=True, inline="always")
def _word_end(h: np.uint64, length: int) -> np.uint64:
    return _finalise(h ^ (np.uint64(length) * _M2))


@numba.njit(cache=True, nogil=True, inline="always")
def _next(data: np.ndarray, i: int) -> tuple[int, int]:
    """(the code point whose UTF-8 starts at byte ``i``, the byte after it)."""
    cp = np.int64(data[i])
    if cp < 0x80:
        return cp, i + 1
    if cp < 0xE0:
        return ((cp & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F), i + 2
    if cp < 0xF0:
        return ((cp & 0x0F) << 12) | ((np.int64(data[i + 1]) & 0x3F) << 6) | (np.int64(data[i + 2]) & 0x3F), i + 3
    return (((cp & 0x07) << 18) | ((np.int64(data[i + 1]) & 0x3F) << 12)
            | ((np.int64(data[i + 2]) & 0x3F) << 6) | (np.int64(data[i + 3]) & 0x3F)), i + 4


@numba.njit(cache=True, nogil=True)
def hash_tokens(cps: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The hash of each word given as its code points (``cps``, words back to back, ``lengths``
    code points each), as :func:`word_hashes` hashes the words it cuts."""
    out = np.empty(len(lengths), dtype=np.uint64)
    at = 0
    for k in range(len(lengths)):
        h = _SEED
        for j in range(lengths[k]):
            h = _mix(h, np.uint64(cps[at + j]))
        at += lengths[k]
        out[k] = _word_end(h, lengths[k])
    return out


@numba.njit(cache=True, nogil=True)
def _grow(out: np.ndarray, used: int, need: int) -> np.ndarray:
    """``out`` with room for ``need`` more values after its first ``used``."""
    if used + need <= len(out):
        return out
    grown = np.empty(max(2 * len(out), used + need), dtype=np.uint64)
    grown[:used] = out[:used]
    return grown


@numba.njit(cache=True, nogil=True)
def word_hashes(offsets: np.ndarray, data: np.ndarray, fold: np.ndarray, multi: np.ndarray,
                table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(hashes, counts, slow)``: the hashes of the words of every text, back to back in text
    order, the number of words of each text, and the texts left to the caller (with no word
    here): those holding a code point of class SLOW or one beyond ``table`` (``fold``, ``multi``
    and ``table``: :func:`tables`)."""
    n = len(offsets) - 1
    counts = np.zeros(n, dtype=np.int64)
    slow = np.zeros(n, dtype=np.bool_)
    out = np.empty(max(16, len(data) // 4), dtype=np.uint64)
    at = 0
    for r in range(n):
        first = at
        i, end = offsets[r], offsets[r + 1]
        out = _grow(out, at, end - i)  # a text of k bytes has at most k words
        h = _SEED
        length = 0
        bad = False
        while i < end:
            cp, i = _next(data, i)
            if cp >= len(table):
                bad = True
                break
            kind = table[cp]
            if kind == WORD:
                h = _mix(h, np.uint64(fold[cp]))
                length += 1
                continue
            if kind == MULTI:
                for q in range(3):
                    if multi[cp, q] == 0:
                        break
                    h = _mix(h, np.uint64(multi[cp, q]))
                    length += 1
                continue
            if kind == SLOW:
                bad = True
                break
            if length:
                out[at] = _word_end(h, length)
                at += 1
                h = _SEED
                length = 0
            if kind == SINGLE:
                out[at] = _word_end(_mix(_SEED, np.uint64(fold[cp])), 1)
                at += 1
        if bad:
            at = first
            slow[r] = True
            continue
        if length:
            out[at] = _word_end(h, length)
            at += 1
        counts[r] = at - first
    return out[:at], counts, slow


@numba.njit(cache=True, nogil=True)
def minhash_rows(words: np.ndarray, offsets: np.ndarray, n: int, a: np.ndarray,
                 b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(signatures, sums)`` of each row's word ``n``-shingles (row ``i``'s word hashes are
    ``words[offsets[i]:offsets[i + 1]]``; a row of fewer than ``n`` words has one shingle, all
    its words): per permutation the minimum of ``(a * x + b) >> 32`` over the shingle hashes
    ``x`` (uint32; 2**32 - 1 for a row without words), and the sum of the shingle hashes
    (mod 2**64, an order-free hash of the multiset)."""
    rows = len(offsets) - 1
    perms = len(a)
    # the top 32 bits of a * x + b, from 32-bit halves (they vectorise; a 64-bit product does not
    # as well): a_lo * x_lo + b_lo fits in 64 bits; the other terms only matter mod 2**32
    a_lo, a_hi, b_lo, b_hi = a & _LOW32, a >> np.uint64(32), b & _LOW32, b >> np.uint64(32)
    sig = np.empty((rows, perms), dtype=np.uint32)
    sums = np.zeros(rows, dtype=np.uint64)
    mins = np.empty(perms, dtype=np.uint32)
    for r in range(rows):
        mins[:] = np.uint32(0xFFFFFFFF)
        start, w = offsets[r], offsets[r + 1] - offsets[r]
        k = min(n, w)
        total = np.uint64(0)
        for p in range(w - k + 1 if w else 0):
            h = words[start + p]
            for q in range(1, k):
                h = (h * _M1) ^ words[start + p + q]
            x = _finalise(h)
            total += x
            x_lo, x_hi = x & _LOW32, x >> np.uint64(32)
            for j in range(perms):
                t = a_lo[j] * x_lo + b_lo[j]
                v = np.uint32(((t >> np.uint64(32)) + b_hi[j] + a_hi[j] * x_lo + a_lo[j] * x_hi) & _LOW32)
                if v < mins[j]:
                    mins[j] = v
        sums[r] = total
        sig[r] = mins
    return sig, sums


# --------------------------------------------------------------------------- repetition: \w words


@lru_cache(maxsize=1)
def word_table() -> np.ndarray:
    """1 for the code points that ``regex``'s ``\\w`` matches, else 0, over all of Unicode (the
    ``repetition`` check's words are runs of them, not case-folded)."""
    import regex

    points = np.arange(0x110000, dtype=np.uint32)
    points[0xD800:0xE000] = 0x20  # surrogates: not characters
    text = points.tobytes().decode("utf-32-le")
    edges = np.zeros(0x110001, dtype=np.int64)
    for match in regex.finditer(r"\w+", text):
        edges[match.start()] += 1
        edges[match.end()] -= 1
    table = (np.cumsum(edges[:-1]) > 0).astype(np.uint8)
    return table


@numba.njit(cache=True, nogil=True)
def w_words(offsets: np.ndarray, data: np.ndarray,
            table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(hashes, lengths, repeated, counts, slow)`` of the runs of ``\\w`` characters of every
    text (``table``: :func:`word_table`), back to back in text order: each word's hash over its
    code points, its length in characters, whether it occurs more than once in its text; each
    text's number of words; the texts left to the caller (a code point beyond ``table``; no word
    here; none with :func:`word_table`, which covers all of Unicode)."""
    n = len(offsets) - 1
    counts = np.zeros(n, dtype=np.int64)
    slow = np.zeros(n, dtype=np.bool_)
    out = np.empty(max(16, len(data) // 4), dtype=np.uint64)
    lengths = np.empty(len(out), dtype=np.int64)
    at = 0
    for r in range(n):
        first = at
        i, end = offsets[r], offsets[r + 1]
        if at + (end - i) > len(out):  # a text of k bytes has at most k words
            size = max(2 * len(out), at + (end - i))
            grown = np.empty(size, dtype=np.uint64)
            grown[:at] = out[:at]
            out = grown
            grown_len = np.empty(size, dtype=np.int64)
            grown_len[:at] = lengths[:at]
            lengths = grown_len
        h = _SEED
        length = 0
        bad = False
        while i < end:
            cp, i = _next(data, i)
            if cp >= len(table):
                bad = True
                break
            if table[cp]:
                h = _mix(h, np.uint64(cp))
                length += 1
            elif length:
                out[at] = _word_end(h, length)
                lengths[at] = length
                at += 1
                h = _SEED
                length = 0
        if bad:
            at = first
            slow[r] = True
            continue
        if length:
            out[at] = _word_end(h, length)
            lengths[at] = length
            at += 1
        counts[r] = at - first
    # repeated in its text: an open-addressing table per text (slots stamped with the text, so
    # it is never cleared)
    repeated = np.zeros(at, dtype=np.bool_)
    size = 16
    while size < 2 * (counts.max() if n else 0):
        size *= 2
    keys = np.zeros(size, dtype=np.uint64)
    stamp = np.full(size, -1, dtype=np.int64)
    where = np.zeros(size, dtype=np.int64)
    first = 0
    for r in range(n):
        m = counts[r]
        mask = 15
        while mask + 1 < 2 * m:
            mask = 2 * mask + 1
        for k in range(first, first + m):
            h = out[k]
            slot = np.int64((h >> np.uint64(40)) & np.uint64(mask))
            while stamp[slot] == r and keys[slot] != h:
                slot = (slot + 1) & mask
            if stamp[slot] == r:
                repeated[k] = True
                repeated[where[slot]] = True
            else:
                stamp[slot] = r
                keys[slot] = h
                where[slot] = k
        first += m
    return out[:at], lengths[:at], repeated, counts, slow
