"""``length_outliers``: empty, contentless, too short and far too long fields, with length statistics.

Every text field of the view (``prompt``/``response``, ``chosen``/``rejected``, ``text``) is
measured in characters (Unicode code points, after trimming surrounding whitespace) and in
words (whitespace-delimited runs; a CJK sentence without spaces counts as one word). The
statistics (quantiles, mean, log-spaced histograms) go to the report; three rules flag records:

* **empty / too short**: fewer characters than ``min_chars[field]``. Defaults: 1 for every
  field (so only empty ones), 20 for raw ``text``. One- and two-character prompts are kept on
  purpose: "hi", "嗨" or "2+2" are real prompts and "3", "Ok" real replies.
* **contentless**: not one letter or digit (``"..."``, ``"?"``, ``"-"``); ``flag_contentless``.
* **far too long**: more than ``long_factor`` times the field's 95th percentile (of non-empty
  values), and never under ``min_long_chars``; ``max_chars[field]`` replaces the computed
  limit with a fixed one (e.g. the training context in characters). Lengths are heavily
  skewed and often bimodal (one-word answers next to essays), so a Tukey fence on log lengths
  (Q3 + k*IQR) is so wide it misses runaway generations (on alpaca_eval's falcon-7b outputs
  it sits near 13k chars with k=3, while the five degenerate, looping replies are 5.8k-8.9k;
  4 x p95 = 4.3k catches exactly those five). The quantile rule stays robust as long as fewer
  than 5% of the values are outliers. Median, IQR and MAD are still reported.

Vectorised: Arrow kernels for trimming and lengths, a compiled byte scan for word counts,
batched through :meth:`CheckData.map` (worker processes with ``num_proc > 1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .base import CheckData, CheckResult, register

__all__ = [
    "DEFAULT_MIN_CHARS",
    "LengthOptions",
    "check_length_outliers",
    "describe",
    "field_lengths",
    "log_histogram",
    "word_counts",
]

#: Minimum characters per field when ``min_chars`` does not name it (1 = only empty is short).
DEFAULT_MIN_CHARS = {"text": 20}

#: ASCII whitespace bytes (space, \t, \n, \v, \f, \r); other bytes are word characters.
_SPACE = np.zeros(256, dtype=bool)
_SPACE[[9, 10, 11, 12, 13, 32]] = True

#: a letter or a digit in any script (RE2 syntax)
_CONTENT = r"[\pL\pN]"


@dataclass
class LengthOptions:
    """Thresholds of the ``length_outliers`` check (see the module docstring)."""

    #: minimum characters per field name; fields not named use DEFAULT_MIN_CHARS, else 1
    min_chars: dict[str, int] = field(default_factory=dict)
    #: too long: above long_factor x the field's long_quantile (of non-empty values)...
    long_factor: float = 4.0
    long_quantile: float = 0.95
    #: ... and never below this many characters
    min_long_chars: int = 1000
    #: fixed upper limits per field name; replace the computed limit for that field
    max_chars: dict[str, int] = field(default_factory=dict)
    #: flag values without a single letter or digit
    flag_contentless: bool = True
    #: histogram bins (log-spaced)
    bins: int = 30


# --------------------------------------------------------------------------- measuring


def word_counts(arr: pa.Array) -> np.ndarray:
    """Whitespace-delimited words per string (int64), by one compiled pass over the UTF-8 bytes
    (:mod:`hubtools.checks._length_kernel`).

    >>> word_counts(pa.array(["two words", "", "  one "])).tolist()
    [2, 0, 1]
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if pa.types.is_large_string(arr.type):
        width = np.int64
    else:
        arr = arr if pa.types.is_string(arr.type) else arr.cast(pa.string())
        width = np.int32
    from ._length_kernel import count_words

    offsets = np.frombuffer(arr.buffers()[1], dtype=width)[arr.offset: arr.offset + n + 1]
    out = np.zeros(n, dtype=np.int64)
    end = int(offsets[-1])
    if end == int(offsets[0]):
        return out
    count_words(np.frombuffer(arr.buffers()[2], dtype=np.uint8, count=end), offsets, _SPACE, out)
    return out


def _measure(batch: dict[str, pa.Array]) -> dict[str, dict[str, np.ndarray]]:
    """Per field: trimmed character length, word count, and whether it has a letter or digit."""
    out = {}
    for name, arr in batch.items():
        trimmed = pc.utf8_trim_whitespace(arr)
        out[name] = {
            "chars": pc.utf8_length(trimmed).to_numpy(zero_copy_only=False).astype(np.int64),
            "words": word_counts(arr),
            "content": pc.match_substring_regex(trimmed, _CONTENT).to_numpy(zero_copy_only=False),
        }
    return out


def field_lengths(data: CheckData, names: list[str] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Characters, words and has-content flags of every row, per field (batched, maybe parallel)."""
    names = list(names or data.fields)
    parts = data.map(_measure, names, desc="lengths")
    return {name: {key: np.concatenate([p[name][key] for p in parts]) if parts else np.zeros(0)
                   for key in ("chars", "words", "content")} for name in names}


# --------------------------------------------------------------------------- statistics


def describe(values: np.ndarray) -> dict[str, float | int | None]:
    """count, min, p5, p25, median, mean, p75, p95, p99, max of a numeric array (None when empty)."""
    values = np.asarray(values, dtype=np.float64)
    keys = ("min", "p5", "p25", "median", "p75", "p95", "p99", "max")
    if values.size == 0:
        return {"count": 0, **{k: None for k in keys}, "mean": None}
    qs = np.percentile(values, [0, 5, 25, 50, 75, 95, 99, 100])
    out: dict[str, float | int | None] = {"count": int(values.size)}
    out.update({k: _num(q) for k, q in zip(keys, qs)})
    out["mean"] = _num(values.mean())
    return out


def _num(x: float) -> float | int:
    x = float(x)
    return int(x) if x.is_integer() else round(x, 3)


def log_histogram(values: np.ndarray, bins: int = 30) -> dict[str, list[int]]:
    """Histogram of non-negative integers on log-spaced bins: ``edges`` (len bins+1) and ``counts``.

    The first bin is [0, 1) (empty values); the others are log-spaced from 1 to the maximum.
    Bin i holds edges[i] <= v < edges[i+1] (the last bin includes its right edge).
    """
    values = np.asarray(values)
    top = int(values.max()) if values.size else 1
    edges = np.unique(np.concatenate(([0, 1], np.ceil(np.geomspace(1, max(top, 1) + 1, bins)))))
    counts, _ = np.histogram(values, bins=edges)
    return {"edges": [int(e) for e in edges], "counts": [int(c) for c in counts]}


def _limits(chars: np.ndarray, name: str, opts: LengthOptions) -> tuple[int, int, str]:
    """(min chars, max chars, how the max was chosen) for one field."""
    low = int(opts.min_chars.get(name, DEFAULT_MIN_CHARS.get(name, 1)))
    if name in opts.max_chars:
        return low, int(opts.max_chars[name]), "fixed (max_chars)"
    nonempty = chars[chars > 0]
    q = float(np.quantile(nonempty, opts.long_quantile)) if nonempty.size else 0.0
    relative = int(np.ceil(opts.long_factor * q))
    rule = f"{opts.long_factor:g} x p{round(opts.long_quantile * 100):d} ({q:,.0f} chars)"
    if relative < opts.min_long_chars:
        return low, int(opts.min_long_chars), f"min_long_chars (above {rule})"
    return low, relative, rule


def _robust(chars: np.ndarray) -> dict[str, float | None]:
    """Median, IQR and MAD of log(1 + chars): the spread figures of skewed lengths."""
    if chars.size == 0:
        return {"log_median": None, "log_iqr": None, "log_mad": None}
    logs = np.log1p(chars.astype(np.float64))
    q1, med, q3 = np.percentile(logs, [25, 50, 75])
    return {"log_median": round(float(med), 4), "log_iqr": round(float(q3 - q1), 4),
            "log_mad": round(float(np.median(np.abs(logs - med))), 4)}


# --------------------------------------------------------------------------- the check


@register("length_outliers", options=LengthOptions,
          description="empty, contentless, too short and far too long fields (chars and words)")
def check_length_outliers(data: CheckData, opts: LengthOptions) -> CheckResult:
    """Flag empty/short/contentless and far too long fields; length statistics per field.

    Example:
        >>> from hubtools.checks import REGISTRY
        >>> REGISTRY["length_outliers"].run(dataset).stats["fields"]["response"]["too_long"]  # doctest: +SKIP
        3
    """
    measured = field_lengths(data)
    reasons: dict[int, list[str]] = {}
    per_field = {}
    for name, m in measured.items():
        chars, words, content = m["chars"], m["words"], m["content"].astype(bool)
        low, high, rule = _limits(chars, name, opts)
        empty = chars == 0
        short = ~empty & (chars < low)
        contentless = ~empty & ~content if opts.flag_contentless else np.zeros_like(empty)
        contentless &= ~short
        long_ = chars > high
        for pos in np.flatnonzero(empty):
            reasons.setdefault(int(data.index[pos]), []).append(f"{name} empty")
        for pos in np.flatnonzero(short):
            reasons.setdefault(int(data.index[pos]), []).append(
                f"{name} too short: {chars[pos]:,} chars (minimum {low:,})")
        for pos in np.flatnonzero(contentless):
            reasons.setdefault(int(data.index[pos]), []).append(f"{name} has no letter or digit")
        for pos in np.flatnonzero(long_):
            reasons.setdefault(int(data.index[pos]), []).append(
                f"{name} too long: {chars[pos]:,} chars (limit {high:,})")
        longest = np.argsort(-chars, kind="stable")[:5]
        per_field[name] = {
            "chars": {**describe(chars), **_robust(chars)},
            "words": describe(words),
            "histogram": {"chars": log_histogram(chars, opts.bins), "words": log_histogram(words, opts.bins)},
            "thresholds": {"min_chars": low, "max_chars": high, "max_rule": rule},
            "empty": int(empty.sum()),
            "too_short": int(short.sum()),
            "contentless": int(contentless.sum()),
            "too_long": int(long_.sum()),
            "longest": [{"index": int(data.index[p]), "chars": int(chars[p])} for p in longest],
        }
    return CheckResult(
        "length_outliers",
        flagged=list(reasons),
        reasons={i: "; ".join(r) for i, r in reasons.items()},
        stats={
            "records": len(data),
            "fields": per_field,
            "empty": sum(f["empty"] for f in per_field.values()),
            "too_short": sum(f["too_short"] for f in per_field.values()),
            "contentless": sum(f["contentless"] for f in per_field.values()),
            "too_long": sum(f["too_long"] for f in per_field.values()),
            "flagged": len(reasons),
        },
        versions={"pyarrow": pa.__version__, "numpy": np.__version__},
    )
