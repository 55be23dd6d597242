"""Turn annotations into the reviewed dataset, and export them for the dataset owner.

For each record, the outcome is the adjudication if there is one, else the majority of the
reviewers' decisions (``skip`` does not vote). Then:

* preference: ``'a'``/``'b'`` keeps the pair, swapping chosen and rejected (and their scores)
  when reviewers preferred the rejected side; ``tie`` and ``flag`` exclude it;
* SFT: ``accept`` keeps it, ``reject`` and ``flag`` exclude it;
* an edit (the adjudicator's, else the latest among the reviewers who voted the outcome)
  replaces the preferred response's / the reply's last assistant message;
* no majority (e.g. one ``'a'``, one ``'b'``) excludes the record as ``disputed`` until someone
  adjudicates; unreviewed records are kept unchanged unless ``keep_unreviewed=False``.

Records in = records out + excluded, and every excluded record carries its reason. Annotations
whose item id matches no record (the text changed since) are reported as ``stale``.
"""

from __future__ import annotations

import copy
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset

from ..errors import HubtoolsError, ReviewError
from ..io import write_jsonl, write_records
from ..load import LoadResult, canonical_dataset, load
from ..records import EXTRA, INDEX, Kind, dump_extra, load_extra
from .items import _a_side, _guess_kind, item_identity
from .store import Adjudication, Annotation, AnnotationStore

__all__ = ["ApplyResult", "apply_file", "apply_reviews", "export_annotations"]

_EXCLUDING = {"tie": "tie", "flag": "flagged", "reject": "rejected"}


@dataclass
class ApplyResult:
    """The reviewed dataset, the records left out with reasons, and what changed."""

    dataset: Dataset
    kind: Kind
    excluded: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts with ``in == out + excluded``, reasons, and the stale annotation items."""
        return {"kind": self.kind.value, **self.counts,
                "by_reason": dict(Counter(e["reason"] for e in self.excluded).most_common()),
                "stale_items": len(self.stale)}

    def write_excluded(self, path: str | os.PathLike) -> int:
        """Write the excluded records as JSON Lines (``index``, ``item_id``, ``reason``, ``detail``, ``record``)."""
        return write_jsonl(path, self.excluded)


def _last_assistant(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((m for m in reversed(messages) if m["role"] == "assistant"), None)


def _outcome(votes: list[Annotation], adjudication: Adjudication | None) -> tuple[str | None, str | None, dict]:
    """(decision, edit, detail) for one item; decision None when there is no majority."""
    counted = [a for a in votes if a.decision != "skip"]
    tally = Counter(a.decision for a in counted)
    detail: dict[str, Any] = {"votes": dict(tally.most_common()), "reviewers": len(counted)}
    if adjudication is not None:
        detail["adjudicated"] = True
        return adjudication.decision, adjudication.edited, detail
    if not counted:
        return None, None, detail
    ranked = tally.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None, None, detail
    decision = ranked[0][0]
    edits = sorted((a for a in counted if a.decision == decision and a.edited), key=lambda a: a.updated_at)
    if len({a.edited for a in edits}) > 1:
        detail["conflicting_edits"] = len({a.edited for a in edits})
    return decision, (edits[-1].edited if edits else None), detail


def _notes(votes: list[Annotation], adjudication: Adjudication | None) -> list[str]:
    notes = [a.note for a in votes if a.note]
    return notes + ([adjudication.note] if adjudication is not None and adjudication.note else [])


def _exclusion(decision: str | None, detail: dict[str, Any], keep_unreviewed: bool) -> str | None:
    """Why a record with this outcome is left out, or None to keep it."""
    if decision is None:
        if detail["reviewers"] == 0:
            return None if keep_unreviewed else "unreviewed"
        return "disputed"
    return _EXCLUDING.get(decision)


def _reviewed(record: dict[str, Any], kind: Kind, a_side: str, decision: str,
              edit: str | None) -> tuple[dict[str, Any], bool]:
    """A copy of ``record`` with the preferred side as chosen and the edit applied; and whether it swapped."""
    out = copy.deepcopy(record)
    swapped = False
    if kind is Kind.PREFERENCE:
        winner = a_side if decision == "a" else ("rejected" if a_side == "chosen" else "chosen")
        if winner == "rejected":
            swapped = True
            out["chosen"], out["rejected"] = out["rejected"], out["chosen"]
            out["score_chosen"], out["score_rejected"] = out.get("score_rejected"), out.get("score_chosen")
    target = _last_assistant(out["chosen"] if kind is Kind.PREFERENCE else out["messages"])
    if edit is not None and target is not None:
        target["content"] = edit
    return out, swapped


def apply_reviews(
    dataset: Dataset,
    store: AnnotationStore,
    *,
    kind: Kind | str | None = None,
    keep_unreviewed: bool = True,
    provenance: bool = True,
) -> ApplyResult:
    """Apply the store's annotations to ``dataset``; return the reviewed dataset and the excluded records.

    Args:
        kind: the dataset's kind (preference or sft); guessed from its columns if not given.
        keep_unreviewed: keep records nobody reviewed (else exclude them as ``unreviewed``).
        provenance: record the outcome in each kept record's ``hubtools_extra["review"]``.

    Raises:
        ReviewError: the dataset is neither preference nor SFT data.

    Example:
        >>> result = apply_reviews(dataset, AnnotationStore("reviews.sqlite"))  # doctest: +SKIP
        >>> result.counts["in"] == result.counts["out"] + result.counts["excluded"]  # doctest: +SKIP
        True
    """
    kind = Kind(kind) if kind is not None else _guess_kind(dataset)
    if kind not in (Kind.PREFERENCE, Kind.SFT):
        raise ReviewError(f"{kind.value} records cannot be reviewed", hint="apply reviews to preference or SFT data")
    by_item: dict[str, list[Annotation]] = defaultdict(list)
    for annotation in store.all_annotations():
        by_item[annotation.item_id].append(annotation)
    adjudications = {a.item_id: a for a in store.adjudications()}
    seen: set[str] = set()
    kept: list[dict[str, Any]] = []
    excluded: list[dict[str, Any]] = []
    counts = Counter({"in": 0, "swapped": 0, "edited": 0, "unreviewed": 0, "adjudicated": 0})
    for record in dataset:
        counts["in"] += 1
        item_id, digest = item_identity(record, kind)
        seen.add(item_id)
        votes, adjudication = by_item.get(item_id, []), adjudications.get(item_id)
        decision, edit, detail = _outcome(votes, adjudication)
        counts["adjudicated"] += adjudication is not None
        reason = _exclusion(decision, detail, keep_unreviewed)
        counts["unreviewed"] += detail["reviewers"] == 0 and adjudication is None
        if reason is not None:
            excluded.append({"index": record[INDEX], "item_id": item_id, "reason": reason,
                             "detail": {**detail, "notes": _notes(votes, adjudication)}, "record": record})
            continue
        if decision is None:  # unreviewed, kept as it is
            kept.append(record)
            continue
        out, swapped = _reviewed(record, kind, _a_side(digest), decision, edit)
        counts["swapped"] += swapped
        counts["edited"] += edit is not None
        if provenance:
            extra = load_extra(out.get(EXTRA))
            extra["review"] = {"decision": decision, **detail, "swapped": swapped, "edited": edit is not None}
            out[EXTRA] = dump_extra(extra)
        kept.append(out)
    counts["out"], counts["excluded"] = len(kept), len(excluded)
    stale = sorted((set(by_item) | set(adjudications)) - seen)
    return ApplyResult(canonical_dataset(kept, kind), kind, excluded, dict(counts), stale)


def export_annotations(store: AnnotationStore, path: str | os.PathLike) -> int:
    """Write every annotation and adjudication to ``path`` (.jsonl, .parquet, .csv); return the row count.

    One row per (item, reviewer) with ``role="reviewer"``, plus one per adjudication with
    ``role="adjudicator"``; item fields (source index, kind, category) and ``preferred`` (the
    canonical side an ``'a'``/``'b'`` decision picks) are joined in. For the dataset owner.

    Example:
        >>> export_annotations(AnnotationStore("reviews.sqlite"), "annotations.parquet")  # doctest: +SKIP
        120
    """
    items = {item.item_id: item for item in store.items()}
    rows = []
    entries = [("reviewer", a.reviewer, a) for a in store.all_annotations()]
    entries += [("adjudicator", a.adjudicator, a) for a in store.adjudications()]
    for role, who, entry in entries:
        item = items.get(entry.item_id)
        rows.append({"item_id": entry.item_id, "index": item.index if item else None,
                     "kind": item.kind if item else None, "role": role, "reviewer": who,
                     "decision": entry.decision, "preferred": item.side(entry.decision) if item else None,
                     "edited": entry.edited, "note": entry.note,
                     "category": getattr(entry, "category", None) or (item.category if item else None),
                     "created_at": entry.created_at, "updated_at": entry.updated_at})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_records(path, rows)


def apply_file(
    source: str | os.PathLike | LoadResult,
    store: AnnotationStore,
    out: str | os.PathLike,
    *,
    to: str | None = None,
    keep_unreviewed: bool = True,
) -> dict[str, Any]:
    """Load ``source`` (or take its ``LoadResult``), apply the store's reviews, write the reviewed
    records to ``out``; return a summary.

    ``out`` is written in format ``to`` (default: the input's own format); records left out go to
    ``<stem>.excluded.jsonl`` beside it, records the input or the target format could not hold to
    ``<stem>.quarantine.jsonl``. The summary states ``total = written + excluded + quarantined``.

    Raises:
        InputUnusableError: the input is missing or unreadable.
        ReviewError: the input is neither preference nor SFT data.
    """
    from ..convert import quarantine_path, write, write_quarantine

    loaded = source if isinstance(source, LoadResult) else load(source)
    result = apply_reviews(loaded.dataset, store, kind=loaded.kind, keep_unreviewed=keep_unreviewed)
    out = Path(out)
    written = write(result.dataset, out, format=to or loaded.format, kind=loaded.kind)
    excluded_path = out.with_name(quarantine_path(out).name.removesuffix(".quarantine.jsonl") + ".excluded.jsonl")
    result.write_excluded(excluded_path)
    quarantine = sorted(loaded.quarantine + written.quarantine, key=lambda r: r.index or 0)
    files = {"out": str(out), "excluded": str(excluded_path)}
    if quarantine:
        files["quarantine"] = str(quarantine_path(out))
        write_quarantine(quarantine_path(out), quarantine)
    summary = {**result.summary(), "format": written.format, "total": loaded.total, "written": written.written,
               "quarantined": len(quarantine), "files": files}
    if summary["total"] != summary["written"] + summary["excluded"] + summary["quarantined"]:
        raise HubtoolsError(f"internal error: {summary['total']} records in, {summary['written']} written + "
                            f"{summary['excluded']} excluded + {summary['quarantined']} quarantined",
                            hint="please report this with the input file")
    return summary
