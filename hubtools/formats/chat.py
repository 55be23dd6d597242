"""Conversation formats: ShareGPT (``conversations`` of from/value, with LLaMA-Factory's
``system`` and ``tools``) and OpenAI chat (``messages`` of role/content, ``tool_calls``, ``tools``).
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ErrorCode
from ..records import Kind, message
from .base import Format, dump_messages, fail, json_dumps, optional_str, parse_messages

__all__ = ["Conversation", "OpenAIChat", "ShareGPT", "tools_to_canonical"]


def tools_to_canonical(record: dict) -> str | None:
    """The ``tools`` field as JSON text (LLaMA-Factory stores text, OpenAI a list)."""
    tools = record.get("tools")
    if tools is None or tools == "":
        return None
    if isinstance(tools, str):
        return tools
    if isinstance(tools, (list, dict)):
        return json_dumps(tools)
    raise fail(ErrorCode.WRONG_TYPE, f"'tools' is {type(tools).__name__}, not a list or JSON text")


def _with_system(record: dict, messages: list[dict]) -> list[dict]:
    system = optional_str(record, "system")
    if system and not (messages and messages[0]["role"] == "system"):
        return [message("system", system), *messages]
    return messages


class ShareGPT(Format):
    name = "sharegpt"
    kind = Kind.SFT
    description = "ShareGPT conversations of from/value (human, gpt, system, function_call, observation)"
    required = frozenset({"conversations"})
    hints = frozenset({"conversations"})
    owned = frozenset({"conversations", "system", "tools"})

    def to_canonical(self, record: dict) -> dict[str, Any]:
        messages, _ = parse_messages(record["conversations"], field="conversations")
        return {"messages": _with_system(record, messages), "tools": tools_to_canonical(record)}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        out: dict[str, Any] = {"conversations": dump_messages(record["messages"], "sharegpt")}
        if record.get("tools"):
            out["tools"] = record["tools"]
        return out


class OpenAIChat(Format):
    field = "messages"
    name = "openai"
    kind = Kind.SFT
    description = "OpenAI chat messages of role/content, with tool_calls, name and tools"
    required = frozenset({"messages"})
    hints = frozenset({"messages"})
    owned = frozenset({"messages", "tools", "system"})

    def to_canonical(self, record: dict) -> dict[str, Any]:
        messages, _ = parse_messages(record[self.field], field=self.field)
        return {"messages": _with_system(record, messages), "tools": tools_to_canonical(record)}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        out: dict[str, Any] = {self.field: dump_messages(record["messages"], "openai")}
        if record.get("tools"):
            try:
                out["tools"] = json.loads(record["tools"])
            except json.JSONDecodeError:
                raise fail(ErrorCode.CANNOT_CONVERT, "'tools' is not valid JSON",
                           "fix the tool definitions") from None
        return out


class Conversation(OpenAIChat):
    """role/content messages under ``conversation`` (lmsys-chat-1m, WildChat)."""

    field = "conversation"
    name = "conversation"
    description = "role/content messages under 'conversation' (lmsys-chat-1m, WildChat)"
    required = frozenset({"conversation"})
    hints = frozenset({"conversation"})
    owned = frozenset({"conversation", "tools", "system"})
