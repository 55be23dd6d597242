"""Pairwise comparisons, read as ``preference``: two replies to one prompt and who won.

* ``pandalm``: PandaLM's test set, ``instruction``/``input``, ``response1``/``response2`` and
  annotator votes ``annotator1``.. (1 or 2 names the better response, 0 a tie), by majority;
* ``chatbot_arena``: Chatbot Arena conversations, ``conversation_a``/``conversation_b`` (role/content
  lists sharing the user turns) and ``winner`` (``model_a``, ``model_b``, ``tie``, ``tie (bothbad)``);
* ``autoj_pairwise``: auto-j's pairwise set, ``prompt``, ``response 1``/``response 2``, ``label``
  (0 the first is better, 1 the second, 2 a tie);
* ``stack_exchange_paired``: the TRL reward-model set, ``question`` with ``response_j`` (preferred)
  and ``response_k``;
* ``webgpt_comparisons``: openai/webgpt_comparisons, ``question.full_text``, ``answer_0``/``answer_1``
  with ``score_0``/``score_1`` (the higher wins);
* ``pku_saferlhf``: PKU-Alignment/PKU-SafeRLHF, ``prompt``, ``response_0``/``response_1`` and
  ``better_response_id`` (0 or 1; ``safer_response_id`` and the safety labels stay as extras);

Rated and ranked sets (UltraFeedback, Nectar, summarize_from_feedback) are in :mod:`.rated`.

Ties and votes without a majority are quarantined as ``no_preference``. The vote fields are not
consumed: they stay as extras, so writing the format again puts each reply back on its side.
A pair from elsewhere is written with the chosen reply first and a vote for it.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from ..errors import ConversionError, ErrorCode
from ..records import Kind
from .base import Format, dump_messages, fail, optional_str, parse_messages, require_str, user_content
from .preference import _both_replies, _one_of_two, _split_prompt

__all__ = ["AutoJPairwise", "ChatbotArena", "PKUSafeRLHF", "PandaLM", "StackExchangePaired", "WebGPTComparisons"]


def _tie(what: str) -> ConversionError:
    return fail(ErrorCode.NO_PREFERENCE, f"{what}: neither reply is preferred",
                "ties carry no chosen/rejected signal; keep them out of preference data")


class _Pairwise(Format):
    """Two one-turn replies to one prompt; subclasses say where they are and which one won."""

    kind = Kind.PREFERENCE
    first: str
    second: str

    def prompt(self, record: dict) -> tuple[str, dict]:
        """(prompt text, extras to keep)."""
        raise NotImplementedError

    def winner(self, record: dict) -> int:
        """1 or 2; raise NO_PREFERENCE for a tie."""
        raise NotImplementedError

    def put_prompt(self, prompt: str, extra: dict) -> dict[str, Any]:
        raise NotImplementedError

    def vote_for(self, side: int) -> dict[str, Any]:
        """The vote fields of a pair written from elsewhere, whose ``side`` won."""
        raise NotImplementedError

    def to_canonical(self, record: dict) -> dict[str, Any]:
        winner = self.winner(record)
        prompt, keep = self.prompt(record)
        out = _one_of_two(prompt, require_str(record, self.first), require_str(record, self.second),
                          winner == 1)
        if keep:
            out["_extra"] = keep
        return out

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        prompt, chosen, rejected = _both_replies(record, self.name)
        try:
            winner = self.winner(extra)
            votes: dict[str, Any] = {}
        except ConversionError:  # no usable votes among the extras: a pair from elsewhere
            winner, votes = 1, self.vote_for(1)
        first, second = (chosen, rejected) if winner == 1 else (rejected, chosen)
        return {**self.put_prompt(prompt, extra), self.first: first, self.second: second, **votes}


_VOTE = re.compile(r"annotator\d+$")


class PandaLM(_Pairwise):
    name = "pandalm"
    description = "PandaLM: instruction/input, response1/response2, annotator votes (majority wins)"
    required = frozenset({"instruction", "response1", "response2"})
    hints = frozenset({"response1", "response2"})
    owned = frozenset({"instruction", "input", "response1", "response2"})
    first, second = "response1", "response2"
    #: PandaLM's test set (testset-v1.json) writes an empty input as NaN
    nan_as_missing = frozenset({"input"})

    def prompt(self, record: dict) -> tuple[str, dict]:
        input_text = optional_str(record, "input")
        return (user_content(require_str(record, "instruction"), input_text),
                {"input": input_text} if input_text else {})

    def winner(self, record: dict) -> int:
        votes = [v for k, v in sorted(record.items()) if _VOTE.match(k)]
        if not votes:
            raise fail(ErrorCode.MISSING_FIELD, "no annotator votes (annotator1, annotator2, ...)",
                       "give each pair the votes: 1 or 2 for the better response, 0 for a tie")
        if any(isinstance(v, bool) or v not in (0, 1, 2) for v in votes):
            raise fail(ErrorCode.WRONG_TYPE, f"the votes are {votes}, not 0, 1 or 2")
        (top, n), *rest = Counter(votes).most_common()
        if top == 0 or (rest and rest[0][1] == n):
            raise _tie(f"the votes are {votes}")
        return top

    def put_prompt(self, prompt: str, extra: dict) -> dict[str, Any]:
        # the prompt is user_content(instruction, input): split at the kept input, as Alpaca does
        input_text = extra.pop("input", None) or ""
        if input_text and prompt.endswith("\n" + input_text):
            return {"instruction": prompt[: -len(input_text) - 1], "input": input_text}
        return {"instruction": prompt, "input": input_text}

    def vote_for(self, side: int) -> dict[str, Any]:
        return {"annotator1": side}


class AutoJPairwise(_Pairwise):
    name = "autoj_pairwise"
    description = "auto-j pairwise: prompt, 'response 1'/'response 2', label 0 (first), 1 (second), 2 (tie)"
    required = frozenset({"prompt", "response 1", "response 2", "label"})
    hints = frozenset({"response 1", "response 2"})
    owned = frozenset({"prompt", "response 1", "response 2"})
    first, second = "response 1", "response 2"

    def prompt(self, record: dict) -> tuple[str, dict]:
        return require_str(record, "prompt"), {}

    def winner(self, record: dict) -> int:
        label = record.get("label")
        if label == 2 and not isinstance(label, bool):
            raise _tie("label is 2 (a tie)")
        if isinstance(label, bool) or label not in (0, 1):
            raise fail(ErrorCode.WRONG_TYPE, f"label is {label!r}, not 0 (first better), 1 (second) or 2 (tie)")
        return label + 1

    def put_prompt(self, prompt: str, extra: dict) -> dict[str, Any]:
        return {"prompt": prompt}

    def vote_for(self, side: int) -> dict[str, Any]:
        return {"label": side - 1}


class StackExchangePaired(_Pairwise):
    name = "stack_exchange_paired"
    description = "StackExchange paired (TRL reward modelling): question, response_j preferred over response_k"
    required = frozenset({"question", "response_j", "response_k"})
    hints = frozenset({"response_j", "response_k"})
    owned = frozenset({"question", "response_j", "response_k"})
    first, second = "response_j", "response_k"

    def prompt(self, record: dict) -> tuple[str, dict]:
        return require_str(record, "question"), {}

    def winner(self, record: dict) -> int:
        return 1

    def put_prompt(self, prompt: str, extra: dict) -> dict[str, Any]:
        return {"question": prompt}

    def vote_for(self, side: int) -> dict[str, Any]:
        return {}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _object(record: dict, key: str) -> dict:
    value = record.get(key)
    if not isinstance(value, dict):
        raise fail(ErrorCode.WRONG_TYPE, f"{key!r} is not an object")
    return value


class WebGPTComparisons(_Pairwise):
    """openai/webgpt_comparisons: ``question.full_text``, ``answer_0``/``answer_1`` and their
    ``score_0``/``score_1`` (the higher is preferred; equal scores are a tie). The question's other
    fields, the quotes and tokens stay as extras."""

    name = "webgpt_comparisons"
    description = "WebGPT comparisons: question.full_text, answer_0/answer_1 with score_0/score_1 (higher wins)"
    required = frozenset({"question", "answer_0", "answer_1", "score_0", "score_1"})
    hints = frozenset({"answer_0", "answer_1"})
    owned = frozenset({"question", "answer_0", "answer_1"})
    first, second = "answer_0", "answer_1"

    def prompt(self, record: dict) -> tuple[str, dict]:
        question = _object(record, "question")
        text = require_str(question, "full_text")
        return text, {"question": {k: v for k, v in question.items() if k != "full_text"}}

    def winner(self, record: dict) -> int:
        a, b = record.get("score_0"), record.get("score_1")
        if not (_number(a) and _number(b)):
            raise fail(ErrorCode.WRONG_TYPE, f"score_0/score_1 are {a!r}/{b!r}, not numbers")
        if a == b:
            raise _tie(f"both answers score {a:g}")
        return 1 if a > b else 2

    def put_prompt(self, prompt: str, extra: dict) -> dict[str, Any]:
        rest = extra.pop("question", None)
        return {"question": {"full_text": prompt, **(rest if isinstance(rest, dict) else {})}}

    def vote_for(self, side: int) -> dict[str, Any]:
        return {"score_0": 1.0, "score_1": -1.0} if side == 1 else {"score_0": -1.0, "score_1": 1.0}


_ARENA_WINNERS = {"model_a": 1, "model_b": 2}


class ChatbotArena(Format):
    """lmsys/chatbot_arena_conversations: both conversations share the user turns; the prompt is
    what they share up to the first reply, chosen and rejected are the rest of each side."""

    name = "chatbot_arena"
    kind = Kind.PREFERENCE
    description = "Chatbot Arena: conversation_a/conversation_b with winner model_a, model_b or tie"
    required = frozenset({"conversation_a", "conversation_b", "winner"})
    hints = frozenset({"conversation_a", "conversation_b"})
    owned = frozenset({"conversation_a", "conversation_b"})
    message_fields = True

    def to_canonical(self, record: dict) -> dict[str, Any]:
        winner = record.get("winner")
        if winner not in _ARENA_WINNERS:
            if isinstance(winner, str) and winner.startswith("tie"):
                raise _tie(f"winner is {winner!r}")
            raise fail(ErrorCode.WRONG_TYPE, f"winner is {winner!r}, not model_a, model_b or a tie")
        a, _ = parse_messages(record["conversation_a"], field="conversation_a")
        b, _ = parse_messages(record["conversation_b"], field="conversation_b")
        if _ARENA_WINNERS[winner] == 2:
            a, b = b, a
        prompt, chosen, rejected = _split_prompt(a, b)
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "score_chosen": None,
                "score_rejected": None, "tools": None}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        winner = extra.pop("winner", None)
        if winner not in _ARENA_WINNERS:
            winner = "model_a"  # a pair from elsewhere: the chosen side first
        chosen = dump_messages(record["prompt"] + record["chosen"], "openai")
        rejected = dump_messages(record["prompt"] + record["rejected"], "openai")
        a, b = (chosen, rejected) if winner == "model_a" else (rejected, chosen)
        return {"conversation_a": a, "conversation_b": b, "winner": winner}


class PKUSafeRLHF(_Pairwise):
    """PKU-SafeRLHF: two replies with a helpfulness and a safety preference. ``chosen`` is the one
    ``better_response_id`` names (as the dataset's own DPO and reward-model recipes read it);
    ``safer_response_id``, ``is_response_*_safe``, harm categories and severities stay as extras."""

    name = "pku_saferlhf"
    description = "PKU-SafeRLHF: prompt, response_0/response_1, better_response_id (0 or 1); safety labels kept"
    required = frozenset({"prompt", "response_0", "response_1", "better_response_id"})
    hints = frozenset({"response_0", "response_1"})
    owned = frozenset({"prompt", "response_0", "response_1"})
    first, second = "response_0", "response_1"

    def prompt(self, record: dict) -> tuple[str, dict]:
        return require_str(record, "prompt"), {}

    def winner(self, record: dict) -> int:
        better = record.get("better_response_id")
        if isinstance(better, bool) or better not in (0, 1):
            raise fail(ErrorCode.WRONG_TYPE, f"better_response_id is {better!r}, not 0 or 1")
        return better + 1

    def put_prompt(self, prompt: str, extra: dict) -> dict[str, Any]:
        return {"prompt": prompt}

    def vote_for(self, side: int) -> dict[str, Any]:
        return {"better_response_id": side - 1}
