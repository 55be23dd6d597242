"""Dataset cards and annotation guidelines: valid Hub metadata, sections drawn from the data,
honest provenance, graceful quality summaries, re-rendering that keeps what a person edited.
An installed wheel finding its templates: tests/test_wheel.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard
from typer.testing import CliRunner

from hubtools.publish.card import render_card, render_guidelines, write_cards
from hubtools.publish.context import CardSettings, card_context
from hubtools.publish.merge import merge_metadata, merge_sections, split_front_matter
from hubtools.checks import run_checks
from hubtools.cli import app
from hubtools.load import load

from .conftest import CORPUS

DPO = CORPUS / "llama_factory" / "dpo_en_demo.json"
SECTION = re.compile(r"<!-- hubtools:begin (\w+) sha=\w+ -->\n(.*?)\n<!-- hubtools:end \1 -->", re.S)


def sections(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in SECTION.finditer(text)}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def dpo():
    loaded = load(DPO)
    return loaded, run_checks(loaded, checks=["schema", "exact_duplicates", "categories"])


def test_card_metadata_is_valid_for_the_hub_and_the_example_is_a_real_record(dpo):
    loaded, quality = dpo
    ctx = card_context(loaded, quality, CardSettings(repo_id="me/dpo-demo", license="cc-by-4.0"))
    card = render_card(ctx, explicit={"license"})

    parsed = DatasetCard(card.text)  # what DatasetCard.load does with the README
    data = parsed.data.to_dict()
    assert data["license"] == "cc-by-4.0"
    assert data["size_categories"] == ["n<1K"]
    assert data["task_categories"] == ["text-generation"]
    assert data["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
    assert {"hubtools", "dpo", "preference"} <= set(data["tags"])
    assert data["pretty_name"] == "Dpo Demo"
    body = sections(card.text)
    assert list(body) == ["title", "structure", "creation", "quality", "uses", "loading", "files"]
    example = json.loads(re.search(r"```json\n(.*?)\n```", body["structure"], re.S).group(1))
    first = json.loads(DPO.read_text())[0]
    assert example["conversations"] == first["conversations"]
    assert example["rejected"]["from"] == first["rejected"]["from"]
    assert first["chosen"]["value"].startswith(example["chosen"]["value"].rstrip("…"))
    assert "| `conversations` | list of {from: string, value: string} |" in body["structure"]
    assert '"hf_hub_url": "me/dpo-demo"' in body["loading"] and '"ranking": true' in body["loading"]
    assert 'load_dataset("me/dpo-demo", split="train")' in body["loading"]
    dup = quality.results["exact_duplicates"].count
    assert f"| `exact_duplicates` | {dup} | {dup / 300:.1%} |" in body["quality"]
    assert "human-written / not recorded" in body["creation"]
    assert "**Human review agreement:** not recorded" in body["quality"]


def test_rerender_keeps_metadata_hand_edited_sections_and_text_outside_markers(tmp_path, dpo):
    loaded, quality = dpo
    first = render_card(card_context(loaded, quality, CardSettings(repo_id="me/d"))).text
    meta, body = split_front_matter(first)
    meta.update(license="mit", annotations_creators=["expert-generated"], tags=[*meta["tags"], "mine"])
    body = body.replace("Not intended as an evaluation benchmark", "We use it as a benchmark too")
    body = re.sub(r"<!-- hubtools:begin loading .*?<!-- hubtools:end loading -->\n", "", body, flags=re.S)
    body += "\n## Citation\n\nCite us.\n"
    edited = "---\n" + json.dumps(meta) + "\n---\n" + body  # JSON is YAML: any valid front matter works

    smaller = load(write_jsonl(tmp_path / "d.jsonl", json.loads(DPO.read_text())[:40]))
    again = render_card(card_context(smaller, run_checks(smaller, checks=["schema"]), CardSettings(repo_id="me/d")),
                        edited)

    data = DatasetCard(again.text).data.to_dict()
    assert data["license"] == "mit"  # a person's value wins over the default...
    assert data["annotations_creators"] == ["expert-generated"]  # ...keys hubtools does not own stay...
    assert "mine" in data["tags"] and "hubtools" in data["tags"]
    assert data["size_categories"] == ["n<1K"]  # ...facts are recomputed
    assert again.kept_sections == ["uses"]
    new = sections(again.text)
    assert "We use it as a benchmark too" in new["uses"]
    assert "40 preference pairs" in new["title"]  # unedited sections are regenerated
    assert 'load_dataset("me/d", split="train")' in new["loading"]  # a deleted section comes back...
    assert again.text.index("hubtools:end uses") < again.text.index("hubtools:begin loading")  # ...in its place
    assert again.text.rstrip().endswith("## Citation\n\nCite us.")
    forced = render_card(card_context(smaller, None, CardSettings(repo_id="me/d", license="apache-2.0")), edited,
                         explicit={"license"})
    assert DatasetCard(forced.text).data.license == "apache-2.0"  # an explicit setting replaces it


@pytest.mark.parametrize(("old", "expected", "kept"), [
    (None, "<!-- hubtools:begin a sha=X -->\nnew a\n<!-- hubtools:end a -->", []),
    ("# Mine\n\nhand written\n", "# Mine\n\nhand written\n\n<!-- hubtools:begin a sha=X -->\nnew a\n"
                                  "<!-- hubtools:end a -->", []),
    ("<!-- hubtools:begin a -->\n<!-- hubtools:end a -->\nafter\n",
     "<!-- hubtools:begin a sha=X -->\nnew a\n<!-- hubtools:end a -->\nafter\n", []),
    ("<!-- hubtools:begin a sha=0123456789ab -->\nedited a\n<!-- hubtools:end a -->\n",
     "<!-- hubtools:begin a sha=0123456789ab -->\nedited a\n<!-- hubtools:end a -->\n", ["a"]),
])
def test_merge_sections_rules(old, expected, kept):
    from hubtools.publish.merge import _stamp

    new = _stamp("<!-- hubtools:begin a -->\nnew a\n<!-- hubtools:end a -->")
    sha = re.search(r"sha=(\w+)", new).group(1)
    text, kept_names = merge_sections(new, old)
    assert text == expected.replace("sha=X", f"sha={sha}")
    assert kept_names == kept


def test_merge_metadata_keeps_other_splits_and_drops_stale_dataset_info():
    existing = {"license": "mit", "dataset_info": {"features": [{"name": "old", "dtype": "string"}]},
                "configs": [{"config_name": "default", "data_files": [{"split": "test", "path": "data/test-*"},
                                                                       {"split": "train", "path": "old/*"}]},
                            {"config_name": "raw", "data_files": "raw/*.csv"}]}
    ours = {"license": "unknown", "configs": [{"config_name": "default",
                                               "data_files": [{"split": "train", "path": "data/train-*"}]}]}
    merged = merge_metadata(ours, existing)
    assert merged["license"] == "mit" and "dataset_info" not in merged
    assert merged["configs"] == [{"config_name": "default", "data_files": [
        {"split": "test", "path": "data/test-*"}, {"split": "train", "path": "data/train-*"}]},
        {"config_name": "raw", "data_files": "raw/*.csv"}]


def test_provenance_recorded_in_the_records_and_given_by_the_publisher_is_shown(tmp_path):
    rows = [{"instruction": f"Question {i}?", "output": f"Answer {i}.",
             **({"synthetic": True, "model": "tiny-llm"} if i < 3 else {"synthetic": False})} for i in range(5)]
    loaded = load(write_jsonl(tmp_path / "sft.jsonl", rows))
    given = {"judge": "judge-7b", "sources": ["handbook.pdf"], "agreement": {"cohen_kappa": 0.71}}
    ctx = card_context(loaded, run_checks(loaded, checks=["schema"]), CardSettings(provenance=given))
    creation = sections(render_card(ctx).text)["creation"]
    assert "**Generation models:** tiny-llm" in creation
    assert "**Judge:** judge-7b" in creation and "**Sources:** handbook.pdf" in creation
    assert "**Synthetic to human-written:** 3 generated, 2 human-written." in creation
    assert "Pair strategy" not in creation  # only for preference data
    card = render_card(ctx)
    assert "cohen_kappa 0.71" in sections(card.text)["quality"]
    assert "synthetic" in card.metadata["tags"]
    guide = render_guidelines(ctx).text
    assert "## Writing and editing replies" in guide and "Choosing the chosen" not in guide


def test_quality_summary_renders_whatever_checks_and_stats_exist(tmp_path):
    loaded = load(write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Translate 'cat' to French.", "output": "chat"},
                                                     {"instruction": "Write a poem about rain.", "output": "Rain."}]))
    quality = {
        "dataset": {"total": 3, "valid": 2, "quarantined": 1, "by_code": {"invalid_json": 1}},
        "checks": {
            "schema": {"flagged": [2], "count": 1, "stats": {}},
            "categories": {"flagged": [], "count": 0, "stats": {
                "categories": {"translation": {"count": 1, "share": 0.5}, "creative_writing": {"count": 1, "share": 0.5}},
                "missing": ["code"], "under_represented": ["qa"], "total": 2}},
            "language": {"flagged": [], "count": 0, "stats": {"distribution": {"en": {"count": 2, "share": 1.0}}}},
            "pii": {"flagged": [0], "count": 1, "stats": {"by_type": {"email": 1}}},
            "preference": {"flagged": [], "count": 0, "applicable": False, "stats": {"skipped": "does not apply"}},
            "someday_check": {"flagged": [1], "count": 1, "stats": {"a new key": [1, 2, 3]}},
        },
    }
    ctx = card_context(loaded, quality, CardSettings())
    card = render_card(ctx)
    body = sections(card.text)
    assert "| `someday_check` | 1 | 50.0% |" in body["quality"]
    assert "| `preference` | n/a |  | does not apply |" in body["quality"]
    assert "**Missing categories:** code" in body["quality"] and "**Under-represented categories:** qa" in body["quality"]
    assert "translation 50.0%" in body["quality"] and "**Languages:** en 100.0%" in body["quality"]
    assert "email 1" in body["quality"]
    assert card.metadata["language"] == ["en"]
    guide = sections(render_guidelines(ctx).text)
    assert "| `translation` |" in guide["categories"] and "| `code` |" in guide["categories"]
    assert "Missing, worth adding records for: code." in guide["categories"]
    empty = render_card(card_context(loaded, {}, CardSettings()))  # no quality at all still renders
    assert "## Quality" in empty.text


def test_guidelines_for_preference_data_have_format_examples_categories_and_rules(dpo):
    loaded, quality = dpo
    guide = render_guidelines(card_context(loaded, quality, CardSettings(repo_id="me/d")))
    body = sections(guide.text)
    assert list(body) == ["overview", "format", "examples", "criteria", "categories", "judging", "safety",
                          "escalation"]
    assert "| `chosen` | list of messages |" in body["format"]
    assert re.search(r"\| chosen \| \d+ \| [\d,]+ \| [\d,]+ \| [\d,]+ \|", body["format"])
    assert "`system` 80" in body["format"]  # roles counted in the data
    indices = [int(i) for i in re.findall(r"^Record (\d+)", body["examples"], re.M)]
    assert len(indices) == 3 and indices[0] == 0
    assert "**Length is not quality.**" in body["judging"]
    from hubtools.checks.categories import CATEGORIES

    for name in CATEGORIES:
        assert f"| `{name}` |" in body["categories"]
    assert "What to escalate" in body["escalation"]


def test_card_command_writes_card_guidelines_and_report_and_keeps_edits(tmp_path):
    out = tmp_path / "card"
    runner = CliRunner()
    args = ["card", str(DPO), "--out", str(out), "--repo-id", "me/dpo", "--license", "cc-by-4.0", "--json"]
    first = runner.invoke(app, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    files = json.loads(first.stdout)["files"]
    assert {"README.md", "annotation_guidelines.md", "quality.json", "dataset_quality_report.md",
            "category_distribution.json"} <= set(files)
    assert all(Path(p).is_file() for p in files.values())
    assert json.loads((out / "quality.json").read_text())["dataset"]["total"] == 300
    guide = out / "annotation_guidelines.md"
    guide.write_text(guide.read_text().replace("Flagged records are reviewed", "Flagged records go to Ana"))
    second = runner.invoke(app, args[:-1], catch_exceptions=False)
    assert second.exit_code == 0
    assert "kept hand-edited sections of annotation_guidelines.md: escalation" in second.stderr
    assert "Flagged records go to Ana" in guide.read_text()
