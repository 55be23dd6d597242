"""What a judge looks at and what it says: the items judged and the results, shared by every judge."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["JudgeItem", "PairItem", "PairResult", "RubricResult", "combine", "to_dict"]


@dataclass
class JudgeItem:
    """What a judge looks at: the question, the response, and, when known, the source and gold."""

    key: str
    question: str
    response: str
    source: str | None = None
    reference: str | None = None
    #: the source cannot answer the question: the right response says so
    negative: bool = False


@dataclass
class PairItem:
    """Two responses to one question, to compare."""

    key: str
    question: str
    a: str
    b: str
    source: str | None = None



@dataclass
class RubricResult:
    """One response's rubric scores; ``overall`` is their mean."""

    key: str
    scores: dict[str, float]
    rationales: dict[str, str]
    judge: str

    @property
    def overall(self) -> float:
        return round(sum(self.scores.values()) / len(self.scores), 3)


@dataclass
class PairResult:
    """A comparison in both orders: ``winner`` is ``"a"``, ``"b"`` or ``"tie"``."""

    key: str
    winner: str
    #: verdicts as given: first with a shown as A, then with b shown as A
    verdicts: tuple[str, str]
    consistent: bool
    judge: str


def combine(key: str, ab: str, ba: str, judge: str) -> PairResult:
    first = {"A": "a", "B": "b", "C": "tie"}[ab]
    second = {"A": "b", "B": "a", "C": "tie"}[ba]
    winner = first if first == second else "tie"
    return PairResult(key, winner, (ab, ba), first == second, judge)


def to_dict(result: RubricResult | PairResult) -> dict[str, Any]:
    """A result as plain JSON data."""
    return asdict(result)
