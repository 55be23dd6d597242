"""What a Hub id looks like: one pattern for every reader, the app's Hub box and publishing.

A repo id is ``owner/name``: each part starts with a word character and holds word characters,
``-`` and ``.`` (at most 96), as ``huggingface_hub.utils.validate_repo_id`` allows; ``--`` and
``..`` are refused. A dataset id for reading may add ``:config``; the command line also takes the
``hf://datasets/`` form.

>>> bool(REPO_ID.match("user/pairs")), bool(REPO_ID.match("../etc"))
(True, False)
>>> DATASET_ID.match("user/pairs:en")["config"]
'en'
"""

from __future__ import annotations

import re

__all__ = ["DATASET_ID", "DATASET_URI", "REPO_ID", "is_repo_id"]

_PART = r"\w[\w.-]{0,95}"
_REPO = rf"(?P<repo>{_PART}/{_PART})"
_CONFIG = r"(?::(?P<config>\w[\w.-]*))?"

#: ``owner/name``
REPO_ID = re.compile(rf"^{_REPO}$")
#: ``owner/name`` or ``owner/name:config`` (the app's Hub box)
DATASET_ID = re.compile(rf"^{_REPO}{_CONFIG}$")
#: the same, optionally as ``hf://datasets/owner/name`` (the command line and the library)
DATASET_URI = re.compile(rf"^(?:hf://datasets/)?{_REPO}{_CONFIG}$")


def is_repo_id(text: str) -> bool:
    """``text`` is ``owner/name`` with no ``--`` or ``..`` (which the Hub refuses)."""
    return bool(REPO_ID.match(text)) and "--" not in text and ".." not in text
