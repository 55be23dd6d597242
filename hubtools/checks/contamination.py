"""``contamination``: training records that share long word n-grams with an evaluation set.

The rule GPT-3 and open-instruct use: after normalisation (NFKC, lower case, split at whitespace,
punctuation stripped from both ends of each word), a training text that shares one
13-word sequence with an evaluation item is contaminated by it. An evaluation item shorter than
13 words (but at least ``min_words`` long) counts as one n-gram of its own length, so a short
benchmark question copied whole into a prompt is caught too.

Evaluation sets are files or Hub ids (``eval_sets``, ``hubtools check --eval-sets``), read by
:func:`hubtools.load` in any format it knows; their prompts (user turns, or ``text``) are indexed.
The index is a sorted array of 64-bit n-gram hashes (a polynomial hash over the words' xxh3
hashes, from prefix sums), one ``searchsorted`` per batch of training n-grams: no
pairwise comparison, no Python loop per record or n-gram. The index is kept for the next run in
the same process, keyed by the evaluation sets' content hashes (:func:`eval_index`).

What is reported for each flagged record: the benchmark, the item (its source index and the
start of its text), the number of shared n-grams and the share of the item's n-grams found.
"""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..shapes import SHAPES, kind_of
from .base import CheckData, CheckResult, joined_role_text, register

__all__ = ["ContaminationOptions", "EvalIndex", "build_index", "check_contamination", "content_hash", "eval_index",
           "ngram_hashes"]

logger = logging.getLogger(__name__)

#: the polynomial hash's base (odd, so it has an inverse modulo 2**64) and that inverse
_BASE = 0x9E3779B97F4A7C15
_BASE_INVERSE = pow(_BASE, -1, 2**64)
#: stripped from both ends of each whitespace-separated token (ASCII and common typographic marks)
_PUNCTUATION = string.punctuation + "“”‘’«»„‚‹›—–…·•¡¿。、，．：；！？「」『』（）【】"
_EXCERPT = 120
#: where a raw record keeps its question (for evaluation records that validation quarantined)
_PROMPT_KEYS = ("instruction", "input", "prompt", "question", "query", "problem", "turns")


@dataclass
class ContaminationOptions:
    #: evaluation sets: file paths or Hub ids, optionally named as ``name=path``
    eval_sets: list[str] = field(default_factory=list)
    #: words per n-gram (13: GPT-3, open-instruct)
    n: int = 13
    #: evaluation items shorter than ``n`` words but at least this long are matched whole
    min_words: int = 8
    #: shared n-grams needed to flag a record
    min_matches: int = 1
    #: also look for evaluation text in the replies, not only in the prompts (replies are most of the text: about 10x the work)
    include_replies: bool = False


def _words(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Each text's words as xxh3 hashes: (flat uint64 hashes, offsets per text)."""
    import xxhash

    texts = pc.fill_null(texts, "")
    lists = pc.utf8_split_whitespace(pc.utf8_lower(pc.utf8_normalize(texts, "NFKC")))
    offsets = lists.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.utf8_trim(pc.list_flatten(lists), _PUNCTUATION)
    keep = pc.not_equal(flat, "").to_numpy(zero_copy_only=False) if len(flat) else np.zeros(0, bool)
    if not keep.all():  # a token that was only punctuation is no word
        rows = np.repeat(np.arange(len(lists)), np.diff(offsets))
        offsets = np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=len(lists)))])
        flat = pc.filter(flat, pa.array(keep))
    encoded = pc.dictionary_encode(flat)
    vocab = np.fromiter((xxhash.xxh3_64_intdigest(w.encode()) for w in encoded.dictionary.to_pylist()),
                        dtype=np.uint64, count=len(encoded.dictionary))
    ids = encoded.indices.to_numpy(zero_copy_only=False)
    return (vocab[ids] if len(ids) else np.zeros(0, np.uint64)), offsets


def _powers(base: int, n: int) -> np.ndarray:
    """base**0 .. base**(n-1) modulo 2**64."""
    out = np.full(max(n, 1), base, dtype=np.uint64)
    with np.errstate(over="ignore"):
        out = np.cumprod(out)
    out[1:] = out[:-1]
    out[0] = 1
    return out[:n]


def ngram_hashes(words: np.ndarray, offsets: np.ndarray, lengths: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each length L: the hash of every L-gram that fits inside one text, and that text's row.

    A polynomial hash modulo 2**64 from prefix sums, so each length costs a few vector operations
    whatever L is: ``H(i, L) = (S[i+L] - S[i]) * P**-i`` with ``S[j] = sum(w[t] * P**t, t < j)``.
    Returns ``{L: (hashes, rows)}``.
    """
    n_words = len(words)
    rows = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    ends = offsets[1:][rows] if n_words else np.zeros(0, np.int64)
    powers, inverses = _powers(_BASE, n_words + 1), _powers(_BASE_INVERSE, n_words + 1)
    prefix = np.zeros(n_words + 1, dtype=np.uint64)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    with np.errstate(over="ignore"):
        np.cumsum(words * powers[:n_words], out=prefix[1:])
        for length in sorted(set(lengths)):
            starts = n_words - length + 1
            if starts <= 0:
                out[length] = (np.zeros(0, np.uint64), np.zeros(0, np.int64))
                continue
            fits = np.arange(starts) + length <= ends[:starts]
            hashes = (prefix[length:] - prefix[:starts]) * inverses[:starts]
            out[length] = (hashes[fits], rows[:starts][fits])
    return out


@dataclass
class EvalIndex:
    """The n-grams of every evaluation item, by n-gram length, sorted for ``searchsorted``."""

    names: list[str]
    #: per item: benchmark number (into ``names``), source index, start of its text, n-gram count
    item_set: np.ndarray
    item_index: np.ndarray
    item_text: list[str]
    item_ngrams: np.ndarray
    #: length -> (sorted hashes, item of each hash)
    tables: dict[int, tuple[np.ndarray, np.ndarray]]

    @property
    def lengths(self) -> list[int]:
        return sorted(self.tables)

    def __len__(self) -> int:
        return len(self.item_set)


def _split_spec(spec: str) -> tuple[str, str]:
    """``"name=path"`` -> ``("name", "path")``; a bare path or Hub id has no name.

    >>> _split_spec("mt_bench=question.jsonl")
    ('mt_bench', 'question.jsonl')
    """
    name, _, location = spec.partition("=") if "=" in spec and not Path(spec).exists() else ("", "", spec)
    return name, location


def _eval_prompts(spec: str) -> tuple[str, pa.Array, np.ndarray]:
    """(benchmark name, prompt texts, source indices) of one evaluation set."""
    from ..load import load
    from ..records import INDEX

    name, location = _split_spec(spec)
    result = load(location)
    table = result.dataset.data.table
    columns = table.column_names
    if "text" in columns:
        texts = pc.fill_null(table.column("text").combine_chunks(), "")
    else:
        message_column = SHAPES[kind_of(columns)].prompt
        if message_column is None:
            from ..errors import InputUnusableError

            raise InputUnusableError(f"evaluation set {location}: no prompt to index (columns: {columns})")
        texts = joined_role_text(table.column(message_column), ("user",))
    index = table.column(INDEX).to_numpy() if INDEX in columns else np.arange(len(table))
    # an evaluation item is a question whatever validation thought of its answers (a tie, say)
    extra = [(row.index, _raw_prompt(row.raw)) for row in result.quarantine]
    extra = [(i, t) for i, t in extra if t]
    if extra:
        texts = pa.concat_arrays([texts, pa.array([t for _, t in extra], pa.string())])
        index = np.concatenate([index, np.array([i for i, _ in extra], dtype=np.int64)])
    return name or Path(str(location)).name or str(location), texts, np.asarray(index)


def _raw_prompt(raw: object) -> str:
    """The question in a raw record that validation set aside (its prompt-like fields)."""
    if not isinstance(raw, dict):
        return raw if isinstance(raw, str) else ""
    parts = []
    for key in _PROMPT_KEYS:
        value = raw.get(key)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts.extend(v for v in value if isinstance(v, str))
    return "\n\n".join(parts)


def build_index(eval_sets: list[str], *, n: int = 13, min_words: int = 8) -> EvalIndex:
    """Read the evaluation sets and index the n-grams of their prompts."""
    names, sets, indices, texts, counts = [], [], [], [], []
    hashes: dict[int, list[np.ndarray]] = {}
    items: dict[int, list[np.ndarray]] = {}
    base = 0
    for number, spec in enumerate(eval_sets):
        name, prompts, index = _eval_prompts(spec)
        names.append(name)
        words, offsets = _words(prompts)
        sizes = np.diff(offsets)
        short = sorted({int(s) for s in sizes if min_words <= s < n})
        grams = ngram_hashes(words, offsets, [n, *short])
        per_item = np.zeros(len(prompts), dtype=np.int64)
        for length, (h, rows) in grams.items():
            if length != n:  # a short item is one n-gram of its own length: only items of exactly that size
                whole = sizes[rows] == length
                h, rows = h[whole], rows[whole]
            hashes.setdefault(length, []).append(h)
            items.setdefault(length, []).append(rows + base)
            np.add.at(per_item, rows, 1)
        sets.append(np.full(len(prompts), number))
        indices.append(index)
        texts.extend(t[:_EXCERPT] for t in prompts.to_pylist())
        counts.append(per_item)
        base += len(prompts)
    tables = {}
    for length in hashes:
        h = np.concatenate(hashes[length])
        owner = np.concatenate(items[length])
        order = np.argsort(h, kind="stable")
        tables[length] = (h[order], owner[order])
    cat = (lambda parts, dtype: np.concatenate(parts) if parts else np.zeros(0, dtype))
    return EvalIndex(names, cat(sets, np.int64), cat(indices, np.int64), texts, cat(counts, np.int64), tables)


def content_hash(location: str | Path) -> str | None:
    """An xxh3-128 digest of a local evaluation set's bytes (a directory: each file's relative path
    and bytes, in order); None for what is not a local path (a Hub id)."""
    import xxhash

    path = Path(location)
    if not path.exists():
        return None
    digest = xxhash.xxh3_128()
    for file in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]:
        digest.update(str(file.relative_to(path) if path.is_dir() else "").encode() + b"\0")
        with file.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def eval_index(eval_sets: list[str], *, n: int = 13, min_words: int = 8) -> EvalIndex:
    """The index of ``eval_sets``, reused while their content is unchanged: it is cached by each
    set's name and content hash, so a file rewritten in place (same name, same size, same
    second) is read again. A Hub id has no local content to hash: its index is built anew each
    time (the dataset may have changed upstream)."""
    keys = tuple((spec, content_hash(_split_spec(spec)[1])) for spec in eval_sets)
    if any(digest is None for _, digest in keys):
        return build_index(list(eval_sets), n=n, min_words=min_words)
    return _cached_index(keys, n, min_words)


@lru_cache(maxsize=4)
def _cached_index(keys: tuple[tuple[str, str | None], ...], n: int, min_words: int) -> EvalIndex:
    return build_index([spec for spec, _ in keys], n=n, min_words=min_words)


def _matches(texts: pa.Array, index: EvalIndex) -> tuple[np.ndarray, np.ndarray]:
    """(row, item) for every training n-gram found in the index (duplicates kept)."""
    words, offsets = _words(texts)
    rows_out, items_out = [], []
    for length, (hashes, rows) in ngram_hashes(words, offsets, index.lengths).items():
        table, owners = index.tables[length]
        if not len(table) or not len(hashes):
            continue
        pos = np.minimum(np.searchsorted(table, hashes), len(table) - 1)
        hit = table[pos] == hashes
        if not hit.any():
            continue
        # a hash may belong to several items: take every item sharing it
        lo = np.searchsorted(table, hashes[hit], side="left")
        hi = np.searchsorted(table, hashes[hit], side="right")
        spans = hi - lo
        rows_out.append(np.repeat(rows[hit], spans))
        items_out.append(owners[np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)])])
    if not rows_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows_out), np.concatenate(items_out)


@register("contamination", options=ContaminationOptions, default=False,
          description="prompts or replies sharing a 13-word sequence with an evaluation set (--eval-sets)")
def check_contamination(data: CheckData, opts: ContaminationOptions) -> CheckResult:
    """Flag records whose text shares ``n``-word sequences with the evaluation sets."""
    if not opts.eval_sets:
        return CheckResult("contamination", applicable=False,
                           stats={"skipped": "no evaluation sets given: name them with --eval-sets "
                                             "(files or Hub ids, e.g. --eval-sets mt_bench=question.jsonl)"})
    index = eval_index(list(opts.eval_sets), n=opts.n, min_words=opts.min_words)
    names = list(data.prompt_fields)
    if opts.include_replies:
        names += [f for f in data.response_fields if f not in names]
    # per (row, item): shared n-grams, summed over the fields read
    counts: dict[tuple[int, int], int] = {}
    by_field: dict[str, int] = {}

    def scan(batch: dict[str, pa.Array], start: list[int]) -> None:
        size = len(next(iter(batch.values())))
        for name, texts in batch.items():
            rows, items = _matches(texts, index)
            if not len(rows):
                continue
            pairs, n = np.unique(np.stack([rows + start[0], items]), axis=1, return_counts=True)
            for (row, item), k in zip(pairs.T.tolist(), n.tolist()):
                counts[(row, item)] = counts.get((row, item), 0) + k
            by_field[name] = by_field.get(name, 0) + int(len(np.unique(rows)))
        start[0] += size

    start = [0]
    data.map(lambda batch: scan(batch, start), names, desc="contamination", parallel=False)
    best: dict[int, tuple[int, int]] = {}
    for (row, item), k in counts.items():
        if k >= opts.min_matches and k > best.get(row, (0, -1))[0]:
            best[row] = (k, item)
    flagged, reasons, matches, per_set = [], {}, [], {name: 0 for name in index.names}
    for row, (k, item) in sorted(best.items()):
        source = int(data.index[row])
        bench = index.names[int(index.item_set[item])]
        share = round(k / max(int(index.item_ngrams[item]), 1), 3)
        flagged.append(source)
        reasons[source] = f"shares {k} {opts.n}-gram(s) with {bench} item {int(index.item_index[item])}"
        per_set[bench] += 1
        matches.append({"index": source, "benchmark": bench, "item": int(index.item_index[item]),
                        "item_text": index.item_text[item], "shared_ngrams": k, "item_share": share})
    stats = {"eval_sets": index.names, "eval_items": len(index), "flagged_by_set": per_set,
             "flagged_by_field": by_field, "matches": matches[:200], "fields": names}
    return CheckResult("contamination", flagged=flagged, reasons=reasons, stats=stats)
