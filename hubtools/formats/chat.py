"""Conversation formats: ShareGPT (``conversations`` of from/value, with LLaMA-Factory's
``system`` and ``tools``) and OpenAI chat (``messages`` of role/content, ``tool_calls``, ``tools``).
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ErrorCode
from ..records import Kind, message
from .base import Format, dump_messages, fail, json_dumps, optional_str, parse_messages, require_str

__all__ = ["Capybara", "Conversation", "Firefly", "OpenAIChat", "ShareGPT", "tools_to_canonical"]


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
    message_fields = True

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
    message_fields = True

    def to_canonical(self, record: dict) -> dict[str, Any]:
        value = record[self.field]
        if isinstance(value, str):  # the messages as one JSON string (microsoft/orca-agentinstruct-1M):
            try:                    # read as the list it holds, and written as a list
                value = json.loads(value)
            except json.JSONDecodeError:
                raise fail(ErrorCode.WRONG_TYPE, f"{self.field!r} is not a list of messages (nor a JSON string of one)") from None
        messages, _ = parse_messages(value, field=self.field)
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


class Capybara(Format):
    """A ``conversation`` of ``input``/``output`` exchanges (LDJnr/Capybara, Pure-Dove)."""

    name = "capybara"
    kind = Kind.SFT
    description = "a 'conversation' of input/output exchanges (LDJnr/Capybara)"
    required = frozenset({"conversation"})
    hints = frozenset()
    owned = frozenset({"conversation"})
    user_key, reply_key = "input", "output"

    def accepts(self, record: dict) -> bool:
        turns = record["conversation"]
        return isinstance(turns, list) and bool(turns) and all(
            isinstance(t, dict) and self.user_key in t and "role" not in t for t in turns)

    def to_canonical(self, record: dict) -> dict[str, Any]:
        messages = []
        for i, turn in enumerate(record["conversation"]):
            where = f"conversation[{i}]."
            messages += [message("user", require_str(turn, self.user_key, where=where)),
                         message("assistant", require_str(turn, self.reply_key, where=where))]
        return {"messages": messages, "tools": None}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        turns = record["messages"]
        roles = [m["role"] for m in turns]
        if not turns or len(turns) % 2 or roles != ["user", "assistant"] * (len(turns) // 2):
            raise fail(ErrorCode.CANNOT_CONVERT, f"{self.name} holds alternating user/assistant turns, no system",
                       "convert to openai or sharegpt instead")
        return {"conversation": [{self.user_key: turns[i]["content"], self.reply_key: turns[i + 1]["content"]}
                                 for i in range(0, len(turns), 2)]}


class Firefly(Capybara):
    """Firefly's ``conversation`` of ``human``/``assistant`` exchanges (YeungNLP/firefly-train-1.1M;
    ``conversation_id`` and ``category`` stay as extras)."""

    name = "firefly"
    description = "Firefly: a 'conversation' of human/assistant exchanges"
    user_key, reply_key = "human", "assistant"
