"""Human review: the queue, the per-reviewer SQLite store, agreement, applying reviews, Hub sync, CLI."""

from __future__ import annotations

import json
import sqlite3
import textwrap
import threading
from collections import Counter
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from hubtools.cli import app
from hubtools.errors import ReviewError, ReviewPermissionError
from hubtools.records import EXTRA, INDEX, dump_extra, load_extra
from hubtools.review import (
    AnnotationStore,
    agreement,
    apply_reviews,
    build_queue,
    compute_agreement,
    export_annotations,
    export_folder,
    flags_from_checks,
    item_identity,
    restore_folder,
)
from tests.fixtures.build import preference, sft, text
from tests.fixtures.hub import run_client_json

runner = CliRunner()


def pairs(n: int, scores: list[tuple[float, float]] | None = None, extras: dict[int, dict] | None = None):
    """n preference pairs; ``extras`` sets ``hubtools_extra`` of some records."""
    ds = preference([(f"question {i}", f"good answer {i}", f"bad answer {i}") for i in range(n)], scores)
    if extras:
        ds = ds.map(lambda r: {EXTRA: dump_extra(extras[r[INDEX]]) if r[INDEX] in extras else r[EXTRA]})
    return ds


@pytest.fixture
def store(tmp_path) -> AnnotationStore:
    return AnnotationStore(tmp_path / "reviews.sqlite")


def letter(item, side: str) -> str:
    """The shown letter ('a'/'b') that prefers the canonical ``side`` of a blind pair."""
    return "a" if item.a_side == side else "b"


# ---- the queue ----------------------------------------------------------------------------


class TestBuildQueue:
    def test_hallucination_flags_then_low_margin_then_other_flags_then_the_rest(self):
        scores = [(8, 2), (6, 5.5), (9, 1), (7, 7), (5, 1), (9, 2), (8, 1)]
        extras = {2: {"flags": ["hallucination"]}, 4: {"margin": 0.25}, 6: {"flags": {"toxicity": 0.9}}}
        queue = build_queue(pairs(7, scores, extras), flags={5: ["numbers"], 6: ["pii", "outdated_style"]})
        order = [item.index for item in queue]
        # 2 and 5 hallucination-prone (+3); below the margin of 2: 3 (0: +2), 4 (.25: +1.875), 1 (.5: +1.75);
        # 6 flagged twice but not hallucination-prone (+1); 0 nothing
        assert order == [2, 5, 3, 4, 1, 6, 0]
        assert [queue.at_index(i).priority for i in order] == [3.0, 3.0, 2.0, 1.875, 1.75, 1.0, 0.0]
        assert queue.at_index(5).reasons == ("hallucination-prone: numbers",)
        assert queue.at_index(6).reasons == ("flagged: toxicity, pii, outdated_style",)  # "date" is no word here
        assert queue.at_index(4).reasons == ("low margin: 0.25",)

    def test_explicit_priority_replaces_the_computed_one(self):
        queue = build_queue(pairs(4, extras={1: {"flags": ["hallucination"]}}), priority={3: 10.0, 1: -1.0})
        assert [item.index for item in queue] == [3, 0, 2, 1]
        assert queue.at_index(1).priority == -1.0 and "priority set by caller" in queue.at_index(1).reasons

    def test_flags_from_check_results_feed_the_queue(self):
        class Result:  # the two fields of hubtools.checks CheckResult that matter here
            def __init__(self, name, flagged):
                self.name, self.flagged = name, flagged

        flags = flags_from_checks([Result("gold_disagreement", [2]), Result("pii", [2, 0])])
        assert flags == {2: ["gold_disagreement", "pii"], 0: ["pii"]}
        assert [item.index for item in build_queue(pairs(3), flags=flags)] == [2, 0, 1]

    def test_item_id_follows_the_text_not_the_scores_or_extras(self):
        base = pairs(2, [(5, 1), (5, 1)])
        same_text = pairs(2, [(9, 9), (9, 9)], {0: {"note": "x"}})
        edited = preference([("question 0", "good answer 0!", "bad answer 0"), ("question 1", "good answer 1",
                                                                              "bad answer 1")])
        ids = [item_identity(r, "preference")[0] for r in base]
        assert ids == [item_identity(r, "preference")[0] for r in same_text]
        edited_ids = [item_identity(r, "preference")[0] for r in edited]
        assert edited_ids[1] == ids[1] and edited_ids[0] != ids[0]
        assert [i[:2] for i in ids + edited_ids] == ["0-", "1-", "0-", "1-"]

    def test_pairs_are_shown_blind_and_the_view_maps_a_b_back(self):
        queue = build_queue(pairs(24, [(9, 1)] * 24))
        assert {item.a_side for item in queue} == {"chosen", "rejected"}
        for item in queue:
            view = item.view()
            shown = {"a": view["a"][0]["content"], "b": view["b"][0]["content"]}
            good = f"good answer {item.index}"
            assert shown[letter(item, "chosen")] == good
            assert item.side(letter(item, "chosen")) == "chosen"
            assert view[f"score_{letter(item, 'chosen')}"] == 9
            assert view["decisions"] == ["a", "b", "tie", "skip", "flag"]

    def test_sft_records_are_reviewable_and_text_is_not(self):
        queue = build_queue(sft([("hi", "hello"), ("2+2?", "4")]), categories={1: "math"})
        view = queue.at_index(1).view()
        assert view["prompt"] == [{"role": "user", "content": "2+2?"}]
        assert view["response"] == [{"role": "assistant", "content": "4"}]
        assert (view["category"], view["decisions"]) == ("math", ["accept", "reject", "skip", "flag"])
        with pytest.raises(ReviewError, match="cannot be reviewed"):
            build_queue(text(["a"]), kind="text")


# ---- the store ----------------------------------------------------------------------------


class TestStore:
    def test_reviewers_see_and_change_only_their_own_annotations(self, store):
        queue = build_queue(pairs(3))
        store.register(queue)
        first, second = queue.items[0].item_id, queue.items[1].item_id
        made = store.annotate("alice", first, "a", note="clear")
        store.annotate("bob", first, "b")
        changed = store.annotate("alice", first, "tie")
        assert (changed.created_at, changed.decision, changed.note) == (made.created_at, "tie", None)
        assert changed.updated_at > made.updated_at
        assert [(a.item_id, a.reviewer, a.decision) for a in store.annotations("alice")] == [(first, "alice", "tie")]
        assert [a.decision for a in store.annotations("bob")] == ["b"]
        assert store.annotation("carol", first) is None
        assert store.remove("carol", first) is False  # carol cannot withdraw bob's or alice's
        assert store.votes(first) == {"b": 1, "tie": 1}
        assert store.remove("alice", first) is True and store.annotation("alice", first) is None
        assert store.annotation("bob", first).decision == "b"
        assert [i.item_id for i in store.pending("bob", queue)] == [second, queue.items[2].item_id]
        assert store.progress("bob") == {"done": 1, "total": 3, "by_decision": {"b": 1}}

    def test_bad_calls_say_what_to_do(self, store):
        queue = build_queue(pairs(1))
        item = queue.items[0].item_id
        with pytest.raises(ReviewError, match="register the queue first"):
            store.annotate("alice", item, "a")
        store.register(queue)
        with pytest.raises(ReviewError, match="use one of a, b, tie, skip, flag"):
            store.annotate("alice", item, "accept")
        with pytest.raises(ReviewError, match="an edit goes with"):
            store.annotate("alice", item, "tie", edited="better")
        with pytest.raises(ReviewError, match="edited text is empty"):
            store.annotate("alice", item, "a", edited="  ")
        with pytest.raises(ReviewError, match="user name"):
            store.annotate("../etc", item, "a")
        assert store.annotations("alice") == []

    def test_only_adjudicators_adjudicate(self, tmp_path):
        store = AnnotationStore(tmp_path / "r.sqlite", adjudicators={"owner"})
        queue = build_queue(pairs(1))
        store.register(queue)
        item = queue.items[0].item_id
        with pytest.raises(ReviewPermissionError, match="may not adjudicate"):
            store.adjudicate("alice", item, "a")
        with pytest.raises(ReviewError, match="use one of a, b, tie, flag"):
            store.adjudicate("owner", item, "skip")
        assert store.adjudicate("owner", item, "b", note="B is right").decision == "b"
        assert [a.adjudicator for a in store.adjudications()] == ["owner"]

    def test_wal_store_takes_concurrent_writers_from_threads_and_separate_connections(self, tmp_path):
        path = tmp_path / "shared.sqlite"
        queue = build_queue(pairs(30))
        AnnotationStore(path).register(queue)
        errors: list[BaseException] = []

        def review(reviewer: str, flip: bool) -> None:
            own = AnnotationStore(path) if flip else shared  # a second "process" opens its own store
            try:
                for n, item in enumerate(queue):
                    own.annotate(reviewer, item.item_id, "a" if (n + flip) % 2 else "b", note=f"{reviewer} {n}")
                    own.annotations(reviewer)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        shared = AnnotationStore(path)
        threads = [threading.Thread(target=review, args=(f"r{k}", k % 2 == 1)) for k in range(8)]
        threads += [threading.Thread(target=review, args=("r0", True))]  # the same reviewer from two places
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("SELECT COUNT(*) FROM annotations").fetchone()[0] == 8 * 30
            per = dict(conn.execute("SELECT reviewer, COUNT(*) FROM annotations GROUP BY reviewer").fetchall())
        assert per == {f"r{k}": 30 for k in range(8)}
        assert {a.note for a in shared.annotations("r3")} == {f"r3 {n}" for n in range(30)}

    def test_backup_is_a_complete_store(self, store, tmp_path):
        queue = build_queue(pairs(2))
        store.register(queue)
        store.annotate("alice", queue.items[0].item_id, "a", edited="an even better answer")
        copy = AnnotationStore(store.backup(tmp_path / "snap" / "copy.sqlite"), create=False)
        assert copy.annotations("alice") == store.annotations("alice")
        assert [i.item_id for i in copy.items()] == [i.item_id for i in queue]

    def test_a_missing_or_foreign_file_is_a_clear_error(self, tmp_path):
        with pytest.raises(ReviewError, match="no annotation store here"):
            AnnotationStore(tmp_path / "nope.sqlite", create=False)
        junk = tmp_path / "junk.sqlite"
        junk.write_bytes(b"not a database at all, just some bytes" * 100)
        with pytest.raises(ReviewError, match="not an annotation store"):
            AnnotationStore(junk)


# ---- agreement ----------------------------------------------------------------------------


def _store_with(tmp_path, ratings: list[tuple[int, str, str]], n: int, categories=None) -> AnnotationStore:
    store = AnnotationStore(tmp_path / "agree.sqlite")
    queue = build_queue(pairs(n), categories=categories)
    store.register(queue)
    for index, reviewer, label in ratings:  # labels name the side preferred: chosen / rejected
        item = queue.at_index(index)
        store.annotate(reviewer, item.item_id, letter(item, label) if label in ("chosen", "rejected") else label)
    return store


class TestAgreement:
    def test_cohen_kappa_matches_the_hand_computed_two_by_two_table(self, tmp_path):
        # both chosen: 20, alice chosen / bob rejected: 5, alice rejected / bob chosen: 10, both rejected: 15
        c, r = "chosen", "rejected"
        cells = [(c, c)] * 20 + [(c, r)] * 5 + [(r, c)] * 10 + [(r, r)] * 15
        ratings = [(i, who, d) for i, (x, y) in enumerate(cells) for who, d in (("alice", x), ("bob", y))]
        report = agreement(_store_with(tmp_path, ratings, 50))
        n = len(cells)
        p_o = (20 + 15) / n
        p_e = ((20 + 5) / n) * ((20 + 10) / n) + ((10 + 15) / n) * ((5 + 15) / n)
        expected = (p_o - p_e) / (1 - p_e)
        assert expected == pytest.approx(0.4)
        data = report.to_dict()
        assert data["cohen_kappa"] == pytest.approx(expected, abs=1e-6)
        assert data["percent_agreement"] == pytest.approx(0.7)
        assert (data["reviewers"], data["items"], data["pairs"], data["cohen_kappa_items"]) == (2, 50, 50, 50)
        assert len(data["disagreements"]) == 15 and data["to_adjudicate"] == 15
        # nominal alpha for two coders with no missing data, from its definition: 1 - D_o / D_e
        counts = Counter(label for pair in cells for label in pair)
        total = 2 * n
        d_e = (total * total - sum(c * c for c in counts.values())) / (total * (total - 1))
        assert data["krippendorff_alpha"] == pytest.approx(1 - (15 / n) / d_e, abs=1e-6)

    def test_krippendorff_alpha_of_the_package_docs_example_with_missing_ratings(self, tmp_path):
        nan = np.nan
        table = [[nan, nan, nan, nan, nan, 3, 4, 1, 2, 1, 1, 3, 3, nan, 3],
                 [1, nan, 2, 1, 3, 3, 4, 3, nan, nan, nan, nan, nan, nan, nan],
                 [nan, nan, 2, 1, 3, 4, 4, nan, 2, 1, 1, 3, 3, nan, 4]]
        label = {1: "chosen", 2: "rejected", 3: "tie", 4: "flag"}
        ratings = [(unit, f"coder{c}", label[int(v)]) for c, row in enumerate(table)
                   for unit, v in enumerate(row) if not np.isnan(v)]
        ratings.append((1, "coder0", "skip"))  # a skip is a missing value, not a label
        report = agreement(_store_with(tmp_path, ratings, 15))
        data = report.to_dict()
        assert data["krippendorff_alpha"] == pytest.approx(0.691358, abs=1e-6)
        shared_units = sum(1 for unit in range(15) if sum(not np.isnan(row[unit]) for row in table) >= 2)
        assert (data["reviewers"], data["items"], data["skipped"]) == (3, shared_units, 1)
        assert data["cohen_kappa"] is None and "two reviewers" in data["notes"]["cohen_kappa"]

    def test_krippendorff_alpha_of_krippendorffs_own_example(self):
        # Krippendorff (2011) "Computing Krippendorff's alpha-reliability", nominal data, 4 observers,
        # 12 units, missing values: alpha = 0.743
        rows = {"A": "1 2 3 3 2 1 4 1 2 . . .", "B": "1 2 3 3 2 2 4 1 2 5 . 3",
                "C": ". 3 3 3 2 3 4 2 2 5 1 .", "D": "1 2 3 3 2 4 4 1 2 5 1 ."}
        ratings = [(unit, who, v) for who, row in rows.items() for unit, v in enumerate(row.split()) if v != "."]
        report = compute_agreement(ratings)
        assert round(report.overall.krippendorff_alpha, 3) == 0.743
        assert report.overall.items == 11  # unit 12 has one rating only

    def test_one_reviewer_means_agreement_is_not_defined(self, tmp_path):
        report = agreement(_store_with(tmp_path, [(0, "alice", "a"), (1, "alice", "b")], 2))
        data = report.to_dict()
        assert (data["percent_agreement"], data["cohen_kappa"], data["krippendorff_alpha"]) == (None, None, None)
        assert data["notes"]["agreement"] == "agreement needs at least two reviewers; there is 1"
        assert "agreement not defined" in report.summary()

    def test_two_reviewers_on_different_items_share_nothing(self):
        data = compute_agreement([(0, "alice", "a"), (1, "bob", "a"), (1, "alice", "skip")]).to_dict()
        assert data["percent_agreement"] is None and data["items"] == 0
        assert data["notes"]["agreement"] == "no item was rated by two or more reviewers"

    def test_identical_ratings_are_complete_agreement(self):
        one_label = compute_agreement([(i, r, "a") for i in range(4) for r in ("ann", "bob")]).overall
        assert (one_label.percent_agreement, one_label.cohen_kappa, one_label.krippendorff_alpha) == (1.0, 1.0, 1.0)
        assert "0/0" in one_label.notes["krippendorff_alpha"]
        labels = compute_agreement([(i, r, "ab"[i % 2]) for i in range(4) for r in ("ann", "bob")]).overall
        assert (labels.percent_agreement, labels.cohen_kappa, labels.krippendorff_alpha) == (1.0, 1.0, 1.0)
        assert labels.notes == {}

    def test_per_category_figures_and_the_adjudication_queue(self, tmp_path):
        cats = {0: "math", 1: "math", 2: "math", 3: "code", 4: "code"}
        c, r = "chosen", "rejected"
        ratings = [(i, who, c) for i in (0, 1, 2) for who in ("ann", "bob")]
        ratings += [(3, "ann", c), (3, "bob", r), (4, "ann", r), (4, "bob", c), (4, "cy", c)]
        store = _store_with(tmp_path, ratings, 5, cats)
        data = agreement(store).to_dict()
        assert data["per_category"]["math"]["percent_agreement"] == 1.0
        assert data["per_category"]["math"]["items"] == 3
        code = data["per_category"]["code"]
        assert (code["items"], code["pairs"], code["reviewers"]) == (2, 4, 3)
        assert code["percent_agreement"] == pytest.approx((0 + 1 / 3) / 2, abs=1e-6)
        assert [(d["index"], d["votes"]) for d in data["disagreements"]] == [(3, {c: 1, r: 1}), (4, {c: 2, r: 1})]
        disputed = store.item(agreement(store).adjudication_queue[0]["item_id"])
        store.adjudicate("owner", disputed.item_id, letter(disputed, r))
        assert [d["index"] for d in agreement(store).adjudication_queue] == [4]
        assert agreement(store).disagreements[0]["adjudicated"] == r


# ---- applying reviews ---------------------------------------------------------------------


class TestApply:
    def test_swaps_edits_majority_adjudication_and_exclusions_with_nothing_lost(self, store):
        ds = pairs(8, [(float(i), 10.0 - i) for i in range(8)])
        queue = build_queue(ds)
        store.register(queue)
        item = queue.at_index

        def vote(index: int, who: str, side_or_decision: str, **kw: Any) -> None:
            decision = letter(item(index), side_or_decision) if side_or_decision in ("chosen", "rejected") \
                else side_or_decision
            store.annotate(who, item(index).item_id, decision, **kw)

        vote(0, "ann", "chosen")                                   # kept as is
        vote(1, "ann", "rejected"), vote(1, "bob", "rejected"), vote(1, "cy", "chosen")  # majority: swap
        vote(2, "ann", "chosen", edited="a better answer 2")       # kept, edited
        vote(3, "ann", "tie")                                      # excluded: tie
        vote(4, "ann", "flag", note="made-up citation")            # excluded: flagged
        vote(5, "ann", "chosen"), vote(5, "bob", "rejected")       # disputed -> excluded
        vote(6, "ann", "chosen"), vote(6, "bob", "rejected")       # disputed, then adjudicated
        store.adjudicate("owner", item(6).item_id, letter(item(6), "rejected"), edited="fixed answer 6")
        vote(7, "ann", "skip")                                     # a skip is no review
        old = build_queue(preference([("an old version of question 0", "good answer 0", "bad answer 0")]))
        store.register(old)
        store.annotate("ann", old.items[0].item_id, "a")          # its text is no longer in the dataset

        result = apply_reviews(ds, store)
        out = {r[INDEX]: r for r in result.dataset}
        excluded = {e["index"]: e for e in result.excluded}
        assert len(ds) == len(out) + len(excluded) == 8
        assert sorted(out) == [0, 1, 2, 6, 7] and sorted(excluded) == [3, 4, 5]
        assert {i: e["reason"] for i, e in excluded.items()} == {3: "tie", 4: "flagged", 5: "disputed"}
        assert excluded[4]["detail"]["notes"] == ["made-up citation"]
        assert out[0]["chosen"][0]["content"] == "good answer 0"
        assert (out[1]["chosen"][0]["content"], out[1]["rejected"][0]["content"]) == ("bad answer 1", "good answer 1")
        assert (out[1]["score_chosen"], out[1]["score_rejected"]) == (9.0, 1.0)
        assert out[2]["chosen"][0]["content"] == "a better answer 2"
        assert (out[6]["chosen"][0]["content"], out[6]["rejected"][0]["content"]) == ("fixed answer 6", "good answer 6")
        assert out[7] == ds[7]  # unreviewed (only a skip): unchanged
        review1 = load_extra(out[1][EXTRA])["review"]
        assert review1 == {"decision": letter(item(1), "rejected"), "votes": {letter(item(1), "rejected"): 2,
                           letter(item(1), "chosen"): 1}, "reviewers": 3, "swapped": True, "edited": False}
        assert load_extra(out[6][EXTRA])["review"]["adjudicated"] is True
        assert result.counts == {"in": 8, "out": 5, "excluded": 3, "swapped": 2, "edited": 2,
                                 "unreviewed": 1, "adjudicated": 1}
        assert len(result.stale) == 1 and result.stale[0].startswith("0-")
        dropped = apply_reviews(ds, store, keep_unreviewed=False)
        assert [e["reason"] for e in dropped.excluded if e["index"] == 7] == ["unreviewed"]

    def test_sft_accept_with_edit_and_reject(self, store):
        ds = sft([("hi", "hello"), ("2+2?", "5"), ("capital of France?", "Paris")])
        queue = build_queue(ds)
        store.register(queue)
        store.annotate("ann", queue.at_index(0).item_id, "accept")
        store.annotate("ann", queue.at_index(1).item_id, "accept", edited="4")
        store.annotate("ann", queue.at_index(2).item_id, "reject")
        result = apply_reviews(ds, store, provenance=False)
        assert [r["messages"][-1]["content"] for r in result.dataset] == ["hello", "4"]
        assert [(e["index"], e["reason"]) for e in result.excluded] == [(2, "rejected")]
        assert result.dataset[0] == ds[0]

    def test_export_to_jsonl_and_parquet_has_a_row_per_item_and_reviewer(self, store, tmp_path):
        queue = build_queue(pairs(2))
        store.register(queue)
        first = queue.items[0]
        store.annotate("ann", first.item_id, "a", note="n")
        store.annotate("bob", first.item_id, "b", category="qa")
        store.adjudicate("owner", first.item_id, "a")
        assert export_annotations(store, tmp_path / "a.jsonl") == 3
        rows = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
        assert [(r["role"], r["reviewer"], r["decision"], r["preferred"]) for r in rows] == [
            ("reviewer", "ann", "a", first.a_side), ("reviewer", "bob", "b", first.side("b")),
            ("adjudicator", "owner", "a", first.a_side)]
        assert rows[1]["category"] == "qa" and rows[0]["index"] == first.index
        assert export_annotations(store, tmp_path / "a.parquet") == 3
        assert pq.read_table(tmp_path / "a.parquet").to_pylist() == rows


# ---- sync ---------------------------------------------------------------------------------


def test_sync_files_are_written_only_when_changed_and_merge_keeps_the_newer_row(store, tmp_path):
    queue = build_queue(pairs(2))
    store.register(queue)
    a, b = queue.items[0].item_id, queue.items[1].item_id
    store.annotate("ann", a, "a")
    folder = tmp_path / "sync"
    assert export_folder(store, folder) == ["adjudications.jsonl", "annotations/ann.jsonl", "items.jsonl"]
    assert export_folder(store, folder) == []
    store.annotate("bob", a, "b")
    assert export_folder(store, folder) == ["annotations/bob.jsonl"]

    other = AnnotationStore(tmp_path / "other.sqlite")
    assert restore_folder(other, folder).to_dict() == {"files": 4, "items": 2, "annotations": 2, "adjudications": 0}
    newer = other.annotate("ann", a, "tie")        # changed after the export: must survive a re-restore
    restore_folder(other, folder)
    assert other.annotation("ann", a) == newer
    store.annotate("ann", b, "flag")
    store.remove("ann", a)
    export_folder(store, folder)
    assert [x.item_id for x in AnnotationStore(tmp_path / "fresh.sqlite").annotations("ann")] == []
    restore_folder(other, folder)
    assert {x.item_id for x in other.annotations("ann")} == {a, b}

    (folder / "annotations" / "mallory.jsonl").write_text((folder / "annotations" / "bob.jsonl").read_text())
    with pytest.raises(ReviewError, match="another reviewer"):
        restore_folder(other, folder)


SYNC_WRITE = """
    import json
    from pathlib import Path
    from huggingface_hub import HfApi
    from hubtools.review import AnnotationStore, ReviewSync, build_queue
    from tests.fixtures.build import preference

    ds = preference([(f"q{i}", f"good {i}", f"bad {i}") for i in range(5)])
    queue = build_queue(ds)
    store = AnnotationStore(Path(P["dir"]) / "reviews.sqlite")
    store.register(queue)
    sync = ReviewSync(store, P["repo"], every=60)
    assert sync.restored.annotations == 0
    for n, item in enumerate(queue):
        store.annotate("alice", item.item_id, "a", note=f"n{n}")
        store.annotate("bob", item.item_id, "ab"[n % 2])
    store.annotate("alice", queue.items[0].item_id, "b", edited="better")
    store.adjudicate("alice", queue.items[1].item_id, "a")
    sync.trigger().result()
    sync.stop()
    api = HfApi()
    print(json.dumps({"files": sorted(api.list_repo_files(P["repo"], repo_type="dataset")),
                      "private": api.repo_info(P["repo"], repo_type="dataset").private,
                      "last": {f.path: f.last_commit.oid for f in api.list_repo_tree(
                          P["repo"], repo_type="dataset", path_in_repo="annotations", expand=True)},
                      "alice": [a.to_dict() for a in store.annotations("alice")],
                      "bob": [a.to_dict() for a in store.annotations("bob")],
                      "adjudications": [a.to_dict() for a in store.adjudications()]}))
"""

SYNC_RESTART = """
    import json
    from pathlib import Path
    from huggingface_hub import HfApi
    from hubtools.review import AnnotationStore, ReviewSync, agreement

    store = AnnotationStore(Path(P["dir"]) / "reviews.sqlite")   # a new, empty disk
    sync = ReviewSync(store, P["repo"], every=60)
    restored = sync.restored.to_dict()
    item = store.items()[0].item_id
    store.annotate("carol", item, "tie")
    sync.stop()  # pushes what is pending
    api = HfApi()
    files = api.list_repo_tree(P["repo"], repo_type="dataset", path_in_repo="annotations", expand=True)
    print(json.dumps({"restored": restored, "items": len(store.items()),
                      "alice": [a.to_dict() for a in store.annotations("alice")],
                      "bob": [a.to_dict() for a in store.annotations("bob")],
                      "adjudications": [a.to_dict() for a in store.adjudications()],
                      "reviewers": agreement(store).overall.reviewers,
                      "last": {f.path: f.last_commit.oid for f in files}}))
"""


def _snippet(body: str, **params: Any) -> str:
    return f"import json\nP = json.loads({json.dumps(params)!r})\n" + textwrap.dedent(body)


def test_annotations_survive_a_restart_through_the_hub(hub_env, hub_repo_id, tmp_path):
    first = run_client_json(_snippet(SYNC_WRITE, dir=str(tmp_path / "space1"), repo=hub_repo_id), hub_env)
    assert first["private"] is True
    assert first["files"] == [".gitattributes", "adjudications.jsonl", "annotations/alice.jsonl",
                              "annotations/bob.jsonl", "items.jsonl"]
    assert len(first["alice"]) == len(first["bob"]) == 5
    assert set(first["last"]) == {"annotations/alice.jsonl", "annotations/bob.jsonl"}

    second = run_client_json(_snippet(SYNC_RESTART, dir=str(tmp_path / "space2"), repo=hub_repo_id), hub_env)
    assert second["restored"] == {"files": 4, "items": 5, "annotations": 10, "adjudications": 1}
    assert second["items"] == 5
    assert (second["alice"], second["bob"]) == (first["alice"], first["bob"])
    assert second["adjudications"] == first["adjudications"]
    assert any(a["edited"] == "better" for a in second["alice"])
    assert second["reviewers"] == 3
    # carol's new file was committed after the restart; alice's and bob's were not re-uploaded
    assert set(second["last"]) == {"annotations/alice.jsonl", "annotations/bob.jsonl", "annotations/carol.jsonl"}
    assert {k: second["last"][k] for k in first["last"]} == first["last"]
    assert second["last"]["annotations/carol.jsonl"] not in first["last"].values()


# ---- CLI ----------------------------------------------------------------------------------


def test_cli_export_agreement_and_apply(tmp_path):
    from hubtools import load
    from hubtools.convert import write

    src = tmp_path / "pairs.jsonl"
    write(pairs(4), src, format="dpo", kind="preference")
    queue = build_queue(load(src).dataset)
    db = tmp_path / "reviews.sqlite"
    store = AnnotationStore(db)
    store.register(queue)
    for item in queue:
        store.annotate("ann", item.item_id, letter(item, "rejected") if item.index == 0 else letter(item, "chosen"))
        store.annotate("bob", item.item_id, letter(item, "rejected") if item.index in (0, 1) else
                       letter(item, "chosen"))

    exported = runner.invoke(app, ["review", "export", str(db), "--out", str(tmp_path / "ann.jsonl")])
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.strip() == f"wrote 8 rows to {tmp_path / 'ann.jsonl'}"

    report = runner.invoke(app, ["review", "agreement", str(db), "--json"])
    data = json.loads(report.stdout)
    assert (data["reviewers"], data["items"], data["percent_agreement"]) == (2, 4, 0.75)
    assert data["cohen_kappa"] == pytest.approx(0.5, abs=1e-6)  # p_o = .75, p_e = (1/4)(2/4) + (3/4)(2/4) = .5
    text_report = runner.invoke(app, ["review", "agreement", str(db)]).stdout
    assert text_report.startswith("2 reviewers, 4 items: 75.0% agreement, Cohen's kappa 0.50")
    assert "to adjudicate: 1-" in text_report

    out = tmp_path / "reviewed.jsonl"
    applied = runner.invoke(app, ["review", "apply", str(src), str(db), "--out", str(out), "--json"])
    assert applied.exit_code == 0, applied.output
    summary = json.loads(applied.stdout)
    assert (summary["total"], summary["written"], summary["excluded"], summary["swapped"]) == (4, 3, 1, 1)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert (rows[0]["chosen"], rows[0]["rejected"]) == ("bad answer 0", "good answer 0")
    excluded = [json.loads(line) for line in (tmp_path / "reviewed.excluded.jsonl").read_text().splitlines()]
    assert [(e["index"], e["reason"]) for e in excluded] == [(1, "disputed")]

    missing = runner.invoke(app, ["review", "agreement", str(tmp_path / "none.sqlite")])
    assert missing.exit_code == 1 and "no annotation store here" in missing.stderr
    for command in ("export", "agreement", "apply"):
        assert "Example: hubtools review " in runner.invoke(app, ["review", command, "--help"]).stdout


def test_reviews_of_a_real_preference_file_apply_with_nothing_lost(corpus, tmp_path):
    from hubtools import load
    from hubtools.review import apply_file

    src = corpus / "llama_factory/dpo_en_demo.json"
    loaded = load(src)
    queue = build_queue(loaded.dataset)
    store = AnnotationStore(tmp_path / "reviews.sqlite")
    store.register(queue)
    reviewed = [queue.at_index(i) for i in range(20)]
    for item in reviewed:
        store.annotate("ann", item.item_id, letter(item, "chosen"))
        store.annotate("bob", item.item_id, letter(item, "rejected" if item.index % 5 == 0 else "chosen"))
    store.annotate("ann", queue.at_index(20).item_id, letter(queue.at_index(20), "rejected"))

    summary = apply_file(src, store, tmp_path / "reviewed.json")
    assert (summary["total"], summary["written"], summary["excluded"], summary["quarantined"]) == (300, 296, 4, 0)
    assert (summary["swapped"], summary["unreviewed"], summary["by_reason"]) == (1, 279, {"disputed": 4})
    original = json.loads(src.read_text())
    written = json.loads((tmp_path / "reviewed.json").read_text())
    kept = [row for i, row in enumerate(original) if i >= 20 or i % 5]
    assert [{k: v for k, v in row.items() if k != "review"} for row in written] == [
        {**row, "chosen": row["rejected"], "rejected": row["chosen"]} if row is original[20] else row for row in kept]
    assert sum("review" in row for row in written) == 16 + 1
    excluded = [json.loads(line) for line in (tmp_path / "reviewed.excluded.jsonl").read_text().splitlines()]
    assert [e["index"] for e in excluded] == [0, 5, 10, 15]
