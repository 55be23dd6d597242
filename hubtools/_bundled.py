"""The files hubtools ships inside its package, found one way in a checkout and an installed wheel.

Every bundled file is found through :mod:`importlib.resources` on the ``hubtools`` package:

* ``_cards/``: the card, guidelines and quality-report templates. In the repository
  ``hubtools/_cards`` is a symlink to the top-level ``cards/``; building a wheel (directly or
  through an sdist) copies the files into the package.
* ``_space/``: the Space's ``app.py`` and its ``README.md`` / ``requirements.txt`` templates
  (``hubtools/_space`` links to ``space/`` the same way).
* ``app/examples/``: the example the app loads offline; the judge's ``metrics/``: the evaluate
  metric modules the gold cross-check loads.

This module sits in the bottom layer so that publishing (the templates), judging (the metrics)
and the app (the example) all use it without importing each other.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

__all__ = ["bundled"]


def bundled(*parts: str) -> Path:
    """The path of a file or folder shipped in the hubtools package, e.g. ``bundled("_cards")``.

    Raises:
        FileNotFoundError: the package was built or installed without it.
    """
    resource = importlib.resources.files("hubtools")
    for part in parts:
        resource = resource / part
    path = Path(str(resource))
    if not isinstance(resource, Path) or not path.exists():
        raise FileNotFoundError(
            f"hubtools is missing its bundled {'/'.join(parts)} (looked in {path}). The package was built "
            "without it: build the wheel from a checkout where hubtools/_cards and hubtools/_space are "
            "symlinks to cards/ and space/ (git with core.symlinks), then reinstall hubtools.")
    return path
