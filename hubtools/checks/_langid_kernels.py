"""Compiled loops of the ``language`` check (numba), over a batch's UTF-8 bytes and offsets.

Each kernel is the per-character loop of a numpy pipeline in :mod:`hubtools.checks._langid`,
written once, character by character, so that a batch costs one pass over its bytes instead of a
dozen whole-array temporaries; the answers are the same to the bit (the tests hold each kernel to
the numpy version or to langdetect itself):

* :func:`maybe_code` : which texts the cleaning's regular expressions can match at all;
* :func:`script_counts` : characters per script class of every text (tier 1);
* :func:`nb_scores` : the naive-Bayes log-likelihoods of a prefix of chosen texts under every
  langdetect profile, langdetect's character normalisation and n-gram rules inline (tier 2);
* :func:`langdetect_trials` : langdetect's seeded random trials on the n-grams of the close calls,
  the same IEEE operations in the same order as its ``Detector._detect_block`` (tier 3).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["langdetect_ngrams", "langdetect_trials", "maybe_code", "nb_scores", "script_counts"]

_SPACE = 0x20


@numba.njit(cache=True, nogil=True, inline="always")
def _decode(data: np.ndarray, i: int) -> tuple[int, int]:
    """The code point whose lead byte is at ``i`` and its length in bytes (valid UTF-8)."""
    b0 = np.int64(data[i])
    if b0 < 0x80:
        return b0, 1
    if b0 < 0xE0:
        return ((b0 & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F), 2
    if b0 < 0xF0:
        return ((b0 & 0x0F) << 12) | ((np.int64(data[i + 1]) & 0x3F) << 6) | (np.int64(data[i + 2]) & 0x3F), 3
    return (((b0 & 0x07) << 18) | ((np.int64(data[i + 1]) & 0x3F) << 12)
            | ((np.int64(data[i + 2]) & 0x3F) << 6) | (np.int64(data[i + 3]) & 0x3F)), 4


@numba.njit(cache=True, nogil=True, inline="always")
def _starts(data: np.ndarray, i: int, end: int, b0: int, b1: int, b2: int, b3: int) -> bool:
    """Whether the four bytes at ``i`` are ``b0 b1 b2 b3``."""
    return i + 4 <= end and data[i] == b0 and data[i + 1] == b1 and data[i + 2] == b2 and data[i + 3] == b3


@numba.njit(cache=True, nogil=True, inline="always")
def _is_word(b: int) -> bool:
    return (0x30 <= b <= 0x39) or (0x41 <= b <= 0x5A) or (0x61 <= b <= 0x7A) or b == 0x5F


@numba.njit(cache=True, nogil=True, inline="always")
def _is_alpha(b: int) -> bool:
    return (0x41 <= b <= 0x5A) or (0x61 <= b <= 0x7A)


@numba.njit(cache=True, nogil=True)
def _starts_with_any(data: np.ndarray, i: int, end: int, words: np.ndarray, lengths: np.ndarray) -> bool:
    for k in range(len(lengths)):
        if i + lengths[k] <= end:
            same = True
            for j in range(lengths[k]):
                if data[i + j] != words[k, j]:
                    same = False
                    break
            if same:
                return True
    return False


@numba.njit(cache=True, nogil=True)
def _assignment_at(data: np.ndarray, i: int, end: int) -> bool:
    r"""Whether ``_CODE_LINE``'s assignment can start at ``i``: ``[A-Za-z_$][\w$.]*``, then
    ``(?:\[[^\]\n]*\])*\s*``, then ``=`` within three bytes (an operator such as ``+=``)."""
    b = data[i]
    if not (_is_alpha(b) or b == 0x5F or b == 0x24):
        return False
    i += 1
    while i < end and (_is_word(data[i]) or data[i] == 0x24 or data[i] == 0x2E):
        i += 1
    while i < end and data[i] == 0x5B:
        i += 1
        while i < end and data[i] != 0x5D and data[i] != 0x0A:
            i += 1
        if i >= end or data[i] != 0x5D:
            return False
        i += 1
    while i < end and data[i] in (0x20, 0x09, 0x0A, 0x0C, 0x0D):
        i += 1
    for k in range(i, min(i + 3, end)):
        if data[k] == 0x3D:
            return True
    return False


@numba.njit(cache=True, nogil=True)
def _call_before(data: np.ndarray, start: int, i: int) -> bool:
    """Whether the run of word characters and dots before the ``(`` at ``i`` holds a dot, an
    underscore or a lower-case letter followed by a capital (``_CODE_LINE``'s calls)."""
    k = i - 1
    while k >= start and (_is_word(data[k]) or data[k] == 0x2E):
        b = data[k]
        if b == 0x2E or b == 0x5F:
            return True
        if 0x41 <= b <= 0x5A and k > start and 0x61 <= data[k - 1] <= 0x7A:
            return True
        k -= 1
    return False


_ENDS_LIKE_CODE = (0x3B, 0x7B, 0x7D, 0x5D, 0x29, 0x3A, 0x3E)  # ; { } ] ) : >


@numba.njit(cache=True, nogil=True)
def _line_start_is_code(data: np.ndarray, i: int, end: int, words: np.ndarray, lengths: np.ndarray) -> bool:
    """Whether the line starting at ``i`` starts like code (see :func:`maybe_code`)."""
    while i < end and data[i] in (0x20, 0x09, 0x0C, 0x0D):
        i += 1
    if i >= end:
        return False
    b = data[i]
    if b in (0x3C, 0x23, 0x2F, 0x2A, 0x24) or _assignment_at(data, i, end):
        return True
    if 0x61 <= b <= 0x7A:
        return _starts_with_any(data, i, end, words, lengths)
    if 0x41 <= b <= 0x5A and i + 1 < end:
        return 0x41 <= data[i + 1] <= 0x5A or (_starts(data, i, end, 0x53, 0x74, 0x72, 0x69)
                                              and _starts(data, i + 2, end, 0x72, 0x69, 0x6E, 0x67))
    return False


@numba.njit(cache=True, nogil=True)
def _line_ends_like_code(data: np.ndarray, start: int, i: int) -> bool:
    """Whether the line ending before ``i`` has one of ``; { } ] ) : >`` as its last character
    but spaces and tabs."""
    k = i - 1
    while k >= start and (data[k] == 0x20 or data[k] == 0x09):
        k -= 1
    return k >= start and data[k] != 0x0A and data[k] in _ENDS_LIKE_CODE


@numba.njit(cache=True, nogil=True)
def maybe_code(offsets: np.ndarray, data: np.ndarray, words: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per text, False when ``_langid._NOISE`` and ``_langid._CODE_LINE`` cannot be found in it,
    from one pass over its bytes (:func:`_langid.clean_text` scans with RE2 only where it is
    True). Every match of those patterns needs one of (the tests hold this on the corpus, the
    bench's records, and texts written for every alternative):

    * a backquote, ``@``, ``http`` or ``www.`` (code spans, e-mail addresses, URLs);
    * a line whose first character past spaces, tabs, form feeds and carriage returns starts one
      of ``words`` (keywords and shell commands, ``_langid._CODE_STARTS``), is one of
      ``< # / * $``, two capitals (SQL), ``String``, or an assignment (:func:`_assignment_at`);
    * a call (:func:`_call_before`);
    * a line whose last character before trailing spaces and tabs is one of ``; { } ] ) : >``
      (lines that end like code).

    Only the bytes that can begin one of these (newline, backquote, ``@``, ``(``, ``h``, ``w``)
    stop the scan (a 256-entry table).
    """
    stop = np.zeros(256, dtype=np.bool_)
    for b in (0x0A, 0x60, 0x40, 0x28, 0x68, 0x77):
        stop[b] = True
    n = len(offsets) - 1
    out = np.zeros(n, dtype=np.bool_)
    for r in range(n):
        first, end = offsets[r], offsets[r + 1]
        if first == end:
            continue
        found = _line_start_is_code(data, first, end, words, lengths)
        i = first
        while not found:
            while i < end and not stop[data[i]]:
                i += 1
            if i >= end:
                found = _line_ends_like_code(data, first, end)
                break
            b = data[i]
            if b == 0x0A:
                found = _line_ends_like_code(data, first, i) or _line_start_is_code(data, i + 1, end, words, lengths)
            elif b == 0x60 or b == 0x40:
                found = True
            elif b == 0x28:
                found = i > first and _is_word(data[i - 1]) and _call_before(data, first, i)
            elif b == 0x68:
                found = _starts(data, i, end, 0x68, 0x74, 0x74, 0x70)
            else:
                found = _starts(data, i, end, 0x77, 0x77, 0x77, 0x2E)
            i += 1
        out[r] = found
    return out


@numba.njit(cache=True, nogil=True)
def script_counts(offsets: np.ndarray, data: np.ndarray, table: np.ndarray, n_scripts: int,
                  latin: int, none: int) -> np.ndarray:
    """Per text, its characters per script class (``table``: code point -> class); ASCII letters
    count as ``latin``, other ASCII and class ``none`` are not counted."""
    n = len(offsets) - 1
    out = np.zeros((n, n_scripts), dtype=np.int64)
    for r in range(n):
        letters = 0  # ASCII letters, counted apart: most characters are
        for i in range(offsets[r], offsets[r + 1]):
            b = data[i]
            if b < 0xC0:  # ASCII or a continuation byte
                folded = (np.int64(b) | 0x20) - 0x61
                letters += 0 <= folded < 26
            else:
                cls = table[_decode(data, i)[0]]
                if cls != none:
                    out[r, cls] += 1
        out[r, latin] += letters
    return out


@numba.njit(cache=True, nogil=True)
def _find(keys: np.ndarray, key: int) -> int:
    """The row of ``key`` (an n-gram's code points packed 21 bits each) in the sorted ``keys``, or -1."""
    j = np.searchsorted(keys, key)
    if j < len(keys) and keys[j] == key:
        return j
    return -1


@numba.njit(cache=True, nogil=True, inline="always")
def _add(into: np.ndarray, values: np.ndarray) -> None:
    for k in range(len(into)):
        into[k] += values[k]


@numba.njit(cache=True, nogil=True)
def nb_scores(offsets: np.ndarray, data: np.ndarray, rows: np.ndarray, prefix: int, scan_end: int,
              norm: np.ndarray, upper: np.ndarray, compact: np.ndarray, ascii_n: int, direct: np.ndarray,
              keys: np.ndarray, logp: np.ndarray, n_lang: int, scripts: np.ndarray,
              none: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Naive-Bayes scores of the first ``prefix`` characters of the texts ``rows``: what
    ``_langid._nb_scores_numpy`` computes, float32 for float32 (``logp``: the log-probabilities of
    the ``n_lang`` languages, padded with columns of zeros to a whole number of vector registers,
    whose sums are not read). Returns (scores, n-grams found,
    best column, its lead over the runner-up, flags): flag 1: the text is longer than ``prefix``
    characters; flag 2: characters ``prefix:scan_end`` hold a letter outside ASCII (a character
    of a script class other than ``none`` in ``scripts``).

    Per text: langdetect's ``cleaning_text`` rule on the prefix (Latin letters dropped from a
    text with more than twice as many characters from U+0300 up outside Latin Extended
    Additional), each character normalised (``norm``), a leading space and runs of spaces
    collapsed; then every 1-, 2- and 3-gram langdetect reads (none ending on the 2nd+ letter of
    an all-caps word, no 1-gram of a space, no 3-gram across a space) is found among the profile
    n-grams and its log-probabilities added, one float32 sum per n-gram size in text order, the
    three added at the end (the order of the sparse products they replace).
    """
    scores = np.zeros((len(rows), n_lang), dtype=np.float32)
    matched = np.zeros(len(rows), dtype=np.int64)
    flags = np.zeros(len(rows), dtype=np.int8)
    best = np.zeros(len(rows), dtype=np.int64)
    lead = np.zeros(len(rows), dtype=np.float32)
    cps = np.empty(prefix, dtype=np.int64)
    stream = np.empty(prefix + 1, dtype=np.int64)
    ids = np.empty(prefix + 1, dtype=np.int64)  # compact id in the ASCII table (-1: none)
    caps = np.empty(prefix + 1, dtype=np.bool_)  # an upper-case letter
    acc = np.zeros((3, logp.shape[1]), dtype=np.float32)
    for t in range(len(rows)):
        r = rows[t]
        i, end = offsets[r], offsets[r + 1]
        count = 0
        latin = 0
        non_latin = 0
        while i < end and count < prefix:
            cp, size = _decode(data, i)
            i += size
            cps[count] = cp
            count += 1
            if 0x41 <= cp <= 0x7A:
                latin += 1
            elif cp >= 0x300 and (cp < 0x1E00 or cp > 0x1EFF):
                non_latin += 1
        if i < end:
            flags[t] = 1
            seen = count
            while i < end and seen < scan_end:
                if data[i] < 0x80:
                    i += 1
                else:
                    cp, size = _decode(data, i)
                    i += size
                    if scripts[cp] != none:
                        flags[t] |= 2
                        break
                seen += 1
        drop = latin * 2 < non_latin
        stream[0] = _SPACE
        ids[0] = 0
        caps[0] = False
        m = 1
        for k in range(count):
            cp = cps[k]
            if drop and 0x41 <= cp <= 0x7A:
                continue
            ch = norm[cp] if cp < 0x10000 else cp
            if ch == _SPACE and stream[m - 1] == _SPACE:
                continue
            stream[m] = ch
            ids[m] = compact[ch] if ch < 0x10000 else -1
            caps[m] = ch < 0x10000 and upper[ch]
            m += 1
        acc[:] = 0.0
        hits = 0
        last_space = 0  # the last space at or before the previous character
        for k in range(1, m):
            ch = stream[k]
            if caps[k] and caps[k - 1]:  # the 2nd+ letter of an all-caps word
                continue
            cc, cb = ids[k], ids[k - 1]
            if ch != _SPACE:
                row = direct[cc] if cc >= 0 else _find(keys, ch)
                if row >= 0:
                    hits += 1
                    _add(acc[0], logp[row])
            row = direct[ascii_n + cb * ascii_n + cc] if cc >= 0 and cb >= 0 else _find(keys, (stream[k - 1] << 21) | ch)
            if row >= 0:
                hits += 1
                _add(acc[1], logp[row])
            if k - last_space >= 2:
                ca = ids[k - 2]
                if ca >= 0 and cb >= 0 and cc >= 0:
                    row = direct[ascii_n + ascii_n * ascii_n + (ca * ascii_n + cb) * ascii_n + cc]
                else:
                    row = _find(keys, (stream[k - 2] << 42) | (stream[k - 1] << 21) | ch)
                if row >= 0:
                    hits += 1
                    _add(acc[2], logp[row])
            if ch == _SPACE:
                last_space = k
        top = 0
        for lang in range(n_lang):
            scores[t, lang] = (acc[0, lang] + acc[1, lang]) + acc[2, lang]
            if scores[t, lang] > scores[t, top]:
                top = lang
        runner_up = np.float32(-np.inf)
        for lang in range(n_lang):
            if lang != top and scores[t, lang] > runner_up:
                runner_up = scores[t, lang]
        best[t] = top
        lead[t] = scores[t, top] - runner_up
        matched[t] = hits
    return scores, matched, best, lead, flags


@numba.njit(cache=True, nogil=True)
def _gram_row(a: int, b: int, c: int, ca: int, cb: int, cc: int, ascii_n: int, direct: np.ndarray,
              keys: np.ndarray) -> int:
    """The model row of the n-gram ``a b c`` (``a`` = -1: the 2-gram ``b c``; ``b`` = -1 too: the
    1-gram ``c``) given its characters' compact ids, or -1."""
    if a < 0 and b < 0:
        return direct[cc] if cc >= 0 else _find(keys, c)
    if a < 0:
        return direct[ascii_n + cb * ascii_n + cc] if cb >= 0 and cc >= 0 else _find(keys, (b << 21) | c)
    if ca >= 0 and cb >= 0 and cc >= 0:
        return direct[ascii_n + ascii_n * ascii_n + (ca * ascii_n + cb) * ascii_n + cc]
    return _find(keys, (a << 42) | (b << 21) | c)


@numba.njit(cache=True, nogil=True)
def langdetect_ngrams(offsets: np.ndarray, data: np.ndarray, norm: np.ndarray, upper: np.ndarray,
                      compact: np.ndarray, ascii_n: int, direct: np.ndarray,
                      keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """langdetect's ``Detector._extract_ngrams`` of every text (prepared by its ``append`` and
    ``cleaning_text``), as model rows: each character normalised (``norm``; ``upper``: whether
    that is upper case), the n-gram buffer reset at a space, its 1-, 2- and 3-grams listed when
    they are profile n-grams, none while in an all-caps word (two capitals in a row and after).
    Returns (rows, n-grams per text, whether the text was read: one with a character outside
    the Basic Multilingual Plane is not, and is left to the caller)."""
    n = len(offsets) - 1
    out = np.empty(3 * len(data), dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    done = np.ones(n, dtype=np.bool_)
    used = 0
    for t in range(n):
        start_used = used
        # langdetect's buffer: ``first second ch`` (-1: none), the last character and its case
        first, second, last, last_upper, capital = -1, -1, _SPACE, False, False
        c_first, c_second = 0, 0
        i, end = offsets[t], offsets[t + 1]
        while i < end:
            cp, size = _decode(data, i)
            i += size
            if cp >= 0x10000:
                done[t] = False
                break
            ch = norm[cp]
            is_upper = upper[cp]
            if last == _SPACE:
                capital = False
                if ch == _SPACE:
                    continue
                first, second = -1, _SPACE
                c_second = 0
            else:
                first, second = second, last
                c_first, c_second = c_second, compact[last]
            if is_upper:
                if last_upper:
                    capital = True
            else:
                capital = False
            last, last_upper = ch, is_upper
            if capital:
                continue
            cc = compact[ch]
            if ch != _SPACE:
                row = _gram_row(-1, -1, ch, 0, 0, cc, ascii_n, direct, keys)
                if row >= 0:
                    out[used] = row
                    used += 1
            row = _gram_row(-1, second, ch, 0, c_second, cc, ascii_n, direct, keys)
            if row >= 0:
                out[used] = row
                used += 1
            if first >= 0:
                row = _gram_row(first, second, ch, c_first, c_second, cc, ascii_n, direct, keys)
                if row >= 0:
                    out[used] = row
                    used += 1
        if not done[t]:
            used = start_used
        counts[t] = used - start_used
    return out[:used], counts, done


@numba.njit(cache=True, nogil=True)
def _random01(w0: np.uint32, w1: np.uint32) -> float:
    """``random.random()`` from its two 32-bit words (CPython's ``random_random``)."""
    return ((np.int64(w0) >> 5) * 67108864.0 + (np.int64(w1) >> 6)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True, nogil=True)
def langdetect_trials(grams: np.ndarray, starts: np.ndarray, probs: np.ndarray, words: np.ndarray,
                      n_trial: int, alpha0: float, width: float, base_freq: float, conv: float,
                      limit: int, min_prob: float) -> np.ndarray:
    """Per text (its n-grams ``grams[starts[t]:starts[t + 1]]``, rows of ``probs``), the column of
    the language langdetect's ``detect_langs`` puts first when its probability reaches
    ``min_prob``, -1 when it does not, -2 when ``words`` (the seeded stream every detector reads
    from its start) ran out before the text was decided (call again with a longer stream).

    langdetect's ``_detect_block``: ``n_trial`` trials, each with a smoothing ``alpha`` drawn by
    ``random.gauss`` and n-grams drawn by ``random.choice`` until one language passes ``conv``
    (checked after the first draw and every 5th) or ``limit`` draws; the trials' final
    probabilities are averaged. The same products, sums and divisions in the same order.
    A text stops as soon as no language can reach ``min_prob`` any more (each remaining trial
    adds at most 1 / ``n_trial``): its answer is -1 whatever those trials would say.
    """
    n_text = len(starts) - 1
    n_lang = probs.shape[1]
    out = np.full(n_text, -1, dtype=np.int64)
    prob = np.empty(n_lang)
    total = np.empty(n_lang)
    n_words = len(words)
    for t in range(n_text):
        first, n = starts[t], starts[t + 1] - starts[t]
        if n == 0:
            continue
        shift = 32
        while (np.int64(1) << (32 - shift)) <= n:  # 32 - n.bit_length()
            shift -= 1
        ptr = 0
        have_next = False
        gauss_next = 0.0
        total[:] = 0.0
        short = False
        answer = -1
        for trial in range(n_trial):
            if have_next:
                z = gauss_next
                have_next = False
            else:
                if ptr + 4 > n_words:
                    short = True
                    break
                x2pi = _random01(words[ptr], words[ptr + 1]) * (2.0 * math.pi)
                g2rad = math.sqrt(-2.0 * math.log(1.0 - _random01(words[ptr + 2], words[ptr + 3])))
                ptr += 4
                z = math.cos(x2pi) * g2rad
                gauss_next = math.sin(x2pi) * g2rad
                have_next = True
            alpha = alpha0 + (0.0 + z * 1.0) * width
            weight = alpha / base_freq
            for lang in range(n_lang):
                prob[lang] = 1.0 / n_lang
            i = 0
            while True:
                while True:  # random.choice: a word shifted to n's bit length, below n
                    if ptr >= n_words:
                        short = True
                        break
                    pick = np.int64(words[ptr]) >> shift
                    ptr += 1
                    if pick < n:
                        break
                if short:
                    break
                row = grams[first + pick]
                for lang in range(n_lang):
                    prob[lang] *= weight + probs[row, lang]
                if i % 5 == 0:
                    norm = 0.0
                    for lang in range(n_lang):
                        norm += prob[lang]
                    top = 0.0
                    for lang in range(n_lang):
                        prob[lang] /= norm
                        top = max(top, prob[lang])
                    if top > conv or i >= limit:
                        break
                i += 1
            if short:
                break
            best = 0.0
            for lang in range(n_lang):
                total[lang] += prob[lang] / n_trial
                best = max(best, total[lang])
            if best + (n_trial - trial - 1) / n_trial < min_prob:
                break
            if trial == n_trial - 1 and best >= min_prob:
                answer = int(np.argmax(total))
        out[t] = -2 if short else answer
    return out
