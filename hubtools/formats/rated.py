"""Preference from rated or ranked replies: more than two replies with scores, or two with a choice.

* ``ultrafeedback``: openbmb/UltraFeedback, an ``instruction`` with rated ``completions`` (four
  models' ``response`` with GPT-4's ``annotations``, ``fine-grained_score`` and ``overall_score``),
  binarised: the best-scored completion is chosen, the worst rejected;
* ``nectar``: berkeley-nest/Nectar, an HH-style ``prompt`` transcript with ranked ``answers``
  (``rank`` 1 is the best): the best-ranked answer is chosen, the worst rejected;
* ``summarize_from_feedback``: openai/summarize_from_feedback's comparisons, ``info.post`` (or
  ``article``), two ``summaries`` and the labeller's ``choice``.

The binarisation has no chance in it (best against worst, the first of equals), every reply and
rating stays as an extra, and writing the format again gives the record back.
"""

from __future__ import annotations

from typing import Any

from ..errors import ErrorCode
from ..records import Kind, message
from .base import Format, fail, require_str
from .pairwise import _number, _object, _tie
from .preference import _both_replies, _one_of_two, _parse_transcript, _render_transcript, _single_reply

__all__ = ["Nectar", "SummarizeFromFeedback", "UltraFeedback"]


def _ranked(items: Any, what: str, text: str, score: str) -> list[dict]:
    """``items`` as a list of objects, each with a text ``text`` and a numeric ``score``."""
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise fail(ErrorCode.WRONG_TYPE, f"{what} is not a list of objects")
    if len(items) < 2:
        raise fail(ErrorCode.NO_PREFERENCE, f"{len(items)} {what}: a pair needs two",
                   f"keep records with a single {text} out of preference data")
    for i, item in enumerate(items):
        if not isinstance(item.get(text), str):
            raise fail(ErrorCode.MISSING_FIELD, f"{what} {i} has no text {text!r}")
        if score and not _number(item.get(score)):
            raise fail(ErrorCode.MISSING_FIELD, f"{what} {i} has no numeric {score!r}")
    return items


#: the completion scores UltraFeedback records carry, in the order they are used: the mean of the
#: four aspect ratings (which HuggingFaceH4/ultrafeedback_binarized moved to after finding the
#: critique's ``overall_score`` unreliable), then that overall score
_UF_SCORES = ("fine-grained_score", "overall_score")


class UltraFeedback(Format):
    """openbmb/UltraFeedback: an instruction and the rated completions of several models.

    Binarised without chance: the completion with the highest score is ``chosen`` and the one
    with the lowest ``rejected`` (the first of equals by position), with their scores in
    ``score_chosen``/``score_rejected``. The score is ``fine-grained_score`` when every completion
    has one, else ``overall_score``; which one, and the positions picked, are kept as extras.
    Nothing is dropped: ``completions`` (every response, annotation and critique), ``models``,
    ``source`` and the rest stay as extras, so writing ``ultrafeedback`` again gives the record
    back. A record whose completions all score the same is ``no_preference``; fewer than two
    completions, a completion without a text ``response`` or without a score is quarantined.
    """

    name = "ultrafeedback"
    kind = Kind.PREFERENCE
    description = "UltraFeedback: instruction with rated completions; best vs worst by fine-grained (else overall) score"
    required = frozenset({"instruction", "completions"})
    hints = frozenset({"completions"})
    owned = frozenset({"instruction"})

    def accepts(self, record: dict) -> bool:
        return "chosen" not in record  # a pair written from UltraFeedback elsewhere keeps 'completions'

    def to_canonical(self, record: dict) -> dict[str, Any]:
        prompt = require_str(record, "instruction")
        completions = _ranked(record.get("completions"), "completions", "response", "")
        key = next((k for k in _UF_SCORES if all(_number(c.get(k)) for c in completions)), None)
        if key is None:
            raise fail(ErrorCode.MISSING_FIELD, "not every completion has a numeric fine-grained_score or overall_score",
                       "score every completion (UltraFeedback's annotations give both)")
        scores = [float(c[key]) for c in completions]
        best, worst = scores.index(max(scores)), scores.index(min(scores))
        if scores[best] == scores[worst]:
            raise _tie(f"every completion has {key} {scores[best]:g}")
        out = _one_of_two(prompt, completions[best]["response"], completions[worst]["response"], True)
        out["score_chosen"], out["score_rejected"] = scores[best], scores[worst]
        out["_extra"] = {"completions": completions, "score_field": key, "chosen_completion": best,
                         "rejected_completion": worst}
        return out

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        prompt, chosen, rejected = _both_replies(record, self.name)
        completions = extra.pop("completions", None)
        for key in ("score_field", "chosen_completion", "rejected_completion"):
            extra.pop(key, None)
        if not isinstance(completions, list):  # a pair from elsewhere: its two replies, scored
            chosen_score, rejected_score = record.get("score_chosen"), record.get("score_rejected")
            completions = [{"response": chosen, "overall_score": 1.0 if chosen_score is None else chosen_score},
                           {"response": rejected, "overall_score": 0.0 if rejected_score is None else rejected_score}]
        return {"instruction": prompt, "completions": completions}


#: how Nectar's prompts end: the empty turn the answer fills
_NECTAR_END = "\n\nAssistant: "


class Nectar(Format):
    """berkeley-nest/Nectar: an HH-style transcript ending on an empty ``Assistant:`` turn, and up
    to seven models' ``answers`` ranked by GPT-4 (``rank`` 1 is the best). The best-ranked answer is
    ``chosen`` and the worst ``rejected`` (the first of equals); every answer stays as an extra, so
    writing ``nectar`` again gives the record back. Equal ranks are ``no_preference``."""

    name = "nectar"
    kind = Kind.PREFERENCE
    description = "Nectar: HH-style prompt transcript with ranked answers (rank 1 best); best vs worst"
    required = frozenset({"prompt", "answers"})
    hints = frozenset({"answers"})
    owned = frozenset({"prompt"})

    def accepts(self, record: dict) -> bool:
        # a pair written from Nectar to another format keeps 'answers' as an extra beside its replies
        return isinstance(record["prompt"], str) and "Human:" in record["prompt"] and "chosen" not in record

    def to_canonical(self, record: dict) -> dict[str, Any]:
        turns = _parse_transcript(require_str(record, "prompt"), "prompt")
        if turns[-1]["role"] != "assistant" or turns[-1]["content"].strip() or len(turns) < 2:
            raise fail(ErrorCode.WRONG_TYPE, "prompt does not end on an empty '\n\nAssistant:' turn",
                       "Nectar's prompts end where the answer starts: '...\n\nAssistant: '")
        answers = _ranked(record.get("answers"), "answers", "answer", "rank")
        ranks = [float(a["rank"]) for a in answers]
        best, worst = ranks.index(min(ranks)), ranks.index(max(ranks))
        if ranks[best] == ranks[worst]:
            raise _tie(f"every answer has rank {ranks[best]:g}")
        extra = {"answers": answers, "chosen_answer": best, "rejected_answer": worst}
        end = record["prompt"][record["prompt"].rindex("\n\nAssistant:"):]
        if end != _NECTAR_END:  # written back as it was
            extra["prompt_end"] = end
        return {"prompt": turns[:-1], "chosen": [message("assistant", answers[best]["answer"])],
                "rejected": [message("assistant", answers[worst]["answer"])], "score_chosen": None,
                "score_rejected": None, "tools": None, "_extra": extra}

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        chosen, rejected = (_single_reply(record[side], side, self.name) for side in ("chosen", "rejected"))
        answers = extra.pop("answers", None)
        extra.pop("chosen_answer", None), extra.pop("rejected_answer", None)
        if not isinstance(answers, list):  # a pair from elsewhere: its two replies, ranked
            answers = [{"answer": chosen, "rank": 1.0}, {"answer": rejected, "rank": 2.0}]
        end = extra.pop("prompt_end", _NECTAR_END)
        return {"prompt": _render_transcript(record["prompt"]) + end, "answers": answers}


class SummarizeFromFeedback(Format):
    """openai/summarize_from_feedback (comparisons): a Reddit post (``info.post``, or a news
    ``info.article``), two ``summaries`` and the labeller's ``choice`` (0 or 1). The prompt is the
    text to summarise under its title, as ``TITLE: ...\n\nPOST: ...\n\nTL;DR:`` (the paper's
    own layout); ``info`` (id, subreddit, ...), the summaries' policies and the labeller stay as
    extras, so writing the format again gives the record back."""

    name = "summarize_from_feedback"
    kind = Kind.PREFERENCE
    description = "summarize_from_feedback comparisons: info.post/article, two summaries, choice 0 or 1"
    required = frozenset({"info", "summaries", "choice"})
    hints = frozenset({"summaries"})
    owned = frozenset({"summaries"})

    def accepts(self, record: dict) -> bool:
        return "chosen" not in record  # a pair it wrote to another format keeps these fields

    def to_canonical(self, record: dict) -> dict[str, Any]:
        info = _object(record, "info")
        body = info.get("post") if isinstance(info.get("post"), str) else info.get("article")
        if not isinstance(body, str) or not body.strip():
            raise fail(ErrorCode.MISSING_FIELD, "info has no text 'post' or 'article' to summarise")
        title = info.get("title")
        prompt = (f"TITLE: {title}\n\n" if isinstance(title, str) and title else "") + \
            f"{'POST' if isinstance(info.get('post'), str) else 'ARTICLE'}: {body}\n\nTL;DR:"
        summaries = _ranked(record.get("summaries"), "summaries", "text", "")
        choice = record.get("choice")
        if len(summaries) != 2 or isinstance(choice, bool) or choice not in (0, 1):
            raise fail(ErrorCode.WRONG_TYPE, f"{len(summaries)} summaries and choice {choice!r}: "
                       "expected two summaries and a choice of 0 or 1")
        out = _one_of_two(prompt, summaries[choice]["text"], summaries[1 - choice]["text"], True)
        out["_extra"] = {"summaries": summaries}
        return out

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        prompt, chosen, rejected = _both_replies(record, self.name)
        summaries = extra.pop("summaries", None)
        if isinstance(summaries, list) and isinstance(extra.get("info"), dict) and extra.get("choice") in (0, 1):
            return {"summaries": summaries}  # info and choice come back from the extras
        body = prompt.removesuffix("\n\nTL;DR:").removeprefix("POST: ")
        return {"info": {"post": body}, "summaries": [{"text": chosen}, {"text": rejected}], "choice": 0}
