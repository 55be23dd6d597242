"""``repetition``: runaway and looping replies, by the Gopher repetition rules.

The rules of Gopher (Rae et al. 2021, table A1) as datatrove's ``GopherRepetitionFilter`` and
data-juicer's repetition ops apply them, per text; a text breaks a rule when its figure is above
the threshold (defaults: the paper's):

* ``dup_para_frac`` 0.30 / ``dup_para_char_frac`` 0.20: paragraphs (split on blank lines) that
  repeat an earlier paragraph of the text, as a share of the paragraphs / of the characters;
* ``dup_line_frac`` 0.30 / ``dup_line_char_frac`` 0.20: the same for lines;
* ``top_2_gram`` 0.20, ``top_3_gram`` 0.18, ``top_4_gram`` 0.16: characters covered by the most
  frequent word n-gram (its length x its count) over the text's characters, counted only when
  it occurs more than once (datatrove also counts an n-gram seen once, which flags every text of
  two or three words);
* ``dup_5_gram`` 0.15 ... ``dup_10_gram`` 0.10: characters of the words inside repeated word
  n-grams (every occurrence after the first, each word counted once, the paper's definition;
  datatrove approximates it with a greedy scan);
* ``char_rep`` 0.50: data-juicer's ``character_repetition_filter`` ratio: over the character
  10-grams of the text, the occurrences of the ``sqrt(distinct)`` most frequent repeated ones
  over all 10-grams.

The top n-gram rules apply to texts of at least ``min_words`` words (default 50, the shortest
document Gopher's quality filter keeps): in a one-line reply "New York is in New York State" the
top 2-gram is half of the characters. Every other rule applies at any length, so a short loop
("Yes. Yes. Yes. ...", a six-word sentence said twenty times, a code line repeated) is flagged;
the guard for short texts is a number of repeats, not a length: under ``min_words`` words a
repeated n-gram counts in the duplicated n-gram rules only when it occurs at least
``min_repeats`` times (default 3), so a short answer that reuses a phrase once ("The random
number generated between 1 and 100 is 42. The random number generated between 200 and 300 is
278.") is not flagged. Lines and paragraphs are compared without their trailing spaces, so
"Done. \n\nDone." repeats its paragraph. Words are runs of letters and digits, so a Chinese or
Japanese clause is one word and the n-gram rules seldom reach such texts (lines, paragraphs and
``char_rep`` do). Missed by design: a loop of fewer than five words said two or three times
("1. 1. 1.", "Negative Negative Negative Negative") has no 5-gram to repeat.

Which texts: the replies the data teaches (``chosen`` for preference data, the desirable
completions of unpaired data; ``rejected`` ones are counted, not flagged, unless
``flag_rejected``), the whole text for ``text`` data, or the ``fields`` named.

Vectorised per batch (in worker processes with ``num_proc``): lines and paragraphs are split by
Arrow kernels, words (each hashed, its length, whether it repeats in its text) by one compiled
pass over the UTF-8 bytes (:mod:`hubtools.checks._kernels_text`), and every figure is a numpy
pass over the batch. N-grams are hashed only inside runs of words that occur twice or more in
their text, and grown one word at a
time from 2 to 10 words, so each length costs one pass over what is left; ``pandas.factorize``
finds the first occurrence of each n-gram in its text, and the words inside repeated n-grams are
summed per stretch. About 25,000 Alpaca-length replies a second per process (50k in 2.0 CPU
seconds on the shared 2-core machine). The 6- to
10-gram rules and the character ratio run only on texts that can break them: a text with a
repeated 6-gram has a repeated 5-gram, and ``char_rep`` is computed where a word-level sign of
repetition (repeated 5-grams over 5% of the characters, a frequent 4-gram, repeated lines), a
word of 20+ characters or a text mostly of symbols makes a high ratio possible (elsewhere it is
reported as 0).

Example:
    >>> from hubtools.checks import REGISTRY
    >>> result = REGISTRY["repetition"].run(dataset)  # doctest: +SKIP
    >>> result.reasons  # doctest: +SKIP
    {3: 'repetition in response: dup_line_frac 0.98 > 0.3'}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import regex

from ..errors import UnknownCheckError
from ._langid import _decode, _utf8
from .base import (
    BATCH_SIZE,
    CheckData,
    CheckResult,
    register,
    reply_split,
    teaching_rows,
)

__all__ = ["DEFAULT_THRESHOLDS", "RULES", "RepetitionOptions", "check_repetition", "figures"]

#: rule -> threshold (Gopher table A1; char_rep: data-juicer's default max_ratio)
DEFAULT_THRESHOLDS: dict[str, float] = {
    "dup_para_frac": 0.30, "dup_para_char_frac": 0.20, "dup_line_frac": 0.30, "dup_line_char_frac": 0.20,
    "top_2_gram": 0.20, "top_3_gram": 0.18, "top_4_gram": 0.16,
    "dup_5_gram": 0.15, "dup_6_gram": 0.14, "dup_7_gram": 0.13, "dup_8_gram": 0.12, "dup_9_gram": 0.11,
    "dup_10_gram": 0.10, "char_rep": 0.50,
}
#: the rules in the order they are tried (the first one broken is the reason)
RULES = tuple(DEFAULT_THRESHOLDS)
_WORD_RULES = tuple(r for r in RULES if r.startswith(("top_", "dup_")) and r.endswith("_gram"))
#: characters per n-gram of the character ratio (data-juicer's rep_len)
CHAR_GRAM = 10
#: figures shown per field in the report (95th percentile)
_SHOWN = ("dup_line_frac", "dup_para_frac", "dup_line_char_frac", "top_2_gram", "top_4_gram", "dup_5_gram",
          "dup_10_gram", "char_rep")

#: line and paragraph breaks: a line's trailing spaces and blank (or whitespace-only) lines go with
#: the break, so "Done. \n\nDone." repeats its paragraph (datatrove splits on ``\n+`` / ``\n{2,}``)
_LINE_BREAK = r"(?:[^\S\n]*\n)+"
_PARA_BREAK = r"[^\S\n]*\n(?:[^\S\n]*\n)+"
#: a word: a run of word characters (letters, digits, marks, underscore)
_WORD = regex.compile(r"\w+")

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


@dataclass
class RepetitionOptions:
    """Settings of the ``repetition`` check.

    Args:
        thresholds: rule -> threshold, overriding :data:`DEFAULT_THRESHOLDS` (a rule set to None
            is off); on the CLI ``--repetition dup_line_frac=0.4,char_rep=off``.
        min_words: the top n-gram rules apply to texts of at least this many words (50).
        min_repeats: under ``min_words`` words, a repeated n-gram counts in the duplicated n-gram
            rules only when it occurs at least this many times (3; 2 is Gopher's rule).
        fields: the fields read (names, or ``prompt``/``response``); None: the replies.
        flag_rejected: also flag ``rejected`` replies and undesirable completions.
        examples: flagged records shown in the report.
    """

    thresholds: dict[str, float | None] = field(default_factory=dict)
    min_words: int = 50
    min_repeats: int = 3
    fields: list[str] | str | None = None
    flag_rejected: bool = False
    examples: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.thresholds, str):
            self.thresholds = parse_thresholds(self.thresholds)
        unknown = sorted(set(self.thresholds) - set(RULES))
        if unknown:
            raise UnknownCheckError(f"repetition: unknown rule(s) {', '.join(unknown)}",
                                    hint=f"rules: {', '.join(RULES)}")
        for rule, value in self.thresholds.items():
            if value is not None and not 0.0 <= float(value) <= 1.0:
                raise UnknownCheckError(f"repetition: threshold {rule}={value} is not in 0..1",
                                        hint="every figure is a share of the text; e.g. dup_line_frac=0.3")
        if self.min_words < 0:
            raise UnknownCheckError("repetition: min_words must be >= 0", hint="e.g. min_words=20")
        if self.min_repeats < 2:
            raise UnknownCheckError("repetition: min_repeats must be >= 2", hint="e.g. min_repeats=3")

    def resolved(self) -> dict[str, float]:
        """The thresholds in force (rules switched off left out)."""
        merged = {**DEFAULT_THRESHOLDS, **self.thresholds}
        return {rule: float(v) for rule, v in merged.items() if v is not None}


def parse_thresholds(text: str) -> dict[str, float | None]:
    """``"dup_line_frac=0.4,char_rep=off"`` -> ``{"dup_line_frac": 0.4, "char_rep": None}``.

    >>> parse_thresholds("top_2_gram=0.25, char_rep=off")
    {'top_2_gram': 0.25, 'char_rep': None}
    """
    out: dict[str, float | None] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        rule, sep, value = item.partition("=")
        if not sep:
            raise UnknownCheckError(f"repetition: {item!r} is not rule=value", hint="e.g. dup_line_frac=0.4")
        value = value.strip().lower()
        try:
            out[rule.strip()] = None if value in ("off", "none", "") else float(value)
        except ValueError:
            raise UnknownCheckError(f"repetition: {item!r} has no number", hint="e.g. dup_line_frac=0.4 or char_rep=off") from None
    return out


# --------------------------------------------------------------------------- figures, vectorised


def _factorize(keys: np.ndarray) -> np.ndarray:
    """``pandas.factorize`` codes of 64-bit keys, their high bits folded into the low ones first
    (its hash table reads the low bits, which a multiplicative hash leaves poorly mixed)."""
    if keys.dtype == np.uint64:
        keys = keys ^ (keys >> np.uint64(29)) ^ (keys >> np.uint64(47))
    return pd.factorize(keys)[0]


def _first_in_row(keys: np.ndarray) -> np.ndarray:
    """True where ``keys[i]`` did not occur before (keys already carry their row)."""
    if len(keys) == 0:
        return np.zeros(0, bool)
    codes = _factorize(keys)
    # factorize numbers keys in order of first appearance: a first occurrence is a new maximum
    return np.r_[True, codes[1:] > np.maximum.accumulate(codes)[:-1]]


def _newlines(texts: pa.Array) -> np.ndarray:
    """True for the texts holding a newline (a byte scan of the Arrow buffer)."""
    offsets, data = _utf8(texts)
    out = np.zeros(len(texts), dtype=bool)
    out[np.searchsorted(offsets, np.flatnonzero(data == 0x0A), side="right") - 1] = True
    return out


def _element_dups(texts: pa.Array, pattern: str, lines: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: elements (split on ``pattern`` once trimmed), repeated elements, characters of the
    repeats. A text without a newline is one element (most replies of instruction data): only the
    others are trimmed and split (``lines``: which texts hold a newline, if known)."""
    n = len(texts)
    lines = _newlines(texts) if lines is None else lines
    if not lines.all():
        counts, dups, chars = np.ones(n, dtype=np.int64), np.zeros(n), np.zeros(n)
        at = np.flatnonzero(lines)
        if len(at):
            counts[at], dups[at], chars[at] = _element_dups(texts.take(pa.array(at)), pattern)
        return counts, dups, chars
    texts = pc.utf8_trim_whitespace(texts)
    parts = pc.split_pattern_regex(texts, pattern)
    counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(parts)
    if len(flat) == 0:
        return counts, np.zeros(n), np.zeros(n)
    rows = pc.list_parent_indices(parts).to_numpy(zero_copy_only=False).astype(np.int64)
    encoded = pc.dictionary_encode(flat)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    dup = ~_first_in_row(rows * (len(encoded.dictionary) + 1) + codes)
    length = pc.utf8_length(encoded.dictionary).to_numpy(zero_copy_only=False)[codes]
    return (counts, np.bincount(rows[dup], minlength=n).astype(float),
            np.bincount(rows[dup], weights=length[dup], minlength=n))


def _words(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(word id, row, characters, repeated) of every word: runs of word characters (``\\w``; a
    Chinese or Japanese clause, written without spaces, is one word); ``repeated``: the word
    occurs more than once in its row. A word's id is a hash of its characters; only words of one
    row are ever compared.

    One compiled pass over the UTF-8 bytes (:func:`~hubtools.checks._kernels_text.w_words`); the
    text it would leave (a character beyond its table, none today) goes through :func:`_slow_words`."""
    from . import _kernels_text as kernels

    n = len(texts)
    offsets, data = _utf8(texts)
    ids, length, repeated, counts, slow = kernels.w_words(offsets, data, kernels.word_table())
    if slow.any():
        at = np.flatnonzero(slow)
        more_ids, more_rows, more_length, more_repeated = _slow_words(texts.take(pa.array(at)))
        counts[at] = np.bincount(more_rows, minlength=len(at))
        from_slow = np.repeat(slow, counts)
        parts = []
        for fast, extra in ((ids, more_ids), (length, more_length), (repeated, more_repeated)):
            merged = np.empty(len(from_slow), dtype=fast.dtype)
            merged[~from_slow] = fast
            merged[from_slow] = extra
            parts.append(merged)
        ids, length, repeated = parts
    return ids, np.repeat(np.arange(n, dtype=np.int64), counts), length, repeated


def _slow_words(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_words` by the regular expression: Arrow splits on whitespace and dictionary-encodes
    the pieces; only the distinct pieces of the
    batch are cut into words in Python, once each (a regex split over the whole text is slower)."""
    pieces = pc.utf8_split_whitespace(texts)
    flat = pc.list_flatten(pieces)
    if len(flat) == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    parents = pc.list_parent_indices(pieces).to_numpy(zero_copy_only=False).astype(np.int64)
    encoded = pc.dictionary_encode(flat)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    vocab: dict[str, int] = {}
    piece_words = [[vocab.setdefault(w, len(vocab)) for w in _WORD.findall(piece)]
                   for piece in encoded.dictionary.to_pylist()]
    per_piece = np.fromiter(map(len, piece_words), dtype=np.int64, count=len(piece_words))
    flat_ids = np.fromiter(chain.from_iterable(piece_words), dtype=np.int64, count=int(per_piece.sum()))
    word_len = np.fromiter(map(len, vocab), dtype=np.int64, count=len(vocab))
    piece_start = np.cumsum(per_piece) - per_piece
    counts = per_piece[codes]
    take = np.repeat(piece_start[codes] - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
    word = flat_ids[take]
    rows = np.repeat(parents, counts)
    # repeated in its row: equal neighbours once sorted by (row, word); rows are already in
    # order, so a stable sort mostly merges runs (a hash table over every word costs 3-5x more)
    key = rows * len(vocab) + word
    order = np.argsort(key, kind="stable")
    same = key[order][1:] == key[order][:-1]
    repeated = np.empty(len(key), bool)
    repeated[order] = np.r_[same, False] | np.r_[False, same]
    mixed = (np.arange(1, len(vocab) + 1, dtype=np.uint64)) * _M1  # one hash per distinct word
    mixed ^= mixed >> np.uint64(29)
    return mixed[word], rows, word_len[word], repeated


class _Grams:
    """The word n-grams inside runs of words that occur more than once in their row (only those
    can repeat: the rest are never hashed), grown one word at a time: an (n+1)-gram starts where
    an n-gram does and its next word is repeated too, in the same row. Each n-gram has its start
    position, a row-tagged hash and its words' characters."""

    def __init__(self, ids: np.ndarray, rows: np.ndarray, length: np.ndarray, repeated: np.ndarray) -> None:
        self.ids, self.rows, self.length, self.repeated = ids, rows, length, repeated
        self.start = np.flatnonzero(repeated)
        self.h = ((rows[self.start].astype(np.uint64) * _M3) ^ ids[self.start]) * _M2
        self.chars = length[self.start]
        self.n = 1

    def grow(self) -> None:
        """From n-grams to (n+1)-grams."""
        nxt = self.start + self.n
        inside = np.minimum(nxt, len(self.ids) - 1)
        keep = np.flatnonzero((nxt < len(self.ids)) & self.repeated[inside]
                              & (self.rows[inside] == self.rows[self.start]))
        self.start, nxt = self.start[keep], nxt[keep]
        self.h = (self.h[keep] ^ self.ids[nxt]) * _M2
        self.chars = self.chars[keep] + self.length[nxt]
        self.n += 1

    def only(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start, hash, characters) of the n-grams in the rows where ``rows`` is True."""
        keep = rows[self.rows[self.start]]
        return self.start[keep], self.h[keep], self.chars[keep]

    def restrict(self, rows: np.ndarray) -> None:
        """Keep the n-grams in the rows where ``rows`` is True only (the longer ones too)."""
        self.start, self.h, self.chars = self.only(rows)


def _top_gram(start, h, chars, rows, n: int, size: int) -> np.ndarray:
    """Per row: characters of the most frequent n-gram (length with spaces x count), when it occurs
    more than once."""
    out = np.zeros(size)
    if len(start) == 0:
        return out
    codes = _factorize(h)
    count = np.bincount(codes)
    repeated = np.flatnonzero(count[codes] > 1)
    if len(repeated):
        value = count[codes[repeated]] * (chars[repeated] + n - 1)
        row = rows[start[repeated]]
        order = np.lexsort((value, row))  # by row, then value: each row's last is its largest
        last = np.r_[row[order][1:] != row[order][:-1], True]
        out[row[order][last]] = value[order][last]
    return out


def _dup_gram(start, h, rows, cumlen, n: int, size: int, short: np.ndarray | None = None,
              min_repeats: int = 2) -> np.ndarray:
    """Per row: characters of the words inside repeated n-grams (occurrences after the first); in
    the ``short`` rows only n-grams that occur ``min_repeats`` times or more count. ``cumlen``:
    the running total of the words' characters (from 0), so each stretch of covered words is
    summed at once."""
    if len(start) == 0:
        return np.zeros(size)
    codes = _factorize(h)
    later = np.r_[False, codes[1:] <= np.maximum.accumulate(codes)[:-1]]
    if short is not None and min_repeats > 2:
        later &= ~short[rows[start]] | (np.bincount(codes)[codes] >= min_repeats)
    dup = start[later]  # in order: n-grams [dup, dup + n) overlap when the next starts before the end
    if len(dup) == 0:
        return np.zeros(size)
    first = np.r_[True, dup[1:] >= dup[:-1] + n]  # a stretch of covered words starts (never across rows)
    heads = np.flatnonzero(first)
    ends = dup[np.r_[heads[1:] - 1, len(dup) - 1]] + n
    return np.bincount(rows[dup[heads]], weights=cumlen[ends] - cumlen[dup[heads]], minlength=size)


def _char_rep(texts: pa.Array) -> np.ndarray:
    """data-juicer's character repetition ratio of each text (character 10-grams)."""
    n = len(texts)
    out = np.zeros(n)
    offsets, data = _utf8(texts)
    rows = np.repeat(np.arange(n), np.diff(offsets))
    lead = np.flatnonzero((data & 0xC0) != 0x80)  # one position per character
    chars, rows = _decode(data, lead).astype(np.uint64), rows[lead]
    m = len(chars) - CHAR_GRAM + 1
    if m <= 0:
        return out
    valid = np.flatnonzero(rows[:m] == rows[CHAR_GRAM - 1:])
    if len(valid) == 0:
        return out
    h = rows[valid].astype(np.uint64) * _M3
    for k in range(CHAR_GRAM):
        h = (h ^ chars[valid + k]) * _M2
    codes = _factorize(h)
    freq = np.bincount(codes)
    row_of = np.zeros(len(freq), np.int64)
    row_of[codes] = rows[valid]
    total = np.bincount(rows[valid], minlength=n)
    distinct = np.bincount(row_of, minlength=n)
    multi = np.flatnonzero(freq > 1)  # the top sqrt(distinct) are taken among the repeated ones
    repeated = np.bincount(row_of[multi], minlength=n)
    take = np.minimum(np.floor(np.sqrt(distinct)).astype(np.int64), repeated)
    freq, row_of = freq[multi], row_of[multi]
    order = np.lexsort((-freq, row_of))  # by row, most frequent first
    rank = np.arange(len(order)) - np.repeat(np.cumsum(repeated) - repeated, repeated)
    top = rank < take[row_of[order]]
    sums = np.bincount(row_of[order][top], weights=freq[order][top], minlength=n)
    np.divide(sums, total, out=out, where=total > 0)
    return out


def figures(texts: pa.Array, min_words: int = 50, char_rule: bool = True, min_repeats: int = 3
            ) -> dict[str, np.ndarray]:
    """Every rule's figure for each text of a string array (0 where a rule does not apply).

    >>> f = figures(pa.array(["Stop.\\nStop.\\nStop.\\nStop.", "One line only."]))
    >>> [round(float(v), 2) for v in f["dup_line_frac"]]
    [0.75, 0.0]
    """
    n = len(texts)
    texts = pc.fill_null(texts, "")
    chars = pc.utf8_length(texts).to_numpy(zero_copy_only=False).astype(float)
    denom = np.maximum(chars, 1.0)
    out: dict[str, np.ndarray] = {}
    newlines = _newlines(texts)
    paras, dup_paras, dup_para_chars = _element_dups(texts, _PARA_BREAK, newlines)
    lines, dup_lines, dup_line_chars = _element_dups(texts, _LINE_BREAK, newlines)
    out["dup_para_frac"] = dup_paras / np.maximum(paras, 1)
    out["dup_para_char_frac"] = dup_para_chars / denom
    out["dup_line_frac"] = dup_lines / np.maximum(lines, 1)
    out["dup_line_char_frac"] = dup_line_chars / denom
    ids, rows, length, repeated = _words(texts)
    words = np.bincount(rows, minlength=n)
    # the top n-gram rules read texts of min_words or more ("New York is in New York State")
    long_enough = words >= max(min_words, 1)
    short = ~long_enough
    grams = _Grams(ids, rows, length, repeated)
    for k in (2, 3, 4):
        grams.grow()
        start, h, gram_chars = grams.only(long_enough)
        out[f"top_{k}_gram"] = _top_gram(start, h, gram_chars, rows, k, n) / denom
    # the duplicated n-gram rules read every text; under min_words words an n-gram counts when it
    # occurs min_repeats times or more (a loop), not when a short answer reuses a phrase once
    cumlen = np.r_[0, np.cumsum(length)]
    for k in range(5, 11):
        grams.grow()
        out[f"dup_{k}_gram"] = _dup_gram(grams.start, grams.h, rows, cumlen, k, n, short, min_repeats) / denom
        if k == 5:  # a repeated 6..10-gram contains a repeated 5-gram: only those texts go on
            grams.restrict(out["dup_5_gram"] > 0)
    out["char_rep"] = np.zeros(n)
    if char_rule and n:
        word_chars = cumlen[np.cumsum(words)] - cumlen[np.cumsum(words) - words]
        longest = np.zeros(n)
        if len(rows):  # rows are in order: each row's words are one stretch
            present = np.flatnonzero(words)
            longest[present] = np.maximum.reduceat(length, (np.cumsum(words) - words)[present])
        candidates = np.flatnonzero((out["dup_5_gram"] > 0.05) | (out["top_4_gram"] > 0.08)
                                    | (out["dup_line_char_frac"] > 0.1) | (longest >= 20)
                                    | ((word_chars < 0.5 * chars) & (chars >= 2 * CHAR_GRAM)))
        if len(candidates):
            out["char_rep"][candidates] = _char_rep(texts.take(pa.array(candidates)))
    return out


def _batch(batch: dict[str, pa.Array], min_words: int, char_rule: bool, min_repeats: int = 3
           ) -> dict[str, dict[str, np.ndarray]]:
    """Figures per field of one batch (runs in worker processes)."""
    return {name: figures(arr, min_words, char_rule, min_repeats) for name, arr in batch.items()}


# --------------------------------------------------------------------------- the check


@register("repetition", options=RepetitionOptions,
          description="looping or runaway text: repeated lines, paragraphs and word n-grams, character repeats",
          replies=True)
def check_repetition(data: CheckData, opts: RepetitionOptions) -> CheckResult:
    """Flag taught replies that break a Gopher repetition rule; per-field figures for the report."""
    thresholds = opts.resolved()
    names = data.select_fields(opts.fields, ("response",), "repetition")
    batch_size = BATCH_SIZE
    if data.pool is not None and data.num_proc > 1:  # as many batches for each local worker (5 of
        # 20k on 2 workers would leave one idle for the last); other engines keep their blocks
        batches = data.num_proc * -(-len(data) // (data.num_proc * BATCH_SIZE))
        batch_size = max(1, -(-len(data) // batches))
    parts = data.map(_batch, names, desc="repetition", batch_size=batch_size, min_words=int(opts.min_words),
                     char_rule="char_rep" in thresholds, min_repeats=int(opts.min_repeats))
    n = len(data)
    figs = {name: {rule: np.concatenate([p[name][rule] for p in parts]) if parts else np.zeros(0)
                   for rule in RULES} for name in names}
    broken: dict[str, np.ndarray] = {}  # field -> index of the first rule broken, -1 for none
    rules = [r for r in RULES if r in thresholds]
    for name in names:
        above = np.stack([figs[name][r] > thresholds[r] for r in rules], axis=1) if rules and n \
            else np.zeros((n, 0), bool)
        broken[name] = np.where(above.any(axis=1), np.argmax(above, axis=1), -1) if above.shape[1] \
            else np.full(n, -1)
    hits = {name: broken[name] >= 0 for name in names}
    flag = np.zeros(n, bool)
    for name in names:
        taught = teaching_rows(data, name, opts.flag_rejected)
        flag |= hits[name] if taught is None else hits[name] & taught
    reasons: dict[int, str] = {}
    for pos in np.flatnonzero(flag):
        found = [f"{rules[broken[name][pos]]} {figs[name][rules[broken[name][pos]]][pos]:.2f} > "
                 f"{thresholds[rules[broken[name][pos]]]:g}" + (f" in {name}" if len(names) > 1 else "")
                 for name in names if broken[name][pos] >= 0]
        reasons[int(data.index[pos])] = "repetition: " + "; ".join(found)
    by_rule: dict[str, int] = {}
    for name in names:
        for j in np.flatnonzero(np.bincount(broken[name][hits[name]], minlength=len(rules))):
            by_rule[rules[j]] = by_rule.get(rules[j], 0) + int(np.sum(broken[name][hits[name]] == j))
    stats: dict[str, Any] = {
        "records": n,
        "fields": names,
        "flagged": int(flag.sum()),
        "share_flagged": round(float(flag.mean()), 6) if n else 0.0,
        "first_rule_broken": dict(sorted(by_rule.items(), key=lambda kv: -kv[1])),
        "min_words": int(opts.min_words),
        "min_repeats": int(opts.min_repeats),
    }
    for name in names:
        per = {"texts_breaking_a_rule": int(hits[name].sum())}
        for rule in _SHOWN:
            values = figs[name][rule]
            per[f"{rule} p95"] = round(float(np.quantile(values, 0.95)), 4) if n else 0.0
        per["char_rep max"] = round(float(figs[name]["char_rep"].max()), 4) if n else 0.0
        stats[name] = per
    stats.update(reply_split(data, hits))
    from .pii import redact

    worst = np.zeros(n)
    for name in names:
        worst = np.maximum(worst, figs[name]["dup_line_char_frac"] + figs[name]["dup_10_gram"])
    positions = np.flatnonzero(flag)
    shown = positions[np.argsort(-worst[positions], kind="stable")][: opts.examples]
    examples = [{"index": int(data.index[p]), "reason": reasons[int(data.index[p])],
                 "fields": data.record(int(data.index[p]), transform=lambda t: redact(t)[0])} for p in shown]
    return CheckResult("repetition", flagged=[int(data.index[p]) for p in positions], reasons=reasons,
                       stats=stats, examples=examples,
                       options={"thresholds": {r: thresholds.get(r) for r in RULES}, "min_words": opts.min_words,
                                "min_repeats": opts.min_repeats, "fields": names, "flag_rejected": opts.flag_rejected},
                       versions={"pyarrow": pa.__version__, "pandas": pd.__version__})
