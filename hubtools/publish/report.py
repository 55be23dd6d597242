"""The quality deliverables, rendered from one :class:`~hubtools.checks.QualityResult`:

* ``quality.json``: every check's flagged indices and statistics (what ``--json`` prints);
* ``dataset_quality_report.md``: the readable report, from ``cards/dataset_quality_report.md.j2``,
  with PNG plots in ``plots/`` (length histograms, category bars, language shares);
* ``category_distribution.json``: ``{"categories": {name: {count, share}}, "missing", "total"}``.

The card, the app and the CLI read these same objects, so they never disagree.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from .._version import __version__
from ..checks import REGISTRY, QualityResult
from ..io import atomic_write, output_set
from .templates import render

__all__ = ["REPORT_FILES", "category_distribution", "render_report", "write_plots", "write_report"]

logger = logging.getLogger(__name__)

REPORT_FILES = ("quality.json", "dataset_quality_report.md", "category_distribution.json")


def category_distribution(quality: QualityResult) -> dict[str, Any]:
    """The content of ``category_distribution.json`` (empty categories when the check did not run)."""
    result = quality.results.get("categories")
    stats = result.stats if result is not None else {}
    return {
        "categories": stats.get("categories", {}),
        "missing": stats.get("missing", []),
        "under_represented": stats.get("under_represented", []),
        "intended": stats.get("intended", []),
        "total": stats.get("total", quality.dataset.get("valid", 0)),
    }


def _plain(value: Any) -> Any:
    """orjson ``default``: numpy scalars (a median, a share) as plain Python numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _write_json(path: Path, data: Any) -> None:
    options = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    with atomic_write(path) as fh:
        fh.write(orjson.dumps(data, option=options, default=_plain) + b"\n")


# --------------------------------------------------------------------------- plots


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    # no timestamp in the PNG, so the same data gives the same bytes
    with atomic_write(path) as fh:
        fig.savefig(fh, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})


def _length_plot(stats: dict[str, Any], path: Path) -> bool:
    # the length check keeps per field ``{"histogram": {"chars": {edges, counts}, "words": ...}}``
    fields = {name: s for name, s in (stats.get("fields") or {}).items()
              if isinstance(s, dict) and (s.get("histogram") or {}).get("chars")}
    if not fields:
        return False
    plt = _figure()
    fig, axes = plt.subplots(1, len(fields), figsize=(4.5 * len(fields), 3.2), squeeze=False)
    for ax, (name, s) in zip(axes[0], fields.items()):
        hist = s["histogram"]["chars"]
        edges, counts = hist["edges"], hist["counts"]
        widths = [b - a for a, b in itertools.pairwise(edges)]
        ax.bar(edges[:-1], counts, width=widths, align="edge", color="#4C72B0", edgecolor="white")
        if hist.get("log", True):  # log-spaced bins from 0: symlog keeps the empty-text bin
            ax.set_xscale("symlog", linthresh=1)
        for key, colour in (("min_chars", "#C44E52"), ("max_chars", "#C44E52")):
            limit = (s.get("thresholds") or {}).get(key)
            if limit:
                ax.axvline(limit, color=colour, linestyle="--", linewidth=1)
        ax.set_title(f"{name}: length in characters")
        ax.set_xlabel("characters")
        ax.set_ylabel("records")
    _save(fig, path)
    plt.close(fig)
    return True


def _bars(items: list[tuple[str, float]], title: str, xlabel: str, path: Path,
          highlight: Callable[[str], bool] = lambda _: False) -> bool:
    if not items:
        return False
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(items) + 1.2))
    names = [k for k, _ in items][::-1]
    values = [v for _, v in items][::-1]
    colours = ["#C44E52" if highlight(n) else "#4C72B0" for n in names]
    ax.barh(names, values, color=colours)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.1%}" if xlabel == "share" else f" {v:,}", va="center", fontsize=8)
    _save(fig, path)
    plt.close(fig)
    return True


def write_plots(quality: QualityResult, plots_dir: Path) -> dict[str, str]:
    """Draw the report's plots; return ``{plot name: file name}`` for those with data."""
    made: dict[str, str] = {}
    lengths = quality.results.get("length_outliers")
    if lengths is not None and _length_plot(lengths.stats, plots_dir / "lengths.png"):
        made["lengths"] = "lengths.png"
    dist = category_distribution(quality)
    cats = sorted(((k, v.get("share", 0.0)) for k, v in dist["categories"].items()), key=lambda kv: -kv[1])
    flagged = set(dist["missing"]) | set(dist["under_represented"])
    if _bars(cats, "task categories (red: missing or under-represented)", "share",
             plots_dir / "categories.png", highlight=flagged.__contains__):
        made["categories"] = "categories.png"
    language = quality.results.get("language")
    if language is not None:
        shares = language_shares(language.stats)
        expected = set(language.stats.get("expected") or [])
        if _bars(shares[:15], "languages (red: not expected)", "share", plots_dir / "languages.png",
                 highlight=lambda n: bool(expected) and n not in expected):
            made["languages"] = "languages.png"
    return made


def language_shares(stats: dict[str, Any]) -> list[tuple[str, float]]:
    """``[(language, share)]`` from the language check's distribution, largest first."""
    dist = stats.get("distribution") or {}
    items = [(k, v.get("share", 0.0) if isinstance(v, dict) else float(v)) for k, v in dist.items()]
    return sorted(items, key=lambda kv: -kv[1])


# --------------------------------------------------------------------------- markdown


def _pct(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def _scalar_stats(stats: dict[str, Any], limit: int = 14) -> list[tuple[str, str]]:
    """The stats a table can show: scalars, and small flat dicts as "k: v, k: v"."""
    rows = []
    for key, value in stats.items():
        if isinstance(value, bool) or value is None:
            text = str(value)
        elif isinstance(value, int):
            text = f"{value:,}"
        elif isinstance(value, float):
            text = "n/a" if math.isnan(value) else f"{value:,.4g}"
        elif isinstance(value, str):
            text = value
        elif isinstance(value, dict) and value and len(value) <= 12 and all(
                isinstance(v, (int, float, str)) for v in value.values()):
            text = ", ".join(f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list) and len(value) <= 12 and all(isinstance(v, (int, float, str)) for v in value):
            text = ", ".join(map(str, value)) or "none"
        else:
            continue
        rows.append((key, text.replace("|", "\\|").replace("\n", " ")))
        if len(rows) >= limit:
            break
    return rows


def _cell(text: Any, width: int = 160) -> str:
    text = str(text).replace("\n", " ⏎ ").replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


#: stats keys holding duplicate groups ({size, indices, text[, min_jaccard]}), shown as a table
_GROUP_KEYS = ("largest_groups", "largest_clusters")


def _groups(stats: dict[str, Any], limit: int = 10, members: int = 12) -> list[dict[str, str]]:
    """The largest duplicate groups of a check, as table rows: size, members, similarity, text."""
    found = next((stats[k] for k in _GROUP_KEYS if isinstance(stats.get(k), list)), [])
    rows = []
    for group in found[:limit]:
        indices = [f"#{i}" for i in group.get("indices", [])]
        shown = ", ".join(indices[:members]) + (f" (+{len(indices) - members})" if len(indices) > members else "")
        similarity = group.get("min_jaccard")
        rows.append({"size": f"{group.get('size', len(indices)):,}", "members": shown,
                     "similarity": f"{similarity:.2f}" if isinstance(similarity, (int, float)) else "identical",
                     "text": _cell(group.get("text", ""), 120)})
    return rows


def render_report(quality: QualityResult, plots: dict[str, str] | None = None) -> str:
    """The markdown of ``dataset_quality_report.md``."""
    info = quality.dataset
    total = info.get("total", 0)
    valid = info.get("valid", 0)
    checks = []
    for name, result in quality.results.items():
        spec = REGISTRY.get(name)
        checks.append({
            "name": name,
            "description": spec.description if spec else "",
            "applicable": result.applicable,
            "count": result.count,
            "share": _pct(result.count, total),
            "stats": _scalar_stats(result.stats),
            "groups": _groups(result.stats),
            "options": _scalar_stats(result.options),
            "versions": result.versions,
            "examples": [{"index": e.get("index"), "reason": _cell(e.get("reason", ""), 200),
                          "fields": {k: _cell(v) for k, v in e.get("fields", {}).items()}}
                         for e in result.examples],
            "seconds": quality.timings.get(name),
        })
    flagged_any = len(quality.flagged_by([n for n in quality.results if n != "schema"]))
    dist = category_distribution(quality)
    language = quality.results.get("language")
    return render("cards/dataset_quality_report.md.j2", {
        "dataset": info,
        "total": total,
        "valid": valid,
        "quarantined": info.get("quarantined", 0),
        "flagged_any": flagged_any,
        "flagged_any_share": _pct(flagged_any, valid),
        "checks": checks,
        "plots": plots or {},
        "categories": sorted(dist["categories"].items(), key=lambda kv: -kv[1].get("count", 0)),
        "missing": dist["missing"],
        "under_represented": dist["under_represented"],
        "languages": language_shares(language.stats)[:10] if language else [],
        "score": quality.scores(),
        "version": __version__,
    })


def write_report(quality: QualityResult, out_dir: str | os.PathLike, *, plots: bool = True) -> dict[str, Path]:
    """Write ``quality.json``, ``dataset_quality_report.md`` (+ ``plots/``) and
    ``category_distribution.json`` into ``out_dir``; return ``{file name: path}``.

    Example:
        >>> from hubtools.checks import run_checks  # doctest: +SKIP
        >>> files = write_report(run_checks("data.jsonl"), "report/")  # doctest: +SKIP
        >>> sorted(files)  # doctest: +SKIP
        ['category_distribution.json', 'dataset_quality_report.md', 'quality.json']
    """
    out = Path(out_dir)
    files = {"quality.json": out / "quality.json",
             "dataset_quality_report.md": out / "dataset_quality_report.md",
             "category_distribution.json": out / "category_distribution.json"}
    # one set: a full disk leaves the previous report, its JSON and plots together; plots an
    # earlier run drew that this one has no data for go
    with output_set(out, replaces=["plots/*.png"], last=("dataset_quality_report.md",)) as stage:
        _write_json(stage / "quality.json", quality.to_dict())
        _write_json(stage / "category_distribution.json", category_distribution(quality))
        made = write_plots(quality, stage / "plots") if plots else {}
        for file in made.values():
            files[f"plots/{file}"] = out / "plots" / file
        text = render_report(quality, {k: f"plots/{v}" for k, v in made.items()})
        with atomic_write(stage / "dataset_quality_report.md") as fh:
            fh.write(text.encode())
    return files
