"""``diversity``: how varied the prompts are, and which templates are over-used.

Figures over the prompts (the whole text for ``text`` data):

* ``distinct_1`` / ``distinct_2``: unique word unigrams / bigrams over all unigrams / bigrams,
  on a seeded sample of at most ``sample_size`` prompts (50,000), each cut to its first
  ``sample_chars`` characters (1,000). distinct-n falls as text grows, so a fixed-size sample
  also keeps the figure comparable between datasets of different sizes.
* ``openings``: the most common first three words (lower-cased, punctuation dropped), the share
  of the most common one and of the ten most common.
* ``opening_words``: the first word after request framing ("please", "can you", ...), mostly the
  opening verb or question word: top words and the entropy of their distribution (bits, and
  normalised to 0..1 by log2 of the number of distinct words).
* ``templates``: prompts are reduced to a template key (numbers -> ``0``, double-quoted strings
  -> ``<q>``, runs of capitalised words inside a sentence -> ``<name>``, lower-cased; then the
  first ``template_words`` and last ``template_words`` words, or the whole prompt when it is no
  longer than both). The most used keys are reported with an example.

``shared_templates``: long prefixes and suffixes (a system prompt, a tool description) that many
records of a field carry around different content; ``near_duplicates`` strips them before
comparing records.

Flags: a template is over-used when more than ``cap = max(min_template_count,
max_template_share x prompts)`` prompts share it; its members after the first ``keep`` (by
source order; default ``keep = cap``) are flagged, so dropping the flagged records brings every
template down to the cap and keeps its first occurrences.

Vectorised: Arrow string kernels (RE2) and numpy over dictionary codes; no per-record Python.
The figures are joined from :func:`first_counts` partials on engines that make them per block
(the Ray engine's ``data.aggregate``), with the same values, order and flags.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .base import CheckData, CheckResult, register
from .length_outliers import word_counts

__all__ = ["DiversityOptions", "check_diversity", "distinct_n", "first_counts", "group_ranks", "merge_first_counts",
           "normalize_words", "template_keys", "unique_values", "word_tokens"]

#: request framing skipped before the opening word
_FRAMING = (r"^(?:(?:please|kindly|hey|hi|hello|ok|okay|now|so|can you|could you|would you|will you|"
            r"i want you to|i need you to|i would like you to|i'd like you to|help me|i need to|i want to|"
            r"let's|you need to|your task is to)\s+)+")
_NAME_RUN = r"([^\s.!?:;\"“])(\s+)[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*"
_QUOTED = r"\"[^\"\n]{0,300}\"|“[^”\n]{0,300}”"
#: :data:`_QUOTED` as :func:`_mask` runs it: on slices of at most ``_HEAD`` = 300 characters a
#: quote never holds more than 300, so the bound can go (RE2 compiles {0,300} into a program
#: 300 times longer: 20 ms a call, most of the masking)
_QUOTED_IN_HEAD = r"\"[^\"\n]*\"|“[^”\n]*”"
_NUMBER = r"\d+(?:[.,:/]\d+)*"
_HEAD = 300


@dataclass
class DiversityOptions:
    """Settings of the ``diversity`` check (see the module docstring)."""

    sample_size: int = 50_000
    sample_chars: int = 1_000
    seed: int = 0
    #: words kept from the start and from the end of a prompt in its template key
    template_words: int = 5
    #: a template is over-used above max(min_template_count, max_template_share x prompts)
    max_template_share: float = 0.02
    min_template_count: int = 20
    #: members of an over-used template kept unflagged (None: the cap)
    keep: int | None = None
    #: entries in the top lists of the report
    top: int = 20


def normalize_words(arr: pa.Array) -> pa.Array:
    """Lower-cased, trimmed text with every run of characters that are not letters, digits or
    spaces replaced by one space (the word view distinct-n and the preference check compare)."""
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.utf8_lower(arr), r"[^\pL\pN\s]+", " "))


def word_tokens(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """The words of every text (as :func:`normalize_words` sees them), flattened: the row of
    each word and the words.

    >>> rows, words = word_tokens(pa.array(["Hi, you!", "", "ok"]))
    >>> rows.tolist(), words.to_pylist()
    ([0, 0, 2], ['hi', 'you', 'ok'])
    """
    lists = pc.utf8_split_whitespace(normalize_words(arr))
    flat = pc.list_flatten(lists)
    rows = pc.list_parent_indices(lists)
    keep = pc.not_equal(flat, "")  # an empty text splits into one empty string
    return pc.filter(rows, keep).to_numpy().astype(np.int64), pc.filter(flat, keep)


def unique_values(values: np.ndarray) -> np.ndarray:
    """Sorted unique values of an integer array (sort + compare: much faster than ``np.unique``'s
    hash path on millions of int64 keys here).

    >>> unique_values(np.array([3, 1, 3, 2])).tolist()
    [1, 2, 3]
    """
    values = np.sort(values)
    if values.size == 0:
        return values
    return values[np.concatenate(([True], values[1:] != values[:-1]))]


def distinct_n(arr: pa.Array) -> dict[str, float | int]:
    """distinct-1 and distinct-2 of the texts in ``arr`` (unique / total n-grams, words as in
    :func:`normalize_words`), with the token count; bigrams do not cross texts."""
    parents, flat = word_tokens(arr)
    total = len(flat)
    if total == 0:
        return {"distinct_1": 0.0, "distinct_2": 0.0, "tokens": 0, "bigrams": 0}
    encoded = pc.dictionary_encode(flat)
    codes = encoded.indices.to_numpy().astype(np.int64)
    vocab = len(encoded.dictionary)
    same = parents[1:] == parents[:-1]
    pairs = codes[:-1][same] * vocab + codes[1:][same]
    return {"distinct_1": round(vocab / total, 4),
            "distinct_2": round(len(unique_values(pairs)) / len(pairs), 4) if len(pairs) else 0.0,
            "tokens": int(total), "bigrams": int(len(pairs))}


def _first_words(arr: pa.Array, k: int) -> pa.Array:
    parts = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(arr), max_splits=k)
    return pc.binary_join(pc.list_slice(parts, 0, k), " ")


def _mask(arr: pa.Array) -> pa.Array:
    """Quotes, names and numbers masked in slices of at most ``_HEAD`` characters."""
    arr = pc.replace_substring_regex(arr, _QUOTED_IN_HEAD, "<q>")
    arr = pc.replace_substring_regex(arr, _NAME_RUN, r"\1\2<name>")
    return pc.replace_substring_regex(pc.utf8_lower(arr), _NUMBER, "0")


def _pick(n: int, parts: list[tuple[np.ndarray, pa.Array]]) -> pa.Array:
    """One array of ``n`` rows from (rows, values) parts that cover every row once."""
    rows = np.concatenate([r for r, _ in parts])
    values = pa.concat_arrays([v.cast(pa.string()) for _, v in parts])
    inverse = np.empty(n, dtype=np.int64)
    inverse[rows] = np.arange(n)
    return values.take(pa.array(inverse))


def template_keys(arr: pa.Array, words: int = 5) -> pa.Array:
    """The template key of each text: masked, then its first and last ``words`` words.

    >>> template_keys(pa.array(["What is the capital of France?", "What is the capital of Peru?"])).to_pylist()
    ['what is the capital of <name>?', 'what is the capital of <name>?']
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    n_words = word_counts(arr)
    head = _mask(pc.utf8_slice_codeunits(arr, 0, _HEAD))
    # a text of at most _HEAD characters is its own tail: only longer ones are masked again
    longer = np.flatnonzero(pc.fill_null(pc.greater(pc.utf8_length(arr), _HEAD), False).to_numpy(zero_copy_only=False))
    tail = head
    if len(longer):
        ends = _mask(pc.utf8_slice_codeunits(arr.take(pa.array(longer)), -_HEAD, np.iinfo(np.int32).max))
        mask = np.zeros(n, dtype=bool)
        mask[longer] = True
        tail = pc.replace_with_mask(head, pa.array(mask), ends)
    split = np.flatnonzero(n_words > 2 * words)
    whole = np.flatnonzero(n_words <= 2 * words)
    parts = [(whole, _first_words(head.take(pa.array(whole)), 2 * words))]
    if len(split):
        first = _first_words(head.take(pa.array(split)), words)
        last = pc.utf8_reverse(_first_words(pc.utf8_reverse(tail.take(pa.array(split))), words))
        parts.append((split, pc.binary_join_element_wise(first, last, " … ")))
    return _pick(n, parts)


def _features(batch: dict[str, pa.Array], name: str, words: int) -> dict[str, pa.Array]:
    """Opening (first three words), opening word and template key per row (runs in workers)."""
    arr = batch[name]
    head = normalize_words(pc.utf8_slice_codeunits(arr, 0, 200))
    stripped = pc.replace_substring_regex(head, _FRAMING, "")
    return {"opening": _first_words(head, 3), "word": _first_words(stripped, 1),
            "template": template_keys(arr, words)}


def first_counts(values: pa.Array, pos: np.ndarray) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """The distinct values of ``values`` (rows at positions ``pos``, ascending) in order of first
    occurrence, with their counts and first positions: a partial :func:`merge_first_counts` joins."""
    encoded = pc.dictionary_encode(values)
    codes = encoded.indices.to_numpy().astype(np.int64)
    counts = np.bincount(codes, minlength=len(encoded.dictionary)).astype(np.int64)
    # codes are given in order of first occurrence: a code's first row is where the running maximum reaches it
    first = np.flatnonzero(np.r_[True, codes[1:] > np.maximum.accumulate(codes)[:-1]]) if len(codes) else codes
    return encoded.dictionary, counts, pos[first]


def merge_first_counts(parts: list[tuple[pa.Array, np.ndarray, np.ndarray]]) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """:func:`first_counts` of disjoint row sets joined (in any order): the same values, counts
    and first positions, in the same order, as :func:`first_counts` over all the rows."""
    if len(parts) == 1:
        return parts[0]
    encoded = pc.dictionary_encode(pa.chunked_array([p[0] for p in parts]).combine_chunks())
    codes = encoded.indices.to_numpy().astype(np.int64)
    k = len(encoded.dictionary)
    counts = np.bincount(codes, weights=np.concatenate([p[1] for p in parts]), minlength=k).astype(np.int64)
    first = np.full(k, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, codes, np.concatenate([p[2] for p in parts]).astype(np.int64))
    order = np.argsort(first)
    return encoded.dictionary.take(pa.array(order)), counts[order], first[order]


def _top(counted: tuple[pa.Array, np.ndarray, np.ndarray], n: int, top: int, label: str) -> tuple[list[dict], np.ndarray]:
    """The ``top`` most common non-empty values with count and share, and all counts."""
    keep = _filled(counted[0])
    keys, counts = counted[0].filter(pa.array(keep)), counted[1][keep]
    order = np.argsort(-counts, kind="stable")[:top]
    return [{label: keys[int(i)].as_py(), "count": int(counts[i]), "share": round(counts[i] / n, 4)}
            for i in order], counts


def _filled(keys: pa.Array) -> np.ndarray:
    """Which keys are neither empty nor null."""
    return pc.fill_null(pc.not_equal(keys, ""), False).to_numpy(zero_copy_only=False).astype(bool)


def group_ranks(codes: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For group codes per row: the size of each group, each row's 0-based rank inside its group
    (in row order), and the row of each group's first member (-1 for an empty group).

    >>> [a.tolist() for a in group_ranks(np.array([1, 0, 1, 1]), 2)]
    [[1, 3], [0, 0, 1, 2], [1, 0]]
    """
    counts = np.bincount(codes, minlength=groups).astype(np.int64)
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes)) - np.repeat(starts, counts)
    first = np.full(groups, -1, dtype=np.int64)
    nonempty = counts > 0
    first[nonempty] = order[starts[nonempty]]
    return counts, rank, first


def _entropy(counts: np.ndarray) -> tuple[float, float]:
    if counts.size == 0:
        return 0.0, 0.0
    p = counts / counts.sum()
    bits = float(-(p * np.log2(p)).sum())
    return round(bits, 4), round(bits / np.log2(counts.size), 4) if counts.size > 1 else 0.0


def _concat(parts: list[dict[str, pa.Array]], key: str) -> pa.Array:
    return pa.concat_arrays([p[key] for p in parts]) if parts else pa.array([], pa.string())


@register("diversity", options=DiversityOptions,
          description="distinct-1/2, repeated openings, opening-verb spread, over-used templates")
def check_diversity(data: CheckData, opts: DiversityOptions) -> CheckResult:
    """Diversity figures over the prompts; flag members of over-used templates beyond the cap."""
    name = data.prompt_fields[0]
    arr = data.fields[name]
    n = len(arr)
    rng = np.random.default_rng(opts.seed)
    rows = np.sort(rng.choice(n, opts.sample_size, replace=False)) if n > opts.sample_size else None
    sample_n = n if rows is None else len(rows)
    cap = max(int(opts.min_template_count), int(opts.max_template_share * n))
    keep = cap if opts.keep is None else int(opts.keep)
    aggregate = getattr(data, "aggregate", None)  # an engine that merges partial counts on its cluster (Ray)
    if aggregate is not None:
        distinct, opening_c, word_c, (keys, counts, first_pos), (flag_pos, flag_codes) = aggregate.diversity(
            name, opts.template_words, rows, opts.sample_chars, cap, keep)
    else:
        sample = arr if rows is None else data.take(name, rows)
        distinct = distinct_n(pc.utf8_slice_codeunits(sample, 0, opts.sample_chars))
        parts = data.map(_features, [name], desc="diversity", name=name, words=opts.template_words)
        everyone = np.arange(n)
        opening_c, word_c = (first_counts(_concat(parts, k), everyone) for k in ("opening", "word"))
        encoded = pc.dictionary_encode(_concat(parts, "template"))
        codes = encoded.indices.to_numpy().astype(np.int64)
        keys = encoded.dictionary
        counts, rank, first_pos = group_ranks(codes, len(keys))
        counts[np.asarray(pc.equal(keys, "").to_numpy(zero_copy_only=False), dtype=bool)] = 0  # empty prompts
        flag_pos = np.flatnonzero(np.isin(codes, np.flatnonzero(counts > cap)) & (rank >= keep))
        flag_codes = codes[flag_pos]
    nonempty = max(int(opening_c[1][_filled(opening_c[0])].sum()), 1)
    top_openings, opening_counts = _top(opening_c, nonempty, opts.top, "opening")
    top_words, word_counts_ = _top(word_c, nonempty, opts.top, "word")
    bits, norm = _entropy(word_counts_)
    opening_sorted = np.sort(opening_counts)[::-1]
    over = np.flatnonzero(counts > cap)
    reasons = {}
    for pos, c in zip(flag_pos.tolist(), flag_codes.tolist()):
        reasons[int(data.index[pos])] = (f"over-used template ({counts[c]:,} prompts = {counts[c] / n:.1%}, "
                                         f"cap {cap:,}): {_short(keys[c].as_py(), 80)}")
    top_templates = []
    for c in np.argsort(-counts, kind="stable")[: opts.top]:
        if counts[c] < 2:
            break
        top_templates.append({
            "template": keys[c].as_py(), "count": int(counts[c]), "share": round(counts[c] / n, 4),
            "first_index": int(data.index[first_pos[c]]),
            "example": _short(arr[int(first_pos[c])].as_py(), 200), "over_used": bool(counts[c] > cap)})

    return CheckResult(
        "diversity",
        flagged=list(reasons),
        reasons=reasons,
        stats={
            "field": name,
            "prompts": n,
            "distinct_1": distinct["distinct_1"],
            "distinct_2": distinct["distinct_2"],
            "sample": {"prompts": sample_n, "chars_per_prompt": opts.sample_chars, "seed": opts.seed,
                       "tokens": distinct["tokens"], "bigrams": distinct["bigrams"]},
            "openings": {"top": top_openings, "unique": int(opening_counts.size),
                         "top_share": round(float(opening_sorted[:1].sum()) / nonempty, 4),
                         "top10_share": round(float(opening_sorted[:10].sum()) / nonempty, 4)},
            "opening_words": {"top": top_words, "unique": int(word_counts_.size),
                              "entropy_bits": bits, "normalized_entropy": norm},
            "templates": {"top": top_templates, "unique": int((counts > 0).sum()), "cap": cap, "keep": keep,
                          "over_used": int(over.size), "repeated_share": round(float(counts[counts > 1].sum()) / n, 4)
                          if n else 0.0},
            "flagged": len(reasons),
            "shared_templates": _shared_templates(data),
        },
        versions={"pyarrow": pa.__version__, "numpy": np.__version__},
    )


def _shared_templates(data: CheckData) -> str:
    """The long prefixes and suffixes many records share, per field (a system prompt, a tool
    description; :mod:`hubtools.checks._templates`), as one line for the report."""
    from ._templates import find_templates

    found = [t for name in data.fields
             for t in find_templates(data.fields[name], name, lambda rows, name=name: data.take(name, rows))]
    return "; ".join(f"{t.field} {t.where} ({len(t.text):,} characters) in {t.records:,} records "
                     f"({t.records / len(data):.0%}): {_short(t.text, 80)}" for t in found) or "none"


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
