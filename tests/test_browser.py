"""The app in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): load corpus files,
run checks, review with clicks and keys, publish to the local Hub, and two reviewers' agreement.

The app is served by its own interpreter pointed at the local Hub (the Hub clients read HF_ENDPOINT when
they are imported, as in test_app_team.py), without HF_TOKEN: publishing uses the token typed in the page.
Each browser context is one Gradio session. On failure, a screenshot and the HTML of every open page are
saved under pytest's basetemp (``browser-artifacts/<test>``) and the folder is printed.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import Counter
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from tests.fixtures.app import serve_app
from tests.fixtures.browser import (
    CHROMIUM,
    MISSING_CHROMIUM,
    WAIT,
    box,
    cell,
    open_page,
    pages_of,
    save_artifacts,
    tab,
    upload,
)
from tests.fixtures.hub import PROJECT_ROOT, WRITE_TOKEN, client_env, run_client_json
from tests.fixtures.openai import OPENAI_TOKEN

from .conftest import CORPUS

ALPACA_EVAL = CORPUS / "alpaca_eval" / "alpaca-7b_vs_davinci003_gpt4_annotations.json"
DPO = CORPUS / "llama_factory" / "dpo_en_demo.json"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def served_app(hub_server, tmp_path_factory):
    """The app, served by its own interpreter, talking to the local Hub (no HF_TOKEN: the page gives it)."""
    home = tmp_path_factory.mktemp("browser-app")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "HUBTOOLS_"))}
    env.update(client_env(hub_server, home / "hf_home"), HUBTOOLS_APP_DIR=str(home / "app"),
               GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(PROJECT_ROOT))
    del env["HF_TOKEN"]
    with serve_app(env, home) as url:
        yield SimpleNamespace(url=url, home=home)


@pytest.fixture
def new_page(browser, served_app, request, tmp_path_factory):
    """Open pages for this test (each its own session); close them after, with artifacts on failure."""
    yield from pages_of(browser, served_app, request, tmp_path_factory)


# --------------------------------------------------------------------------- 1. load


def test_debian_chromium_is_installed():
    assert CHROMIUM.exists(), MISSING_CHROMIUM  # the other tests error with the same message


def test_an_uploaded_file_shows_its_counts_and_quarantine_rows(new_page):
    page = new_page()
    upload(page, ALPACA_EVAL)
    summary = page.locator("#summary")
    expect(summary).to_contain_text("alpaca_eval_pairwise (preference)")
    expect(summary).to_contain_text("805 = 789 valid + 16 quarantined")
    expect(summary).to_contain_text("no_preference: 16")
    quarantine = page.locator("#quarantine [role=grid]")
    expect(quarantine).to_have_attribute("aria-rowcount", "17", timeout=WAIT)  # header + 16 rows
    first = [page.locator(f"#quarantine [data-testid=cell-0-{col}]") for col in range(3)]
    expect(first[0]).to_have_text("24")
    expect(first[1]).to_have_text("no_preference")
    expect(first[2]).to_contain_text("the judge preferred neither output")
    expect(page.locator("#current-dataset")).to_contain_text(
        f"Current dataset: {ALPACA_EVAL.name} · alpaca_eval_pairwise (preference) · 789 records · not checked yet")


def test_a_prompt_list_uploaded_in_generate_is_answered_then_ranked(new_page, openai_server, tmp_path):
    prompts = tmp_path / "questions.jsonl"
    prompts.write_text('{"question": "Why is the sky blue?"}\n{"question": "What is 2+2?"}\n', encoding="utf-8")
    page = new_page()
    tab(page, "Generate")
    page.locator("#generate-prompt-list input[type=file]").set_input_files(str(prompts))
    expect(page.locator("#generate-prompt-list")).to_contain_text("questions.jsonl", timeout=WAIT)
    box(page, "generate-endpoint").fill(openai_server.base_url)
    box(page, "generate-model").fill("stand-in-small")
    box(page, "generate-api-key").fill(OPENAI_TOKEN)
    page.locator("#generate-answer-prompts").click()
    summary = page.locator("#generate-summary")
    expect(summary).to_contain_text("questions.jsonl: 2 prompts (question, prompt", timeout=WAIT)
    expect(summary).to_contain_text("4 of 4 candidate responses from stand-in-small", timeout=WAIT)
    assert len(openai_server.completions()) == 4
    page.locator("#rank-run").click()
    expect(page.locator("#rank-summary")).to_contain_text("from 2 prompts", timeout=WAIT)


# --------------------------------------------------------------------------- 2. quality


def test_checks_show_a_loaded_plot_and_the_flagged_records(new_page):
    page = new_page()
    upload(page, DPO)
    tab(page, "Quality")
    checks = page.locator("#quality-checks")
    expect(checks.get_by_role("checkbox", name="schema", exact=True)).to_be_checked()  # the defaults
    wanted = {"exact_duplicates", "length_outliers", "pii"}
    for checkbox in checks.get_by_role("checkbox").all():
        checkbox.set_checked(checkbox.evaluate("e => e.closest('label').innerText.trim()") in wanted)
    assert sorted(c.evaluate("e => e.closest('label').innerText.trim()")
                  for c in checks.get_by_role("checkbox").all() if c.is_checked()) == sorted(wanted)
    page.locator("#quality-run").click()
    summary = page.locator("#quality-summary")
    expect(summary).to_contain_text("flagged by at least one check", timeout=WAIT)
    expect(summary).to_contain_text(f"{DPO.name}: 300 records = 300 valid + 0 quarantined")
    flagged = int(re.search(r"(\d+) flagged", summary.inner_text()).group(1))

    plot = page.locator("#quality-plots img").first
    expect(plot).to_be_visible(timeout=WAIT)
    plot.scroll_into_view_if_needed()  # in case the gallery loads its images lazily
    page.wait_for_function("""() => { const img = document.querySelector('#quality-plots img');
                                      return img && img.complete && img.naturalWidth > 0; }""", timeout=WAIT)
    assert plot.evaluate("img => img.naturalWidth") > 100 and plot.evaluate("img => img.naturalHeight") > 100
    assert page.locator("#quality-plots img").count() == 1  # length_outliers draws the one plot: lengths

    expect(page.locator("#quality-flagged [role=grid]")).to_have_attribute("aria-rowcount", str(flagged + 1))
    assert flagged >= 6  # 5 exact duplicates and a record with personal data, at least
    table = page.locator("#quality-flagged")
    expect(table).to_contain_text("exact_duplicates")
    expect(table).to_contain_text("pii")
    expect(page.locator("#current-dataset")).to_contain_text("300 records · checked")


# --------------------------------------------------------------------------- 3 and 5. review


RECORDS = json.loads(DPO.read_text(encoding="utf-8"))
BUTTONS = {"a": "review-choose-a", "b": "review-choose-b", "tie": "review-tie", "skip": "review-skip"}
KEYS = {"a": "a", "b": "b", "tie": "t", "skip": "s"}


def shown(page, position: int) -> dict:
    """The item at ``position`` of the queue, once on screen: its id, record, and which side (A or B) shows
    the dataset's chosen response (the order is blind)."""
    info = page.locator("#review-info")
    expect(info).to_contain_text(f"(queue position {position} of 300)", timeout=WAIT)
    record = int(re.search(r"Record (\d+) \(queue position", info.inner_text()).group(1))
    chosen, rejected = RECORDS[record]["chosen"]["value"], RECORDS[record]["rejected"]["value"]
    response_a, response_b = box(page, "review-a"), box(page, "review-b")
    expect(response_a).to_have_value(re.compile(f"^({re.escape(chosen)}|{re.escape(rejected)})$"))
    expect(response_b).to_have_value(rejected if response_a.input_value() == chosen else chosen)
    side_a = "chosen" if response_a.input_value() == chosen else "rejected"
    return {"item": box(page, "review-item-id").input_value(), "record": record, "a": side_a,
            "b": "rejected" if side_a == "chosen" else "chosen"}


def decide(page, reviewer: str, decision: str, how: str, done: int) -> dict:
    """Decide the shown item (queue position ``done``) with a click or its key; wait until the progress counts it."""
    item = shown(page, done)
    if how == "click":
        page.locator(f"#{BUTTONS[decision]}").click()
    else:
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.keyboard.press(KEYS[decision])
    expect(page.locator("#review-progress")).to_have_text(f"{reviewer}: {done} of 300 reviewed", timeout=WAIT)
    label = item[decision] if decision in ("a", "b") else decision  # what agreement counts: the side preferred
    status = page.locator("#review-status")
    expect(status).to_contain_text(f" on record {item['record']}.")
    return {**item, "decision": decision, "label": label, "status": status.inner_text()}


def start_review(page, reviewer: str) -> None:
    box(page, "reviewer").fill(reviewer)
    upload(page, DPO)
    tab(page, "Rank & review")
    page.locator("#review-start").click()
    expect(page.locator("#review-progress")).to_have_text(f"{reviewer}: 0 of 300 reviewed", timeout=WAIT)
    expect(page.locator("#review-status")).to_contain_text(f"Queue of 300 items from {DPO.name}")


@pytest.fixture(scope="module")
def alice(browser, served_app, request, tmp_path_factory):
    """Alice reviews the first five items of the queue with clicks and keys; on the first she types a note."""
    page = open_page(browser, served_app)
    try:
        start_review(page, "alice")
        note = box(page, "review-note")
        note.click()
        note.press_sequentially("b")  # a shortcut key typed in a text box is only text
        expect(note).to_have_value("b")
        expect(page.locator("#review-progress")).to_have_text("alice: 0 of 300 reviewed")
        decided = [decide(page, "alice", "a", "key", 1)]
        expect(note).to_have_value("")  # saved with the decision, then cleared
        decided += [decide(page, "alice", "b", "click", 2), decide(page, "alice", "a", "click", 3),
                    decide(page, "alice", "tie", "key", 4), decide(page, "alice", "skip", "key", 5)]
        yield SimpleNamespace(page=page, decided=decided)
    except BaseException:
        save_artifacts(browser, tmp_path_factory.getbasetemp() / "browser-artifacts" / "alice", request)
        raise
    finally:
        page.context.close()


def test_review_clicks_and_keys_save_decisions_and_advance_the_progress(alice, new_page):  # new_page: artifacts
    page, decided = alice.page, alice.decided
    assert [d["status"].split(" on record")[0] for d in decided] == [
        "Saved: A is better", "Saved: B is better", "Saved: A is better", "Saved: a tie", "Saved: skip"]
    assert len({d["item"] for d in decided}) == 5  # each decision moved on to the next item
    shown(page, 6)
    assert box(page, "review-item-id").input_value() not in {d["item"] for d in decided}

    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("e")  # opens the closed "Edit" accordion and puts the cursor in the edit box
    expect(page.locator("#review-edit-text textarea")).to_be_focused(timeout=WAIT)

    page.get_by_role("button", name="My annotations (only yours)").click()
    page.locator("#review-mine-refresh").click()
    expect(page.locator("#review-mine-status")).to_have_text("5 annotations by alice.", timeout=WAIT)
    expect(page.locator("#review-mine [role=grid]")).to_have_attribute("aria-rowcount", "6")
    newest_first = decided[::-1]
    for row, d in enumerate(newest_first):
        expect(page.locator(f"#review-mine [data-testid=cell-{row}-0]")).to_have_text(d["item"])
        expect(page.locator(f"#review-mine [data-testid=cell-{row}-2]")).to_have_text(d["decision"])
    expect(page.locator("#review-mine [data-testid=cell-4-4]")).to_have_text("b")  # the note on the first item


def kappa(first: list[str], second: list[str]) -> float:
    """Cohen's kappa of two raters' labels: (observed - chance agreement) / (1 - chance agreement)."""
    n = len(first)
    observed = sum(x == y for x, y in zip(first, second, strict=True)) / n
    a, b = Counter(first), Counter(second)
    chance = sum(a[label] * b[label] for label in set(first) | set(second)) / (n * n)
    return (observed - chance) / (1 - chance)


def test_queue_by_lowest_quality_needs_a_check_run_then_starts_with_the_lowest_score(new_page):
    """The 'Queue order' radio: lowest quality first is refused before the Quality tab has run, then the
    queue starts with a record of the lowest score the same checks give through the library."""
    from hubtools.checks import run_checks
    from hubtools.checks.score import record_scores

    wanted = ["exact_duplicates", "pii"]
    scores = record_scores(run_checks(str(DPO), checks=["schema", *wanted]))
    lowest = min(scores.scores.values())
    assert lowest < 1.0  # the file has duplicates and personal data, so the order means something

    page = new_page()
    box(page, "reviewer").fill("carol")
    upload(page, DPO)
    tab(page, "Rank & review")
    order = page.locator("#review-order")
    order.get_by_label("lowest quality first").check()
    page.locator("#review-start").click()
    expect(page.locator("#review-status")).to_contain_text("needs quality scores", timeout=WAIT)

    tab(page, "Quality")
    for checkbox in page.locator("#quality-checks").get_by_role("checkbox").all():
        checkbox.set_checked(checkbox.evaluate("e => e.closest('label').innerText.trim()") in wanted)
    page.locator("#quality-run").click()
    expect(page.locator("#quality-summary")).to_contain_text("flagged by at least one check", timeout=WAIT)

    tab(page, "Rank & review")
    expect(order.get_by_label("lowest quality first")).to_be_checked()
    page.locator("#review-start").click()
    expect(page.locator("#review-status")).to_contain_text(
        f"Queue of 300 items from {DPO.name} by the lowest quality score first", timeout=WAIT)
    first = shown(page, 1)
    assert scores.score(first["record"]) == lowest, (first, lowest)
    expect(page.locator("#review-info")).to_contain_text(f"quality score {lowest:g}")


def test_two_reviewers_in_two_sessions_and_their_agreement(alice, new_page):
    rated = alice.decided[:4]  # her fifth was a skip: no rating
    bob = new_page()
    start_review(bob, "bob")
    plan = [("agree", "key"), ("disagree", "click"), ("agree", "click"), ("disagree", "key")]
    decided = []
    for n, (theirs, (stance, how)) in enumerate(zip(rated, plan, strict=True), start=1):
        item = shown(bob, n)
        assert item["item"] == theirs["item"], "bob's queue should show alice's items in the same order"
        if theirs["label"] == "tie":
            decision = "tie" if stance == "agree" else "a"
        else:
            same = "a" if item["a"] == theirs["label"] else "b"
            decision = same if stance == "agree" else ("b" if same == "a" else "a")
        decided.append(decide(bob, "bob", decision, how, n))
    alice_labels, bob_labels = [d["label"] for d in rated], [d["label"] for d in decided]
    agree = [x == y for x, y in zip(alice_labels, bob_labels, strict=True)]
    assert agree == [True, False, True, False]
    expected_percent, expected_kappa = sum(agree) / len(agree), kappa(alice_labels, bob_labels)

    tab(bob, "Team & agreement")
    bob.locator("#agreement-refresh").click()
    summary = bob.locator("#agreement-summary")
    expect(summary).to_contain_text(
        f"2 reviewers, 4 items: {expected_percent:.1%} agreement, Cohen's kappa {expected_kappa:.2f}", timeout=WAIT)
    expect(summary).to_contain_text("2 to adjudicate")
    overall = ["overall", "2", "4", f"{expected_percent:.3f}", f"{expected_kappa:.3f}"]
    for col, value in enumerate(overall):
        expect(bob.locator(f"#agreement-table [data-testid=cell-0-{col}]")).to_have_text(value, timeout=WAIT)
    expect(bob.locator("#agreement-disputes [role=grid]")).to_have_attribute("aria-rowcount", "3")
    disputed = {cell(bob, "agreement-disputes", row, 0) for row in (0, 1)}
    assert disputed == {d["item"] for d, same in zip(decided, agree, strict=True) if not same}


# --------------------------------------------------------------------------- 4. publish


def test_publishing_from_the_page_puts_the_data_and_card_on_the_hub(new_page, hub_server, hub_env):
    suffix = f"{uuid.uuid4().int % 10**8:08d}"  # digits: the card's pretty name keeps them as they are
    hub_repo_id = f"user/browser-publish-{suffix}"
    page = new_page()
    upload(page, DPO)
    tab(page, "Publish")
    expect(page.locator("#publish-token-status")).to_contain_text("No token")  # the app has no HF_TOKEN
    box(page, "publish-repo-id").fill(hub_repo_id)
    token = page.locator("#publish-token input[type=password]")
    token.fill(WRITE_TOKEN)
    page.locator("#publish-push").click()
    status = page.locator("#publish-status")
    expect(status).to_contain_text(f"Published 300 records to {hub_server.url}", timeout=60_000)
    expect(status).to_contain_text("Created the repo")
    url = box(page, "publish-url")
    expect(url).to_have_value(re.compile(rf"^{re.escape(hub_server.url)}/datasets/{hub_repo_id}/commit/[0-9a-f]{{40}}$"))
    assert f"({url.input_value()})" in status.inner_text()
    assert WRITE_TOKEN not in status.inner_text() + url.input_value()

    hub = run_client_json("""
        import json
        from datasets import load_dataset
        from huggingface_hub import DatasetCard, HfApi

        repo = %r
        data = load_dataset(repo, split="train")
        card = DatasetCard.load(repo, repo_type="dataset")
        print(json.dumps({"files": sorted(HfApi().list_repo_files(repo, repo_type="dataset")), "rows": data.num_rows,
                          "columns": data.column_names, "first": data[0], "card": card.text, "meta": card.data.to_dict()}))
        """ % hub_repo_id, hub_env)
    assert {"README.md", "annotation_guidelines.md", "quality.json", "data/train-00000-of-00001.parquet"} <= set(
        hub["files"])
    assert hub["rows"] == 300
    assert hub["columns"] == ["conversations", "chosen", "rejected"]  # as uploaded: sharegpt_preference
    assert hub["first"] == RECORDS[0]
    title = f"Browser Publish {suffix}"
    assert f"# {title}\n\n300 preference pairs" in hub["card"]
    assert hub["meta"]["pretty_name"] == title and "preference" in hub["meta"]["tags"]
    assert hub["meta"]["configs"] == [{"config_name": "default",
                                       "data_files": [{"split": "train", "path": "data/train-*"}]}]
