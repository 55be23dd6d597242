"""The generation CLI against the OpenAI-protocol stand-in: endpoint check, the full chain on corpus
data (instructions -> responses -> judge -> rank), resuming a killed run, offline notes, crossval."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hubtools.cli import app
from hubtools.load import load
from hubtools.records import EXTRA, Kind, load_extra
from tests.conftest import CORPUS
from tests.fixtures.openai import OPENAI_MODELS, OPENAI_TOKEN, kill_9_after_rows

ROOT = Path(__file__).resolve().parents[1]
WIKI = CORPUS / "llama_factory" / "wiki_demo.txt"
ALPACA = CORPUS / "llama_factory" / "alpaca_en_demo.json"
runner = CliRunner()


def invoke(*args, env: dict[str, str] | None = None):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, env=env)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _commands():
    groups = {g.name: g.typer_instance for g in app.registered_groups if g.name in ("endpoint", "generate")}
    out = [(name, c.name) for name, group in groups.items() for c in group.registered_commands]
    return out + [(c.name or c.callback.__name__,) for c in app.registered_commands
                  if (c.name or c.callback.__name__) in ("judge", "rank", "crossval")]


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_every_generation_command_has_help_with_an_example(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert f"Example: hubtools {' '.join(command)} " in result.stdout


def test_all_generation_commands_are_registered():
    assert sorted(" ".join(c) for c in _commands()) == ["crossval", "endpoint check", "generate instructions",
                                                        "generate responses", "judge", "rank"]


class TestEndpointCheck:
    def check(self, server, *options, env=None):
        return invoke("endpoint", "check", "--endpoint", server.base_url if server else closed_port_url(),
                      *options, env=env)

    def test_ok_in_one_line_and_the_token_is_never_printed(self, openai_server):
        result = self.check(openai_server, "--model", "stand-in-judge", "--api-key", OPENAI_TOKEN)
        assert result.exit_code == 0 and result.stderr == ""
        assert lines(result.stdout) == [lines(result.stdout)[0]]
        assert result.stdout.startswith(f"ok: {openai_server.base_url} answered with model 'stand-in-judge'")
        as_json = self.check(openai_server, "--model", "stand-in-judge", "--api-key", OPENAI_TOKEN, "--json")
        assert json.loads(as_json.stdout)["ok"] is True
        assert OPENAI_TOKEN not in result.stdout + result.stderr + as_json.stdout + as_json.stderr
        assert openai_server.completions()[-1].authorized

    def test_a_hugging_face_token_is_refused_for_another_endpoint(self, openai_server):
        result = self.check(openai_server, "--model", "stand-in-small", "--token", OPENAI_TOKEN)
        assert result.exit_code == 1 and len(lines(result.stdout)) == 1
        assert ("--token is a Hugging Face token and goes only to Hugging Face hosts (credential: none). "
                "Fix: pass this endpoint's key with --api-key (or set HUBTOOLS_API_KEY)") in result.stdout
        assert openai_server.completions() == [] and OPENAI_TOKEN not in result.stdout + result.stderr

    def test_a_wrong_key(self, openai_server):
        result = self.check(openai_server, "--model", "stand-in-small", "--api-key", "sk-wrong-secret")
        assert result.exit_code == 1 and len(lines(result.stdout)) == 1
        assert ("the key was rejected (401) (credential: --api-key). Fix: pass this endpoint's key with --api-key"
                in result.stdout)
        assert "sk-wrong-secret" not in result.stdout + result.stderr

    def test_a_wrong_model_names_the_served_ones(self, openai_server):
        result = self.check(openai_server, "--model", "gpt-17", "--api-key", OPENAI_TOKEN)
        assert result.exit_code == 1 and len(lines(result.stdout)) == 1
        assert "model 'gpt-17' not found (404)" in result.stdout
        assert result.stdout.strip().endswith(f"Fix: use --model with one of: {', '.join(OPENAI_MODELS)}")
        assert OPENAI_TOKEN not in result.stdout + result.stderr

    def test_an_unreachable_endpoint(self):
        result = self.check(None, "--model", "stand-in-small", "--api-key", OPENAI_TOKEN, "--timeout", "3")
        assert result.exit_code == 1 and len(lines(result.stdout)) == 1
        assert "unreachable" in result.stdout and "Fix: check that the server is running" in result.stdout
        assert OPENAI_TOKEN not in result.stdout + result.stderr


def instructions(out: Path, *options) -> list[dict]:
    result = invoke("generate", "instructions", WIKI, "--out", out, *options)
    assert result.exit_code == 0, result.stderr
    return [load_extra(r[EXTRA]) for r in load(out / "prompts.jsonl").dataset]


def test_the_chain_on_corpus_data_makes_preference_pairs_with_margins(openai_server, tmp_path):
    # instructions, offline: one stderr line says so
    result = invoke("generate", "instructions", WIKI, "--out", tmp_path / "prompts", "--chunk-size", "10000",
                    "--overlap", "0", "--per-chunk", "1")
    assert result.exit_code == 0
    assert lines(result.stderr) == ["note: no --endpoint/--model: writing instructions from templates, an offline "
                                    "heuristic (no model involved)"]
    prompts = load(tmp_path / "prompts" / "prompts.jsonl")
    summary = json.loads((tmp_path / "prompts" / "summary.json").read_text())
    assert prompts.format == "mt_bench" and prompts.valid == summary["prompts"] == summary["chunks"] > 50
    extras = [load_extra(r[EXTRA]) for r in prompts.dataset]
    assert {e["source_doc"] for e in extras} == {"wiki_demo.txt"}
    assert all(e["source_chunk"].startswith("wiki_demo.txt:") and e["synthetic"] is True
               and e["generator"] == "template" and e["complexity"] and e["task_type"] for e in extras)

    # responses: 2 candidates per prompt from the stand-in
    result = invoke("generate", "responses", tmp_path / "prompts" / "prompts.jsonl", "--out", tmp_path / "responses",
                    "--n", "2", "--endpoint", openai_server.base_url, "--model", "stand-in-small",
                    "--api-key", OPENAI_TOKEN)
    assert result.exit_code == 0 and result.stderr == ""
    assert OPENAI_TOKEN not in result.stdout
    assert len(openai_server.completions()) == 2 * prompts.valid
    responses = load(tmp_path / "responses" / "responses.jsonl")
    assert responses.format == "openai" and responses.valid == 2 * prompts.valid
    extras = [load_extra(r[EXTRA]) for r in responses.dataset]
    assert Counter(e["candidate"] for e in extras) == {0: prompts.valid, 1: prompts.valid}
    assert all(e["model"] == "stand-in-small" and e["synthetic"] and e["source_chunk"] for e in extras)

    # judge, offline heuristic
    result = invoke("judge", tmp_path / "responses" / "responses.jsonl", "--out", tmp_path / "judged")
    assert result.exit_code == 0
    assert lines(result.stderr) == ["note: no --endpoint/--model: scoring with the offline heuristic judge "
                                    "(text features, not a model)"]
    judged = load(tmp_path / "judged" / "judged.jsonl")
    assert all(load_extra(r[EXTRA])["judge"]["judge"] == "heuristic" for r in judged.dataset)

    # rank into pairs
    result = invoke("rank", tmp_path / "judged" / "judged.jsonl", "--out", tmp_path / "pairs",
                    "--strategy", "best_vs_worst", "--min-margin", "0.2")
    assert result.exit_code == 0, result.stderr
    pairs = load(tmp_path / "pairs" / "pairs.jsonl")
    assert pairs.kind is Kind.PREFERENCE and pairs.format == "trl" and pairs.valid > 0
    for pair in pairs.dataset:
        extra = load_extra(pair[EXTRA])
        assert extra["margin"] == pytest.approx(pair["score_chosen"] - pair["score_rejected"], abs=1e-3)
        assert extra["margin"] >= 0.2 and pair["chosen"] != pair["rejected"]
        assert extra["source_chunk"].startswith("wiki_demo.txt:") and extra["synthetic"] is True
    summary = json.loads((tmp_path / "pairs" / "summary.json").read_text())
    assert (summary["strategy"], summary["judge"], summary["min_margin"]) == ("best_vs_worst", "heuristic", 0.2)
    assert summary["pairs"] == pairs.valid and isinstance(summary["ties_dropped"], int)
    assert summary["pairs"] + summary["ties_dropped"] + summary["below_margin_dropped"] == prompts.valid
    assert f"{summary['pairs']} pairs" in result.stdout and f"{summary['ties_dropped']} ties" in result.stdout


def test_generate_responses_without_a_model_fails_in_one_line(tmp_path):
    instructions(tmp_path / "prompts", "--chunk-size", "100000", "--per-chunk", "1")
    result = invoke("generate", "responses", tmp_path / "prompts" / "prompts.jsonl", "--out", tmp_path / "r")
    assert result.exit_code == 1 and result.stdout == ""
    assert lines(result.stderr) == ["error: generating responses needs a model and there is none. pass --endpoint "
                                    "URL --model NAME, or --model with a local model path"]
    assert not (tmp_path / "r").exists()


def test_resume_after_a_killed_run_requests_no_row_again(make_openai_server, tmp_path):
    server = make_openai_server(token=OPENAI_TOKEN, latency=0.1)
    instructions(tmp_path / "prompts", "--chunk-size", "50000", "--overlap", "0", "--per-chunk", "1")
    prompts = load(tmp_path / "prompts" / "prompts.jsonl").dataset
    args = ["generate", "responses", str(tmp_path / "prompts" / "prompts.jsonl"), "--out", str(tmp_path / "r"),
            "--n", "2", "--endpoint", server.base_url, "--model", "stand-in-small", "--api-key", OPENAI_TOKEN,
            "--concurrency", "1"]
    checkpoint = tmp_path / "r" / "checkpoint.stand-in-small.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "hubtools.cli", *args], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_9_after_rows(process, checkpoint, 4)
    done = {json.loads(line)["key"] for line in checkpoint.read_bytes().splitlines()[1:]}
    expected = {f"{i}:{j}" for i in range(len(prompts)) for j in (0, 1)}
    assert 4 <= len(done) < len(expected) and done < expected

    again = invoke(*args)
    assert again.exit_code == 1 and "pass --resume to continue it" in again.stderr

    server.reset()
    # the killed process's last request may still be in the server's hands (latency 0.1 s) and be
    # logged after the reset: count only what arrived after it
    resumed_at = time.monotonic()
    result = invoke(*args, "--resume")
    assert result.exit_code == 0, result.stderr
    index = {r["prompt"][0]["content"]: i for i, r in enumerate(prompts)}  # prompt-only records
    requested = [f"{index[r.messages[-1]['content']]}:{r.params['seed']}" for r in server.completions()
                 if r.started >= resumed_at]
    assert len(requested) == len(set(requested)) == len(expected) - len(done)
    assert set(requested) == expected - done
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["runs"][0]["resumed_from_checkpoint"] == len(done) and summary["candidates"] == len(expected)
    assert len(load(tmp_path / "r" / "responses.jsonl").dataset) == len(expected)


def test_instructions_written_by_a_model_resume_from_their_checkpoint(openai_server, tmp_path):
    options = ["--chunk-size", "50000", "--overlap", "0", "--per-chunk", "2", "--endpoint", openai_server.base_url,
               "--model", "stand-in-large", "--api-key", OPENAI_TOKEN]
    extras = instructions(tmp_path / "p", *options)
    summary = json.loads((tmp_path / "p" / "summary.json").read_text())
    written = [e for e in extras if e["generator"] == "stand-in-large"]
    assert summary["generator"] == "stand-in-large" and written
    assert len(openai_server.completions()) == summary["run"]["requests"] == summary["run"]["tasks"] >= len(written)
    assert (tmp_path / "p" / "checkpoint.instructions.jsonl").exists()
    openai_server.reset()
    result = invoke("generate", "instructions", WIKI, "--out", tmp_path / "p", *options, "--resume")
    assert result.exit_code == 0 and result.stderr == "" and openai_server.completions() == []
    assert [load_extra(r[EXTRA]) for r in load(tmp_path / "p" / "prompts.jsonl").dataset] == extras


def test_judge_with_a_model_and_rank_with_all_pairs_to_parquet(openai_server, tmp_path):
    instructions(tmp_path / "prompts", "--chunk-size", "100000", "--per-chunk", "1")
    base = ["--endpoint", openai_server.base_url, "--api-key", OPENAI_TOKEN]
    assert invoke("generate", "responses", tmp_path / "prompts" / "prompts.jsonl", "--out", tmp_path / "r",
                  "--n", "3", *base, "--model", "stand-in-small").exit_code == 0
    openai_server.reset()
    result = invoke("judge", tmp_path / "r" / "responses.jsonl", "--out", tmp_path / "j", *base,
                    "--model", "stand-in-judge")
    assert result.exit_code == 0 and result.stderr == ""
    summary = json.loads((tmp_path / "j" / "summary.json").read_text())
    assert summary["judge"]["judge"] == "llm:stand-in-judge" and summary["scored"] == summary["records"]
    assert len(openai_server.completions()) == summary["records"]
    openai_server.reset()
    again = invoke("judge", tmp_path / "r" / "responses.jsonl", "--out", tmp_path / "j", *base,
                   "--model", "stand-in-judge", "--resume", "--json")
    assert again.exit_code == 0 and openai_server.completions() == []
    assert json.loads(again.stdout)["runs"][0]["resumed_from_checkpoint"] == summary["records"]

    result = invoke("rank", tmp_path / "j" / "judged.jsonl", "--out", tmp_path / "pairs", "--strategy", "all_pairs",
                    "--min-margin", "0.5", "--to", "dpo", "--container", "parquet", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    pairs = load(tmp_path / "pairs" / "pairs.parquet")
    assert pairs.format == "dpo" and pairs.valid == data["pairs"] > 0
    assert data["judge"] == "llm:stand-in-judge" and data["strategy"] == "all_pairs"
    assert all(load_extra(p[EXTRA])["margin"] >= 0.5 for p in pairs.dataset)


def test_rank_says_what_to_do_with_unjudged_replies_and_unknown_strategies(tmp_path):
    result = invoke("rank", ALPACA, "--out", tmp_path / "x")
    assert result.exit_code == 1 and "no reply has a judge score" in result.stderr
    assert "`hubtools judge IN --out DIR`" in result.stderr
    result = invoke("rank", ALPACA, "--out", tmp_path / "x", "--strategy", "best")
    assert "use one of best_vs_worst, all_pairs, threshold" in result.stderr


def test_instructions_refuse_a_format_that_cannot_hold_prompts(tmp_path):
    result = invoke("generate", "instructions", WIKI, "--out", tmp_path, "--to", "alpaca")
    assert result.exit_code == 2
    assert "alpaca cannot hold prompts that have no reply yet. use --format mt_bench" in result.stderr


def test_crossval_reports_and_writes_flags_for_review(tmp_path):
    data = json.loads(ALPACA.read_text())
    (tmp_path / "gold.json").write_text(json.dumps(data[:60]))
    (tmp_path / "synthetic.json").write_text(json.dumps(data[600:720]))
    result = invoke("crossval", tmp_path / "synthetic.json", tmp_path / "gold.json", "--out", tmp_path / "out")
    assert result.exit_code == 0
    assert lines(result.stderr) == ["note: no --endpoint/--model: judging with the offline heuristic judge "
                                    "(text features, not a model)"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["synthetic_to_human_ratio"] == 2.0
    assert result.stdout.startswith("120 synthetic vs 60 gold records (ratio 2.0), judge heuristic")
    rows = [json.loads(line) for line in (tmp_path / "out" / "flags.jsonl").read_text().splitlines()]
    assert len(rows) == summary["flagged_records"] > 0
    assert all(0 <= row["index"] < 120 and row["flags"] for row in rows)
    assert (f"flagged {summary['flagged_records']} records for review: "
            f"{summary['hallucination_prone_records']} with hallucination-prone content") in result.stdout


def test_generate_responses_with_a_local_model_folder(tiny_causal_lm, tmp_path):
    (tmp_path / "wiki.txt").write_text(WIKI.read_text()[:600])  # two short chunks: the tiny model is slow on long ones
    assert invoke("generate", "instructions", tmp_path / "wiki.txt", "--out", tmp_path / "prompts", "--chunk-size",
                  "300", "--overlap", "0", "--per-chunk", "1").exit_code == 0
    result = invoke("generate", "responses", tmp_path / "prompts" / "prompts.jsonl", "--out", tmp_path / "r",
                    "--model", tiny_causal_lm, "--max-tokens", "4", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["models"] == [tiny_causal_lm.name] and summary["runs"][0]["backend"]["backend"] == "transformers"
    replies = load(tmp_path / "r" / "responses.jsonl").dataset
    assert len(replies) == summary["prompts"] >= 2 and all(load_extra(r[EXTRA])["model"] == tiny_causal_lm.name
                                                      for r in replies)


def test_format_names_the_input_and_to_the_output_in_generate_judge_and_rank(tmp_path):
    assert "--to" in invoke("generate", "instructions", "--help").stdout
    for command in (["generate", "responses"], ["judge"], ["rank"]):
        help_text = invoke(*command, "--help").stdout
        assert "Output format" in help_text.split("--to <", 1)[1][:300]
        assert "Read the input as this format" in help_text.split("--format", 1)[1][:300]


def test_an_output_format_that_cannot_hold_replies_fails_before_any_request(openai_server, tmp_path):
    instructions(tmp_path / "prompts", "--chunk-size", "100000", "--per-chunk", "1")
    result = invoke("generate", "responses", tmp_path / "prompts" / "prompts.jsonl", "--out", tmp_path / "r",
                    "--endpoint", openai_server.base_url, "--model", "stand-in-small", "--api-key", OPENAI_TOKEN,
                    "--to", "dpo")
    assert result.exit_code == 2 and "sft records cannot be written as dpo. use one of alpaca" in result.stderr
    assert openai_server.completions() == []


def test_judge_rank_and_crossval_of_an_input_with_no_usable_record_exit_2_with_the_reasons(tmp_path):
    blank = tmp_path / "blank.jsonl"
    blank.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q},
                                                      {"role": "assistant", "content": a}]}) + "\n"
                             for q, a in ((" ", "a"), ("q", "  "), ("\t", "b"))))
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"instruction": "Say hi"}\n{"instruction": "Count to 3"}\n')
    reasons = "blank.jsonl: no usable record (3 read, all quarantined: empty_text 3)"
    for args in (["judge", blank, "--out", tmp_path / "j"], ["rank", blank, "--out", tmp_path / "r"],
                 ["crossval", blank, ALPACA, "--out", tmp_path / "c"],
                 ["crossval", ALPACA, blank, "--out", tmp_path / "g"]):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert f"error: {reasons}" in result.stderr and "each record's reason is in the quarantine" in result.stderr
    assert not (tmp_path / "j" / "judged.jsonl").exists() and not (tmp_path / "r" / "pairs.jsonl").exists()
    # a prompt list read as Alpaca: no reply anywhere, and what would work
    for command in ("judge", "rank"):
        result = invoke(command, prompts, "--out", tmp_path / command, "--format", "alpaca")
        assert result.exit_code == 2, result.output
        assert "prompts.jsonl: no usable record (2 read, all quarantined: no_reply 2)" in result.stderr
        assert "is this a prompt list? use `hubtools generate responses`" in result.stderr
