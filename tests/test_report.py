"""The quality report: quality.json, the markdown report with its plots, category_distribution.json."""

from __future__ import annotations

import json

import pytest

from typer.testing import CliRunner

from hubtools.checks import MODULES, REGISTRY, run_checks
from hubtools.cli import app
from hubtools.load import load
from hubtools.publish.report import category_distribution, write_report

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


def test_check_command_writes_every_deliverable_with_plots(corpus, tmp_path):
    source = corpus / "llama_factory" / "alpaca_zh_demo.json"
    result = runner.invoke(app, ["check", str(source), "--out", str(tmp_path),
                                 "--checks", "length_outliers,language,categories"])
    assert result.exit_code == 0, result.output
    quality = json.loads((tmp_path / "quality.json").read_text())
    assert quality["dataset"]["total"] == 1000
    assert sorted(quality["checks"]) == ["categories", "language", "length_outliers"]
    for check in quality["checks"].values():
        assert {"flagged", "stats"} <= set(check) and check["flagged"] == sorted(set(check["flagged"]))
    report = (tmp_path / "dataset_quality_report.md").read_text()
    for plot in ("lengths", "categories", "languages"):
        png = tmp_path / "plots" / f"{plot}.png"
        assert png.read_bytes()[:8] == PNG, f"{plot}.png is not a PNG"
        assert f"(plots/{plot}.png)" in report, f"the report does not embed {plot}.png"
    dist = json.loads((tmp_path / "category_distribution.json").read_text())
    assert dist["total"] == 1000 and set(dist) >= {"categories", "missing", "total"}
    assert sum(c["count"] for c in dist["categories"].values()) == dist["total"]
    assert abs(sum(c["share"] for c in dist["categories"].values()) - 1) < 1e-6


def test_report_names_each_check_with_its_count_and_the_whole_default_scan_runs(corpus, tmp_path):
    loaded = load(corpus / "llama_factory" / "dpo_en_demo.json")
    quality = run_checks(loaded)
    assert [n for n in MODULES if n in quality.results] == list(quality.results)
    assert set(quality.results) == {n for n, spec in REGISTRY.items() if spec.default}
    files = write_report(quality, tmp_path)
    report = files["dataset_quality_report.md"].read_text()
    for name, result in quality.results.items():
        assert name in report
    assert quality.results["exact_duplicates"].count > 0  # the demo file repeats some pairs
    written = json.loads(files["quality.json"].read_text())
    assert written["checks"]["exact_duplicates"]["flagged"] == quality.results["exact_duplicates"].flagged
    assert category_distribution(quality)["total"] == loaded.valid


def _corpus_files():
    from .test_corpus import EXPECTED

    return sorted(EXPECTED)


@pytest.mark.parametrize("name", _corpus_files())
def test_the_default_scan_runs_on_every_corpus_file(corpus, name):
    from .test_corpus import EXPECTED

    loaded = load(corpus / name)
    quality = run_checks(loaded)
    assert set(quality.results) == {n for n, spec in REGISTRY.items() if spec.default}
    valid = set(loaded.dataset["hubtools_index"])
    for check, result in quality.results.items():
        assert set(result.flagged) <= valid | {row.index for row in loaded.quarantine}, check
        assert result.flagged == sorted(set(result.flagged)), check
    assert quality.results["schema"].count == sum(EXPECTED[name][3].values())
    # the reply checks apply to every kind with replies (not to prompt lists); preference checks only to pairs
    assert quality.results["preference"].applicable == (loaded.kind.value == "preference")
    assert quality.results["toxicity"].applicable == (loaded.kind.value != "prompt")


def test_the_report_shows_the_largest_duplicate_groups_with_personal_data_redacted(tmp_path):
    from hubtools.checks import run_checks
    from hubtools.publish.report import render_report
    from tests.fixtures.build import sft

    pairs = [(f"Question {i} about rivers and lakes of the north", f"Answer {i}") for i in range(6)]
    dup = ("Write to jane.doe@gmail.com about the shipping delay of order 1234", "Sure, here is the e-mail.")
    story = ("Explain how rainbows form after a summer storm in the hills, why the colours always appear in "
             "the same order, and why a second fainter bow sometimes shows above the first one with its colours "
             "reversed, in words a curious ten year old would follow without any trouble at all")
    near = (story, "Light refracts in droplets.")
    rows = pairs + [dup, dup, dup] + [near, (story + " today", near[1])]
    quality = run_checks(sft(rows), checks=["exact_duplicates", "near_duplicates"])
    text = render_report(quality)
    exact = text.split("### `exact_duplicates`")[1].split("### ")[0]
    assert "| size | members | similarity | text |" in exact
    assert "| 3 | #6, #7, #8 | identical | Write to [EMAIL] about the shipping delay" in exact
    assert "jane.doe@gmail.com" not in text
    near_part = text.split("### `near_duplicates`")[1]
    row = next(line for line in near_part.splitlines() if line.startswith("| 2 | #9, #10 |"))
    assert 0.8 <= float(row.split("|")[3]) < 1.0  # the lowest Jaccard in the cluster
