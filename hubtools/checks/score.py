"""One 0-1 quality score per record, from the checks' flags: a documented formula, not a model.

Each check that flags a record costs it a share of its score, and the shares multiply::

    score(record) = product over the checks that flagged it of (1 - WEIGHTS[check])

A record no check flagged scores 1.0; a quarantined record (``schema``) scores 0.0, and so does
one flagged by a check of weight 1 (contamination). Weights say how sure a flag is that the
record should not be trained on: a contaminated or toxic reply is near-certain harm, a member of
an over-used template is mostly fine. Checks that did not run, or do not apply, cost nothing;
``contributing`` names those that did.

Only scores below 1.0 are stored (by source index), so a million clean records cost nothing in
``quality.json``; a histogram over every valid record goes into the report.

>>> from hubtools.checks.base import CheckResult
>>> from hubtools.checks.runner import QualityResult
>>> q = QualityResult({"valid": 4}, {"toxicity": CheckResult("toxicity", [1]),
...                                  "near_duplicates": CheckResult("near_duplicates", [1, 2])})
>>> record_scores(q).scores
{1: 0.07, 2: 0.7}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["WEIGHTS", "QualityScores", "record_scores"]

#: the share of a record's score each check's flag takes away
WEIGHTS: dict[str, float] = {
    "schema": 1.0,            # not a valid record at all
    "contamination": 1.0,     # an evaluation item in the training data
    "toxicity": 0.9,
    "refusals": 0.7,
    "repetition": 0.7,        # looping or runaway generations
    "preference": 0.6,        # identical or empty replies in a pair
    "exact_duplicates": 0.5,  # every member after the first
    "length_outliers": 0.5,
    "language": 0.5,
    "pii": 0.4,
    "near_duplicates": 0.3,
    "diversity": 0.15,        # an over-used template: mostly fine one by one
    "categories": 0.0,        # a category says what a record is, not that it is bad
}
_BINS = 10


@dataclass
class QualityScores:
    """Scores below 1.0 by source index, and what they were made of."""

    scores: dict[int, float]
    valid: int
    contributing: list[str]
    weights: dict[str, float] = field(default_factory=lambda: dict(WEIGHTS))
    #: quarantined source indices (score 0, not among the valid records)
    quarantined: frozenset[int] = frozenset()

    def score(self, index: int) -> float:
        return self.scores.get(index, 1.0)

    def _valid_scores(self) -> list[float]:
        return [s for i, s in self.scores.items() if i not in self.quarantined]

    def histogram(self) -> list[int]:
        """Valid records per score bin [0, 0.1), ..., [0.9, 1.0]: the unflagged ones fall in the last."""
        counts = [0] * _BINS
        below = self._valid_scores()
        for score in below:
            counts[min(int(score * _BINS), _BINS - 1)] += 1
        counts[-1] += max(self.valid - len(below), 0)
        return counts

    def mean(self) -> float | None:
        """The mean score of the valid records (None when there are none)."""
        if not self.valid:
            return None
        return round(1.0 - sum(1.0 - s for s in self._valid_scores()) / self.valid, 4)

    def to_dict(self) -> dict[str, Any]:
        return {"formula": "product over the checks that flagged the record of (1 - weight); 1.0 when none did",
                "weights": self.weights, "contributing": self.contributing, "mean": self.mean(),
                "histogram": self.histogram(), "below_one": {str(k): v for k, v in sorted(self.scores.items())}}


def record_scores(quality: Any, weights: dict[str, float] | None = None) -> QualityScores:
    """The quality score of every flagged record of a :class:`~hubtools.checks.runner.QualityResult`."""
    weights = {**WEIGHTS, **(weights or {})}
    scores: dict[int, float] = {}
    contributing = []
    for name, result in quality.results.items():
        weight = float(weights.get(name, 0.0))
        if not result.applicable or weight <= 0.0:
            continue
        contributing.append(name)
        for index in result.flagged:
            scores[index] = scores.get(index, 1.0) * (1.0 - weight)
    schema = quality.results.get("schema")
    quarantined = frozenset(schema.flagged) if schema is not None else frozenset()
    rounded = {i: round(s, 4) for i, s in scores.items() if s < 1.0}
    return QualityScores(rounded, int(quality.dataset.get("valid", 0) or 0), contributing, weights, quarantined)
