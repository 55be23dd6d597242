"""Unpaired (KTO) formats, read as ``unpaired``: LLaMA-Factory's ``messages`` + boolean
``label``, and TRL's prompt/completion/label."""

from __future__ import annotations

from typing import Any

from ..errors import ErrorCode
from ..records import Kind
from .base import Format, dump_messages, fail, parse_messages, text_or_messages

__all__ = ["KTO", "TRLUnpaired"]


def _label(record: dict) -> bool:
    label = record.get("label")
    if not isinstance(label, bool):
        raise fail(ErrorCode.WRONG_TYPE, f"'label' is {label!r}, not true or false",
                   "label each record true (desirable) or false (undesirable)")
    return label


class KTO(Format):
    name = "kto"
    kind = Kind.UNPAIRED
    description = "KTO: a conversation (messages or conversations) whose last reply has a boolean label"
    required = frozenset({"label"})
    hints = frozenset({"label"})
    owned = frozenset({"messages", "conversations", "label"})
    message_fields = True

    def accepts(self, record: dict) -> bool:
        return "messages" in record or "conversations" in record

    def to_canonical(self, record: dict) -> dict[str, Any]:
        field = "messages" if "messages" in record else "conversations"
        messages, _ = parse_messages(record[field], field=field)
        return {"prompt": messages[:-1], "completion": messages[-1:], "label": _label(record)}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        return {"messages": dump_messages(record["prompt"] + record["completion"], "openai"),
                "label": record["label"]}


class TRLUnpaired(Format):
    name = "trl_unpaired"
    kind = Kind.UNPAIRED
    description = "TRL unpaired preference: prompt, completion, label"
    required = frozenset({"prompt", "completion", "label"})
    hints = frozenset({"completion"})
    owned = frozenset({"prompt", "completion", "label"})
    message_fields = True

    def to_canonical(self, record: dict) -> dict[str, Any]:
        return {"prompt": text_or_messages(record, "prompt", "user"),
                "completion": text_or_messages(record, "completion", "assistant"), "label": _label(record)}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        return {"prompt": dump_messages(record["prompt"], "openai"),
                "completion": dump_messages(record["completion"], "openai"),
                "label": record["label"]}
