"""The Generate tab: instructions offline, responses from the OpenAI-protocol stand-in, judging and
ranking into pairs that become the current dataset, and resuming (a long run not blocking review clicks
is in test_app.py, on the served app)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubtools.app import AppSettings
from hubtools.app.generate_tab import NO_BACKEND, check_endpoint_status, generate, judge_and_rank
from hubtools.app.review_tab import review_start
from hubtools.app.session import Session
from hubtools.app.team import open_team
from tests.fixtures.openai import OPENAI_TOKEN

from .conftest import CORPUS

TASKS = ["qa", "summarization", "extraction"]


@pytest.fixture
def documents(tmp_path) -> list[str]:
    """A markdown and an HTML document, cut from the corpus' Wikipedia demo text."""
    lines = (CORPUS / "llama_factory" / "wiki_demo.txt").read_text(encoding="utf-8").splitlines()
    md = tmp_path / "anarchism.md"
    md.write_text("# Notes\n\n" + lines[0][:2500], encoding="utf-8")
    html = tmp_path / "page.html"
    html.write_text(f"<html><head><script>x()</script></head><body><p>{lines[1][:2500]}</p></body></html>",
                    encoding="utf-8")
    return [str(md), str(html)]


def run(files, session, *, endpoint="", model="", key="", n=2, per_chunk=2, max_chunks=3):
    return generate(AppSettings(), files, endpoint, model, key, False, TASKS, 5, 3, 2, per_chunk, n, 800, max_chunks,
                    session)


def test_without_an_endpoint_instructions_are_written_offline_and_it_says_responses_need_one(documents):
    screen = run(documents, Session())
    assert "**2 documents → 3 chunks (of " in screen.summary and "written by template" in screen.summary
    assert NO_BACKEND in screen.summary
    assert len(screen.prompts) == 6 and {row[1] for row in screen.prompts} <= {*TASKS, "negative", "edge_case"}
    assert Path(screen.prompts_file).name == "prompts.jsonl" and screen.candidates_file is None
    assert screen.session.candidates is None and screen.session.dataset is None
    assert check_endpoint_status(AppSettings(), "", "", "").startswith("No endpoint given")


def test_responses_judged_and_ranked_become_the_current_dataset(documents, openai_server, tmp_path):
    screen = run(documents, Session(), endpoint=openai_server.base_url, model="stand-in-small", key=OPENAI_TOKEN)
    assert "**12 of 12 candidate responses** from stand-in-small" in screen.summary
    assert len(openai_server.completions()) == 12
    ranked = judge_and_rank(AppSettings(), "heuristic", "", "", "", "best_vs_worst", 0.0, 7.0, screen.session)
    assert ranked.summary.startswith("**Heuristic judge** (offline")
    assert "**6 pairs** (best_vs_worst, min margin 0)" in ranked.summary
    session = ranked.session
    assert session.dataset == ranked.pairs_file and session.kind == "preference" and session.records == 6
    assert session.provenance == {"judge": "heuristic", "strategy": "best_vs_worst", "min_margin": 0.0}
    assert all(row[4] >= 0 for row in ranked.pairs)
    # the pairs are reviewable: the closest margins first
    review = review_start(open_team(AppSettings(app_dir=tmp_path / "app")).store, "alice", session, None)
    assert review.progress == "**alice:** 0 of 6 reviewed" and "low margin" in review.info


def test_generate_again_resumes_from_the_run_folder(documents, openai_server):
    first = run(documents, Session(), endpoint=openai_server.base_url, model="stand-in-small", key=OPENAI_TOKEN,
                max_chunks=2)
    asked = len(openai_server.completions())
    again = run(documents, first.session, endpoint=openai_server.base_url, model="stand-in-small",
                key=OPENAI_TOKEN, max_chunks=2)
    assert len(openai_server.completions()) == asked  # every response came from the checkpoint
    assert again.candidates_file == first.candidates_file
    assert Path(again.candidates_file).read_bytes() == Path(first.candidates_file).read_bytes()


def test_a_bad_key_stops_with_what_to_do_and_nothing_current(documents, openai_server):
    screen = run(documents, Session(), endpoint=openai_server.base_url, model="stand-in-small", key="sk-wrong")
    assert screen.summary.startswith("**Generation stopped.**") and "sk-wrong" not in screen.summary
    assert "press Generate again to continue" in screen.summary and screen.session.dataset is None
    status = check_endpoint_status(AppSettings(), openai_server.base_url, "stand-in-small", OPENAI_TOKEN)
    assert status.startswith("ok:") and status.endswith("(credential: the key you typed)")


def test_ranking_with_too_high_a_margin_keeps_the_current_dataset(documents, openai_server):
    screen = run(documents, Session(dataset="/keep/me.jsonl"), endpoint=openai_server.base_url,
                 model="stand-in-small", key=OPENAI_TOKEN, max_chunks=1)
    ranked = judge_and_rank(AppSettings(), "heuristic", "", "", "", "all_pairs", 50.0, 7.0, screen.session)
    assert "**0 pairs**" in ranked.summary and "lower the min margin" in ranked.summary
    assert ranked.session.dataset == "/keep/me.jsonl" and ranked.pairs_file is None
