"""Per-check options from the settings people give: the command line's flags, the app's Quality
tab and a recipe's check stage all build them here, so the three never disagree.

>>> check_options(lang="en,fr", toxicity_backend="offline", only=["language"])
{'language': {'languages': ['en', 'fr']}}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["check_options"]


def _list(value: str | Iterable[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    return [str(v).strip() for v in items if str(v).strip()]


def check_options(*, lang: str | Iterable[str] | None = None, categories: str | Iterable[str] | None = None,
                  toxicity_backend: str | None = None, toxicity_model: str | None = None,
                  toxicity_threshold: float | None = None, near_dup_threshold: float | None = None,
                  eval_sets: str | Iterable[str] | None = None, repetition: str | None = None,
                  only: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{check: {option: value}}`` for the settings given (the others keep their defaults).

    Args:
        lang, categories, eval_sets: comma-separated text or a list.
        repetition: ``rule=value,...`` thresholds (see :func:`hubtools.checks.repetition.parse_thresholds`).
        only: keep the options of these checks only (the checks that run).
    """
    options: dict[str, dict[str, Any]] = {}
    if lang and _list(lang):
        options.setdefault("language", {})["languages"] = _list(lang)
    if categories and _list(categories):
        options.setdefault("categories", {})["intended"] = _list(categories)
    if toxicity_backend:
        options.setdefault("toxicity", {})["backend"] = toxicity_backend
    if toxicity_model:
        options.setdefault("toxicity", {})["model"] = toxicity_model
    if toxicity_threshold is not None:
        options.setdefault("toxicity", {})["threshold"] = toxicity_threshold
    if near_dup_threshold is not None:
        options.setdefault("near_duplicates", {})["threshold"] = near_dup_threshold
    if eval_sets and _list(eval_sets):
        options.setdefault("contamination", {})["eval_sets"] = _list(eval_sets)
    if repetition:
        from .repetition import parse_thresholds

        thresholds = parse_thresholds(repetition)
        for setting in ("min_words", "min_repeats"):
            if setting in thresholds:
                options.setdefault("repetition", {})[setting] = int(thresholds.pop(setting) or 0)
        options.setdefault("repetition", {})["thresholds"] = thresholds
    if only is not None:
        keep = set(only)
        options = {name: values for name, values in options.items() if name in keep}
    return options
