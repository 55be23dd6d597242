"""Preference (pairwise) formats, all read as ``preference``:

* ``dpo``: flat prompt/chosen/rejected strings (also ``question``, ``input``, or ``instruction``+``input``);
* ``trl``: TRL's conversational prompt/chosen/rejected message lists (implicit prompt too);
* ``sharegpt_preference``: LLaMA-Factory's ranking data (``conversations`` + chosen/rejected turns);
* ``hh_rlhf``: Anthropic HH transcripts, split into a shared prompt and the two replies;
* ``alpaca_eval_pairwise``: judge annotations, ``preference`` 1 or 2 selects the chosen output;
* ``shp``: Stanford SHP, ``history`` with ``human_ref_A``/``human_ref_B``, ``labels`` 1 when A wins.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ErrorCode
from ..records import Kind, message
from .base import (
    Format,
    dump_messages,
    fail,
    only_roles,
    optional_str,
    parse_messages,
    require_str,
    split_turns,
    text_or_messages,
    user_content,
)
from .chat import tools_to_canonical

__all__ = ["HHRLHF", "SHP", "AlpacaEvalPairwise", "FlatDPO", "ShareGPTPreference", "TRLPreference"]

_PROMPT_KEYS = ("prompt", "question", "instruction")


def _scores(record: dict) -> dict[str, float | None]:
    out = {}
    for key in ("score_chosen", "score_rejected"):
        value = record.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise fail(ErrorCode.WRONG_TYPE, f"{key!r} is {type(value).__name__}, not a number")
        out[key] = None if value is None else float(value)
    return out


def _put_scores(out: dict, record: dict) -> dict:
    for key in ("score_chosen", "score_rejected"):
        if record.get(key) is not None:
            out[key] = record[key]
    return out


def _single_reply(messages: list[dict], side: str, target: str) -> str:
    only_roles(messages, {"assistant"}, target)
    if len(messages) != 1:
        raise fail(ErrorCode.CANNOT_CONVERT, f"{target} holds a one-turn {side} reply, "
                   f"this one has {len(messages)} turns", "convert to trl instead")
    return messages[0]["content"]


def _single_prompt(prompt: list[dict], target: str, *, system_ok: bool) -> tuple[str | None, str]:
    system, turns = split_turns(prompt)
    if system is not None and not system_ok:
        raise fail(ErrorCode.CANNOT_CONVERT, f"{target} cannot hold a system prompt",
                   "convert to trl or dpo instead")
    if len(turns) != 1:
        raise fail(ErrorCode.CANNOT_CONVERT, f"{target} holds a one-turn prompt, "
                   f"this one has {len(turns)} turns", "convert to trl or sharegpt_preference instead")
    only_roles(turns, {"user"}, target)
    return system, turns[0]["content"]


def _split_prompt(chosen: list[dict], rejected: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """Split two full conversations into (shared prompt ending on a user turn, chosen, rejected)."""
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    while n > 0 and chosen[n - 1]["role"] != "user":
        n -= 1
    if n == 0:
        raise fail(ErrorCode.UNPAIRED_TRANSCRIPT, "chosen and rejected do not share a prompt",
                   "both sides must start with the same user turns")
    return chosen[:n], chosen[n:], rejected[n:]


class FlatDPO(Format):
    name = "dpo"
    kind = Kind.PREFERENCE
    description = "flat DPO: prompt, chosen, rejected strings (optional system)"
    required = frozenset({"chosen", "rejected"})
    hints = frozenset({"chosen", "rejected"})
    owned = frozenset({*_PROMPT_KEYS, "input", "system", "chosen", "rejected",
                       "score_chosen", "score_rejected"})

    def accepts(self, record: dict) -> bool:
        return (isinstance(record["chosen"], str) and isinstance(record["rejected"], str)
                and any(k in record for k in (*_PROMPT_KEYS, "input")))

    def to_canonical(self, record: dict) -> dict[str, Any]:
        # "input" alone is the prompt (argilla/distilabel-intel-orca-dpo-pairs); beside an
        # instruction it is the instruction's input, as in Alpaca
        key = next((k for k in _PROMPT_KEYS if k in record), "input")
        input_text = optional_str(record, "input") if key == "instruction" else None
        system = optional_str(record, "system")
        prompt = [message("system", system)] if system else []
        prompt.append(message("user", user_content(require_str(record, key), input_text)))
        out: dict[str, Any] = {
            "prompt": prompt,
            "chosen": [message("assistant", require_str(record, "chosen"))],
            "rejected": [message("assistant", require_str(record, "rejected"))],
            **_scores(record), "tools": None,
        }
        # the prompt keys it did not read (a 'question' beside a 'prompt', an 'input' beside no
        # instruction) are kept, not consumed
        unused = {k: record[k] for k in (*_PROMPT_KEYS, "input") if k in record and k != key
                  and not (k == "input" and key == "instruction")}
        if input_text:
            unused["input"] = input_text
        if unused:
            out["_extra"] = unused
        return out

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        system, prompt = _single_prompt(record["prompt"], self.name, system_ok=True)
        if isinstance(extra.get("input"), str) and prompt.endswith("\n" + extra["input"]):
            del extra["input"]  # joined into the prompt when it was read
        out: dict[str, Any] = {"prompt": prompt}
        if system is not None:
            out["system"] = system
        out["chosen"] = _single_reply(record["chosen"], "chosen", self.name)
        out["rejected"] = _single_reply(record["rejected"], "rejected", self.name)
        return _put_scores(out, record)


class TRLPreference(Format):
    name = "trl"
    kind = Kind.PREFERENCE
    description = "TRL conversational preference: prompt/chosen/rejected message lists"
    required = frozenset({"chosen", "rejected"})
    hints = frozenset({"chosen", "rejected"})
    owned = frozenset({"prompt", "chosen", "rejected", "score_chosen", "score_rejected", "tools"})
    message_fields = True

    def accepts(self, record: dict) -> bool:
        return isinstance(record["chosen"], list) and "conversations" not in record

    def to_canonical(self, record: dict) -> dict[str, Any]:
        chosen, _ = parse_messages(record["chosen"], field="chosen")
        rejected, _ = parse_messages(record["rejected"], field="rejected")
        prompt = record.get("prompt")
        if prompt is None:
            prompt, chosen, rejected = _split_prompt(chosen, rejected)
        else:
            prompt = text_or_messages(record, "prompt", "user")
            n = len(prompt)
            if n and chosen[:n] == prompt and rejected[:n] == prompt:
                # the replies repeat the prompt (HuggingFaceH4/ultrafeedback_binarized and its kin):
                # a prompt given twice is the same prompt, and the replies are what follows it
                chosen, rejected = chosen[n:], rejected[n:]
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected, **_scores(record),
                "tools": tools_to_canonical(record)}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        out: dict[str, Any] = {side: dump_messages(record[side], "openai")
                               for side in ("prompt", "chosen", "rejected")}
        if record.get("tools"):
            out["tools"] = record["tools"]
        return _put_scores(out, record)


class ShareGPTPreference(Format):
    name = "sharegpt_preference"
    kind = Kind.PREFERENCE
    description = "LLaMA-Factory ranking data: conversations plus chosen and rejected turns"
    required = frozenset({"conversations", "chosen", "rejected"})
    hints = frozenset({"conversations", "chosen", "rejected"})
    owned = frozenset({"conversations", "chosen", "rejected", "system", "tools"})
    message_fields = True

    def to_canonical(self, record: dict) -> dict[str, Any]:
        prompt, _ = parse_messages(record["conversations"], field="conversations")
        system = optional_str(record, "system")
        if system and not (prompt and prompt[0]["role"] == "system"):
            prompt = [message("system", system), *prompt]
        chosen, _ = parse_messages(record["chosen"], field="chosen")
        rejected, _ = parse_messages(record["rejected"], field="rejected")
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected,
                "score_chosen": None, "score_rejected": None, "tools": tools_to_canonical(record)}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        out: dict[str, Any] = {"conversations": dump_messages(record["prompt"], "sharegpt")}
        for side in ("chosen", "rejected"):
            turns = dump_messages(record[side], "sharegpt")
            out[side] = turns[0] if len(turns) == 1 else turns
        if record.get("tools"):
            out["tools"] = record["tools"]
        return out


_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}
_HH_NAMES = {v: k for k, v in _HH_ROLES.items()}


def _parse_transcript(text: str, side: str) -> list[dict]:
    parts = _HH_TURN.split(text)
    if parts[0].strip() or len(parts) < 3:
        raise fail(ErrorCode.WRONG_TYPE, f"{side!r} is not a '\\n\\nHuman: … \\n\\nAssistant: …' transcript")
    return [message(_HH_ROLES[parts[i]], parts[i + 1]) for i in range(1, len(parts), 2)]


def _render_transcript(messages: list[dict]) -> str:
    only_roles(messages, {"user", "assistant"}, "hh_rlhf")
    return "".join(f"\n\n{_HH_NAMES[m['role']]}: {m['content']}" for m in messages)


class HHRLHF(Format):
    name = "hh_rlhf"
    kind = Kind.PREFERENCE
    description = "Anthropic HH-RLHF transcripts: chosen/rejected '\\n\\nHuman: … \\n\\nAssistant: …'"
    required = frozenset({"chosen", "rejected"})
    hints = frozenset()
    owned = frozenset({"chosen", "rejected"})

    def accepts(self, record: dict) -> bool:
        chosen = record["chosen"]
        return (isinstance(chosen, str) and not any(k in record for k in _PROMPT_KEYS)
                and "Human:" in chosen)

    def to_canonical(self, record: dict) -> dict[str, Any]:
        chosen = _parse_transcript(require_str(record, "chosen"), "chosen")
        rejected = _parse_transcript(require_str(record, "rejected"), "rejected")
        prompt, chosen, rejected = _split_prompt(chosen, rejected)
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected,
                "score_chosen": None, "score_rejected": None, "tools": None}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        return {side: _render_transcript(record["prompt"] + record[side])
                for side in ("chosen", "rejected")}


def _one_of_two(prompt: str, first: str, second: str, first_wins: bool) -> dict[str, Any]:
    """The canonical pair of a prompt and two replies, one of which won."""
    chosen, rejected = (first, second) if first_wins else (second, first)
    return {"prompt": [message("user", prompt)], "chosen": [message("assistant", chosen)],
            "rejected": [message("assistant", rejected)], "score_chosen": None, "score_rejected": None,
            "tools": None}


def _both_replies(record: dict, target: str) -> tuple[str, str, str]:
    """(prompt, chosen, rejected) texts of a one-turn canonical pair, or CANNOT_CONVERT."""
    _, prompt = _single_prompt(record["prompt"], target, system_ok=False)
    return (prompt, _single_reply(record["chosen"], "chosen", target),
            _single_reply(record["rejected"], "rejected", target))


class AlpacaEvalPairwise(Format):
    """alpaca_eval judge annotations. ``preference`` is 1 or 2 (which output won), or, from the
    weighted annotators of AlpacaEval 2.0, a float in [1, 2]: 1 + the judge's probability that
    ``output_2`` is better, so 1.98 prefers output 2 and 1.5 is a tie. Ties (1.5, and the 0 older
    files write) are quarantined as ``no_preference``. Any preference but 1 is kept as an extra,
    so writing alpaca_eval_pairwise again gives the outputs in their order and the exact value."""

    name = "alpaca_eval_pairwise"
    kind = Kind.PREFERENCE
    description = "alpaca_eval judge annotations: output_1/output_2 with preference 1 or 2, or a weight in [1, 2]"
    required = frozenset({"instruction", "output_1", "output_2", "preference"})
    hints = frozenset({"output_1", "output_2", "preference"})
    owned = frozenset({"instruction", "output_1", "output_2", "preference"})

    def to_canonical(self, record: dict) -> dict[str, Any]:
        preference = record["preference"]
        number = isinstance(preference, (int, float)) and not isinstance(preference, bool)
        if not number or preference in (0, 1.5) or preference != preference:  # NaN too
            raise fail(ErrorCode.NO_PREFERENCE,
                       f"preference is {preference!r}: the judge preferred neither output (a tie)",
                       "ties carry no chosen/rejected signal; keep them out of preference data")
        if not 1 <= preference <= 2:
            raise fail(ErrorCode.WRONG_TYPE, f"preference is {preference!r}, not 1, 2 or a weight in [1, 2]",
                       "write 1 when output_1 wins, 2 when output_2 wins")
        out = _one_of_two(require_str(record, "instruction"), require_str(record, "output_1"),
                          require_str(record, "output_2"), preference < 1.5)
        if preference != 1:
            # keep the value, and so the order: generator_1/generator_2 stay true on write
            out["_extra"] = {"preference": preference}
        return out

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        prompt, chosen, rejected = _both_replies(record, self.name)
        preference = extra.pop("preference", 1)
        first, second = (chosen, rejected) if preference < 1.5 else (rejected, chosen)
        return {"instruction": prompt, "output_1": first, "output_2": second, "preference": preference}


class SHP(Format):
    """Stanford Human Preferences: a post (``history``) and two human replies; ``labels`` is 1 when
    ``human_ref_A`` is preferred, 0 when ``human_ref_B`` is. The order is kept (as the ``labels``
    extra) so writing SHP again gives A and B where they were; ``score_A``/``score_B`` stay extras."""

    name = "shp"
    kind = Kind.PREFERENCE
    description = "Stanford SHP: history, human_ref_A/B, labels 1 when A is preferred"
    required = frozenset({"history", "human_ref_A", "human_ref_B", "labels"})
    hints = frozenset({"human_ref_A", "human_ref_B"})
    owned = frozenset({"history", "human_ref_A", "human_ref_B", "labels"})

    def to_canonical(self, record: dict) -> dict[str, Any]:
        labels = record["labels"]
        if isinstance(labels, bool) or labels not in (0, 1):
            raise fail(ErrorCode.WRONG_TYPE, f"labels is {labels!r}, not 1 (A preferred) or 0 (B preferred)")
        out = _one_of_two(require_str(record, "history"), require_str(record, "human_ref_A"),
                          require_str(record, "human_ref_B"), labels == 1)
        if labels == 0:
            out["_extra"] = {"labels": 0}
        return out

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        prompt, chosen, rejected = _both_replies(record, self.name)
        labels = extra.pop("labels", 1)
        a, b = (chosen, rejected) if labels != 0 else (rejected, chosen)
        return {"history": prompt, "human_ref_A": a, "human_ref_B": b, "labels": 0 if labels == 0 else 1}
