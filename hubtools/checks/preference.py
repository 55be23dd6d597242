"""``preference``: pairs that teach nothing, length bias, and score margins (preference data only).

Per pair (``chosen`` vs ``rejected``):

* **empty**: either reply is empty or whitespace only (flagged);
* **identical**: equal after lower-casing and collapsing whitespace (flagged);
* **near-identical**: word-set Jaccard similarity >= ``near_threshold`` (0.9), words as in
  :func:`~hubtools.checks.diversity.word_tokens` (flagged when ``flag_near_identical``);
* **score margin**: where both ``score_chosen`` and ``score_rejected`` exist, pairs whose margin
  (chosen - rejected) is <= ``min_margin`` (0: chosen not scored higher) are flagged.

Statistics (not flags): the length bias, i.e. the share of pairs whose chosen reply is longer
than the rejected one (in characters, trimmed), the mean and median length ratio
chosen/rejected; the Jaccard distribution; the margin distribution.

Vectorised: the Jaccard similarity is computed per batch with numpy over dictionary-encoded
words (unique (row, word) keys of each side, intersected), through :meth:`CheckData.map`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..records import Kind
from .base import CheckData, CheckResult, register
from .diversity import unique_values, word_tokens
from .length_outliers import describe

__all__ = ["PreferenceOptions", "check_preference", "word_jaccard"]


@dataclass
class PreferenceOptions:
    """Settings of the ``preference`` check."""

    #: word-set Jaccard at or above which chosen and rejected count as near-identical
    near_threshold: float = 0.9
    flag_near_identical: bool = True
    #: pairs whose score margin (chosen - rejected) is at or below this are flagged
    min_margin: float = 0.0
    #: histogram bins for the Jaccard and margin distributions
    bins: int = 20


def word_jaccard(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Jaccard similarity of the word sets of ``a[i]`` and ``b[i]`` per row (1.0 when both are empty).

    >>> word_jaccard(pa.array(["the cat sat", ""]), pa.array(["The cat sat down", ""])).tolist()
    [0.75, 1.0]
    """
    n = len(a)
    rows_a, words_a = word_tokens(a)
    rows_b, words_b = word_tokens(b)
    encoded = pc.dictionary_encode(pa.concat_arrays([words_a, words_b]))
    codes = encoded.indices.to_numpy().astype(np.int64)
    vocab = max(len(encoded.dictionary), 1)
    keys_a = unique_values(rows_a * vocab + codes[: len(rows_a)])
    keys_b = unique_values(rows_b * vocab + codes[len(rows_a):])
    size_a = np.bincount(keys_a // vocab, minlength=n)
    size_b = np.bincount(keys_b // vocab, minlength=n)
    common = np.bincount(np.intersect1d(keys_a, keys_b, assume_unique=True) // vocab, minlength=n)
    union = size_a + size_b - common
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, common / np.maximum(union, 1), 1.0)


def _pair_features(batch: dict[str, pa.Array]) -> dict[str, np.ndarray]:
    """Per pair: trimmed lengths, identical after normalising, word Jaccard (runs in workers)."""
    chosen, rejected = batch["chosen"], batch["rejected"]

    def norm(arr: pa.Array) -> pa.Array:
        return pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.utf8_lower(arr), r"\s+", " "))

    def length(arr: pa.Array) -> np.ndarray:
        return pc.utf8_length(pc.utf8_trim_whitespace(arr)).to_numpy(zero_copy_only=False).astype(np.int64)

    nc, nr = norm(chosen), norm(rejected)
    return {"len_chosen": length(chosen), "len_rejected": length(rejected),
            "identical": pc.equal(nc, nr).to_numpy(zero_copy_only=False),
            "jaccard": word_jaccard(chosen, rejected)}


def _scores(data: CheckData) -> tuple[np.ndarray, np.ndarray] | None:
    """score_chosen, score_rejected as float arrays (NaN where missing), or None without them."""
    if data.dataset is None or "score_chosen" not in data.dataset.column_names:
        return None
    table = data.dataset.data.table if hasattr(data.dataset.data, "table") else data.dataset.data
    out = []
    for name in ("score_chosen", "score_rejected"):
        column = table.column(name).cast(pa.float64())
        out.append(pc.fill_null(column, float("nan")).to_numpy())
    return out[0], out[1]


def _histogram(values: np.ndarray, bins: int, value_range: tuple[float, float] | None = None) -> dict[str, list]:
    if values.size == 0:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(values, bins=bins, range=value_range)
    return {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts]}


@register("preference", options=PreferenceOptions, kinds=(Kind.PREFERENCE,),
          description="identical/near-identical/empty pairs, length bias, score margins")
def check_preference(data: CheckData, opts: PreferenceOptions) -> CheckResult:
    """Flag preference pairs that teach nothing; report the length bias and score margins."""
    parts = data.map(_pair_features, ["chosen", "rejected"], desc="preference pairs")
    f = {k: np.concatenate([p[k] for p in parts]) for k in ("len_chosen", "len_rejected", "identical", "jaccard")}
    lc, lr, jac = f["len_chosen"], f["len_rejected"], f["jaccard"]
    identical = f["identical"].astype(bool)
    empty_c, empty_r = lc == 0, lr == 0
    near = ~identical & (jac >= opts.near_threshold) & ~empty_c & ~empty_r
    reasons: dict[int, list[str]] = {}

    def add(mask: np.ndarray, text) -> None:
        for pos in np.flatnonzero(mask):
            reasons.setdefault(int(data.index[pos]), []).append(text(pos) if callable(text) else text)

    add(empty_c & empty_r, "chosen and rejected are both empty")
    add(empty_c & ~empty_r, "chosen is empty")
    add(empty_r & ~empty_c, "rejected is empty")
    add(identical & ~empty_c, "chosen and rejected are identical")
    if opts.flag_near_identical:
        add(near, lambda pos: f"chosen and rejected near-identical (word Jaccard {jac[pos]:.2f})")

    both = ~empty_c & ~empty_r
    ratio = lc[both] / lr[both]
    n = len(lc)
    stats = {
        "pairs": n,
        "empty_chosen": int(empty_c.sum()),
        "empty_rejected": int(empty_r.sum()),
        "identical": int(identical.sum()),
        "near_identical": int(near.sum()),
        "length_bias": {
            "chosen_longer": int((lc > lr).sum()),
            "rejected_longer": int((lc < lr).sum()),
            "equal": int((lc == lr).sum()),
            "chosen_longer_share": round(float((lc > lr).mean()), 4) if n else None,
            "mean_length_ratio": round(float(ratio.mean()), 4) if ratio.size else None,
            "median_length_ratio": round(float(np.median(ratio)), 4) if ratio.size else None,
            "chars_chosen": describe(lc),
            "chars_rejected": describe(lr),
        },
        "jaccard": {**describe(jac), "histogram": _histogram(jac, opts.bins, (0.0, 1.0))},
        "scores": None,
    }

    scores = _scores(data)
    if scores is not None:
        margin = scores[0] - scores[1]
        has = ~np.isnan(margin)
        low = has & (margin <= opts.min_margin)
        add(low, lambda pos: f"chosen not scored higher: {scores[0][pos]:g} vs {scores[1][pos]:g}"
            if opts.min_margin == 0 else f"score margin {margin[pos]:g} <= {opts.min_margin:g}")
        stats["scores"] = {"pairs_with_scores": int(has.sum()), "margin": describe(margin[has]),
                           "histogram": _histogram(margin[has], opts.bins), "low_margin": int(low.sum()),
                           "min_margin": opts.min_margin} if has.any() else None

    return CheckResult("preference", flagged=list(reasons),
                       reasons={i: "; ".join(r) for i, r in reasons.items()}, stats=stats,
                       versions={"pyarrow": pa.__version__, "numpy": np.__version__})
