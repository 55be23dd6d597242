"""The hubtools Gradio app (for now: the Load tab). Layout and glue only; the logic is the library's.

``create_app()`` builds the Blocks without launching, so tests can drive it.
"""

from __future__ import annotations

from .load_tab import create_app

__all__ = ["create_app"]
