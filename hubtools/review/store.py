"""The annotation store: one SQLite file, one row per (item, reviewer), safe for many users.

Each thread uses its own connection (WAL journal, ``BEGIN IMMEDIATE`` for writes, a busy
timeout), so app threads and separate processes can share one file. A reviewer reads and
changes only their own annotations through this API; other people's decisions are reachable
only as aggregates (:meth:`AnnotationStore.votes`, :func:`hubtools.review.agreement`), and as
whole-store exports for the dataset owner (:func:`hubtools.review.export_annotations`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from ..errors import ReviewError, ReviewPermissionError
from .items import ReviewItem, ReviewQueue, decisions_for

__all__ = ["Adjudication", "Annotation", "AnnotationStore", "check_reviewer"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY, source_index INTEGER NOT NULL, kind TEXT NOT NULL,
    content_hash TEXT NOT NULL, priority REAL NOT NULL DEFAULT 0, reasons TEXT,
    category TEXT, a_side TEXT);
CREATE TABLE IF NOT EXISTS annotations (
    item_id TEXT NOT NULL, reviewer TEXT NOT NULL, decision TEXT NOT NULL, edited TEXT,
    note TEXT, category TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (item_id, reviewer));
CREATE INDEX IF NOT EXISTS annotations_by_reviewer ON annotations (reviewer, updated_at);
CREATE TABLE IF NOT EXISTS adjudications (
    item_id TEXT PRIMARY KEY, adjudicator TEXT NOT NULL, decision TEXT NOT NULL, edited TEXT,
    note TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
"""
#: Hugging Face user names: letters, digits, '-', '_' and '.', not starting with punctuation.
_REVIEWER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_EDITABLE = ("a", "b", "accept")
_ANNOTATION_COLUMNS = ("item_id", "reviewer", "decision", "edited", "note", "category", "created_at", "updated_at")
_ADJUDICATION_COLUMNS = ("item_id", "adjudicator", "decision", "edited", "note", "created_at", "updated_at")


@dataclass(frozen=True)
class Annotation:
    """One reviewer's decision on one item."""

    item_id: str
    reviewer: str
    decision: str
    edited: str | None = None
    note: str | None = None
    category: str | None = None
    created_at: str = ""
    updated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Adjudication:
    """The final decision on a disputed item; it overrides the majority when reviews are applied."""

    item_id: str
    adjudicator: str
    decision: str
    edited: str | None = None
    note: str | None = None
    created_at: str = ""
    updated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def check_reviewer(reviewer: str) -> str:
    """Return ``reviewer`` if it is a usable name (a Hugging Face user name).

    Raises:
        ReviewError: the name is empty or has characters a user name cannot have.
    """
    if not isinstance(reviewer, str) or not _REVIEWER.match(reviewer):
        raise ReviewError(f"{reviewer!r} is not a reviewer name",
                          hint="use the Hugging Face user name (letters, digits, '-', '_', '.')")
    return reviewer


def _item_from_row(row: sqlite3.Row) -> ReviewItem:
    return ReviewItem(row["item_id"], row["source_index"], row["kind"], row["content_hash"],
                      row["priority"], tuple(orjson.loads(row["reasons"] or "[]")), row["category"],
                      row["a_side"])


class AnnotationStore:
    """Human annotations in a SQLite file.

    Args:
        path: the database file; created (with its folder) unless ``create=False``.
        adjudicators: user names allowed to adjudicate; None lets anyone (single-user use).
        timeout: seconds a write waits for another writer before failing.

    Raises:
        ReviewError: ``create=False`` and the file does not exist, or it is not a hubtools store.

    Example:
        >>> store = AnnotationStore("reviews.sqlite")  # doctest: +SKIP
        >>> store.register(queue); store.annotate("alice", queue.items[0].item_id, "b")  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True,
                 adjudicators: Iterable[str] | None = None, timeout: float = 30.0):
        self.path = Path(path)
        self.timeout = timeout
        self.adjudicators = None if adjudicators is None else frozenset(adjudicators)
        self._local = threading.local()
        if not self.path.exists():
            if not create:
                raise ReviewError(f"{self.path}: no annotation store here",
                                  hint="check the path; the app writes it as reviews.sqlite")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ReviewError(f"{self.path}: not an annotation store ({exc})",
                              hint="give the .sqlite file the app or AnnotationStore wrote") from exc

    # ---- connections ----------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (kept open: closing the last one would checkpoint the WAL each time)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextlib.contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        try:
            if write:
                conn.execute("BEGIN IMMEDIATE")
            yield conn
            if write:
                conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close this thread's connection (other threads' close when those threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _init_schema(self) -> None:
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} INSERT OR IGNORE INTO meta "
                               f"VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;")
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if int(row["value"]) > SCHEMA_VERSION:
                raise ReviewError(f"{self.path} was written by a newer hubtools (schema {row['value']})",
                                  hint="upgrade hubtools")

    # ---- items ----------------------------------------------------------------------------

    def register(self, items: ReviewQueue | Iterable[ReviewItem]) -> int:
        """Add or update review items (ids, kind, priority, category); return how many."""
        rows = [(i.item_id, i.index, i.kind, i.content_hash, i.priority, orjson.dumps(list(i.reasons)).decode(),
                 i.category, i.a_side) for i in items]
        with self._connect(write=True) as conn:
            conn.executemany(
                "INSERT INTO items VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(item_id) DO UPDATE SET "
                "source_index=excluded.source_index, kind=excluded.kind, content_hash=excluded.content_hash, "
                "priority=excluded.priority, reasons=excluded.reasons, category=excluded.category, "
                "a_side=excluded.a_side", rows)
        return len(rows)

    def items(self) -> list[ReviewItem]:
        """Every registered item, highest priority first (without records)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM items ORDER BY priority DESC, source_index").fetchall()
        return [_item_from_row(r) for r in rows]

    def item(self, item_id: str) -> ReviewItem | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM items WHERE item_id=?", (item_id,)).fetchone()
        return _item_from_row(row) if row else None

    def _check_decision(self, conn: sqlite3.Connection, item_id: str, decision: str,
                        edited: str | None, *, allow_skip: bool = True) -> None:
        row = conn.execute("SELECT kind FROM items WHERE item_id=?", (item_id,)).fetchone()
        if row is None:
            raise ReviewError(f"no review item {item_id!r} in {self.path.name}",
                              hint="register the queue first (store.register(queue)); ids change when text changes")
        allowed = [d for d in decisions_for(row["kind"]) if allow_skip or d != "skip"]
        if decision not in allowed:
            raise ReviewError(f"{decision!r} is not a decision for a {row['kind']} item",
                              hint=f"use one of {', '.join(allowed)}")
        if edited is not None:
            if decision not in _EDITABLE:
                raise ReviewError(f"an edit goes with {' / '.join(_EDITABLE)}, not {decision!r}",
                                  hint="pick the response you edited (or accept the SFT reply) with the edit")
            if not edited.strip():
                raise ReviewError("the edited text is empty", hint="flag or reject the item instead")

    # ---- one reviewer's own annotations ---------------------------------------------------

    def annotate(self, reviewer: str, item_id: str, decision: str, *, edited: str | None = None,
                 note: str | None = None, category: str | None = None) -> Annotation:
        """Record (or change) ``reviewer``'s decision on ``item_id``; return the stored annotation.

        ``edited`` is the new text of the preferred response (``'a'``/``'b'``) or of the SFT
        reply (``'accept'``). Changing a decision keeps ``created_at`` and moves ``updated_at``.

        Raises:
            ReviewError: bad reviewer name, unknown item, decision not allowed for its kind.
        """
        check_reviewer(reviewer)
        now = _now()
        with self._connect(write=True) as conn:
            self._check_decision(conn, item_id, decision, edited)
            conn.execute(
                "INSERT INTO annotations VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(item_id, reviewer) DO UPDATE SET "
                "decision=excluded.decision, edited=excluded.edited, note=excluded.note, "
                "category=excluded.category, updated_at=excluded.updated_at",
                (item_id, reviewer, decision, edited, note, category, now, now))
            row = conn.execute("SELECT * FROM annotations WHERE item_id=? AND reviewer=?",
                               (item_id, reviewer)).fetchone()
        logger.debug("%s annotated %s: %s", reviewer, item_id, decision)
        return Annotation(*row)

    def annotation(self, reviewer: str, item_id: str) -> Annotation | None:
        """``reviewer``'s own annotation of ``item_id``, if any."""
        check_reviewer(reviewer)
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM annotations WHERE item_id=? AND reviewer=?",
                               (item_id, reviewer)).fetchone()
        return Annotation(*row) if row else None

    def annotations(self, reviewer: str) -> list[Annotation]:
        """Every annotation of ``reviewer`` (and only theirs), oldest change first."""
        check_reviewer(reviewer)
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM annotations WHERE reviewer=? ORDER BY updated_at, item_id",
                                (reviewer,)).fetchall()
        return [Annotation(*r) for r in rows]

    def remove(self, reviewer: str, item_id: str) -> bool:
        """Withdraw ``reviewer``'s own annotation of ``item_id``; True if there was one."""
        check_reviewer(reviewer)
        with self._connect(write=True) as conn:
            cursor = conn.execute("DELETE FROM annotations WHERE item_id=? AND reviewer=?", (item_id, reviewer))
        return cursor.rowcount > 0

    def pending(self, reviewer: str, queue: ReviewQueue | None = None, *, limit: int | None = None) -> list[ReviewItem]:
        """Items ``reviewer`` has not annotated yet, in queue order (registered items if no queue)."""
        done = {a.item_id for a in self.annotations(reviewer)}
        items = list(queue) if queue is not None else self.items()
        out = [item for item in items if item.item_id not in done]
        return out[:limit] if limit is not None else out

    def progress(self, reviewer: str) -> dict[str, Any]:
        """How far ``reviewer`` is: ``{"done", "total", "by_decision"}`` over registered items."""
        mine = self.annotations(reviewer)
        with self._connect() as conn:
            total = conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
        return {"done": len(mine), "total": total,
                "by_decision": dict(Counter(a.decision for a in mine).most_common())}

    # ---- aggregates and adjudication ------------------------------------------------------

    def votes(self, item_id: str) -> dict[str, int]:
        """How many reviewers gave each decision on ``item_id`` (no names)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT decision, COUNT(*) FROM annotations WHERE item_id=? GROUP BY decision "
                                "ORDER BY COUNT(*) DESC, decision", (item_id,)).fetchall()
        return {d: n for d, n in rows}

    def can_adjudicate(self, reviewer: str) -> bool:
        return self.adjudicators is None or reviewer in self.adjudicators

    def adjudicate(self, adjudicator: str, item_id: str, decision: str, *, edited: str | None = None,
                   note: str | None = None) -> Adjudication:
        """Settle a disputed item: this decision overrides the reviewers' majority.

        Raises:
            ReviewPermissionError: ``adjudicator`` is not one of the store's adjudicators.
            ReviewError: unknown item, or a decision not allowed for its kind (``skip`` is not).
        """
        check_reviewer(adjudicator)
        if not self.can_adjudicate(adjudicator):
            raise ReviewPermissionError(f"{adjudicator} may not adjudicate",
                                        hint="ask the Space owner to add you to the adjudicators")
        now = _now()
        with self._connect(write=True) as conn:
            self._check_decision(conn, item_id, decision, edited, allow_skip=False)
            conn.execute(
                "INSERT INTO adjudications VALUES (?,?,?,?,?,?,?) ON CONFLICT(item_id) DO UPDATE SET "
                "adjudicator=excluded.adjudicator, decision=excluded.decision, edited=excluded.edited, "
                "note=excluded.note, updated_at=excluded.updated_at",
                (item_id, adjudicator, decision, edited, note, now, now))
            row = conn.execute("SELECT * FROM adjudications WHERE item_id=?", (item_id,)).fetchone()
        return Adjudication(*row)

    def adjudications(self) -> list[Adjudication]:
        """Every adjudication (final decisions are shared, unlike individual annotations)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM adjudications ORDER BY item_id").fetchall()
        return [Adjudication(*r) for r in rows]

    # ---- whole store: export, backup, merge -----------------------------------------------

    def all_annotations(self) -> list[Annotation]:
        """Every reviewer's annotations: for export, agreement and apply only, never per user."""
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM annotations ORDER BY item_id, reviewer").fetchall()
        return [Annotation(*r) for r in rows]

    def backup(self, path: str | os.PathLike) -> Path:
        """Copy the whole database to ``path`` with SQLite's online backup (consistent while in use)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.unlink(missing_ok=True)
        with self._connect() as conn:
            dest = sqlite3.connect(tmp)
            try:
                conn.backup(dest)
            finally:
                dest.close()
        os.replace(tmp, target)
        return target

    def merge(self, *, items: Iterable[dict[str, Any]] = (), annotations: Iterable[dict[str, Any]] = (),
              adjudications: Iterable[dict[str, Any]] = ()) -> dict[str, int]:
        """Merge exported rows (e.g. restored from the Hub): the newer ``updated_at`` wins.

        Returns how many rows of each table were inserted or replaced.

        Raises:
            ReviewError: a row misses a required field.
        """
        counts = {"items": 0, "annotations": 0, "adjudications": 0}
        try:
            item_rows = [ReviewItem(r["item_id"], int(r["index"]), r["kind"], r["content_hash"],
                                    float(r.get("priority") or 0), tuple(r.get("reasons") or ()),
                                    r.get("category"), r.get("a_side")) for r in items]
            ann_rows = [tuple(r.get(c) for c in _ANNOTATION_COLUMNS) for r in annotations]
            adj_rows = [tuple(r.get(c) for c in _ADJUDICATION_COLUMNS) for r in adjudications]
        except (KeyError, TypeError, ValueError) as exc:
            raise ReviewError(f"an exported row is incomplete ({exc})",
                              hint="restore from files written by hubtools (annotations/*.jsonl)") from exc
        for row in ann_rows:
            check_reviewer(row[1])
            if None in (row[0], row[2], row[6], row[7]):
                raise ReviewError(f"annotation row {row[:2]} misses a field", hint="re-export it with hubtools")
        if item_rows:
            counts["items"] = self.register(item_rows)
        with self._connect(write=True) as conn:
            for table, rows in (("annotations", ann_rows), ("adjudications", adj_rows)):
                key = "item_id, reviewer" if table == "annotations" else "item_id"
                columns = _ANNOTATION_COLUMNS if table == "annotations" else _ADJUDICATION_COLUMNS
                updates = ", ".join(f"{c}=excluded.{c}" for c in columns if c not in ("item_id", "reviewer"))
                before = conn.total_changes
                conn.executemany(
                    f"INSERT INTO {table} VALUES ({','.join('?' * len(columns))}) ON CONFLICT({key}) "
                    f"DO UPDATE SET {updates} WHERE excluded.updated_at > {table}.updated_at", rows)
                counts[table] = conn.total_changes - before
        return counts
