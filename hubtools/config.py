"""Settings read from the environment, in one place: other modules import these."""

from __future__ import annotations

import logging
import os

__all__ = ["CACHE_DIR", "MAX_UPLOAD_MB", "VERBOSITY", "configure_logging"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}

#: HUBTOOLS_VERBOSITY: debug, info, warning (default) or error.
VERBOSITY = _LEVELS.get(os.environ.get("HUBTOOLS_VERBOSITY", "warning").lower(), logging.WARNING)
#: HUBTOOLS_MAX_UPLOAD_MB: largest file the app accepts (default 200).
MAX_UPLOAD_MB = int(os.environ.get("HUBTOOLS_MAX_UPLOAD_MB", "200"))
#: HUBTOOLS_CACHE: where generation keeps its on-disk completion cache (default ~/.cache/hubtools).
CACHE_DIR = os.path.expanduser(os.environ.get("HUBTOOLS_CACHE", "~/.cache/hubtools"))


def configure_logging(level: int | None = None) -> None:
    """Send hubtools logs to stderr at ``level`` (default: HUBTOOLS_VERBOSITY)."""
    logger = logging.getLogger("hubtools")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level if level is not None else VERBOSITY)
