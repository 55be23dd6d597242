"""Human review: a prioritised queue, a per-reviewer annotation store, agreement, and applying reviews.

Everything a reviewer does in the app is one call here::

    queue = build_queue(dataset, flags=flags_from_checks(results))   # hallucination-prone, low margin first
    queue = build_queue(dataset, quality=quality_from_file("q/quality.json"), order="quality")  # or: worst first
    store = AnnotationStore("reviews.sqlite", adjudicators={"owner"})
    store.register(queue)
    sync = ReviewSync(store, "me/reviews", every=5)                    # team mode: restore, then push
    store.pending("alice", queue, limit=1)[0].view()                   # what to show
    store.annotate("alice", item_id, "b", note="A invents a date")     # her decision
    report = agreement(store)                                          # percent, kappa, alpha, per category
    store.adjudicate("owner", report.adjudication_queue[0]["item_id"], "a")
    result = apply_reviews(dataset, store)                             # swaps, edits, exclusions

Modules: ``items`` (queue and item ids), ``store`` (SQLite), ``agreement``, ``apply`` (apply
and export), ``sync`` (Hub persistence with ``CommitScheduler``).
"""

from __future__ import annotations

from .agreement import AgreementFigures, AgreementReport, agreement, compute_agreement
from .apply import ApplyResult, apply_file, apply_reviews, export_annotations
from .items import (
    HALLUCINATION_MARKERS,
    PAIR_DECISIONS,
    SFT_DECISIONS,
    ReviewItem,
    ReviewQueue,
    build_queue,
    decisions_for,
    flags_from_checks,
    item_identity,
    quality_from_file,
)
from .store import Adjudication, Annotation, AnnotationStore, check_reviewer
from .sync import (
    RestoreResult,
    ReviewSync,
    export_folder,
    restore_folder,
    restore_from_hub,
)

__all__ = [
    "HALLUCINATION_MARKERS",
    "PAIR_DECISIONS",
    "SFT_DECISIONS",
    "Adjudication",
    "AgreementFigures",
    "AgreementReport",
    "Annotation",
    "AnnotationStore",
    "ApplyResult",
    "RestoreResult",
    "ReviewItem",
    "ReviewQueue",
    "ReviewSync",
    "agreement",
    "apply_file",
    "apply_reviews",
    "build_queue",
    "check_reviewer",
    "compute_agreement",
    "decisions_for",
    "export_annotations",
    "export_folder",
    "flags_from_checks",
    "item_identity",
    "quality_from_file",
    "restore_folder",
    "restore_from_hub",
]
