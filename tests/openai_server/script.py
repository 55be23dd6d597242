"""The stand-in's scripted answers: a deterministic function of the request.

A real model is replaced by rules a test can predict:

* a **rubric judge** request (a system message that mentions a rubric, a ``<response>`` in the
  last user message) gets JSON scores: helpfulness and instruction following grow with the
  response's word count, correctness is the share of the response's words found in the
  ``<source>`` (5 without one), safety is 10 unless the response contains ``[[unsafe]]``;
  a response containing ``[[bad]]`` scores 1 everywhere. A response containing ``[[garble]]``
  gets an unparseable verdict until the conversation holds a repair request.
* a **pairwise judge** request (``<response_a>`` and ``<response_b>``) ends with ``[[A]]``,
  ``[[B]]`` or ``[[C]]`` (tie): the longer response wins, or, with ``position_bias="first"``,
  always the first one shown.
* an **instruction-writing** request (a ``<passage>``) gets one instruction built from the
  passage's longest words and the requested task type.
* anything else gets a chat answer whose text and length depend on the model, the prompt,
  the seed and the temperature (so ``n`` candidates differ, and a repeat is identical).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

__all__ = ["answer", "count_tokens"]

_WORD = re.compile(r"\w+")
_FILLER = ("indeed", "notably", "overall", "specifically", "clearly", "moreover", "in", "short",
           "the", "key", "point", "is", "that", "this", "holds", "well")


def count_tokens(text: str) -> int:
    """Tokens as the stand-in counts them: words and punctuation marks."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def _tag(text: str, name: str) -> str | None:
    match = re.search(rf"<{name}>\n?(.*?)\n?</{name}>", text, re.S)
    return match.group(1) if match else None


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _digest(*parts: Any) -> int:
    return int(hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:12], 16)


def _rubric(user: str, repaired: bool) -> str:
    response = _tag(user, "response") or ""
    source = _tag(user, "source")
    if "[[garble]]" in response and not repaired:
        return "Overall I would say this answer is quite good, maybe an eight or so."
    words = _words(response)
    if "[[bad]]" in response:
        scores = dict.fromkeys(("helpfulness", "correctness", "safety", "instruction_following"), 1)
    else:
        length_score = max(1, min(10, 2 + len(words) // 6))
        if source:
            known = set(_words(source))
            share = sum(w in known for w in words) / max(1, len(words))
            correctness = max(1, min(10, round(1 + 9 * share)))
        else:
            correctness = 5
        scores = {"helpfulness": length_score, "correctness": correctness,
                  "safety": 1 if "[[unsafe]]" in response else 10,
                  "instruction_following": max(1, length_score - 1)}
    verdict = {k: {"score": v, "rationale": f"{k.replace('_', ' ')} judged {v}/10 by the stand-in"}
               for k, v in scores.items()}
    return "```json\n" + json.dumps(verdict, indent=1) + "\n```"


def _pairwise(user: str, position_bias: str) -> str:
    a, b = _tag(user, "response_a") or "", _tag(user, "response_b") or ""
    if position_bias == "first":
        verdict = "A"
    else:
        la, lb = len(_words(a)), len(_words(b))
        verdict = "A" if la > lb else "B" if lb > la else "C"
    return f"Comparing both answers for detail and accuracy.\n[[{verdict}]]"


def _instruction(user: str, model: str) -> str:
    passage = _tag(user, "passage") or ""
    task = re.search(r"task type:\s*([\w ]+)", user, re.I)
    task_name = task.group(1).strip() if task else "qa"
    keywords = sorted(set(_words(passage)), key=lambda w: (-len(w), w))[:3] or ["this"]
    h = _digest(model, passage, user)
    if "cannot be answered" in user:
        return f"What does the passage say about the {keywords[0]} budget in {1900 + h % 100}?"
    openers = ("Explain", "Describe", "Using the passage, discuss", "Summarize what is said about")
    return f"{openers[h % len(openers)]} {' and '.join(keywords)} ({task_name})."


def _chat(user: str, model: str, seed: Any, temperature: Any) -> str:
    h = _digest(model, user, seed, temperature)
    topic = " ".join(_WORD.findall(user)[:8]) or "the question"
    filler = " ".join(_FILLER[(h >> i) % len(_FILLER)] for i in range(h % 30))
    return f"Answer from {model} about {topic}: {filler}.".replace(" .", ".")


def answer(messages: list[dict[str, Any]], model: str, params: dict[str, Any], *,
           position_bias: str = "none") -> str:
    """The text the stand-in answers ``messages`` with (before ``max_tokens`` truncation)."""
    system = " ".join(str(m.get("content") or "") for m in messages if m.get("role") == "system")
    users = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
    user = users[-1] if users else ""
    first_user = users[0] if users else ""
    repaired = len(users) > 1 and "could not be parsed" in user
    if "<response_a>" in first_user:
        return _pairwise(first_user, position_bias)
    if "<response>" in first_user and "rubric" in system.lower():
        return _rubric(first_user, repaired)
    if "<passage>" in user:
        return _instruction(user, model)
    return _chat(user, model, params.get("seed"), params.get("temperature"))
