"""The ``hubtools`` command line, one module per command group, each thin over the library.

Results go to stdout (a short report, or JSON with ``--json``); progress and errors go to
stderr. A hubtools error prints one line with what to do and exits 1 (2 when the input is
not usable at all); never a traceback.

Importing a command module registers its commands on :data:`app`; the order here is the order
``hubtools --help`` lists them.
"""

from __future__ import annotations

from . import data, serve, pipeline, checks, publish, generate, review  # noqa: F401  (registers the commands)
from ._app import app, main

__all__ = ["app", "main"]
