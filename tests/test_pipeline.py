"""hubtools init + build: a recipe runs every stage, resumable, with accounting that adds up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hubtools.cli import app
from hubtools.pipeline import (STAGES, RecipeError, StageRow, accounting_problems, build, init_recipe, load_recipe,
                               parse_recipe, plan, recipe_problems)

from .conftest import CORPUS
from .fixtures.hub import client_env, run_client_json
from .fixtures.openai import OPENAI_TOKEN, kill_9_after_rows

ROOT = Path(__file__).resolve().parents[1]
WIKI = CORPUS / "llama_factory" / "wiki_demo.txt"


def _recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hubtools.yaml"
    path.write_text(text)
    return path


def _prompts(tmp_path: Path, n: int = 6) -> Path:
    path = tmp_path / "prompts.jsonl"
    questions = ["What is the capital of France?", "Name three rivers in Europe.", "Explain photosynthesis briefly.",
                 "Write a haiku about the sea.", "How do vaccines work?", "What is a prime number?",
                 "Summarise the plot of Hamlet.", "Why is the sky blue?"]
    path.write_text("".join(json.dumps({"prompt": q}) + "\n" for q in questions[:n]))
    return path


class TestRecipe:
    def test_every_problem_is_listed_at_once(self, tmp_path):
        recipe = parse_recipe("""
name: x
sources: {prompts: missing.jsonl, other: 1}
stages:
  responses: {n: 2, temperture: 0.5}
  polish: {}
  rank: {strategy: loudest}
  judge: {endpoint: http://127.0.0.1:1/v1}
  push: {repo: not-a-repo-id}
  card: {license: hf_AbCdEf123456}
""", base=tmp_path)
        problems = recipe_problems(recipe, env={}, have_token=False)
        expected = ["sources.prompts", "unknown source 'other'", "unknown setting 'temperture'", "unknown stage 'polish'",
                    "stages.rank.strategy", "stages.judge: give both endpoint and model",
                    "stages.responses needs model", "stages.responses needs endpoint", "stages.push.repo",
                    "stages.push needs a Hub token", "looks like a secret"]
        for fragment in expected:
            assert any(fragment in p for p in problems), (fragment, problems)
        with pytest.raises(RecipeError) as err:
            plan(recipe)
        assert len(err.value.problems) >= len(expected)

    def test_a_stage_without_its_input_is_named(self, tmp_path):
        recipe = parse_recipe("name: x\nsources: {}\nstages:\n  judge: {}\n", base=tmp_path)
        assert any("stages.judge needs the responses stage" in p for p in recipe_problems(recipe, env={}))
        recipe = parse_recipe("name: x\nsources: {}\nstages:\n  card: {}\n", base=tmp_path)
        assert any("stages.card needs data" in p for p in recipe_problems(recipe, env={}))

    def test_api_key_env_must_exist(self, tmp_path):
        recipe = parse_recipe("name: x\nsources: {prompts: p.jsonl}\nstages:\n  responses: "
                              "{endpoint: http://h/v1, model: m, api_key_env: NO_SUCH_VAR}\n", base=tmp_path)
        (tmp_path / "p.jsonl").write_text('{"prompt": "hi"}\n')
        assert recipe_problems(recipe, env={}) == ["stages.responses.api_key_env: the environment has no NO_SUCH_VAR"]

    @pytest.mark.parametrize("sources", [{"documents": str(WIKI)}, {"prompts": "p.jsonl"},
                                         {"dataset": str(CORPUS / "llama_factory" / "dpo_en_demo.json")}])
    def test_init_writes_a_recipe_that_validates(self, tmp_path, sources):
        (tmp_path / "p.jsonl").write_text('{"prompt": "hi"}\n')
        text = init_recipe(**sources, endpoint="http://127.0.0.1:9/v1", model="m")
        recipe = parse_recipe(text, base=tmp_path)
        assert recipe_problems(recipe, env={}) == []
        steps = plan(recipe, out=tmp_path / "run")
        assert [s.action for s in steps] == ["run"] * len(steps)
        assert [s.stage for s in steps][1:] == recipe.stage_list()


def test_a_joining_source_adds_to_what_the_next_step_receives():
    rows = [StageRow("instructions", "chunks", 2, 2, "prompts", 6), StageRow("load", "records", 3, 3, "records", 3,
                                                                            joins=True),
            StageRow("responses", "prompts", 9, 9, "candidates", 18)]
    assert accounting_problems(rows) == []
    rows[2].records_in = rows[2].kept = 6
    assert accounting_problems(rows) == ["responses: 6 in, but instructions + load gave 9"]


def test_build_with_flags_instead_of_a_recipe(tmp_path):
    data = CORPUS / "llama_factory" / "dpo_en_demo.json"
    result = CliRunner().invoke(app, ["build", "--dataset", str(data), "--out", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    stages = [r["stage"] for r in json.loads(result.stdout)["stages"]]
    assert stages == ["load (dataset)", "check", "filter", "card"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert f"dataset: {data}" in report and "review: gate" not in report


def test_accounting_problems_catch_a_row_that_does_not_add_up():
    rows = [StageRow("a", "x", 10, 8, "y", 8, {"bad": 2}), StageRow("b", "y", 8, 8, "y", 7, {})]
    assert accounting_problems(rows) == []
    rows.append(StageRow("c", "y", 6, 5, "y", 5, {}))
    assert accounting_problems(rows) == ["c: 6 in != 5 kept + 0 dropped", "c: 6 in, but b gave 7"]


def test_dataset_build_checks_filters_and_cards_in_memory(tmp_path):
    recipe = load_recipe(_recipe(tmp_path, f"""
name: demo
sources: {{dataset: {CORPUS / 'llama_factory' / 'alpaca_en_demo.json'}}}
stages:
  check: {{checks: [exact_duplicates, pii, refusals]}}
  filter: {{drop: [exact_duplicates, refusals]}}
  card: {{license: apache-2.0, language: en}}
"""))
    result = build(recipe, out=tmp_path / "run")
    assert result.stopped is None and accounting_problems(result.rows) == []
    load, check, filt, card = result.rows
    assert (load.records_in, load.records_out) == (999, 999)
    assert check.records_out == 999 and filt.records_in == 999
    quality = json.loads((tmp_path / "run" / "check" / "quality" / "quality.json").read_text())
    removed = set(quality["checks"]["exact_duplicates"]["flagged"]) | set(quality["checks"]["refusals"]["flagged"])
    assert filt.records_out == 999 - len(removed) == card.records_out
    assert sum(filt.dropped.values()) == len(removed)
    card_text = (tmp_path / "run" / "card" / "card" / "README.md").read_text()
    assert "hubtools build" in card_text and "| filter | 999 records |" in card_text
    assert "exact_duplicates, refusals" in card_text or "[exact_duplicates, refusals]" in card_text
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| check | 999 records | 999 | none | 999 records |" in report

    again = build(recipe, out=tmp_path / "run")
    assert [r.reused for r in again.rows] == [True] * 4
    assert [s.action for s in plan(recipe, out=tmp_path / "run", from_stage="filter")] == \
        ["reuse", "reuse", "run", "run"]


def test_a_stage_that_receives_nothing_usable_stops_with_reasons(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"instruction": "", "output": ""}\n' * 3)
    recipe = load_recipe(_recipe(tmp_path, f"name: x\nsources: {{dataset: {data}}}\nstages:\n  check: {{}}\n"))
    result = CliRunner().invoke(app, ["build", str(tmp_path / "hubtools.yaml"), "--out", str(tmp_path / "run")])
    assert result.exit_code != 0 and "no usable record" in result.output
    assert recipe.stage_list() == ["check"]


def test_review_gate_stops_then_applies_the_decisions(openai_server, tmp_path, monkeypatch):
    from hubtools.review import AnnotationStore

    monkeypatch.setenv("STAND_IN_KEY", OPENAI_TOKEN)
    store = tmp_path / "reviews.sqlite"
    recipe = load_recipe(_recipe(tmp_path, f"""
name: gate
sources: {{prompts: {_prompts(tmp_path)}}}
stages:
  responses: {{endpoint: {openai_server.base_url}, model: stand-in-small, n: 3, api_key_env: STAND_IN_KEY}}
  judge: {{}}
  rank: {{min_margin: 0.1}}
  review: {{mode: gate, store: {store}, keep_unreviewed: false}}
  check: {{checks: [exact_duplicates]}}
"""))
    first = build(recipe, out=tmp_path / "run")
    pairs_file = tmp_path / "run" / "rank" / "data.parquet"
    assert first.stopped == "review" and f"hubtools app --review {pairs_file}" in first.message
    items = AnnotationStore(store).items()
    pairs = first.rows[-1].records_out
    assert len(items) == pairs > 0
    # the app the message names opens on these very items
    from hubtools.app import AppSettings, review_tab
    from hubtools.app.session import opening_session

    opening = opening_session(AppSettings(app_dir=tmp_path, review=pairs_file))
    assert (opening.dataset, opening.kind, opening.records) == (str(pairs_file), "preference", pairs)
    screen = review_tab.review_start(AnnotationStore(store), "alice", opening, None)
    assert {item.item_id for item in screen.review.queue} == {item.item_id for item in items}
    AnnotationStore(store).annotate("alice", items[0].item_id, "tie")  # a tie: the pair goes
    second = build(recipe, out=tmp_path / "run")
    assert second.stopped is None
    review = next(r for r in second.rows if r.stage == "review")
    assert review.records_in == pairs and sum(review.dropped.values()) == pairs - review.records_out
    assert accounting_problems(second.rows) == []
    assert [r.reused for r in second.rows[:4]] == [True] * 4  # load, responses, judge, rank


def test_build_publishes_documents_to_the_hub_with_recipe_and_accounting(openai_server, hub_server, tmp_path,
                                                                          hub_repo_id):
    recipe = _recipe(tmp_path, f"""
name: wiki
sources:
  documents: {WIKI}
  prompts: {_prompts(tmp_path, 3)}
stages:
  instructions: {{per_chunk: 2, chunk_size: 3000, max_chunks: 3}}
  responses: {{endpoint: {openai_server.base_url}, model: stand-in-small, n: 2, api_key_env: STAND_IN_KEY}}
  judge: {{endpoint: {openai_server.base_url}, model: stand-in-judge, api_key_env: STAND_IN_KEY}}
  rank: {{strategy: best_vs_worst, min_margin: 0.1}}
  check: {{checks: [exact_duplicates, pii]}}
  filter: {{drop: [exact_duplicates]}}
  card: {{license: apache-2.0, language: [en]}}
  push: {{repo: {hub_repo_id}}}
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(client_env(hub_server, tmp_path / "hf"), STAND_IN_KEY=OPENAI_TOKEN, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "hubtools.cli", "build", str(recipe), "--out", str(tmp_path / "run"),
                           "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    rows = [StageRow.from_dict(r) for r in result["stages"]]
    assert [r.stage for r in rows] == ["ingest", "instructions", "load (prompts)",
                                       *[s for s in STAGES if s not in ("instructions", "review")]]
    assert accounting_problems(rows) == []
    instructions, prompts, responses = rows[1:4]
    assert prompts.joins and (prompts.records_out, instructions.records_out) == (3, 6)
    assert responses.records_in == 9 and responses.records_out == 18  # every prompt, two candidates each
    published = rows[-1].records_out
    back = run_client_json(f"""
import json
from datasets import load_dataset
from huggingface_hub import hf_hub_download
ds = load_dataset({hub_repo_id!r}, split="train")
card = open(hf_hub_download({hub_repo_id!r}, "README.md", repo_type="dataset")).read()
print(json.dumps({{"rows": len(ds), "columns": ds.column_names, "card": card}}))
""", client_env(hub_server, tmp_path / "hf2"))
    assert back["rows"] == published > 0
    assert {"prompt", "chosen", "rejected"} <= set(back["columns"])
    assert "name: wiki" in back["card"] and "| responses |" in back["card"] and "stand-in-judge" in back["card"]
    assert OPENAI_TOKEN not in back["card"]


def test_kill_9_mid_responses_then_build_again_gives_every_candidate_once(make_openai_server, tmp_path, monkeypatch):
    monkeypatch.setenv("STAND_IN_KEY", OPENAI_TOKEN)
    server = make_openai_server(token=OPENAI_TOKEN, latency=0.1)
    prompts = _prompts(tmp_path, 8)
    recipe = _recipe(tmp_path, f"""
name: resume
sources: {{prompts: {prompts}}}
stages:
  responses: {{endpoint: {server.base_url}, model: stand-in-small, n: 2, concurrency: 1, api_key_env: STAND_IN_KEY}}
  judge: {{}}
  rank: {{min_margin: 0.1}}
""")
    env = {**os.environ, "STAND_IN_KEY": OPENAI_TOKEN, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "hubtools.cli", "build", str(recipe), "--out", str(tmp_path / "run")]
    checkpoint = tmp_path / "run" / "responses" / "checkpoint.stand-in-small.jsonl"
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_9_after_rows(process, checkpoint, 4)
    done = {json.loads(line)["key"] for line in checkpoint.read_bytes().splitlines()[1:]}
    expected = {f"{i}:{j}" for i in range(8) for j in (0, 1)}
    assert 4 <= len(done) < len(expected)
    assert [s.action for s in plan(load_recipe(recipe), out=tmp_path / "run")] == ["reuse", "resume", "run", "run"]

    server.reset()
    resumed_at = time.monotonic()
    again = subprocess.run(args + ["--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    asked = [r for r in server.completions() if r.started >= resumed_at]
    assert len(asked) == len(expected) - len(done)
    from datasets import Dataset

    from hubtools.records import load_extra

    candidates = Dataset.from_parquet(str(tmp_path / "run" / "responses" / "data.parquet"))
    keys = [(e["prompt_index"], e["candidate"]) for e in map(load_extra, candidates["hubtools_extra"])]
    assert len(keys) == len(set(keys)) == len(expected)
