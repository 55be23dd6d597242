"""The app's tabs: handlers called as plain functions on corpus files, and the launched app driven over
HTTP with gradio_client (each Client is one browser session, so two clients are two reviewers)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from hubtools.app import AppSettings, create_app
from hubtools.app.load_tab import inspect_upload, load_example, load_upload
from hubtools.app.publish_tab import publish, publish_preview
from hubtools.app.quality_tab import run_filter, run_quality
from hubtools.app.review_tab import SHORTCUTS, my_annotations, review_decide, review_edit, review_start
from hubtools.app.session import Session
from hubtools.app.team import agreement_view, open_team

from .conftest import CORPUS

DPO = CORPUS / "llama_factory" / "dpo_en_demo.json"


@pytest.fixture
def settings(tmp_path) -> AppSettings:
    return AppSettings(app_dir=tmp_path / "app")


@pytest.fixture
def dpo_session(settings) -> Session:
    return load_upload(settings, str(DPO), Session()).session


# --------------------------------------------------------------------------- Load


def test_inspect_upload_shows_format_counts_and_quarantine():
    text, rows, quarantine_file, valid_file = inspect_upload(
        str(CORPUS / "alpaca_eval/alpaca-7b_vs_davinci003_gpt4_annotations.json"))
    assert "`alpaca_eval_pairwise` (preference)" in text
    assert "805 = **789 valid** + **16 quarantined**" in text
    assert len(rows) == 16 and rows[0][1] == "no_preference"
    assert quarantine_file.endswith("quarantine.jsonl") and valid_file.endswith("valid.json")


def test_unusable_upload_says_why_instead_of_failing(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    text, rows, *_ = inspect_upload(str(path))
    assert text.startswith("**Cannot read this file.**") and "empty" in text and rows == []


def test_a_loaded_file_becomes_the_current_dataset(settings):
    screen = load_upload(settings, str(DPO), Session())
    assert "`sharegpt_preference` (preference)" in screen.summary and "current dataset" in screen.summary
    assert screen.session.dataset == screen.valid_file and screen.session.kind == "preference"
    assert screen.session.records == 300 and screen.session.name == "dpo_en_demo.json"


def test_an_upload_over_the_limit_is_refused_with_the_limit(tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_text((json.dumps({"text": "x" * 1000}) + "\n") * 1200)  # 1.2 MB
    before = Session(dataset="/somewhere/valid.jsonl")
    screen = load_upload(AppSettings(max_upload_mb=1, app_dir=tmp_path), str(big), before)
    assert screen.summary.startswith("**This file is too large.**") and "up to 1 MB" in screen.summary
    assert screen.session == before


def test_the_bundled_example_loads_with_one_click():
    screen = load_example(Session())
    assert "20 = **20 valid** + **0 quarantined**" in screen.summary
    assert screen.session.kind == "preference" and screen.session.records == 20


# --------------------------------------------------------------------------- Quality


def test_checks_give_plots_flagged_records_and_the_report(dpo_session):
    screen = run_quality(["exact_duplicates", "length_outliers", "pii"], "", "", dpo_session)
    assert "300 records" in screen.summary
    by_check = {row[0]: row[1] for row in screen.results}
    assert by_check["exact_duplicates"] == 5 and by_check["pii"] == 1
    assert [caption for _, caption in screen.plots] == ["lengths"]
    assert Path(screen.plots[0][0]).read_bytes()[:4] == b"\x89PNG"
    flagged = {row[0]: row[1] for row in screen.flagged}
    assert len(flagged) >= 6 and any("pii" in names for names in flagged.values())
    assert sorted(Path(p).name for p in screen.report_files) == [
        "category_distribution.json", "dataset_quality_report.md", "quality.json"]
    assert screen.session.quality is not None


def test_filter_drops_flagged_records_and_the_kept_file_becomes_current(dpo_session):
    checked = run_quality(["exact_duplicates", "pii"], "", "", dpo_session).session
    screen = run_filter(["exact_duplicates"], True, checked)
    assert "**300 records = 295 kept + 5 removed**" in screen.summary and "Redacted:" in screen.summary
    removed = [json.loads(line) for line in Path(screen.removed_file).read_text().splitlines()]
    assert len(removed) == 5 and all(r["reasons"] == ["exact_duplicates"] for r in removed)
    assert screen.session.dataset == screen.kept_file and screen.session.records == 295
    assert screen.session.quality is None  # the old results describe the old data


def test_tabs_work_on_the_loaded_records_without_reading_the_file_again(settings):
    """The session holds the loaded dataset: once read, no tab parses the file again (issue 14)."""
    import copy
    import pickle

    session = load_upload(settings, str(DPO), Session()).session
    first = run_quality(["exact_duplicates"], "", "", session).session
    Path(first.dataset).unlink()  # any tab that read the path again would fail now
    again = run_quality(["exact_duplicates", "pii"], "", "", first)
    assert "300 records" in again.summary and {row[0]: row[1] for row in again.results}["pii"] == 1
    preview = publish_preview("me/pairs", "mit", "", again.session)
    assert "license: mit" in preview.metadata and "300" in preview.card
    review = review_start(open_team(settings).store, "alice", again.session, None)
    assert review.progress == "**alice:** 0 of 300 reviewed"
    filtered = run_filter(["exact_duplicates"], False, again.session)
    assert "**300 records = 295 kept + 5 removed**" in filtered.summary
    # a new dataset is read anew: the kept file, not the old records
    assert filtered.session.loaded().valid == 295 and again.session.loaded().valid == 300
    # copies (Gradio deep-copies a State's first value) and pickles carry the path, not the records
    for clone in (copy.deepcopy(filtered.session), pickle.loads(pickle.dumps(filtered.session))):
        assert clone == filtered.session and clone._loaded.result is None
        assert clone.loaded().valid == 295


def test_quality_tab_asks_for_a_dataset_first():
    assert run_quality(["pii"], "", "", Session()).summary.startswith("Load a dataset first")


# --------------------------------------------------------------------------- Review


def test_review_queue_puts_hallucination_prone_then_low_margin_first(settings):
    store = open_team(settings).store
    screen = review_start(store, "alice", load_example(Session()).session, None)
    order = [item.priority for item in screen.review.queue]
    assert order == sorted(order, reverse=True)
    assert "hallucination-prone: numbers" in screen.info and screen.progress == "**alice:** 0 of 20 reviewed"
    assert screen.score_a.startswith("Judge score") and screen.rationale.startswith("**Judge rationale:**")
    assert {screen.response_a, screen.response_b} == {
        "At sea level (standard atmospheric pressure), water boils at 100 °C.",
        "Water boils at 90 °C at sea level, and at a higher temperature on mountains."}


def test_reviewers_see_and_change_only_their_own_annotations(settings):
    store = open_team(settings).store
    session = load_example(Session()).session
    alice = review_start(store, "alice", session, None)
    first = alice.item_id
    after = review_decide(store, "a", "alice", first, "A is right", alice.review)
    assert after.item_id != first and "1 of 20" in after.progress
    bob = review_start(store, "bob", session, None)
    assert bob.item_id == first  # bob's queue is his own
    review_decide(store, "b", "bob", first, None, bob.review)
    again = review_decide(store, "tie", "alice", first, None, alice.review)  # alice changes her mind
    assert "1 of 20" in again.progress
    rows, _ = my_annotations(store, "alice")
    assert [(r[0], r[2], r[4]) for r in rows] == [(first, "tie", "")]
    assert [r[2] for r in my_annotations(store, "bob")[0]] == ["b"]


def test_an_edit_goes_with_the_preferred_side(settings):
    store = open_team(settings).store
    screen = review_start(store, "alice", load_example(Session()).session, None)
    saved = review_edit(store, "alice", screen.item_id, "b", "Water boils at 100 °C at sea level.", "", screen.review)
    assert saved.status.startswith("Saved: **B is better**, with your edit")
    empty = review_edit(store, "alice", saved.item_id, "a", "   ", "", screen.review)
    assert empty.status.startswith("**Not saved.** the edited text is empty")


def test_review_without_a_name_or_dataset_says_what_to_do(settings):
    store = open_team(settings).store
    assert "reviewer name" in review_start(store, "", load_example(Session()).session, None).status
    assert review_start(store, "alice", Session(), None).status.startswith("Load a dataset first")


def test_review_can_take_the_lowest_quality_first_once_the_quality_tab_ran(settings, dpo_session):
    """The Quality tab's scores order the queue when asked (the default order stays the flags'); without
    a check run, or with an order the tab does not offer, the start is refused with what to do."""
    from hubtools.app.review_tab import order_hint
    from hubtools.review import quality_from_file

    store = open_team(settings).store
    refused = review_start(store, "alice", dpo_session, None, "quality")
    assert refused.review is None and "run the checks in the **Quality** tab" in refused.status
    assert "run the **Quality** tab" in order_hint(dpo_session)
    checked = run_quality(["exact_duplicates", "length_outliers", "pii"], "", "", dpo_session).session
    assert "last check run" in order_hint(checked)
    scores = quality_from_file(checked.quality)
    assert len(scores) >= 3 and len(set(scores.values())) >= 2  # some records score below 1, not all alike
    screen = review_start(store, "alice", checked, None, "quality")
    queue = screen.review.queue.items
    assert [item.quality for item in queue] == sorted(item.quality for item in queue)
    worst = min(scores.values())
    assert queue[0].quality == pytest.approx(worst) and queue[0].index in scores
    assert {item.index for item in queue[:len(scores)]} == set(scores)  # every scored record before the rest
    assert f"quality score {worst:g}" in screen.info and "lowest quality score first" in screen.status
    # the default order is the flags' priority, as before, with or without the order argument
    default = review_start(store, "alice", checked, None)
    assert [i.index for i in default.review.queue.items] == [
        i.index for i in review_start(store, "alice", checked, None, "priority").review.queue.items]
    assert all(item.quality is None for item in default.review.queue.items)
    for hostile in ("worst", "quality; drop table", 3, ["quality"]):
        bad = review_start(store, "alice", checked, screen.review, hostile)
        assert bad.status.startswith("**Cannot start the review.** Unknown queue order") and bad.item_id == ""
        assert bad.review is screen.review  # the queue on screen stays as it was


def test_agreement_of_two_reviewers_has_kappa_and_queues_the_dispute(settings):
    store = open_team(settings).store
    session = load_example(Session()).session
    a = review_start(store, "alice", session, None)
    b = review_start(store, "bob", session, None)
    items = [item.item_id for item in a.review.queue][:4]
    for item, (x, y) in zip(items, [("a", "a"), ("b", "b"), ("a", "b"), ("tie", "tie")], strict=True):
        review_decide(store, x, "alice", item, None, a.review)
        review_decide(store, y, "bob", item, None, b.review)
    summary, rows, disputes = agreement_view(store)
    assert summary.startswith("**2 reviewers, 4 items: 75.0% agreement, Cohen's kappa")
    overall = rows[0]
    assert overall[:4] == ["overall", 2, 4, "0.750"] and overall[4] != "n/a" and overall[5] != "n/a"
    assert [d[0] for d in disputes] == [items[2]]


# --------------------------------------------------------------------------- Publish


def test_card_preview_renders_without_network():
    screen = publish_preview("me/example-pairs", "apache-2.0", "", load_example(Session()).session)
    assert "license: apache-2.0" in screen.metadata and "preference" in screen.metadata
    assert "# Example Pairs" in screen.card and "20 preference pairs" in screen.card
    assert screen.card.count("hubtools:begin") > 3 and "---" not in screen.card.splitlines()[0]
    assert screen.guidelines.startswith("<!-- hubtools:begin overview")
    assert "# Annotation guidelines: Example Pairs" in screen.guidelines


def test_publishing_without_a_token_says_so_plainly(dpo_session):
    status, url = publish(AppSettings(hf_token=None), "me/pairs", False, False, "", "", "", dpo_session)
    assert status.startswith("**No Hugging Face token, so nothing was published.**") and url == ""


# --------------------------------------------------------------------------- the Blocks


@pytest.fixture(scope="module")
def served_app(tmp_path_factory):
    demo = create_app(AppSettings(app_dir=tmp_path_factory.mktemp("app"), max_upload_mb=1))
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    yield demo
    demo.close()


def test_app_has_tabs_handlers_with_api_names_and_unique_elem_ids(served_app):
    config = served_app.get_config_file()
    ids = [c["props"].get("elem_id") for c in config["components"] if c["props"].get("elem_id")]
    assert len(ids) == len(set(ids))
    assert {"tab-load", "tab-generate", "tab-review", "tab-quality", "tab-publish", "tab-team", "reviewer",
            "current-dataset"} <= set(ids)
    public = {fn.api_name for fn in served_app.fns.values() if fn.api_visibility == "public"}
    assert {"inspect", "load_hub", "load_example", "generate", "answer_prompts", "judge_rank", "review_start",
            "review_a", "review_b", "review_skip", "review_flag", "review_edit", "run_checks", "filter",
            "publish_preview", "publish", "agreement", "adjudicate"} <= public
    assert all(fn.api_name for fn in served_app.fns.values() if fn.fn is not None)
    assert set(SHORTCUTS.values()) <= set(ids)
    scripts = [fn.js for fn in served_app.fns.values() if fn.js]
    assert any(all(f'"{key}": "{target}"' in js for key, target in SHORTCUTS.items()) for js in scripts)


def test_long_jobs_have_their_own_queues_and_review_clicks_none(served_app):
    fns = {fn.api_name: fn for fn in served_app.fns.values()}
    assert (fns["run_checks"].concurrency_id, fns["run_checks"].concurrency_limit) == ("checks", 1)
    assert (fns["generate"].concurrency_id, fns["generate"].concurrency_limit) == ("generate", 1)
    assert (fns["answer_prompts"].concurrency_id, fns["answer_prompts"].concurrency_limit) == ("generate", 1)
    assert fns["publish"].concurrency_id == "publish" and fns["inspect"].concurrency_id == "load"
    for name in ("review_start", "review_a", "review_b", "my_annotations", "agreement"):
        assert fns[name].concurrency_limit is None, name


def test_upload_limit_applies_however_the_app_is_launched(served_app):
    # served_app was launched with a plain queue().launch(): the limit comes from the settings
    assert served_app.max_file_size == 1024 * 1024


# --------------------------------------------------------------------------- over HTTP


def client_for(app):
    from gradio_client import Client

    return Client(app.local_url, verbose=False)


def test_inspect_endpoint_over_http(served_app):
    from gradio_client import handle_file

    text, table, quarantine_file, valid_file = client_for(served_app).predict(
        handle_file(str(CORPUS / "llama_factory/kto_en_demo.json")), api_name="/inspect")
    assert "`kto` (unpaired)" in text
    assert "300 = **300 valid** + **0 quarantined**" in text
    assert valid_file.endswith(".json")


def test_an_upload_over_the_limit_is_refused_over_http(served_app, tmp_path):
    from gradio_client import handle_file

    big = tmp_path / "big.jsonl"
    big.write_text((json.dumps({"text": "x" * 1000}) + "\n") * 1200)
    with pytest.raises(Exception, match="(?i)exceeds|too large|413|maximum"):
        client_for(served_app).predict(handle_file(str(big)), api_name="/inspect")


def test_review_order_over_http_is_one_of_the_offered_two(served_app):
    """The order is the endpoint's last argument (the earlier ones keep their places); "quality" waits for
    a check run, and a value the tab does not offer is refused."""
    client = client_for(served_app)
    client.predict(api_name="/load_example")
    status = client.predict("alice", "quality", api_name="/review_start")[10]
    assert "run the checks in the **Quality** tab" in status
    client.predict(["exact_duplicates", "length_outliers"], "", "", api_name="/run_checks")
    assert "lowest quality score first" in client.predict("alice", "quality", api_name="/review_start")[10]
    assert "lowest quality" not in client.predict("alice", api_name="/review_start")[10]  # the default
    with pytest.raises(Exception, match="(?i)worst|choices"):
        client.predict("alice", "worst", api_name="/review_start")


def test_checks_over_http_give_a_plot_file(served_app):
    client = client_for(served_app)
    client.predict(api_name="/load_example")
    summary, results, plots, flagged, files = client.predict(
        ["exact_duplicates", "length_outliers", "categories"], "", "", api_name="/run_checks")
    assert "20 records" in summary and [row[0] for row in results["data"]] == [
        "exact_duplicates", "length_outliers", "categories"]
    images = [Path(p["image"]["path"] if isinstance(p["image"], dict) else p["image"]) for p in plots]
    assert {p.name for p in images} == {"lengths.png", "categories.png"}
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in images)
    assert {Path(f).name for f in files} == {"quality.json", "dataset_quality_report.md",
                                             "category_distribution.json"}


def test_two_reviewers_over_http_and_their_agreement(served_app):
    alice, bob = client_for(served_app), client_for(served_app)  # two browser sessions
    for client, name in ((alice, "alice"), (bob, "bob")):
        client.predict(api_name="/load_example")
        screen = client.predict(name, api_name="/review_start")
        assert screen[-2] == f"**{name}:** 0 of 20 reviewed"
    first = alice.predict("alice", api_name="/review_start")[0]
    after_alice = alice.predict("alice", first, "", api_name="/review_a")
    after_bob = bob.predict("bob", first, "B is right", api_name="/review_b")
    assert after_alice[0] != first and after_alice[-1].startswith("Saved: **A is better**")
    assert after_bob[-1].startswith("Saved: **B is better**")
    mine, status = bob.predict("bob", api_name="/my_annotations")
    assert [row[0] for row in mine["data"]] == [first] and mine["data"][0][2] == "b"
    summary, per_category, disputes = alice.predict("alice", api_name="/agreement")  # a reviewer asks
    assert summary.startswith("**2 reviewers")
    assert per_category["data"][0][0] == "overall" and per_category["data"][0][1] == 2
    assert first in [row[0] for row in disputes["data"]]


def test_a_long_generation_does_not_block_review_clicks(served_app, make_openai_server, tmp_path):
    from gradio_client import handle_file

    text = (CORPUS / "llama_factory" / "wiki_demo.txt").read_text(encoding="utf-8").splitlines()[0][:4000]
    (tmp_path / "doc.md").write_text(text, encoding="utf-8")
    slow = make_openai_server(latency=1.5)  # two rounds of 8 requests: about 3 s of generation
    writer, reviewer = client_for(served_app), client_for(served_app)
    job = writer.submit([handle_file(str(tmp_path / "doc.md"))], slow.base_url, "stand-in-small", "", False,
                        ["qa", "summarization"], 5, 3, 2, 3, 2, 800, 3, api_name="/generate")  # ~18 responses
    reviewer.predict(api_name="/load_example")
    while not slow.in_flight:  # the generation is under way
        time.sleep(0.02)
    started = time.monotonic()
    screen = reviewer.predict("dana", api_name="/review_start")
    decided = reviewer.predict("dana", screen[0], "", api_name="/review_skip")  # a skip: no agreement effect
    took = time.monotonic() - started
    assert decided[-1].startswith("Saved: **skip**")
    assert not job.done(), "the review clicks should finish while the generation still runs"
    assert took < 2.0
    assert re.search(r"\*\*(\d+) of \1 candidate responses\*\*", job.result()[0])


def test_app_opened_with_review_starts_every_session_on_that_queue(tmp_path):
    """`hubtools app --review FILE` (what a build's review gate prints) opens on that dataset's queue."""
    import gradio as gr

    from hubtools.app import AppSettings, create_app
    from hubtools.app.session import EXAMPLE

    demo = create_app(AppSettings(app_dir=tmp_path, review=EXAMPLE))
    tabs = [b for b in demo.blocks.values() if isinstance(b, gr.Tabs) and b.elem_id == "tabs"]
    states = [b for b in demo.blocks.values() if isinstance(b, gr.State) and hasattr(b.value, "dataset")]
    assert [t.selected for t in tabs] == ["review"]
    assert states and states[0].value.dataset == str(EXAMPLE) and states[0].value.records == 20
    assert create_app(AppSettings(app_dir=tmp_path / "plain")).blocks  # no review: an empty session
