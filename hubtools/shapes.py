"""The shape registry: for each canonical kind, where its prompt, its replies and the text fields
the checks read are. Other modules ask here instead of re-deriving which column is the prompt.

>>> SHAPES[Kind.PREFERENCE].replies
('chosen', 'rejected')
>>> kind_of(["hubtools_index", "prompt", "chosen", "rejected"]).value
'preference'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .records import Kind, message

__all__ = ["SHAPES", "Shape", "TextField", "kind_of", "prompt_messages"]


@dataclass(frozen=True)
class TextField:
    """A text the checks read: the ``roles`` turns of ``column`` joined (the column itself for ``text``)."""

    name: str
    column: str
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shape:
    kind: Kind
    #: the column whose messages hold the prompt (SFT: the turns before the last reply)
    prompt: str | None
    #: the columns holding replies
    replies: tuple[str, ...]
    #: the text fields the checks read, in report order
    text_fields: tuple[TextField, ...]


_USER, _ASSISTANT = ("user",), ("assistant",)

SHAPES: dict[Kind, Shape] = {
    Kind.SFT: Shape(Kind.SFT, "messages", ("messages",),
                    (TextField("prompt", "messages", _USER), TextField("response", "messages", _ASSISTANT))),
    Kind.PROMPT: Shape(Kind.PROMPT, "prompt", (), (TextField("prompt", "prompt", _USER),)),
    Kind.PREFERENCE: Shape(Kind.PREFERENCE, "prompt", ("chosen", "rejected"),
                           (TextField("prompt", "prompt", _USER), TextField("chosen", "chosen", _ASSISTANT),
                            TextField("rejected", "rejected", _ASSISTANT))),
    Kind.UNPAIRED: Shape(Kind.UNPAIRED, "prompt", ("completion",),
                         (TextField("prompt", "prompt", _USER), TextField("response", "completion", _ASSISTANT))),
    Kind.TEXT: Shape(Kind.TEXT, None, (), (TextField("text", "text"),)),
}


def kind_of(columns: Iterable[str]) -> Kind:
    """The kind of a canonical table from its columns."""
    cols = set(columns)
    if "messages" in cols:
        return Kind.SFT
    if "prompt" in cols and not {"chosen", "completion"} & cols:
        return Kind.PROMPT
    if "chosen" in cols:
        return Kind.PREFERENCE
    if "completion" in cols:
        return Kind.UNPAIRED
    return Kind.TEXT


def prompt_messages(record: dict[str, Any], kind: Kind | str) -> list[dict[str, Any]] | None:
    """The turns to answer for a canonical record, up to its last user turn; ``None`` when it has none."""
    shape = SHAPES[Kind(kind)]
    if shape.prompt is None:
        return [message("user", record["text"])] if record.get("text") else None
    messages = list(record[shape.prompt] or [])
    while messages and messages[-1]["role"] != "user":
        messages.pop()
    return messages or None
