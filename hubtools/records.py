"""The canonical record: five kinds of example, as plain dicts and as Arrow features.

Inside hubtools every example is one of these shapes (the conversational shapes TRL and the
Hub's chat templates use). Wire formats convert into them on read and out of them on write.

Every record also carries:

* ``hubtools_index``: its 0-based position among the non-blank records of the input;
* ``hubtools_extra``: a JSON object (as a string) of the wire fields the canonical shape does
  not name, so a round trip loses nothing.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from typing import TYPE_CHECKING

import orjson
import pyarrow as pa

if TYPE_CHECKING:
    from datasets import Features

__all__ = [
    "EXTRA",
    "INDEX",
    "MESSAGE_KEYS",
    "REPLY_KINDS",
    "Kind",
    "dump_extra",
    "features_for",
    "load_extra",
    "message",
    "schema_for",
    "text_fields",
]

INDEX = "hubtools_index"
EXTRA = "hubtools_extra"


class Kind(str, Enum):
    """The five canonical shapes (TRL's names: language modeling, prompt-only, ...)."""

    SFT = "sft"
    #: prompt-only: what generation starts from; a ``prompt`` message list ending on a user turn
    PROMPT = "prompt"
    PREFERENCE = "preference"
    UNPAIRED = "unpaired"
    TEXT = "text"


#: Kinds whose records carry a reply to learn from (a stage that needs replies refuses the rest).
REPLY_KINDS = frozenset({Kind.SFT, Kind.PREFERENCE, Kind.UNPAIRED})


#: Keys of a canonical message; all but role and content are optional (None when absent).
MESSAGE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id")

def _kind_features(kind: Kind) -> dict[str, Any]:
    """The columns of each kind as ``datasets`` features (imported here, not at import time:
    a check worker needs the records module, not ``datasets``)."""
    from datasets import List, Value

    message_features = List({
        "role": Value("string"),
        "content": Value("string"),
        "name": Value("string"),
        # JSON string of an OpenAI-style list: [{"type": "function", "function": {name, arguments}}]
        "tool_calls": Value("string"),
        "tool_call_id": Value("string"),
    })
    return {
        Kind.SFT: {"messages": message_features, "tools": Value("string")},
        Kind.PROMPT: {"prompt": message_features, "tools": Value("string")},
        Kind.PREFERENCE: {
            "prompt": message_features,
            "chosen": message_features,
            "rejected": message_features,
            "score_chosen": Value("float64"),
            "score_rejected": Value("float64"),
            "tools": Value("string"),
        },
        Kind.UNPAIRED: {"prompt": message_features, "completion": message_features, "label": Value("bool")},
        Kind.TEXT: {"text": Value("string")},
    }[kind]


def message(
    role: str,
    content: str,
    *,
    name: str | None = None,
    tool_calls: str | None = None,
    tool_call_id: str | None = None,
) -> dict[str, Any]:
    """Return a canonical message dict with every key present.

    >>> message("user", "hi")["role"]
    'user'
    """
    return {
        "role": role,
        "content": content,
        "name": name,
        "tool_calls": tool_calls,
        "tool_call_id": tool_call_id,
    }


def features_for(kind: Kind | str) -> Features:
    """Return the ``datasets.Features`` of a canonical dataset of this kind."""
    from datasets import Features, Value

    kind = Kind(kind)
    return Features({INDEX: Value("int64"), **_kind_features(kind), EXTRA: Value("string")})


_SCHEMAS: dict[Kind, pa.Schema] = {}


def schema_for(kind: Kind | str) -> pa.Schema:
    """Return the Arrow schema matching :func:`features_for` (cached)."""
    kind = Kind(kind)
    if kind not in _SCHEMAS:
        _SCHEMAS[kind] = features_for(kind).arrow_schema
    return _SCHEMAS[kind]


def text_fields(record: dict[str, Any], kind: Kind | str) -> list[tuple[str, str]]:
    """Return ``(where, text)`` for every text in a canonical record, e.g. ``("chosen[0]", ...)``."""
    kind = Kind(kind)
    if kind is Kind.TEXT:
        return [("text", record["text"])]
    out = []
    for column in ("messages", "prompt", "chosen", "rejected", "completion"):
        for i, msg in enumerate(record.get(column) or ()):
            out.append((f"{column}[{i}]", msg.get("content")))
    return out


def dump_extra(extra: dict[str, Any]) -> str | None:
    """Serialise the fields a format does not name; None when there are none."""
    if not extra:
        return None
    return orjson.dumps(extra).decode()


def load_extra(value: str | None) -> dict[str, Any]:
    """Inverse of :func:`dump_extra`."""
    return orjson.loads(value) if value else {}
