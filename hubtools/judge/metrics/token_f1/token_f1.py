"""token_f1: SQuAD-style word-overlap F1 between a prediction and a reference (an `evaluate` metric).

Shipped with hubtools so it loads offline: `evaluate.load("<hubtools>/judge/metrics/token_f1")`.
Returns the mean F1 and the per-example scores.
"""

import re
from collections import Counter

import datasets
import evaluate

_DESCRIPTION = "Word-overlap F1 (lower-cased, punctuation and English articles removed), as in SQuAD."
_KWARGS = """
Args:
    predictions: list of texts.
    references: list of texts, one per prediction.
Returns:
    token_f1: the mean F1 (0 to 1); per_example: the F1 of each pair.
"""


def _tokens(text):
    text = re.sub(r"\b(a|an|the)\b", " ", re.sub(r"[^\w\s]", " ", text.lower()))
    return text.split()


def _f1(prediction, reference):
    p, r = _tokens(prediction), _tokens(reference)
    if not p and not r:
        return 1.0
    common = sum((Counter(p) & Counter(r)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


class TokenF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}))

    def _compute(self, predictions, references):
        scores = [_f1(p, r) for p, r in zip(predictions, references)]
        return {"token_f1": sum(scores) / len(scores) if scores else 0.0, "per_example": scores}
