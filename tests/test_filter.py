"""`hubtools filter`: kept + removed = input, in the input's own format, with PII redaction."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from hubtools.checks import run_checks
from hubtools.checks.filter import filter_dataset
from hubtools.cli import app
from hubtools.load import load

runner = CliRunner()


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def test_filter_removes_flagged_and_quarantined_and_keeps_the_rest_in_alpaca(tmp_path):
    rows = [{"instruction": f"Explain topic number {i} in one line.", "input": "", "output": f"Topic {i} is about item {i}."}
            for i in range(10)]
    rows[4] = dict(rows[1])                                   # exact duplicate of record 1
    rows[6] = {"instruction": "Mail me", "input": "", "output": "Write to jane.doe@example.com today."}
    rows.append({"instruction": "", "input": "", "output": "no instruction"})  # quarantined
    source = _write_jsonl(tmp_path / "data.jsonl", rows)
    result = runner.invoke(app, ["filter", str(source), "--out", str(tmp_path / "clean"),
                                 "--drop", "exact_duplicates", "--redact-pii", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["read"] == 11 and summary["kept"] == 9 and summary["removed"] == 2
    removed = [json.loads(line) for line in (tmp_path / "clean" / "removed.jsonl").read_text().splitlines()]
    assert [(r["index"], r["reasons"]) for r in removed] == [(4, ["exact_duplicates"]), (10, ["schema"])]
    kept = [json.loads(line) for line in (tmp_path / "clean" / "data.jsonl").read_text().splitlines()]
    assert len(kept) == 9 and set(kept[0]) >= {"instruction", "input", "output"}  # still Alpaca
    mail = next(r for r in kept if r["instruction"] == "Mail me")
    assert "jane.doe@example.com" not in mail["output"] and "[EMAIL]" in mail["output"]
    assert summary["redacted"] == {"email": 1}
    assert [r["output"] for r in kept if r["instruction"] != "Mail me"] == \
        [r["output"] for i, r in enumerate(rows) if i not in (4, 6, 10)]


def test_kept_plus_removed_is_the_input_on_real_preference_data(corpus, tmp_path):
    loaded = load(corpus / "hh_rlhf" / "harmless_base_test.jsonl.gz")
    quality = run_checks(loaded, checks=["exact_duplicates", "refusals"])
    result = filter_dataset(loaded, tmp_path, drop="exact_duplicates,refusals", quality=quality)
    flagged = set(quality.results["exact_duplicates"].flagged) | set(quality.results["refusals"].flagged)
    removed = [json.loads(line)["index"] for line in result.removed_path.read_text().splitlines()]
    assert result.kept + result.removed == loaded.total == 2312
    assert set(removed) == flagged | {row.index for row in loaded.quarantine}
    assert load(result.path).total == result.kept  # what was kept reads back as the same format
    assert load(result.path).format == loaded.format


def test_filter_with_a_quality_file_missing_the_check_says_what_to_run(corpus, tmp_path):
    loaded = load(corpus / "llama_factory" / "alpaca_en_demo.json")
    quality = run_checks(loaded, checks=["pii"])
    (tmp_path / "quality.json").write_text(json.dumps(quality.to_dict()))
    result = runner.invoke(app, ["filter", str(corpus / "llama_factory" / "alpaca_en_demo.json"), "--out",
                                 str(tmp_path / "out"), "--drop", "exact_duplicates",
                                 "--quality", str(tmp_path / "quality.json")])
    assert result.exit_code == 1 and "no exact_duplicates check" in result.stderr
    assert not (tmp_path / "out" / "removed.jsonl").exists()


def test_filter_of_an_input_with_no_usable_record_exits_2_with_the_reasons(tmp_path):
    source = _write_jsonl(tmp_path / "blank.jsonl", [{"instruction": " ", "output": "a"},
                                                     {"instruction": "\t", "output": "b"},
                                                     {"instruction": "", "output": "c"}])
    for extra in ([], ["--json"]):
        out = tmp_path / f"out{len(extra)}"
        result = runner.invoke(app, ["filter", str(source), "--out", str(out), "--drop", "exact_duplicates",
                                     *extra])
        assert result.exit_code == 2, result.output
        assert "blank.jsonl: no usable record (3 read, all quarantined: empty_text 3)" in result.stderr
        assert "each record's reason is in the quarantine" in result.stderr  # what would work
        # written first: every record's reason is in removed.jsonl (kept + removed = read)
        removed = [json.loads(line) for line in (out / "removed.jsonl").read_text().splitlines()]
        assert [(r["index"], r["reasons"]) for r in removed] == [(0, ["schema"]), (1, ["schema"]), (2, ["schema"])]
    prompts = _write_jsonl(tmp_path / "prompts.jsonl", [{"instruction": "Say hi"}, {"instruction": "Count"}])
    result = runner.invoke(app, ["filter", str(prompts), "--out", str(tmp_path / "p"), "--drop", "exact_duplicates",
                                 "--format", "alpaca"])
    assert result.exit_code == 2 and "no_reply 2" in result.stderr
    assert "is this a prompt list? use `hubtools generate responses`" in result.stderr
