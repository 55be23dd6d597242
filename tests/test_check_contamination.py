"""contamination: training records sharing a 13-word sequence with an evaluation set."""

from __future__ import annotations

import json
import string

import orjson
import pytest
from typer.testing import CliRunner

import hubtools
from hubtools.checks import run_checks
from hubtools.checks.base import CheckData
from hubtools.checks.contamination import ContaminationOptions, build_index, check_contamination
from hubtools.cli import app

from .conftest import CORPUS

MT_BENCH = CORPUS / "fastchat" / "mt_bench_question.jsonl"
ALPACA_EVAL = CORPUS / "alpaca_eval" / "alpaca-7b_vs_davinci003_gpt4_annotations.json"
EVAL_SETS = [f"mt_bench={MT_BENCH}", f"alpaca_eval={ALPACA_EVAL}"]


def _mt_bench_questions() -> list[str]:
    return [json.loads(line)["turns"][0] for line in MT_BENCH.read_text().splitlines() if line.strip()]


def _long_mt_bench() -> list[int]:
    return [i for i, q in enumerate(_mt_bench_questions()) if len(q.split()) >= 20]


def _alpaca_eval_instructions() -> list[str]:
    return [r["instruction"] for r in json.loads(ALPACA_EVAL.read_text())]


@pytest.fixture
def planted(tmp_path):
    """200 clean Alpaca demo records with contaminated ones planted at known positions."""
    clean = json.loads((CORPUS / "llama_factory" / "alpaca_en_demo.json").read_text())[:200]
    records = [dict(r) for r in clean]
    mt = [q for q in _mt_bench_questions() if len(q.split()) >= 20]
    ae = [q for q in _alpaca_eval_instructions() if len(q.split()) >= 20]
    plants = {
        10: {"instruction": "Please answer this: " + mt[0], "input": "", "output": "Sure."},
        50: {"instruction": mt[3].upper(), "input": "", "output": "Done."},  # case and punctuation folded
        120: {"instruction": "Summarise the following.", "input": "",
              "output": "The task was: " + ae[5] + " And here is my answer."},  # in the reply
    }
    for i, r in plants.items():
        records[i] = r
    path = tmp_path / "train.json"
    path.write_text(json.dumps(records))
    return path, sorted(plants)


def test_planted_contamination_is_flagged_exactly(planted):
    path, expected = planted
    result = check_contamination(CheckData.from_dataset(hubtools.load(path).dataset),
                                 ContaminationOptions(eval_sets=EVAL_SETS, include_replies=True))
    assert result.flagged == expected
    assert result.stats["flagged_by_set"] == {"mt_bench": 2, "alpaca_eval": 1}
    first = result.stats["matches"][0]
    # the planted text is the item's first turn: every 13-gram of it, part of the two-turn item
    words = len([w for w in _mt_bench_questions()[_long_mt_bench()[0]].split() if w.strip(string.punctuation)])
    assert first["benchmark"] == "mt_bench" and first["index"] == 10 and first["item"] == _long_mt_bench()[0]
    assert first["shared_ngrams"] == words - 12 and 0.5 < first["item_share"] < 1
    assert "mt_bench item" in result.reasons[10]


def test_replies_are_searched_only_when_asked(planted):
    path, _ = planted
    data = CheckData.from_dataset(hubtools.load(path).dataset)
    assert check_contamination(data, ContaminationOptions(eval_sets=EVAL_SETS)).flagged == [10, 50]


@pytest.mark.parametrize("name", ["llama_factory/alpaca_en_demo.json", "llama_factory/dpo_en_demo.json",
                                  "fastchat/dummy_conversation.json", "self_instruct/seed_tasks.jsonl"])
def test_clean_corpus_files_have_no_false_flags(name):
    data = CheckData.from_dataset(hubtools.load(CORPUS / name).dataset)
    options = ContaminationOptions(eval_sets=EVAL_SETS, include_replies=True)
    assert check_contamination(data, options).flagged == []


def test_twelve_shared_words_are_not_thirteen(tmp_path):
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november".split()
    evals = tmp_path / "eval.jsonl"
    evals.write_text(json.dumps({"question_id": 1, "category": "x", "turns": [" ".join(words)]}) + "\n")
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps({"instruction": t, "output": "ok"}) for t in [
        "x " + " ".join(words[:12]) + " y",      # 12 of them in a row: not contaminated
        "x " + " ".join(words[1:14]) + " y",     # 13: contaminated
    ]) + "\n")
    data = CheckData.from_dataset(hubtools.load(train).dataset)
    assert check_contamination(data, ContaminationOptions(eval_sets=[str(evals)])).flagged == [1]


def test_a_short_item_is_matched_whole(tmp_path):
    evals = tmp_path / "eval.jsonl"
    evals.write_text(json.dumps({"question_id": 1, "category": "x",
                                 "turns": ["What is the capital city of the Australian state Tasmania?"]}) + "\n")
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps({"instruction": t, "output": "ok"}) for t in [
        "Quiz: what is the capital city of the Australian state Tasmania? Think first.",
        "What is the capital city of the Australian state Victoria?",
    ]) + "\n")
    data = CheckData.from_dataset(hubtools.load(train).dataset)
    assert check_contamination(data, ContaminationOptions(eval_sets=[str(evals)])).flagged == [0]


def test_quarantined_evaluation_items_are_indexed_too():
    index = build_index([str(ALPACA_EVAL)])
    assert len(index) == 805  # 16 ties are quarantined by validation but are still benchmark questions


def test_without_evaluation_sets_the_check_says_how_to_run_it(planted):
    path, _ = planted
    result = check_contamination(CheckData.from_dataset(hubtools.load(path).dataset), ContaminationOptions())
    assert not result.applicable and "--eval-sets" in result.stats["skipped"]


def test_cli_check_and_filter_with_eval_sets(planted, tmp_path):
    path, expected = planted
    sets = ",".join(EVAL_SETS)
    runner = CliRunner()
    out = runner.invoke(app, ["check", str(path), "--out", str(tmp_path / "q"), "--checks", "contamination",
                              "--eval-sets", sets], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    quality = orjson.loads((tmp_path / "q" / "quality.json").read_bytes())
    assert quality["checks"]["contamination"]["flagged"] == [10, 50]  # prompts: the default
    assert "contamination" in (tmp_path / "q" / "dataset_quality_report.md").read_text()
    out = runner.invoke(app, ["filter", str(path), "--out", str(tmp_path / "clean"), "--drop", "contamination",
                              "--eval-sets", sets], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "198 kept + 2 removed" in out.output


def test_run_checks_with_eval_sets_only_when_named(planted):
    path, expected = planted
    options = {"contamination": {"eval_sets": EVAL_SETS, "include_replies": True}}
    quality = run_checks(path, checks=["contamination"], options=options)
    assert quality.results["contamination"].flagged == expected


def test_the_index_cache_follows_the_eval_files_content_not_their_name(tmp_path):
    """An evaluation file rewritten in place (same name, same size) is indexed again: the cache key
    is its content hash; an unchanged file reuses the index."""
    from hubtools.checks.contamination import content_hash, eval_index

    first = "Describe the water cycle of a temperate forest in exactly three short paragraphs please."
    second = "Explain the carbon cycle of a tropical ocean in exactly three short paragraphs, please!!"
    assert len(first) == len(second) and first != second
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"instruction": first, "input": "", "output": "x"}) + "\n")
    train = [{"instruction": first, "input": "", "output": "ok"}, {"instruction": second, "input": "", "output": "ok"}]
    data = CheckData.from_dataset(hubtools.load(_write(tmp_path / "train.json", train)).dataset)
    opts = ContaminationOptions(eval_sets=[f"bench={bench}"])
    before = content_hash(bench)
    assert check_contamination(data, opts).flagged == [0]
    assert eval_index(opts.eval_sets) is eval_index(opts.eval_sets)  # unchanged: the cached index
    size = bench.stat().st_size
    bench.write_text(json.dumps({"instruction": second, "input": "", "output": "x"}) + "\n")
    assert bench.stat().st_size == size and content_hash(bench) != before
    assert check_contamination(data, opts).flagged == [1]  # the new content, not the stale index
    folder = tmp_path / "sets"
    folder.mkdir()
    (folder / "a.jsonl").write_text(bench.read_text())
    digest = content_hash(folder)
    (folder / "a.jsonl").write_text(json.dumps({"instruction": first, "input": "", "output": "x"}) + "\n")
    assert content_hash(folder) != digest and content_hash("someone/a-hub-dataset") is None


def _write(path, records):
    path.write_text(json.dumps(records))
    return path
