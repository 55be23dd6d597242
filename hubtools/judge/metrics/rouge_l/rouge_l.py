"""rouge_l: ROUGE-L F-measure (longest common word subsequence) as an `evaluate` metric.

Shipped with hubtools so it loads offline (the Hub's `rouge` needs a download and the
`rouge_score` package): `evaluate.load("<hubtools>/judge/metrics/rouge_l")`.
Returns the mean F-measure and the per-example scores.
"""

import re

import datasets
import evaluate

_DESCRIPTION = "ROUGE-L F-measure over lower-cased words (Lin, 2004), without stemming."
_KWARGS = """
Args:
    predictions: list of texts.
    references: list of texts, one per prediction.
Returns:
    rouge_l: the mean F-measure (0 to 1); per_example: the score of each pair.
"""


def _lcs(a, b):
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def _rouge_l(prediction, reference):
    p, r = re.findall(r"\w+", prediction.lower()), re.findall(r"\w+", reference.lower())
    if not p or not r:
        return float(p == r)
    lcs = _lcs(p, r)
    if not lcs:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


class RougeL(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}))

    def _compute(self, predictions, references):
        scores = [_rouge_l(p, r) for p, r in zip(predictions, references)]
        return {"rouge_l": sum(scores) / len(scores) if scores else 0.0, "per_example": scores}
