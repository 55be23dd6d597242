"""Quality checks: one module per check, a registry, and a runner that reads the data once.

>>> from hubtools.checks import run_checks  # doctest: +SKIP
>>> quality = run_checks("data.jsonl", checks=["exact_duplicates", "pii"])  # doctest: +SKIP
>>> quality.results["pii"].flagged  # doctest: +SKIP
[3, 17]
"""

from __future__ import annotations

import importlib

from .base import REGISTRY, CheckData, CheckResult, CheckSpec, register
from .runner import QualityResult, default_checks, resolve_checks, run_checks

#: The check modules, in the order they run and appear in reports. Adding a check is adding
#: its module here.
MODULES = [
    "schema",
    "exact_duplicates",
    "near_duplicates",
    "length_outliers",
    "repetition",
    "language",
    "toxicity",
    "pii",
    "refusals",
    "categories",
    "diversity",
    "preference",
    "contamination",
]

for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = [
    "MODULES",
    "REGISTRY",
    "CheckData",
    "CheckResult",
    "CheckSpec",
    "QualityResult",
    "default_checks",
    "register",
    "resolve_checks",
    "run_checks",
]
