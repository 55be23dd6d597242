"""Keep the annotation store on the Hub, so a Space restart loses nothing.

The store is exported as plain files to a folder that a ``huggingface_hub.CommitScheduler``
commits to a private dataset repo every few minutes:

* ``annotations/<reviewer>.jsonl``: one file per reviewer, one line per annotation;
* ``adjudications.jsonl`` and ``items.jsonl``.

A file is rewritten only when its content changed, so unchanged reviewers are not re-uploaded.
On start-up, :class:`ReviewSync` first restores from the repo (``snapshot_download``) and merges
into the local store (the newer ``updated_at`` of a row wins), and only then starts pushing, so
an empty disk after a restart never overwrites what the Hub holds.

Limits: a withdrawn annotation (``store.remove``) that was already pushed comes back on restore
if the restart happens before the next push; one Space replica should write to a repo at a time.
"""

from __future__ import annotations

import logging
import os
import tempfile
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..io import atomic_write
from .store import AnnotationStore, check_reviewer

__all__ = ["RestoreResult", "ReviewSync", "export_folder", "restore_folder", "restore_from_hub"]

logger = logging.getLogger(__name__)

ANNOTATIONS_DIR = "annotations"
_PATTERNS = [f"{ANNOTATIONS_DIR}/*.jsonl", "adjudications.jsonl", "items.jsonl"]


@dataclass(frozen=True)
class RestoreResult:
    """What a restore found and merged: rows inserted or replaced per table, and files read."""

    files: int
    items: int
    annotations: int
    adjudications: int

    def to_dict(self) -> dict[str, int]:
        return {"files": self.files, "items": self.items, "annotations": self.annotations,
                "adjudications": self.adjudications}


def _lines(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(row, option=orjson.OPT_SORT_KEYS) + b"\n" for row in rows)


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    with atomic_write(path) as fh:
        fh.write(data)
    return True


def export_folder(store: AnnotationStore, folder: str | os.PathLike) -> list[str]:
    """Write the store as sync files under ``folder``; return the paths that changed.

    A reviewer whose annotations were all withdrawn gets an empty file (not a stale one).
    """
    folder = Path(folder)
    per_reviewer: dict[str, list[dict[str, Any]]] = {
        p.stem: [] for p in (folder / ANNOTATIONS_DIR).glob("*.jsonl")}
    for annotation in store.all_annotations():
        per_reviewer.setdefault(annotation.reviewer, []).append(annotation.to_dict())
    files = {f"{ANNOTATIONS_DIR}/{reviewer}.jsonl": _lines(rows) for reviewer, rows in per_reviewer.items()}
    files["adjudications.jsonl"] = _lines([a.to_dict() for a in store.adjudications()])
    files["items.jsonl"] = _lines(sorted((i.to_row() for i in store.items()), key=lambda r: r["item_id"]))
    return [name for name, data in sorted(files.items()) if _write_if_changed(folder / name, data)]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def restore_folder(store: AnnotationStore, folder: str | os.PathLike) -> RestoreResult:
    """Merge sync files from ``folder`` into ``store`` (the newer row wins).

    Raises:
        ReviewError: a file holds rows of another reviewer than its name, or incomplete rows.
    """
    from ..errors import ReviewError

    folder = Path(folder)
    annotations = []
    files = 0
    for path in sorted((folder / ANNOTATIONS_DIR).glob("*.jsonl")):
        rows = _read_jsonl(path)
        files += 1
        if any(row.get("reviewer") != check_reviewer(path.stem) for row in rows):
            raise ReviewError(f"{path.name} holds annotations of another reviewer",
                              hint="each annotations/<reviewer>.jsonl must hold only that reviewer's rows")
        annotations += rows
    tables = {}
    for name in ("items", "adjudications"):
        path = folder / f"{name}.jsonl"
        tables[name] = _read_jsonl(path) if path.exists() else []
        files += path.exists()
    counts = store.merge(items=tables["items"], annotations=annotations, adjudications=tables["adjudications"])
    return RestoreResult(files, counts["items"], counts["annotations"], counts["adjudications"])


def restore_from_hub(store: AnnotationStore, repo_id: str, *, token: str | None = None,
                     revision: str | None = None, api: Any = None) -> RestoreResult:
    """Download the sync files of ``repo_id`` (a dataset repo) and merge them into ``store``.

    A repo that does not exist yet restores nothing. Other Hub errors propagate: starting to
    push without having restored could overwrite the Hub's copy with a partial one.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    api = api or HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="hubtools-restore-") as tmp:
        try:
            api.snapshot_download(repo_id=repo_id, repo_type="dataset", revision=revision,
                                  allow_patterns=_PATTERNS, local_dir=tmp, token=token)
        except (RepositoryNotFoundError, RevisionNotFoundError):
            logger.info("%s does not exist yet: nothing to restore", repo_id)
            return RestoreResult(0, 0, 0, 0)
        result = restore_folder(store, tmp)
    logger.info("restored from %s: %s", repo_id, result.to_dict())
    return result


def _scheduler_class():
    from huggingface_hub import CommitScheduler

    class _StoreScheduler(CommitScheduler):
        """A CommitScheduler that exports the store to its folder right before each push."""

        def __init__(self, store: AnnotationStore, **kwargs: Any):
            self.store = store
            super().__init__(**kwargs)

        def push_to_hub(self):  # runs in the scheduler's single worker, so exports never overlap
            changed = export_folder(self.store, self.folder_path)
            logger.debug("sync export: %d changed file(s)", len(changed))
            return super().push_to_hub()

    return _StoreScheduler


class ReviewSync:
    """Restore the store from a private Hub dataset, then commit its export there every ``every`` minutes.

    Args:
        store: the annotation store to keep safe.
        repo_id: the dataset repo (created private if missing).
        every: minutes between commits.
        folder: where the export files live (default: ``<store>.hub/`` beside the database).
        restore: merge the repo's files into the store before the first push.

    Example:
        >>> sync = ReviewSync(store, "me/reviews", every=5)  # doctest: +SKIP
        >>> sync.trigger().result()  # push now, e.g. before shutting down  # doctest: +SKIP
    """

    def __init__(self, store: AnnotationStore, repo_id: str, *, every: float = 5, token: str | None = None,
                 folder: str | os.PathLike | None = None, restore: bool = True, private: bool = True,
                 api: Any = None):
        from huggingface_hub import HfApi

        self.store = store
        self.repo_id = repo_id
        self.folder = Path(folder) if folder is not None else store.path.with_name(store.path.name + ".hub")
        api = api or HfApi(token=token)
        self.restored = restore_from_hub(store, repo_id, token=token, api=api) if restore else None
        export_folder(store, self.folder)
        self.scheduler = _scheduler_class()(
            store, repo_id=repo_id, folder_path=self.folder, every=every, repo_type="dataset",
            private=private, token=token, allow_patterns=_PATTERNS, hf_api=api)

    def trigger(self) -> Future:
        """Export and commit now (in the background); the future's result is the commit info or None."""
        return self.scheduler.trigger()

    def stop(self, *, flush: bool = True) -> None:
        """Stop the schedule, pushing pending changes first unless ``flush=False``."""
        if flush:
            self.trigger().result()
        self.scheduler.stop()

    def __enter__(self) -> ReviewSync:  # noqa: PYI034 - not meant to be subclassed
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
