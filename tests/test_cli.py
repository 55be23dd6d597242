"""The CLI contracts other work depends on: inspect, validate, convert, formats, help."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hubtools.cli import app

from .conftest import CORPUS

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_inspect_json_gives_format_kind_counts_fields_and_two_samples():
    result = invoke("inspect", CORPUS / "llama_factory/dpo_en_demo.json", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["format"], data["kind"], data["total"]) == ("sharegpt_preference", "preference", 300)
    assert data["fields"] == ["conversations", "chosen", "rejected"]
    assert len(data["samples"]) == 2 and "conversations" in data["samples"][0]


def test_inspect_report_is_readable():
    result = invoke("inspect", CORPUS / "llama_factory/kto_en_demo.json")
    assert result.exit_code == 0
    assert "kto (unpaired)" in result.stdout
    assert "records: 300 = 300 valid + 0 quarantined" in result.stdout


def test_validate_writes_valid_in_the_input_format_quarantine_and_summary(tmp_path):
    src = CORPUS / "alpaca_eval/alpaca-7b_vs_davinci003_gpt4_annotations.json"
    result = invoke("validate", src, "--out", tmp_path, "--json")
    assert result.exit_code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {k: summary[k] for k in ("format", "kind", "total", "valid", "quarantined", "by_code")} == {
        "format": "alpaca_eval_pairwise", "kind": "preference", "total": 805, "valid": 789,
        "quarantined": 16, "by_code": {"no_preference": 16}}
    original = json.loads(src.read_text())
    valid = json.loads((tmp_path / "valid.json").read_text())
    kept = [r for r in original if r["preference"] in (1, 2)]
    assert valid == kept
    rows = [json.loads(line) for line in (tmp_path / "quarantine.jsonl").read_text().splitlines()]
    assert all(original[r["index"]] == r["raw"] for r in rows)
    assert json.loads(result.stdout)["valid"] == 789


def test_validate_strict_exits_1_when_anything_was_quarantined(tmp_path):
    bad = invoke("validate", CORPUS / "alpaca_eval/text_davinci_003_outputs.json", "--out", tmp_path / "a", "--strict")
    good = invoke("validate", CORPUS / "llama_factory/identity.json", "--out", tmp_path / "b", "--strict")
    assert (bad.exit_code, good.exit_code) == (1, 0)


def test_validate_gzip_input_writes_jsonl(tmp_path):
    result = invoke("validate", CORPUS / "hh_rlhf/harmless_base_test.jsonl.gz", "--out", tmp_path)
    assert result.exit_code == 0
    assert len((tmp_path / "valid.jsonl").read_text().splitlines()) == 2308


def test_format_override_is_used_and_reported(tmp_path):
    result = invoke("inspect", CORPUS / "alpaca_eval/alpaca-7b_outputs.json", "--format", "alpaca", "--json")
    data = json.loads(result.stdout)
    assert data["format"] == "alpaca" and data["detection"]["forced"] is True


def test_unknown_format_names_the_known_ones():
    result = runner.invoke(app, ["inspect", str(CORPUS / "llama_factory/identity.json"), "--format", "chatml"])
    assert result.exit_code == 2
    assert "unknown format 'chatml'" in result.stderr and "sharegpt" in result.stderr


def test_convert_reports_written_and_quarantined(tmp_path):
    out = tmp_path / "chat.parquet"
    result = invoke("convert", CORPUS / "llama_factory/alpaca_zh_demo.json", out, "--to", "openai", "--json")
    data = json.loads(result.stdout)
    assert data == {"from": "alpaca", "to": "openai", "kind": "sft", "total": 1000, "written": 1000,
                    "quarantined": 0, "out": str(out), "quarantine": None}
    assert out.exists()


def test_formats_lists_every_format():
    result = invoke("formats", "--json")
    names = {row["format"] for row in json.loads(result.stdout)}
    assert {"alpaca", "sharegpt", "openai", "dpo", "trl", "kto", "text", "hh_rlhf"} <= names


@pytest.mark.parametrize("command", sorted(c.name or c.callback.__name__ for c in app.registered_commands))
def test_every_command_has_help_with_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example: hubtools " in result.stdout
