"""Prompt lists, read as ``prompt`` (prompt-only, TRL's name): what generation starts from.

People keep prompts in many shapes: Alpaca records with no ``output`` (or ``"output": ""``),
``{"instruction": ...}``, ``{"prompt": ...}`` (arena-hard's question.jsonl too),
``{"question": ...}``, OpenAI ``messages`` or ShareGPT ``conversations`` that end on the user's
turn, and JSON Lines whose every line is a bare string. Each reads as a ``prompt`` message list
ending on a user turn; the keys it does not name are kept and written back.

A record that has a reply is not a prompt: these formats leave it to the reply formats
(``alpaca``, ``openai``, ...), and in a prompt list it is quarantined naming the format it is in.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import ErrorCode
from ..records import Kind, message
from .base import (
    Format,
    dump_messages,
    fail,
    optional_str,
    require_str,
    split_turns,
    text_or_messages,
    user_content,
)
from .chat import OpenAIChat, ShareGPT
from .instruction import alpaca_fields, alpaca_history, required_text

__all__ = ["AlpacaPrompt", "OpenAIPrompt", "PromptOnly", "PromptText", "QuestionOnly", "ShareGPTPrompt",
           "has_reply_key"]

#: Words that make a key a reply (``output``, ``response_j``, ``chosen``, ``answer``, ...).
_REPLY_WORDS = ("output", "response", "answer", "completion", "chosen", "rejected", "reply", "solution",
                "label", "instances", "turns", "conversation", "messages", "preference", "winner")


def has_reply_key(record: dict, *, allowed: frozenset[str] = frozenset()) -> bool:
    """Whether ``record`` has a key that holds a reply (or a reply-bearing structure).

    >>> has_reply_key({"prompt": "hi", "response 1": "a"})
    True
    """
    return any(word in key.lower() for key in record if key not in allowed for word in _REPLY_WORDS)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _user_last(messages: Any, role_key: str, user_roles: frozenset[str]) -> bool:
    return (isinstance(messages, list) and bool(messages) and isinstance(messages[-1], dict)
            and messages[-1].get(role_key) in user_roles)


class AlpacaPrompt(Format):
    """Alpaca without its reply: ``instruction``, optional ``input``, ``system``, ``history``; no
    ``output``, or an empty one (kept as it was)."""

    name = "alpaca_prompt"
    kind = Kind.PROMPT
    #: the reply format this one is the prompt-only twin of: in such a file a record of this
    #: shape is quarantined as ``no_reply`` (see :func:`hubtools.formats.to_canonical`)
    reply_format: ClassVar[str] = "alpaca"
    description = "Alpaca instruction/input with no output (or an empty one): prompt-only"
    required = frozenset({"instruction"})
    owned = frozenset({"instruction", "input", "system", "history"})

    def accepts(self, record: dict) -> bool:
        return _blank(record.get("output")) and not has_reply_key(record, allowed=frozenset({"output"}))

    def to_canonical(self, record: dict) -> dict[str, Any]:
        instruction = required_text(record, "instruction")
        input_text = optional_str(record, "input")
        system = optional_str(record, "system")
        prompt = ([message("system", system)] if system else []) + alpaca_history(record)
        prompt.append(message("user", user_content(instruction, input_text)))
        out: dict[str, Any] = {"prompt": prompt, "tools": None}
        if input_text:
            out["_extra"] = {"input": input_text}
        return out

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        return alpaca_fields(record["prompt"], record.get("tools"), extra, self.name, reply=False)


class _OneText(Format):
    """One prompt under ``key`` (text, or a message list for ``prompt``), optional ``system``."""

    kind = Kind.PROMPT
    key: ClassVar[str]
    lists: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.required = frozenset({cls.key})
        cls.owned = frozenset({cls.key, "system"})

    def accepts(self, record: dict) -> bool:
        value = record[self.key]
        return (isinstance(value, str) or (self.lists and isinstance(value, list))) and not has_reply_key(record)

    def to_canonical(self, record: dict) -> dict[str, Any]:
        system = optional_str(record, "system")
        prompt = text_or_messages(record, self.key, "user") if self.lists else [
            message("user", require_str(record, self.key))]
        if system and not (prompt and prompt[0]["role"] == "system"):
            prompt.insert(0, message("system", system))
        return {"prompt": prompt, "tools": None}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        extra.pop("input", None)  # an Alpaca input is already part of the prompt text
        for key in [k for k, v in extra.items() if _blank(v) and has_reply_key({k: v})]:
            del extra[key]  # an empty reply ("output": "") says what a prompt-only record says by itself
        system, turns = split_turns(record["prompt"])
        if [m["role"] for m in turns] == ["user"] and not turns[0].get("tool_calls"):
            out = {self.key: turns[0]["content"]}
            return {"system": system, **out} if system is not None else out
        if not self.lists:
            raise fail(ErrorCode.CANNOT_CONVERT, f"{self.name} holds one user turn",
                       "convert to prompt or openai_prompt instead")
        return {self.key: dump_messages(record["prompt"], "openai")}


class PromptOnly(_OneText):
    name = "prompt"
    description = "prompt-only: a 'prompt' text or message list and no reply (TRL; arena-hard questions)"
    key = "prompt"
    lists = True


class QuestionOnly(_OneText):
    name = "question"
    description = "prompt-only: a 'question' text and no answer"
    key = "question"


class _Twin:
    """The prompt-only twin of a chat format: its reading and writing, with ``prompt`` for ``messages``."""

    def to_canonical(self, record: dict) -> dict[str, Any]:
        out = super().to_canonical(record)  # type: ignore[misc]
        return {"prompt": out["messages"], "tools": out["tools"]}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        return super().from_canonical({**record, "messages": record["prompt"]}, extra)  # type: ignore[misc]


class OpenAIPrompt(_Twin, OpenAIChat):
    """OpenAI chat ``messages`` ending on a user turn: the conversation so far, to be answered."""

    field = "messages"
    name = "openai_prompt"
    kind = Kind.PROMPT
    reply_format: ClassVar[str] = "openai"
    description = "prompt-only: OpenAI chat messages ending on a user turn"
    hints = frozenset()

    def accepts(self, record: dict) -> bool:
        return _user_last(record[self.field], "role", frozenset({"user", "human"})) and "label" not in record


class ShareGPTPrompt(_Twin, ShareGPT):
    """ShareGPT ``conversations`` ending on a human turn."""

    name = "sharegpt_prompt"
    kind = Kind.PROMPT
    reply_format: ClassVar[str] = "sharegpt"
    description = "prompt-only: ShareGPT conversations ending on a human turn"
    hints = frozenset()

    def accepts(self, record: dict) -> bool:
        return _user_last(record["conversations"], "from", frozenset({"human", "user"})) and not (
            {"chosen", "rejected", "label"} & record.keys())


class PromptText(Format):
    """One prompt a line: a JSON Lines file whose lines are bare strings, or (asked for with
    ``--format prompt_text``) the lines of a ``.txt`` file. Written as ``{"prompt": ...}`` objects
    (CSV and Parquet hold no bare strings), which this format (and ``prompt``) reads back."""

    name = "prompt_text"
    kind = Kind.PROMPT
    description = "prompt-only: bare JSON strings, one prompt a line (or .txt lines with --format prompt_text)"
    required = frozenset({"text"})
    owned = frozenset({"text", "prompt"})
    scalar = True

    def matches(self, record: dict) -> bool:
        # a bare string arrives as {"text": ...}; {"prompt": "..."} is how this format is written
        return any(isinstance(record.get(key), str) for key in ("text", "prompt"))

    def to_canonical(self, record: dict) -> dict[str, Any]:
        key = "text" if isinstance(record.get("text"), str) else "prompt"
        return {"prompt": [message("user", require_str(record, key))], "tools": None}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        system, turns = split_turns(record["prompt"])
        if system is not None or [m["role"] for m in turns] != ["user"]:
            raise fail(ErrorCode.CANNOT_CONVERT, "prompt_text holds one user turn",
                       "convert to prompt or openai_prompt instead")
        return {"prompt": turns[0]["content"]}
