"""The build pipeline: a recipe runs the stages in order, resumable, with per-stage accounting.

>>> from hubtools.pipeline import build, load_recipe  # doctest: +SKIP
>>> result = build(load_recipe("hubtools.yaml"))  # doctest: +SKIP
>>> print(result.report.read_text())  # doctest: +SKIP
"""

from __future__ import annotations

from .accounting import StageRow, accounting_problems, accounting_table
from .recipe import STAGES, Recipe, RecipeError, init_recipe, load_recipe, parse_recipe, recipe_problems
from .runner import Access, BuildResult, PlanStep, build, plan

__all__ = [
    "STAGES",
    "Access",
    "BuildResult",
    "PlanStep",
    "Recipe",
    "RecipeError",
    "StageRow",
    "accounting_problems",
    "accounting_table",
    "build",
    "init_recipe",
    "load_recipe",
    "parse_recipe",
    "plan",
    "recipe_problems",
]
