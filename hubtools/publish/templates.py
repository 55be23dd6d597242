"""The one template resolver and the one Jinja environment for every bundled template.

Templates are found through :func:`hubtools._bundled.bundled`, in a checkout and an installed
wheel alike: ``cards/`` (card, guidelines, quality report; ``hubtools/_cards`` in the package) and
``space/`` (the Space's files; ``hubtools/_space``). They are named by their folder in the
repository: ``render("cards/README.md.j2", ctx)``, ``render("space/requirements.txt", ctx)``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from .._bundled import bundled

__all__ = ["cell", "cards_dir", "environment", "num", "pct", "render", "space_dir"]

#: template prefix -> the package folder that holds those templates
TEMPLATE_DIRS = {"cards": "_cards", "space": "_space"}


def cards_dir() -> Path:
    """The card, guidelines and quality-report templates (``cards/`` in the repository)."""
    return bundled(TEMPLATE_DIRS["cards"])


def space_dir() -> Path:
    """The Space's ``app.py`` and templates (``space/`` in the repository)."""
    return bundled(TEMPLATE_DIRS["space"])


def cell(value: Any) -> str:
    """Text safe in a Markdown table cell (the ``cell`` filter)."""
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def pct(value: Any, digits: int = 1) -> str:
    """0.123 -> "12.3%", None -> "n/a" (the ``pct`` filter)."""
    return "n/a" if value is None else f"{float(value) * 100:.{digits}f}%"


def num(value: Any) -> str:
    """1234 -> "1,234", 0.51234 -> "0.512" (the ``num`` filter)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


@functools.lru_cache(maxsize=1)
def environment():
    """The Jinja environment for every bundled template, with the filters ``cell``, ``pct``,
    ``num`` and ``tojson_pretty``; undefined variables are errors, output is Markdown (no escaping).
    """
    import jinja2

    loader = jinja2.PrefixLoader({prefix: jinja2.FileSystemLoader(str(bundled(folder)))
                                  for prefix, folder in TEMPLATE_DIRS.items()})
    env = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters.update(cell=cell, pct=pct, num=num,
                       tojson_pretty=lambda v: json.dumps(v, ensure_ascii=False, indent=2, default=str))
    return env


def render(name: str, context: dict[str, Any]) -> str:
    """Render the bundled template ``name`` (``cards/...`` or ``space/...``) with ``context``."""
    return environment().get_template(name).render(**context)
