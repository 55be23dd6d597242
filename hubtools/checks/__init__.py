"""Quality checks: one module per check, a registry, and a runner that reads the data once.

>>> from hubtools.checks import run_checks  # doctest: +SKIP
>>> quality = run_checks("data.jsonl", checks=["exact_duplicates", "pii"])  # doctest: +SKIP
>>> quality.results["pii"].flagged  # doctest: +SKIP
[3, 17]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import REGISTRY, CheckData, CheckResult, CheckSpec, register

if TYPE_CHECKING:
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

_RUNNER = ("QualityResult", "default_checks", "resolve_checks", "run_checks")


def __getattr__(name: str) -> Any:
    """The runner's names on first use (PEP 562): a worker process that unpickles a check's batch
    function imports this package, and the runner would bring ``datasets`` and the loader."""
    if name in _RUNNER:
        from . import runner

        value = getattr(runner, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
