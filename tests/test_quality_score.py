"""The per-record quality score: a documented product of the flagging checks' weights."""

from __future__ import annotations

import json

import pytest

from hubtools.checks import run_checks
from hubtools.checks.score import WEIGHTS, record_scores

from .conftest import CORPUS


@pytest.fixture
def data(tmp_path):
    records = json.loads((CORPUS / "llama_factory" / "alpaca_en_demo.json").read_text())[:40]
    records[5] = dict(records[3])  # an exact duplicate of 3
    records[7] = {"instruction": "Tell me about yourself.", "input": "",
                  "output": "As an AI language model, I don't have personal opinions. Mail me at jo@example.com"}
    records[9] = dict(records[7])  # a duplicate refusal with an e-mail: three flags
    records.append({"instruction": "", "input": "", "output": ""})  # quarantined
    path = tmp_path / "data.json"
    path.write_text(json.dumps(records))
    return path


def test_scores_multiply_the_flagging_checks_weights(data):
    quality = run_checks(data, checks=["schema", "exact_duplicates", "refusals", "pii"])
    scores = record_scores(quality)
    assert scores.score(0) == 1.0
    assert scores.score(5) == pytest.approx(1 - WEIGHTS["exact_duplicates"])
    assert scores.score(7) == pytest.approx((1 - WEIGHTS["refusals"]) * (1 - WEIGHTS["pii"]), abs=1e-4)
    assert scores.score(9) == pytest.approx((1 - WEIGHTS["exact_duplicates"]) * (1 - WEIGHTS["refusals"])
                                            * (1 - WEIGHTS["pii"]), abs=1e-4)
    assert scores.score(40) == 0.0  # quarantined
    assert scores.contributing == ["schema", "exact_duplicates", "pii", "refusals"]  # registry order


def test_histogram_counts_every_valid_record_once(data):
    quality = run_checks(data, checks=["schema", "exact_duplicates", "refusals", "pii"])
    scores = record_scores(quality)
    assert sum(scores.histogram()) == quality.dataset["valid"] == 40
    assert scores.histogram()[-1] == 37  # everything but 5, 7 and 9
    assert 0.9 < scores.mean() < 1.0


def test_checks_that_did_not_apply_cost_nothing(data):
    quality = run_checks(data, checks=["preference"])  # SFT data: not applicable
    scores = record_scores(quality)
    assert scores.scores == {} and scores.contributing == [] and scores.mean() == 1.0


def test_weights_can_be_overridden(data):
    quality = run_checks(data, checks=["exact_duplicates"])
    assert record_scores(quality, {"exact_duplicates": 1.0}).score(5) == 0.0


def test_quality_json_carries_the_scores(data, tmp_path):
    quality = run_checks(data, checks=["schema", "exact_duplicates", "refusals"]).to_dict()
    score = quality["quality_score"]
    assert score["below_one"]["5"] == 1 - WEIGHTS["exact_duplicates"] and "40" in score["below_one"]
    assert sum(score["histogram"]) == 40 and "product" in score["formula"]


def test_filter_min_quality_removes_low_scores_with_the_reason(data, tmp_path):
    from typer.testing import CliRunner

    from hubtools.cli import app

    out = CliRunner().invoke(app, ["filter", str(data), "--out", str(tmp_path / "clean"), "--min-quality", "0.2"],
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    removed = [json.loads(line) for line in (tmp_path / "clean" / "removed.jsonl").read_text().splitlines()]
    by_index = {r["index"]: r for r in removed}
    # 7 (refusal, e-mail) and its copy 9 fall below 0.2 on the default scan; 5 (a duplicate, 0.5) does not
    assert {i: r["reasons"] for i, r in by_index.items()} == {7: ["quality_score"], 9: ["quality_score"],
                                                              40: ["schema"]}
    assert "< 0.2" in by_index[9]["details"]["quality_score"]
    assert "38 kept + 3 removed" in out.output


def test_filter_without_drop_or_min_quality_says_what_to_give(data, tmp_path):
    from typer.testing import CliRunner

    from hubtools.cli import app

    out = CliRunner().invoke(app, ["filter", str(data), "--out", str(tmp_path / "clean")])
    assert out.exit_code == 2 and "--min-quality" in out.output


def test_the_review_queue_takes_the_lowest_quality_first(data, tmp_path):
    """`hubtools review queue --quality quality.json --order quality`: the worst records first, with
    their scores; the default order stays the flags' priority; the library refuses an order it lacks
    the scores for."""
    from typer.testing import CliRunner

    from hubtools.cli import app
    from hubtools.errors import ReviewError
    from hubtools.load import load
    from hubtools.review import build_queue, quality_from_file

    runner = CliRunner()
    out = runner.invoke(app, ["check", str(data), "--out", str(tmp_path / "q"),
                              "--checks", "schema,exact_duplicates,refusals,pii"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    quality = tmp_path / "q" / "quality.json"
    out = runner.invoke(app, ["review", "queue", str(data), "--quality", str(quality), "--order", "quality",
                              "--limit", "5", "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)
    assert shown["items"] == 40 and shown["order"] == "quality"
    assert [(i["index"], i["quality"]) for i in shown["shown"][:3]] == [
        (9, pytest.approx(0.09, abs=1e-4)), (7, pytest.approx(0.18, abs=1e-4)), (5, 0.5)]
    assert shown["shown"][3]["quality"] == 1.0 and "quality score 0.09" in shown["shown"][0]["reasons"]
    # by priority (the default) the flags order it: 7 and 9 carry more flags but the same +1
    loaded = load(data)
    by_priority = build_queue(loaded.dataset, kind=loaded.kind, quality=quality_from_file(quality))
    assert [item.index for item in by_priority.items[:3]] == [0, 1, 2]  # no flags given: priority 0, by index
    assert by_priority.at_index(9).view()["quality"] == pytest.approx(0.09, abs=1e-4)
    with pytest.raises(ReviewError, match="needs the quality scores"):
        build_queue(loaded.dataset, kind=loaded.kind, order="quality")
    with pytest.raises(ReviewError, match="unknown queue order"):
        build_queue(loaded.dataset, kind=loaded.kind, order="worst")
    out = runner.invoke(app, ["review", "queue", str(data), "--order", "quality"])
    assert out.exit_code != 0 and "quality.json" in out.output
    with pytest.raises(ReviewError, match="not a quality.json"):
        quality_from_file(data)
