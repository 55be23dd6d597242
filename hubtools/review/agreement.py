"""How far reviewers agree: percent agreement, Cohen's kappa, Krippendorff's alpha, per category.

Decisions are nominal labels. ``skip`` means "no opinion" and is left out (a missing value);
every other decision, ``flag`` included, is a label. A pair decision ``'a'``/``'b'`` counts as
the side it prefers (``chosen``/``rejected`` as the dataset had them), so the blind order in which
the responses were shown does not change the figures. Only items rated by two or more reviewers
can show agreement, and each figure says how many items (and reviewer pairs) it rests on.

* **percent agreement**: the mean, over items rated by two or more reviewers, of the share of
  reviewer pairs on that item who gave the same label;
* **Cohen's kappa** (``sklearn.metrics.cohen_kappa_score``): only when exactly two reviewers
  rated, over the items both rated;
* **Krippendorff's alpha** (the ``krippendorff`` package, nominal level): any number of
  reviewers, missing ratings allowed.

When a figure is not defined it is None and ``notes`` says why (one reviewer, no shared item).
When every rating is the same label, chance agreement is 1 and kappa/alpha are 0/0; they are
reported as 1.0 (complete agreement) with a note.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import numpy as np

from .store import AnnotationStore

__all__ = ["AgreementFigures", "AgreementReport", "agreement", "compute_agreement"]

#: The decision that counts as "no rating".
MISSING = "skip"
UNCATEGORIZED = "uncategorized"
_ALL_SAME = "every rating is the same label, so chance agreement is 1 and {} is 0/0; reported as 1.0"


@dataclass
class AgreementFigures:
    """Agreement over one group of items (all of them, or one category)."""

    reviewers: int
    rated_items: int
    items: int
    ratings: int
    pairs: int
    percent_agreement: float | None = None
    cohen_kappa: float | None = None
    cohen_kappa_items: int = 0
    krippendorff_alpha: float | None = None
    labels: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(float(x), 6)

        return {"reviewers": self.reviewers, "rated_items": self.rated_items, "items": self.items,
                "ratings": self.ratings, "pairs": self.pairs,
                "percent_agreement": r(self.percent_agreement), "cohen_kappa": r(self.cohen_kappa),
                "cohen_kappa_items": self.cohen_kappa_items,
                "krippendorff_alpha": r(self.krippendorff_alpha), "labels": self.labels, "notes": self.notes}


@dataclass
class AgreementReport:
    """Agreement overall and per category, with the disputed items for adjudication.

    ``to_dict()`` is what ``hubtools review agreement --json``, the quality report and the
    dataset card show.
    """

    overall: AgreementFigures
    per_category: dict[str, AgreementFigures]
    disagreements: list[dict[str, Any]]
    skipped: int = 0

    @property
    def adjudication_queue(self) -> list[dict[str, Any]]:
        """Disputed items that have no adjudication yet, highest priority first."""
        return [d for d in self.disagreements if d.get("adjudicated") is None]

    def summary(self) -> str:
        """One line, e.g. ``2 reviewers, 40 items: 85.0% agreement, Cohen's kappa 0.70, ...``."""
        o = self.overall
        head = f"{o.reviewers} reviewer{'s' if o.reviewers != 1 else ''}, {o.items} item{'s' if o.items != 1 else ''}"
        if o.percent_agreement is None:
            return f"{head}: agreement not defined ({next(iter(o.notes.values()), 'no shared items')})"
        parts = [f"{o.percent_agreement:.1%} agreement"]
        if o.cohen_kappa is not None:
            parts.append(f"Cohen's kappa {o.cohen_kappa:.2f}")
        if o.krippendorff_alpha is not None:
            parts.append(f"Krippendorff's alpha {o.krippendorff_alpha:.2f}")
        return f"{head}: {', '.join(parts)}; {len(self.adjudication_queue)} to adjudicate"

    def to_dict(self) -> dict[str, Any]:
        return {**self.overall.to_dict(), "level": "nominal", "skipped": self.skipped,
                "per_category": {k: v.to_dict() for k, v in self.per_category.items()},
                "disagreements": self.disagreements, "to_adjudicate": len(self.adjudication_queue),
                "libraries": {"scikit-learn": version("scikit-learn"), "krippendorff": version("krippendorff")}}


def _figures(by_item: Mapping[Hashable, dict[str, str]]) -> AgreementFigures:
    """Agreement figures over ``{item: {reviewer: label}}`` (labels already without skips)."""
    reviewers = sorted({r for ratings in by_item.values() for r in ratings})
    shared = {item: ratings for item, ratings in by_item.items() if len(ratings) >= 2}
    labels = sorted({label for ratings in shared.values() for label in ratings.values()})
    fig = AgreementFigures(len(reviewers), sum(1 for v in by_item.values() if v), len(shared),
                           sum(len(v) for v in shared.values()), 0, labels=labels)
    if len(reviewers) < 2:
        fig.notes["agreement"] = (f"agreement needs at least two reviewers; there {'is' if len(reviewers) == 1 else 'are'} "
                                  f"{len(reviewers)}")
        return fig
    if not shared:
        fig.notes["agreement"] = "no item was rated by two or more reviewers"
        return fig
    shares = []
    for ratings in shared.values():
        pairs = list(itertools.combinations(ratings.values(), 2))
        fig.pairs += len(pairs)
        shares.append(sum(a == b for a, b in pairs) / len(pairs))
    fig.percent_agreement = sum(shares) / len(shares)
    one_label = len(labels) == 1
    if len(reviewers) == 2:
        first, second = reviewers
        both = [r for r in shared.values() if first in r and second in r]
        fig.cohen_kappa_items = len(both)
        if one_label:
            fig.cohen_kappa = 1.0
            fig.notes["cohen_kappa"] = _ALL_SAME.format("kappa")
        else:
            fig.cohen_kappa = _cohen_kappa([r[first] for r in both], [r[second] for r in both], labels)
    else:
        fig.notes["cohen_kappa"] = (f"Cohen's kappa is for two reviewers; there are {len(reviewers)} "
                                    "(see Krippendorff's alpha)")
    if one_label:
        fig.krippendorff_alpha = 1.0
        fig.notes["krippendorff_alpha"] = _ALL_SAME.format("alpha")
    else:
        fig.krippendorff_alpha = _krippendorff_alpha(shared, reviewers, labels)
    return fig


def _cohen_kappa(y1: list[str], y2: list[str], labels: list[str]) -> float:
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(cohen_kappa_score(y1, y2, labels=labels))


def _krippendorff_alpha(shared: Mapping[Hashable, dict[str, str]], reviewers: list[str], labels: list[str]) -> float:
    import krippendorff

    code = {label: i for i, label in enumerate(labels)}
    row = {r: i for i, r in enumerate(reviewers)}
    data = np.full((len(reviewers), len(shared)), np.nan)
    for j, ratings in enumerate(shared.values()):
        for reviewer, label in ratings.items():
            data[row[reviewer], j] = code[label]
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal",
                                     value_domain=list(range(len(labels)))))


def compute_agreement(
    ratings: Iterable[tuple[Hashable, str, str]],
    *,
    categories: Mapping[Hashable, str | None] | None = None,
    info: Mapping[Hashable, dict[str, Any]] | None = None,
    adjudicated: Mapping[Hashable, str] | None = None,
) -> AgreementReport:
    """Agreement over ``(item, reviewer, label)`` ratings; ``skip`` labels count as missing.

    Args:
        categories: ``{item: category}``; items without one are ``"uncategorized"``.
        info: extra fields per item copied into each disagreement (e.g. ``index``, ``priority``).
        adjudicated: ``{item: decision}`` of items already settled.

    Example:
        >>> compute_agreement([(1, "ann", "a"), (1, "bob", "a")]).overall.percent_agreement
        1.0
    """
    by_item: dict[Hashable, dict[str, str]] = defaultdict(dict)
    skipped = 0
    for item, reviewer, label in ratings:
        if label == MISSING or label is None or (isinstance(label, float) and math.isnan(label)):
            skipped += 1
            by_item.setdefault(item, {})
            continue
        by_item[item][reviewer] = label
    groups: dict[str, dict[Hashable, dict[str, str]]] = defaultdict(dict)
    for item, item_ratings in by_item.items():
        category = (categories or {}).get(item) or UNCATEGORIZED
        groups[category][item] = item_ratings
    disagreements = []
    for item, item_ratings in by_item.items():
        votes = Counter(item_ratings.values())
        if len(votes) > 1:
            disagreements.append({"item_id": item, **(info or {}).get(item, {}),
                                  "category": (categories or {}).get(item) or UNCATEGORIZED,
                                  "reviewers": len(item_ratings),
                                  "votes": dict(sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))),
                                  "adjudicated": (adjudicated or {}).get(item)})
    disagreements.sort(key=lambda d: (-float(d.get("priority") or 0), d.get("index", 0), str(d["item_id"])))
    return AgreementReport(_figures(by_item), {k: _figures(v) for k, v in sorted(groups.items())},
                           disagreements, skipped)


def agreement(store: AnnotationStore) -> AgreementReport:
    """Agreement among everyone who reviewed in ``store``, overall and per item category.

    An item's category is the one it was registered with, else the one most of its reviewers
    gave, else ``"uncategorized"``.

    Example:
        >>> agreement(AnnotationStore("reviews.sqlite")).to_dict()["krippendorff_alpha"]  # doctest: +SKIP
        0.71
    """
    items = {item.item_id: item for item in store.items()}
    annotations = store.all_annotations()
    given: dict[str, Counter] = defaultdict(Counter)
    for a in annotations:
        if a.category:
            given[a.item_id][a.category] += 1
    categories = {}
    for item_id in {a.item_id for a in annotations}:
        item = items.get(item_id)
        if item is not None and item.category:
            categories[item_id] = item.category
        elif given[item_id]:
            categories[item_id] = min(given[item_id].items(), key=lambda kv: (-kv[1], kv[0]))[0]
    info = {i: {"index": item.index, "priority": item.priority} for i, item in items.items()}

    def label(item_id: str, decision: str) -> str:
        item = items.get(item_id)
        return (item.side(decision) if item is not None else None) or decision

    settled = {adj.item_id: label(adj.item_id, adj.decision) for adj in store.adjudications()}
    return compute_agreement(((a.item_id, a.reviewer, label(a.item_id, a.decision)) for a in annotations),
                             categories=categories, info=info, adjudicated=settled)
