"""Instruction formats: Alpaca (with LLaMA-Factory's system/history), Dolly, prompt/reply text
pairs under the common key names, TRL prompt-completion, alpaca_eval outputs and Self-Instruct
seed tasks. All read as ``sft``.

The Alpaca ``input`` is joined to the instruction with one newline (LLaMA-Factory's rule) and
also kept as an extra, so writing Alpaca again splits the two exactly.
"""

from __future__ import annotations

from typing import Any

from ..errors import ErrorCode
from ..records import Kind, message
from .base import (
    Format,
    dump_messages,
    fail,
    only_roles,
    optional_str,
    require_str,
    split_turns,
    text_or_messages,
    user_content,
)

__all__ = ["Alpaca", "AlpacaEvalOutputs", "Dolly", "InputOutput", "ProblemSolution", "PromptCompletion",
           "PromptResponse", "QueryResponse", "QuestionAnswer", "QuestionResponse", "SelfInstruct", "alpaca_fields", "alpaca_history",
           "required_text", "split_user"]


def required_text(record: dict, key: str) -> str:
    """``record[key]`` as text that is not blank: an instruction of spaces is no instruction, even
    when an ``input`` follows it (the prompt would be the input alone)."""
    value = require_str(record, key)
    if not value.strip():
        raise fail(ErrorCode.EMPTY_TEXT, f"{key!r} is blank", f"write the {key}, or drop the record")
    return value


def alpaca_history(record: dict) -> list[dict]:
    """LLaMA-Factory's ``history`` of [query, response] pairs as user/assistant turns."""
    history = record.get("history") or []
    if not isinstance(history, list):
        raise fail(ErrorCode.WRONG_TYPE, "'history' is not a list of [query, response] pairs")
    messages = []
    for i, pair in enumerate(history):
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(x, str) for x in pair):
            raise fail(ErrorCode.WRONG_TYPE, f"history[{i}] is not a [query, response] pair of texts")
        messages += [message("user", pair[0]), message("assistant", pair[1])]
    return messages


def split_user(content: str, extra: dict) -> tuple[str, str]:
    """Recover (instruction, input) from a joined user turn and the kept ``input`` extra."""
    input_text = extra.pop("input", None)
    if isinstance(input_text, str) and input_text and content.endswith("\n" + input_text):
        return content[: -len(input_text) - 1], input_text
    return content, ""


_split_user = split_user  # the older private name, still imported by other format modules


def alpaca_fields(messages: list[dict], tools: str | None, extra: dict, target: str, *,
                  reply: bool) -> dict[str, Any]:
    """Alpaca's fields (instruction, input, output when ``reply``, system, history) of alternating
    user/assistant turns that end with a reply (``reply``) or on the user turn to answer.

    Raises:
        ConversionError: tools, other roles, or turns that do not alternate (CANNOT_CONVERT).
    """
    instead = "convert to sharegpt or openai instead" if reply else "convert to openai_prompt instead"
    if tools:
        raise fail(ErrorCode.CANNOT_CONVERT, f"{target} cannot hold tool definitions", instead)
    system, turns = split_turns(messages)
    only_roles(turns, {"user", "assistant"}, target)
    expected = ["user", "assistant"] * (len(turns) // 2) + ([] if reply else ["user"])
    if not turns or [m["role"] for m in turns] != expected:
        ending = "ending with a reply" if reply else "ending on a user turn"
        raise fail(ErrorCode.CANNOT_CONVERT, f"{target} holds alternating user/assistant turns {ending}", instead)
    last = len(turns) - (2 if reply else 1)  # the instruction's turn; the pairs before it are history
    instruction, input_text = split_user(turns[last]["content"], extra)
    out: dict[str, Any] = {"instruction": instruction, "input": input_text}
    if reply:
        out["output"] = turns[-1]["content"]
    if system is not None:
        out["system"] = system
    if last:
        out["history"] = [[turns[i]["content"], turns[i + 1]["content"]] for i in range(0, last, 2)]
    return out


def _single_turn(record: dict, target: str) -> tuple[str | None, str, str]:
    """(system, user, assistant) of a one-exchange sft record, or CANNOT_CONVERT."""
    system, turns = split_turns(record["messages"])
    only_roles(turns, {"user", "assistant"}, target)
    if len(turns) != 2 or [m["role"] for m in turns] != ["user", "assistant"]:
        raise fail(ErrorCode.CANNOT_CONVERT, f"{target} holds one user turn and one reply, "
                   f"this record has {len(turns)} turns", "convert to sharegpt or openai instead")
    return system, turns[0]["content"], turns[1]["content"]


def _one_exchange(record: dict, extra: dict, target: str) -> tuple[str, str, str]:
    """(instruction, input, reply) of a one-exchange sft record with no system prompt."""
    system, user, reply = _single_turn(record, target)
    if system is not None:
        raise fail(ErrorCode.CANNOT_CONVERT, f"{target} cannot hold a system prompt",
                   "convert to alpaca or openai instead")
    instruction, input_text = split_user(user, extra)
    return instruction, input_text, reply


class Alpaca(Format):
    name = "alpaca"
    kind = Kind.SFT
    description = "Alpaca instruction/input/output, with LLaMA-Factory's system and history"
    required = frozenset({"instruction", "output"})
    hints = frozenset({"instruction", "output", "input"})
    owned = frozenset({"instruction", "input", "output", "system", "history"})

    def to_canonical(self, record: dict) -> dict[str, Any]:
        instruction = required_text(record, "instruction")
        input_text = optional_str(record, "input")
        output = require_str(record, "output")
        system = optional_str(record, "system")
        messages = ([message("system", system)] if system else []) + alpaca_history(record)
        messages += [message("user", user_content(instruction, input_text)),
                     message("assistant", output)]
        out: dict[str, Any] = {"messages": messages, "tools": None}
        if input_text:
            out["_extra"] = {"input": input_text}
        return out

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        return alpaca_fields(record["messages"], record.get("tools"), extra, self.name, reply=True)


class AlpacaEvalOutputs(Format):
    name = "alpaca_eval"
    kind = Kind.SFT
    description = "alpaca_eval model outputs: instruction, output, generator"
    required = frozenset({"instruction", "output", "generator"})
    hints = frozenset({"generator"})
    owned = frozenset({"instruction", "output"})

    def accepts(self, record: dict) -> bool:
        return "input" not in record

    def to_canonical(self, record: dict) -> dict[str, Any]:
        return {"messages": [message("user", require_str(record, "instruction")),
                             message("assistant", require_str(record, "output"))], "tools": None}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        instruction, input_text, reply = _one_exchange(record, extra, self.name)
        return {"instruction": user_content(instruction, input_text), "output": reply}


class SelfInstruct(Format):
    name = "self_instruct"
    kind = Kind.SFT
    description = "Self-Instruct seed tasks: instruction with instances of input/output"
    required = frozenset({"instruction", "instances"})
    hints = frozenset({"instances"})
    owned = frozenset({"instruction", "instances"})

    def to_canonical(self, record: dict) -> dict[str, Any]:
        instruction = required_text(record, "instruction")
        instances = record["instances"]
        if not isinstance(instances, list) or not instances:
            raise fail(ErrorCode.WRONG_TYPE, "'instances' is not a non-empty list")
        if len(instances) != 1:
            raise fail(ErrorCode.WRONG_TYPE,
                       f"the task has {len(instances)} instances; hubtools reads one example a record",
                       "split the instances into one record each")
        instance = instances[0]
        if not isinstance(instance, dict):
            raise fail(ErrorCode.WRONG_TYPE, "instances[0] is not an object")
        input_text = optional_str(instance, "input")
        out: dict[str, Any] = {"messages": [
            message("user", user_content(instruction, input_text)),
            message("assistant", require_str(instance, "output", where="instances[0]."))],
            "tools": None}
        if input_text:
            out["_extra"] = {"input": input_text}
        return out

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        instruction, input_text, reply = _one_exchange(record, extra, self.name)
        return {"instruction": instruction, "instances": [{"input": input_text, "output": reply}]}


class Dolly(Format):
    """databricks-dolly-15k: ``instruction``, optional ``context``, ``response`` (and ``category``,
    kept as an extra). The context joins the instruction like Alpaca's input, and is kept as the
    ``input`` extra, so Dolly -> Alpaca gives instruction/input/output."""

    name = "dolly"
    kind = Kind.SFT
    description = "Dolly: instruction, optional context, response (databricks-dolly-15k)"
    required = frozenset({"instruction", "response"})
    hints = frozenset({"response", "context"})
    owned = frozenset({"instruction", "context", "response"})

    def to_canonical(self, record: dict) -> dict[str, Any]:
        context = optional_str(record, "context")
        out: dict[str, Any] = {"messages": [
            message("user", user_content(required_text(record, "instruction"), context)),
            message("assistant", require_str(record, "response"))], "tools": None}
        if context:
            out["_extra"] = {"input": context}
        return out

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        instruction, context, reply = _one_exchange(record, extra, self.name)
        return {"instruction": instruction, "context": context, "response": reply}


class _TextPair(Format):
    """One prompt text and one reply text under fixed keys, with an optional ``system`` prompt.

    Subclasses set ``prompt_key`` and ``reply_key``; ``required`` and ``owned`` follow from them.
    """

    kind = Kind.SFT
    prompt_key: str
    reply_key: str
    #: where the system prompt is; written back under the first
    system_key: str = "system"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.required = frozenset({cls.prompt_key, cls.reply_key})
        cls.owned = cls.required | {cls.system_key}

    def accepts(self, record: dict) -> bool:
        return (isinstance(record[self.prompt_key], str) and isinstance(record[self.reply_key], str)
                and "instruction" not in record)

    def to_canonical(self, record: dict) -> dict[str, Any]:
        system = optional_str(record, self.system_key)
        return {"messages": [*([message("system", system)] if system else []),
                             message("user", require_str(record, self.prompt_key)),
                             message("assistant", require_str(record, self.reply_key))], "tools": None}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        system, prompt, reply = _single_turn(record, self.name)
        if isinstance(extra.get("input"), str) and prompt.endswith("\n" + extra["input"]):
            del extra["input"]  # an Alpaca input, already part of the prompt text
        out = {self.prompt_key: prompt, self.reply_key: reply}
        return {self.system_key: system, **out} if system is not None else out


class QuestionAnswer(_TextPair):
    name = "question_answer"
    description = "question/answer texts (gsm8k and most QA sets)"
    prompt_key, reply_key = "question", "answer"
    hints = frozenset({"answer"})


class QuestionResponse(_TextPair):
    name = "question_response"
    description = "question/response texts with a system_prompt (OpenOrca, and sets built like it)"
    prompt_key, reply_key, system_key = "question", "response", "system_prompt"
    hints = frozenset({"question", "response"})


class PromptResponse(_TextPair):
    name = "prompt_response"
    description = "prompt/response texts (HelpSteer and many SFT and reward sets)"
    prompt_key, reply_key = "prompt", "response"


class QueryResponse(_TextPair):
    name = "query_response"
    description = "query/response texts"
    prompt_key, reply_key = "query", "response"
    hints = frozenset({"query"})


class ProblemSolution(_TextPair):
    name = "problem_solution"
    description = "problem/solution texts (MATH and most math sets)"
    prompt_key, reply_key = "problem", "solution"
    hints = frozenset({"problem", "solution"})


class InputOutput(_TextPair):
    name = "input_output"
    description = "input/output texts with no instruction"
    prompt_key, reply_key = "input", "output"


class PromptCompletion(Format):
    """TRL's prompt-completion SFT data: ``prompt`` and ``completion`` as texts (standard) or
    message lists (conversational). Written back as texts when the record is one user turn and
    one reply, else as message lists. With a boolean ``label`` it is KTO data (``trl_unpaired``)."""

    name = "prompt_completion"
    kind = Kind.SFT
    description = "TRL prompt-completion: prompt and completion texts or message lists"
    required = frozenset({"prompt", "completion"})
    hints = frozenset({"completion"})
    owned = frozenset({"prompt", "completion"})

    def accepts(self, record: dict) -> bool:
        return "label" not in record

    def to_canonical(self, record: dict) -> dict[str, Any]:
        return {"messages": text_or_messages(record, "prompt", "user")
                + text_or_messages(record, "completion", "assistant"), "tools": None}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        messages = record["messages"]
        if not messages or messages[-1]["role"] != "assistant":
            raise fail(ErrorCode.CANNOT_CONVERT, "prompt_completion needs a conversation that ends with a reply")
        cut = len(messages) - 1
        while cut > 0 and messages[cut - 1]["role"] == "assistant":
            cut -= 1
        prompt, completion = messages[:cut], messages[cut:]
        if [m["role"] for m in prompt] == ["user"] and len(completion) == 1 and not completion[0].get("tool_calls"):
            return {"prompt": prompt[0]["content"], "completion": completion[0]["content"]}
        return {"prompt": dump_messages(prompt, "openai"), "completion": dump_messages(completion, "openai")}
