"""Find and render the Jinja templates in ``cards/`` (dataset card, guidelines, quality report)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

__all__ = ["render", "templates_dir"]


def templates_dir() -> Path:
    """The ``cards/`` folder: beside the package in a checkout, inside it when installed."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "cards", here / "cards"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("hubtools templates (cards/) not found; reinstall hubtools")


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=False,  # markdown, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def render(name: str, context: dict[str, Any]) -> str:
    """Render template ``name`` from ``cards/`` with ``context``."""
    return _environment().get_template(name).render(**context)
