"""Prompt lists are a first-class input: every shape people keep prompts in reads as prompt-only
(kind ``prompt``), goes through ``generate responses``, and is quarantined as ``no_reply`` where a
stage needs replies. Also: honest detection confidence, and inputs with no usable record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import hubtools
from hubtools.checks import run_checks
from hubtools.cli import app
from hubtools.convert import write
from hubtools.records import INDEX
from hubtools.validate import check_record
from tests.conftest import CORPUS
from tests.fixtures.openai import OPENAI_TOKEN

runner = CliRunner()
REAL = CORPUS / "real_world"



def _key_option() -> list[str]:
    """The stand-in's key as the CLI takes an endpoint's key (--api-key; --token before it existed)."""
    helptext = runner.invoke(app, ["generate", "responses", "--help"]).stdout
    return ["--api-key" if "--api-key" in helptext else "--token", OPENAI_TOKEN]


def invoke(*args, env: dict[str, str] | None = None):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, env=env)


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def U(text: str) -> dict:
    return {"role": "user", "content": text}


def A(text: str) -> dict:
    return {"role": "assistant", "content": text}


# name -> (file name, rows or text, expected format, expected prompts as (role, content) lists)
SHAPES = {
    "alpaca without output": ("a.jsonl", [{"instruction": "Name a colour.", "input": ""},
                                          {"instruction": "Translate:", "input": "Bonjour", "category": "mt"}],
                              "alpaca_prompt", [[("user", "Name a colour.")], [("user", "Translate:\nBonjour")]]),
    "alpaca with empty output": ("a.json", [{"instruction": "Sum these.", "input": "2 2", "output": ""},
                                            {"instruction": "Hi", "input": "", "output": "", "system": "Be kind."}],
                                 "alpaca_prompt", [[("user", "Sum these.\n2 2")],
                                                   [("system", "Be kind."), ("user", "Hi")]]),
    "instruction only": ("i.jsonl", [{"instruction": "Write a poem."}, {"instruction": "Write a haiku."}],
                         "alpaca_prompt", [[("user", "Write a poem.")], [("user", "Write a haiku.")]]),
    "prompt": ("p.jsonl", [{"prompt": "Say hi."}, {"prompt": [U("Hello?")], "id": 7}],
               "prompt", [[("user", "Say hi.")], [("user", "Hello?")]]),
    "question": ("q.jsonl", [{"question": "Why is the sky blue?"}, {"question": "What is 2+2?", "level": 1}],
                 "question", [[("user", "Why is the sky blue?")], [("user", "What is 2+2?")]]),
    "openai ending on a user turn": ("o.jsonl", [
        {"messages": [{"role": "system", "content": "Be brief."}, U("Hi")]},
        {"messages": [U("a"), A("b"), U("c")]}],
        "openai_prompt", [[("system", "Be brief."), ("user", "Hi")], [("user", "a"), ("assistant", "b"), ("user", "c")]]),
    "sharegpt ending on a human turn": ("s.jsonl", [
        {"conversations": [{"from": "human", "value": "Hi"}]},
        {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"},
                           {"from": "human", "value": "c"}], "system": "Be kind."}],
        "sharegpt_prompt", [[("user", "Hi")], [("system", "Be kind."), ("user", "a"), ("assistant", "b"),
                                               ("user", "c")]]),
    "bare strings": ("b.jsonl", ["First prompt?", "Second prompt?"], "prompt_text",
                     [[("user", "First prompt?")], [("user", "Second prompt?")]]),
    "mt-bench turns": ("m.jsonl", [{"question_id": 1, "category": "x", "turns": ["One?", "Two?"]},
                                   {"question_id": 2, "category": "y", "turns": ["Three?"]}],
                       "mt_bench", [[("user", "One?"), ("user", "Two?")], [("user", "Three?")]]),
}


def _write_shape(tmp_path: Path, name: str) -> Path:
    file, rows, _, _ = SHAPES[name]
    path = tmp_path / file
    if file.endswith(".json"):
        path.write_text(json.dumps(rows))
        return path
    return _jsonl(path, rows)


def _prompts(result) -> list[list[tuple[str, str]]]:
    return [[(m["role"], m["content"]) for m in row["prompt"]] for row in result.dataset]


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_each_prompt_list_shape_loads_as_prompt_only(tmp_path, name):
    _, _, fmt, expected = SHAPES[name]
    result = hubtools.load(_write_shape(tmp_path, name))
    assert (result.format, result.kind.value) == (fmt, "prompt")
    assert result.quarantined == 0 and result.detection.confidence == 1.0
    assert _prompts(result) == expected


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_prompt_lists_round_trip_through_their_own_format(tmp_path, name):
    first = hubtools.load(_write_shape(tmp_path, name))
    written = write(first, tmp_path / "again.jsonl", format=first.format)
    assert written.written == first.valid and written.quarantined == 0
    second = hubtools.load(tmp_path / "again.jsonl", format=first.format)
    assert second.quarantined == 0
    assert [{k: v for k, v in r.items() if k != INDEX} for r in second.dataset] == \
        [{k: v for k, v in r.items() if k != INDEX} for r in first.dataset]


@pytest.mark.parametrize(("file", "fmt", "count", "first"), [
    ("real_world/arena_hard_v0.1_question.jsonl", "prompt", 500,
     "Use ABC notation to write a melody in the style of a folk tune."),
    ("real_world/fastchat_vicuna_bench_question.jsonl", "mt_bench", 80, "How can I improve my time management skills?"),
    ("real_world/oasst_prompt_lottery_en_250_text.jsonl", "prompt_text", 250, "Can you tell me about GLaDOS?"),
    ("fastchat/mt_bench_question.jsonl", "mt_bench", 80, None),
])
def test_real_prompt_files_load_as_prompt_only_with_nothing_lost(corpus, file, fmt, count, first):
    result = hubtools.load(corpus / file)
    assert (result.format, result.kind.value, result.valid, result.quarantined) == (fmt, "prompt", count, 0)
    if first is not None:
        assert result.dataset[0]["prompt"][-1]["content"] == first
    if fmt == "prompt":  # arena-hard's uid, category and cluster ride along
        assert json.loads(result.dataset[0]["hubtools_extra"])["cluster"] == "ABC Sequence Puzzles & Groups"


def test_txt_lines_are_prompts_when_asked_for(corpus):
    result = hubtools.load(corpus / "llama_factory/wiki_demo.txt", format="prompt_text")
    assert (result.kind.value, result.valid, result.quarantined) == ("prompt", 30, 0)
    assert hubtools.load(corpus / "llama_factory/wiki_demo.txt").kind.value == "text"  # unasked: raw text


def test_prompts_in_an_sft_file_are_quarantined_as_no_reply_and_replies_in_a_prompt_list_too(tmp_path):
    sft = _jsonl(tmp_path / "sft.jsonl", [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"},
                                          {"instruction": "e"}, {"instruction": "f", "output": ""},
                                          {"instruction": "g", "output": "h"}])
    result = hubtools.load(sft)
    assert (result.format, result.valid, result.by_code) == ("alpaca", 3, {"no_reply": 2})
    assert result.detection.confidence == 3 / 5
    row = result.quarantine[0]
    assert row.index == 2 and "no reply" in row.reason and "generate responses" in row.hint
    prompts = _jsonl(tmp_path / "prompts.jsonl", [{"instruction": "a"}, {"instruction": "b"},
                                                  {"instruction": "c", "output": "answered"}])
    result = hubtools.load(prompts)
    assert (result.format, result.valid, result.by_code) == ("alpaca_prompt", 2, {"format_mismatch": 1})
    assert "looks like alpaca" in result.quarantine[0].reason
    chat = _jsonl(tmp_path / "chat.jsonl", [{"messages": [U("q"), A("a")]}, {"messages": [U("q2"), A("a2")]},
                                            {"messages": [U("q"), A("a"), U("again?")]}])
    assert hubtools.load(chat).by_code == {"no_reply": 1}


class TestValidatePrompt:
    def codes(self, prompt):
        return [i.code.slug for i in check_record({"prompt": prompt, "hubtools_index": 0}, "prompt")]

    def test_a_prompt_ends_on_a_user_turn(self):
        assert self.codes([U("q")]) == []
        assert self.codes([U("q"), A("a"), U("q2")]) == []
        assert self.codes([U("q"), A("a")]) == ["role_order"]

    def test_a_prompt_has_a_user_turn_and_no_blank_text(self):
        assert self.codes([{"role": "system", "content": "s"}]) == ["no_prompt"]
        assert self.codes([U("  ")]) == ["empty_text"]
        assert self.codes([]) == ["missing_field"]


def test_a_blank_instruction_is_quarantined_even_with_an_input_on_both_read_paths(tmp_path):
    good = {"instruction": "Say hi", "input": "", "output": "Hi!"}
    blank = {"instruction": " \t ", "input": "the input alone is not an instruction", "output": "x"}
    # 1,001 records: detection samples the first 1,000 (all clean), so the fast path reads the file
    result = hubtools.load(_jsonl(tmp_path / "late.jsonl", [good] * 1000 + [blank]))
    assert result.valid == 1000 and result.by_code == {"empty_text": 1}
    assert result.quarantine[0].index == 1000 and "'instruction' is blank" in result.quarantine[0].reason


# ---- generate responses on every shape -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_generate_responses_answers_every_prompt_of_each_shape(openai_server, tmp_path, name):
    path = _write_shape(tmp_path, name)
    out = tmp_path / "r"
    result = invoke("generate", "responses", path, "--out", out, "--endpoint", openai_server.base_url,
                    "--model", "stand-in-small", "--json", *_key_option())
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["input"]["kind"] == "prompt"
    assert summary["prompts"] == summary["candidates"] == summary["written"] == 2 and summary["failed"] == 0
    rows = [json.loads(line) for line in (out / "responses.jsonl").read_text().splitlines()]
    expected = SHAPES[name][3]
    assert [[(m["role"], m["content"]) for m in r["messages"][:-1]] for r in rows] == expected
    assert all(r["messages"][-1]["role"] == "assistant" and r["messages"][-1]["content"] for r in rows)


def test_generate_responses_answers_txt_lines_and_real_prompt_files(openai_server, tmp_path, corpus):
    for i, (path, count) in enumerate([(corpus / "llama_factory/wiki_demo.txt", 30),
                                       (REAL / "oasst_prompt_lottery_en_250_text.jsonl", 250)]):
        out = tmp_path / f"r{i}"
        result = invoke("generate", "responses", path, "--out", out, "--endpoint", openai_server.base_url,
                        "--model", "stand-in-small", "--concurrency", "16", "--max-tokens", "16", "--json",
                        *_key_option())
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["prompts"] == summary["candidates"] == count


def test_generate_responses_with_no_usable_prompt_exits_2_with_the_reasons(openai_server, tmp_path):
    path = _jsonl(tmp_path / "blank.jsonl", [{"prompt": "  "}, {"prompt": ""}, {"prompt": "\n"}])
    result = invoke("generate", "responses", path, "--out", tmp_path / "r", "--endpoint", openai_server.base_url,
                    "--model", "stand-in-small", *_key_option())
    assert result.exit_code == 2 and result.stdout == ""
    assert "no usable record (3 read, all quarantined: empty_text 3)" in result.stderr
    assert not (tmp_path / "r" / "responses.jsonl").exists()


# ---- no usable record, honest detection ------------------------------------------------------------


def test_a_prompt_list_read_as_sft_exits_2_and_says_what_would_work(tmp_path):
    path = _jsonl(tmp_path / "prompts.jsonl", [{"instruction": f"task {i}"} for i in range(3)])
    result = invoke("validate", path, "--out", tmp_path / "v", "--format", "alpaca")
    assert result.exit_code == 2
    assert "no usable record (3 read, all quarantined: no_reply 3)" in result.stderr
    assert "these records have no reply: is this a prompt list? use `hubtools generate responses`" in result.stderr
    assert "try --format alpaca_prompt" in result.stderr
    summary = json.loads((tmp_path / "v" / "summary.json").read_text())
    assert (summary["valid"], summary["quarantined"], summary["confidence"]) == (0, 3, 0.0)
    assert len((tmp_path / "v" / "quarantine.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize(("command", "file", "count"), [
    ("judge", "real_world/arena_hard_v0.1_question.jsonl", 500),
    ("rank", "fastchat/mt_bench_question.jsonl", 80),
    ("judge", "fastchat/mt_bench_question.jsonl", 80),
    ("rank", "real_world/arena_hard_v0.1_question.jsonl", 500),
])
def test_judge_and_rank_of_a_prompt_list_exit_2_saying_to_generate_responses_first(corpus, tmp_path, command, file,
                                                                                    count):
    result = invoke(command, corpus / file, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    name = Path(file).name
    assert errors[0].startswith(f"error: {name} is a prompt list ({count} prompts, no replies; format ")
    assert f"there is nothing to {command} yet" in errors[0]
    assert f"answer the prompts first with `hubtools generate responses {corpus / file} --out responses/" in errors[0]
    assert "`hubtools judge responses/responses.jsonl --out judged/`" in errors[0]
    assert not (tmp_path / "out").exists()  # nothing written


def test_detection_with_no_fitting_record_reports_0_percent_and_exits_2(tmp_path):
    rows = [{"conversations": [{"from": "alien", "value": f"hi {i}"}, {"from": "gpt", "value": "yo"}]}
            for i in range(4)]
    path = _jsonl(tmp_path / "odd.jsonl", rows)
    result = invoke("inspect", path)
    assert result.exit_code == 2
    assert "detection confidence 0%" in result.stdout
    assert ("looks like sharegpt, but no record fits: conversations[0] has unknown role 'alien'"
            in result.stderr)
    data = json.loads(invoke("inspect", path, "--json").stdout)
    assert data["detection"]["confidence"] == 0.0 and data["detection"]["counts"] == {"sharegpt": 4}
    result = invoke("validate", path, "--out", tmp_path / "v")
    assert result.exit_code == 2 and "unknown_role 4" in result.stderr


def test_a_wrong_format_names_the_closest_one(tmp_path, corpus):
    result = invoke("inspect", corpus / "llama_factory/alpaca_en_demo.json", "--format", "openai")
    assert result.exit_code == 2
    assert "was read as openai, but no record fits" in result.stderr
    assert "try --format alpaca" in result.stderr


def test_confidence_is_the_share_of_sampled_records_that_validate(tmp_path):
    rows = [{"instruction": "a", "output": "b"}] * 3 + [{"instruction": "c", "output": "   "}]
    detection = hubtools.load(_jsonl(tmp_path / "x.jsonl", rows)).detection
    assert detection.format == "alpaca" and detection.confidence == 0.75 and detection.problem is None


# ---- check on 0, 1 and prompt-only records -------------------------------------------------------------


def _quality(out: Path) -> dict:
    return json.loads((out / "quality.json").read_text())


def test_check_with_no_valid_record_writes_a_report_saying_why_and_exits_2(tmp_path):
    path = _jsonl(tmp_path / "bad.jsonl", [{"instruction": "a", "output": " "}, {"instruction": "b"}] * 2)
    out = tmp_path / "q"
    result = invoke("check", path, "--out", out, "--format", "alpaca")
    assert result.exit_code == 2, result.output
    assert "no usable record (4 read, all quarantined: no_reply 4)" in result.stderr
    checks = _quality(out)["checks"]
    assert checks["schema"]["count"] == 4
    assert checks["diversity"]["applicable"] is False
    assert checks["diversity"]["stats"]["skipped"].startswith("no valid record to measure")
    report = (out / "dataset_quality_report.md").read_text()
    assert "| valid | 0 |" in report and "no valid record to measure" in report


def test_check_with_one_record_writes_a_report(tmp_path):
    out = tmp_path / "q"
    result = invoke("check", _jsonl(tmp_path / "one.jsonl", [{"instruction": "Say hi", "output": "Hi!"}]),
                    "--out", out)
    assert result.exit_code == 0, result.output
    checks = _quality(out)["checks"]
    assert not any("could not run" in str(c["stats"].get("skipped", "")) for c in checks.values())
    assert checks["length_outliers"]["applicable"] and (out / "dataset_quality_report.md").exists()


def test_check_on_prompt_only_data_skips_the_reply_checks_saying_so(tmp_path):
    out = tmp_path / "q"
    rows = [{"prompt": "Write a poem about the sea."}, {"prompt": "Contact me at jo@example.com please."},
            {"prompt": "Write a poem about the sea."}]
    result = invoke("check", _jsonl(tmp_path / "p.jsonl", rows), "--out", out)
    assert result.exit_code == 0, result.output
    assert "refusals          n/a: prompt-only data has no replies to check" in result.stdout
    checks = _quality(out)["checks"]
    for name in ("toxicity", "refusals"):
        assert checks[name]["applicable"] is False
        assert checks[name]["stats"]["skipped"] == "prompt-only data has no replies to check"
    assert checks["exact_duplicates"]["flagged"] == [2]
    assert checks["pii"]["flagged"] == [1]
    assert checks["categories"]["applicable"] is True


# ---- push: prompts are never published as SFT data -----------------------------------------------------


def _push(env: dict[str, str], *args):
    from tests.fixtures.hub import run_client

    code = ("import sys\nfrom hubtools.cli import main\n"
            f"sys.argv = ['hubtools', *{[str(a) for a in args]!r}]\nmain()\n")
    return run_client(code, env)


def test_push_of_sft_data_keeps_its_prompt_only_records_out(hub_server, hub_env, hub_repo_id, tmp_path):
    import pyarrow.parquet as pq

    rows = [{"instruction": "a", "input": "", "output": "b"}, {"instruction": "no reply yet"},
            {"instruction": "c", "input": "", "output": "d"}]
    path = _jsonl(tmp_path / "sft.jsonl", rows)
    quality = tmp_path / "quality.json"  # the schema check alone: the push test is not about the checks
    quality.write_text(json.dumps(run_checks(path, checks=["schema"]).to_dict()))
    result = _push(hub_env, "push", path, hub_repo_id, "--quality", quality, "--dry-run", "--include-quarantine",
                   "--json")
    assert result.returncode == 0, result.stderr
    staged = Path(json.loads(result.stdout)["staging_dir"])
    assert pq.read_table(staged / "data/train-00000-of-00001.parquet").to_pylist() == [rows[0], rows[2]]
    quarantine = [json.loads(line) for line in (staged / "quarantine/train.jsonl").read_text().splitlines()]
    assert [(r["index"], r["code"]) for r in quarantine] == [(1, "no_reply")]

    prompts = _jsonl(tmp_path / "prompts.jsonl", [{"instruction": "only a prompt"}] * 2)
    result = _push(hub_env, "push", prompts, hub_repo_id, "--format", "alpaca", "--dry-run")
    assert result.returncode == 2
    assert "no usable record (2 read, all quarantined: no_reply 2)" in result.stderr
    assert "use `hubtools generate responses`" in result.stderr
    assert not hub_server.repo_exists(hub_repo_id)


def test_alpaca_with_an_empty_output_written_as_prompts_reads_back_as_prompts(tmp_path):
    source = tmp_path / "a.jsonl"
    source.write_text('{"instruction": "Say hi.", "input": "", "output": ""}\n'
                      '{"instruction": "Add these.", "input": "2 and 3", "output": ""}\n')
    from hubtools.convert import convert

    convert(source, tmp_path / "p.jsonl", to="prompt")
    back = hubtools.load(tmp_path / "p.jsonl")
    assert (back.format, back.valid, back.quarantined) == ("prompt", 2, 0)
    assert [r["prompt"][-1]["content"] for r in back.dataset] == ["Say hi.", "Add these.\n2 and 3"]
