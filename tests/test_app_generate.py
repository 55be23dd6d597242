"""The Generate tab: instructions offline, responses from the OpenAI-protocol stand-in, judging and
ranking into pairs that become the current dataset, and resuming (a long run not blocking review clicks
is in test_app.py, on the served app)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubtools import load
from hubtools.app import AppSettings
from hubtools.app.generate_tab import (
    NO_BACKEND,
    NO_BACKEND_FOR_PROMPTS,
    check_endpoint_status,
    generate,
    judge_and_rank,
    respond,
)
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


# ---- a prompt list instead of documents ---------------------------------------------------------

#: name -> (file name, what it holds, the prompts as the last user turn of each)
PROMPT_LISTS = {
    "alpaca without output": ("a.json", json.dumps([{"instruction": "Name a colour.", "input": ""},
                                                    {"instruction": "Translate:", "input": "Bonjour", "output": ""}]),
                              ["Name a colour.", "Translate:\nBonjour"]),
    "question": ("q.jsonl", '{"question": "Why is the sky blue?"}\n{"question": "What is 2+2?"}\n'
                            '{"question": "Who wrote Moby Dick?", "level": 3}\n',
                 ["Why is the sky blue?", "What is 2+2?", "Who wrote Moby Dick?"]),
    "openai ending on a user turn": ("o.jsonl", json.dumps({"messages": [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]})
        + "\n", ["c"]),
    "sharegpt ending on a human turn": ("s.jsonl", json.dumps({"conversations": [{"from": "human", "value": "Hi"}]})
                                       + "\n", ["Hi"]),
    "bare strings": ("b.jsonl", '"First prompt?"\n"Second prompt?"\n', ["First prompt?", "Second prompt?"]),
    "txt lines": ("t.txt", "Say hi.\nCount to three.\n", ["Say hi.", "Count to three."]),
    "mt-bench turns": ("m.jsonl", '{"question_id": 1, "category": "writing", "turns": ["One?", "Two?"]}\n',
                       ["Two?"]),
}


def answer(path, session=None, *, settings=None, endpoint="", model="", key="", n=2):
    return respond(settings or AppSettings(), str(path), endpoint, model, key, n, session or Session())


@pytest.mark.parametrize("name", sorted(PROMPT_LISTS))
def test_a_prompt_list_goes_straight_to_the_responses_one_candidate_per_prompt_per_n(tmp_path, openai_server, name):
    file, text, expected = PROMPT_LISTS[name]
    (tmp_path / file).write_text(text, encoding="utf-8")
    screen = answer(tmp_path / file, endpoint=openai_server.base_url, model="stand-in-small", key=OPENAI_TOKEN)
    count = len(expected)
    assert f"**{file}: {count} prompts**" in screen.summary and "no instructions written" in screen.summary
    assert f"**{2 * count} of {2 * count} candidate responses** from stand-in-small" in screen.summary
    assert [row[3] for row in screen.prompts] == expected
    asked = openai_server.completions()
    assert len(asked) == 2 * count
    assert sorted(r.messages[-1]["content"] for r in asked) == sorted(expected * 2)
    rows = [json.loads(line) for line in Path(screen.candidates_file).read_text().splitlines()]
    assert sorted(r["messages"][-2]["content"] for r in rows) == sorted(expected * 2)
    assert all(r["messages"][-1]["role"] == "assistant" and r["messages"][-1]["content"] for r in rows)
    assert screen.session.candidates == screen.candidates_file and screen.session.dataset is None
    assert load(screen.prompts_file).valid == count  # the usable prompts, to download


def test_answered_prompts_are_judged_and_ranked_and_pressing_again_resumes(tmp_path, openai_server):
    file, text, _ = PROMPT_LISTS["question"]
    (tmp_path / file).write_text(text, encoding="utf-8")
    first = answer(tmp_path / file, endpoint=openai_server.base_url, model="stand-in-small", key=OPENAI_TOKEN)
    again = answer(tmp_path / file, first.session, endpoint=openai_server.base_url, model="stand-in-small",
                   key=OPENAI_TOKEN)
    assert len(openai_server.completions()) == 6 and again.candidates_file == first.candidates_file
    ranked = judge_and_rank(AppSettings(), "heuristic", "", "", "", "best_vs_worst", 0.0, 7.0, again.session)
    assert "from 3 prompts" in ranked.summary and ranked.session.kind == "preference"


def test_a_prompt_list_with_no_usable_prompt_says_why_and_what_would_work(tmp_path, openai_server):
    blank = tmp_path / "blank.jsonl"
    blank.write_text('{"prompt": "  "}\n{"prompt": ""}\n{"prompt": "\\t"}\n', encoding="utf-8")
    binary = tmp_path / "binary.jsonl"  # no dataset at all
    binary.write_bytes(bytes(range(256)) * 4)
    for path in (blank, binary):
        screen = answer(path, Session(dataset="/keep/me.jsonl"), endpoint=openai_server.base_url,
                        model="stand-in-small", key=OPENAI_TOKEN)
        assert screen.summary.startswith(f"**Cannot use {path.name} as a prompt list.**"), screen.summary
        assert screen.candidates_file is None and screen.session.candidates is None
        assert screen.session.dataset == "/keep/me.jsonl"
    blank_screen = answer(blank)
    assert "blank.jsonl: no usable record (3 read, all quarantined: empty_text 3)" in blank_screen.summary
    assert "quarantine" in blank_screen.summary  # what would work: each record's reason is there
    assert openai_server.completions() == []


def test_some_prompts_kept_out_are_counted_and_written_to_the_quarantine(tmp_path, openai_server):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"question": "Why?"}\n{"question": " "}\n{"question": "How?"}\n', encoding="utf-8")
    screen = answer(path, n=1)
    assert "**mixed.jsonl: 2 prompts**" in screen.summary and "1 of 3 records kept out (empty_text 1)" in screen.summary
    assert NO_BACKEND_FOR_PROMPTS in screen.summary and screen.candidates_file is None
    quarantine = Path(screen.prompts_file).parent / "quarantine.jsonl"
    assert [json.loads(line)["index"] for line in quarantine.read_text().splitlines()] == [1]


def test_a_prompt_list_keeps_the_upload_limit_and_the_endpoint_rules(tmp_path, openai_server):
    file, text, _ = PROMPT_LISTS["question"]
    (tmp_path / file).write_text(text * 2000, encoding="utf-8")  # ~0.2 MB
    big = answer(tmp_path / file, settings=AppSettings(max_upload_mb=0))
    assert big.summary.startswith("**This file is too large.**") and "HUBTOOLS_MAX_UPLOAD_MB" in big.summary
    space = AppSettings(space=True, hf_token="space-owner-token-31c9e4")
    local = answer(tmp_path / file, settings=space, endpoint=openai_server.base_url, model="stand-in-small",
                   key=OPENAI_TOKEN)
    assert local.summary.startswith("**Generation stopped.**")
    assert "refused: only https endpoints are accepted here" in local.summary
    folder = answer(tmp_path / file, settings=space, model=str(tmp_path))
    assert "a folder on the server is not a model here" in folder.summary
    assert openai_server.completions() == [] and local.session.candidates is None
