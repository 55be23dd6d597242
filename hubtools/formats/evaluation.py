"""Evaluation files: MT-Bench questions and FastChat judge prompt templates (read as ``prompt``,
prompt-only) and FastChat model answers (``sft``, answers without their questions)."""

from __future__ import annotations

from typing import Any

from ..errors import ErrorCode
from ..records import Kind, message
from .base import Format, fail, only_roles, require_str, split_turns

__all__ = ["FastChatAnswers", "JudgePrompts", "MTBenchQuestions"]


def _texts(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        raise fail(ErrorCode.WRONG_TYPE, f"{field!r} is not a non-empty list of texts")
    return value


class MTBenchQuestions(Format):
    name = "mt_bench"
    kind = Kind.PROMPT
    description = "MT-Bench questions: user 'turns' with a category (prompt-only)"
    required = frozenset({"turns"})
    hints = frozenset({"turns"})
    owned = frozenset({"turns"})

    def to_canonical(self, record: dict) -> dict[str, Any]:
        return {"prompt": [message("user", t) for t in _texts(record["turns"], "turns")],
                "tools": None}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        only_roles(record["prompt"], {"user"}, self.name)
        return {"turns": [m["content"] for m in record["prompt"]]}


class FastChatAnswers(Format):
    name = "fastchat_answers"
    kind = Kind.SFT
    description = "FastChat model answers: question_id with choices[0].turns (answers only)"
    required = frozenset({"choices", "question_id"})
    hints = frozenset({"choices"})
    owned = frozenset({"choices"})
    answers_only = True

    def to_canonical(self, record: dict) -> dict[str, Any]:
        choices = record["choices"]
        if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
            raise fail(ErrorCode.WRONG_TYPE, "'choices' is not a list of exactly one answer",
                       "split multiple choices into one record each")
        turns = _texts(choices[0].get("turns"), "choices[0].turns")
        return {"messages": [message("assistant", t) for t in turns], "tools": None}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        only_roles(record["messages"], {"assistant"}, self.name)
        return {"choices": [{"index": 0, "turns": [m["content"] for m in record["messages"]]}]}


class JudgePrompts(Format):
    name = "judge_prompts"
    kind = Kind.PROMPT
    description = "FastChat judge prompts: system_prompt and prompt_template (prompt-only)"
    required = frozenset({"system_prompt", "prompt_template"})
    hints = frozenset({"system_prompt", "prompt_template"})
    owned = frozenset({"system_prompt", "prompt_template"})

    def to_canonical(self, record: dict) -> dict[str, Any]:
        return {"prompt": [message("system", require_str(record, "system_prompt")),
                           message("user", require_str(record, "prompt_template"))],
                "tools": None}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        system, turns = split_turns(record["prompt"])
        only_roles(turns, {"user"}, self.name)
        if system is None or len(turns) != 1:
            raise fail(ErrorCode.CANNOT_CONVERT, "judge_prompts holds one system and one user turn")
        return {"system_prompt": system, "prompt_template": turns[0]["content"]}
