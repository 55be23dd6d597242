"""The quality result a card describes: read from ``quality.json``, taken as given or computed
now, and the figures the card shows from it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from ..checks import QualityResult
    from ..load import LoadResult

__all__ = ["category_definitions", "check_quality_matches", "load_quality", "quality_for", "quality_summary"]


def _get(stats: dict, *keys: str, default: Any = None) -> Any:
    return next((stats[k] for k in keys if isinstance(stats, dict) and stats.get(k) is not None), default)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _counts(mapping: Any) -> list[tuple[str, int]]:
    """``{name: n}`` or ``{name: {"count": n, ...}}`` -> [(name, n)], largest first."""
    if not isinstance(mapping, dict):
        return []
    out = []
    for name, value in mapping.items():
        count = value.get("count") if isinstance(value, dict) else value
        if isinstance(count, (int, float)) and not isinstance(count, bool):
            out.append((str(name), int(count)))
    return sorted(out, key=lambda item: -item[1])


def quality_summary(quality: dict[str, Any]) -> dict[str, Any]:
    """The figures the card shows, read from ``quality.json``; absent checks or keys give None."""
    try:
        from ..checks import REGISTRY
    except ImportError:  # pragma: no cover - checks always ship with hubtools
        REGISTRY = {}
    ds = quality.get("dataset") or {}
    checks = quality.get("checks") or {}
    valid = ds.get("valid") or 0

    def stats(name: str) -> dict:
        return (checks.get(name) or {}).get("stats") or {}

    def count(name: str) -> int | None:
        check = checks.get(name)
        if not check or check.get("applicable") is False:
            return None
        return int(check.get("count", len(check.get("flagged") or [])))

    rows = []
    for name, check in checks.items():
        n = count(name)
        spec = REGISTRY.get(name)
        rows.append({"name": name, "description": spec.description if spec else "", "count": n,
                     "share": (n / valid) if n is not None and valid else None,
                     "applicable": check.get("applicable", True),
                     "note": (check.get("stats") or {}).get("skipped")})
    languages = _counts(_get(stats("language"), "distribution", "languages", "counts"))
    lang_total = sum(c for _, c in languages) or 1
    categories = stats("categories")
    cat_rows = _counts(_get(categories, "categories", "distribution", "counts"))
    cat_total = sum(c for _, c in cat_rows) or 1
    return {
        "total": ds.get("total"), "valid": ds.get("valid"), "quarantined": ds.get("quarantined"),
        "by_code": ds.get("by_code") or {},
        "checks": rows,
        "exact_duplicates": count("exact_duplicates"),
        "near_duplicates": count("near_duplicates"),
        "toxicity": count("toxicity"),
        "pii": count("pii"),
        "pii_by_type": [(k, n) for k, n in _counts(_get(stats("pii"), "records_by_type", "by_type", "matches_by_type"))
                        if n],
        "refusals": count("refusals"),
        "languages": [(name, c, c / lang_total) for name, c in languages],
        "categories": [(name, c, c / cat_total) for name, c in cat_rows],
        "missing_categories": list(_get(categories, "missing", default=[]) or []),
        "under_represented": list(_get(categories, "under_represented", default=[]) or []),
        "distinct_1": _number(_get(stats("diversity"), "distinct_1")),
        "distinct_2": _number(_get(stats("diversity"), "distinct_2")),
        "length_bias": _number(_get(_get(stats("preference"), "length_bias", default={}), "chosen_longer_share")),
        "agreement": quality.get("agreement") or (quality.get("review") or {}).get("agreement"),
    }


def category_definitions() -> list[tuple[str, str]]:
    """(name, definition) of the task categories the ``categories`` check uses, when it exists."""
    try:
        from ..checks.categories import CATEGORIES
    except ImportError:
        return []
    items = CATEGORIES.items() if isinstance(CATEGORIES, dict) else enumerate(CATEGORIES)
    out = []
    for key, value in items:
        if isinstance(value, str):
            out.append((str(key), value))
            continue
        if isinstance(value, (tuple, list)) and len(value) >= 2:
            out.append((str(value[0]), str(value[1])))
            continue
        name = value.get("name") if isinstance(value, dict) else getattr(value, "name", key)
        desc = (value.get("definition") or value.get("description")) if isinstance(value, dict) else (
            getattr(value, "definition", None) or getattr(value, "description", ""))
        out.append((str(name), str(desc or "")))
    return out


def load_quality(path: str | os.PathLike) -> QualityResult:
    """Read a ``quality.json`` written by ``hubtools check``."""
    from ..checks import QualityResult
    from ..errors import PublishError

    try:
        return QualityResult.from_dict(orjson.loads(Path(path).read_bytes()))
    except (OSError, orjson.JSONDecodeError) as exc:
        raise PublishError(f"{path}: cannot read the quality file ({exc.__class__.__name__})",
                           hint="give the quality.json that `hubtools check --out DIR` wrote") from None


def check_quality_matches(quality: QualityResult, loaded: LoadResult, path: Any) -> None:
    """Refuse a quality result computed on other data (its record counts differ)."""
    from ..errors import PublishError

    ds = quality.dataset or {}
    if ds.get("total") is not None and (ds.get("total"), ds.get("valid")) != (loaded.total, loaded.valid):
        raise PublishError(f"{path} describes {ds.get('total')} records ({ds.get('valid')} valid), the data has "
                           f"{loaded.total} ({loaded.valid} valid)",
                           hint="run `hubtools check` on this data again, or leave out --quality")


def quality_for(loaded: LoadResult, quality: Any = None, *, progress: bool = False) -> QualityResult:
    """The quality result for ``loaded``: read from a path, taken as given, or computed now."""
    from ..checks import QualityResult, run_checks

    if quality is None:
        return run_checks(loaded, progress=progress)
    if isinstance(quality, dict):
        quality = QualityResult.from_dict(quality)
    elif not isinstance(quality, QualityResult):
        path = quality
        quality = load_quality(path)
        check_quality_matches(quality, loaded, path)
    return quality
