"""Raw text: a ``text`` field, or one line of a ``.txt`` file; read as ``text``."""

from __future__ import annotations

from typing import Any

from ..records import Kind
from .base import Format, require_str

__all__ = ["Text"]


class Text(Format):
    name = "text"
    kind = Kind.TEXT
    description = "raw text: a 'text' field, or one line of a .txt file"
    required = frozenset({"text"})
    hints = frozenset({"text"})
    owned = frozenset({"text"})

    def to_canonical(self, record: dict) -> dict[str, Any]:
        return {"text": require_str(record, "text")}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        return {"text": record["text"]}
