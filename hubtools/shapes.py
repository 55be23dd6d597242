"""The shape registry: for each canonical kind, where its prompt, its replies and the text fields
the checks read are, which columns hold messages, and what a table of that kind is. Other
modules ask here instead of re-deriving which column is the prompt.

>>> SHAPES[Kind.PREFERENCE].replies
('chosen', 'rejected')
>>> SHAPES[Kind.UNPAIRED].message_columns
('prompt', 'completion')
>>> kind_of(["hubtools_index", "prompt", "chosen", "rejected"]).value
'preference'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .records import Kind, message

__all__ = ["SHAPES", "Shape", "TextField", "kind_of", "last_user_text", "prompt_messages", "reply_of"]


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
    #: what a table of this kind holds, in a person's words (the dataset card says it)
    description: str = ""

    @property
    def message_columns(self) -> tuple[str, ...]:
        """The columns holding message lists: the prompt, then the replies (each once)."""
        return tuple(dict.fromkeys(c for c in (self.prompt, *self.replies) if c is not None))


_USER, _ASSISTANT = ("user",), ("assistant",)

SHAPES: dict[Kind, Shape] = {
    Kind.SFT: Shape(Kind.SFT, "messages", ("messages",),
                    (TextField("prompt", "messages", _USER), TextField("response", "messages", _ASSISTANT)),
                    "supervised fine-tuning conversations"),
    Kind.PROMPT: Shape(Kind.PROMPT, "prompt", (), (TextField("prompt", "prompt", _USER),),
                       "prompts with no reply yet (prompt-only: what generation and online training start from)"),
    Kind.PREFERENCE: Shape(Kind.PREFERENCE, "prompt", ("chosen", "rejected"),
                           (TextField("prompt", "prompt", _USER), TextField("chosen", "chosen", _ASSISTANT),
                            TextField("rejected", "rejected", _ASSISTANT)),
                           "preference pairs (a prompt with a chosen and a rejected reply)"),
    Kind.UNPAIRED: Shape(Kind.UNPAIRED, "prompt", ("completion",),
                         (TextField("prompt", "prompt", _USER), TextField("response", "completion", _ASSISTANT)),
                         "unpaired preference records (a prompt and one reply labelled good or bad)"),
    Kind.TEXT: Shape(Kind.TEXT, None, (), (TextField("text", "text"),), "texts"),
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


def reply_of(record: dict[str, Any], kind: Kind | str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(the turns the reply answers, the reply) of a canonical record.

    The reply is the last message of the kind's first reply column (SFT: the conversation's last
    turn, preference: the chosen reply, unpaired: the completion); ``None`` when there is none or
    that message is not the assistant's. Prompt and text records have no reply.

    >>> turns, reply = reply_of({"messages": [message("user", "Hi"), message("assistant", "Hello")]}, "sft")
    >>> [m["content"] for m in turns], reply["content"]
    (['Hi'], 'Hello')
    >>> reply_of({"prompt": [message("user", "Hi")], "chosen": [], "rejected": []}, "preference")[1] is None
    True
    """
    shape = SHAPES[Kind(kind)]
    if not shape.replies:
        return (list(record.get(shape.prompt) or []) if shape.prompt else []), None
    column = shape.replies[0]
    messages = list(record[column] or [])
    reply = messages[-1] if messages else None
    turns = messages[:-1] if column == shape.prompt else list(record[shape.prompt] or [])
    return turns, reply if reply is not None and reply["role"] == "assistant" else None


def last_user_text(turns: Iterable[dict[str, Any]]) -> str:
    """The text of the last user turn (``""`` when there is none): the question a reply answers."""
    return next((m["content"] or "" for m in reversed(list(turns)) if m["role"] == "user"), "")
