"""The ``length_outliers`` check: planted empty/contentless/runaway fields, real runaway
generations in alpaca_eval outputs, statistics against an independent computation, every kind."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pyarrow as pa
import pytest

from hubtools.checks import REGISTRY
from hubtools.checks.length_outliers import LengthOptions, describe, log_histogram, word_counts
from hubtools.load import load
from tests.fixtures.build import preference, sft, text, unpaired

CHECK = REGISTRY["length_outliers"]


def _alpaca_pairs(corpus) -> list[tuple[str, str]]:
    rows = json.loads((corpus / "llama_factory/alpaca_en_demo.json").read_text(encoding="utf-8"))
    return [(r["instruction"] + ("\n\n" + r["input"] if r["input"] else ""), r["output"]) for r in rows]


class TestWordCounts:
    def test_matches_str_split_on_random_text(self):
        rng = np.random.default_rng(0)
        alphabet = np.array(list(" a\nbé\t语x  "))
        texts = ["".join(rng.choice(alphabet, rng.integers(0, 20))) for _ in range(3000)]
        arr = pa.array(texts)
        assert word_counts(arr).tolist() == [len(t.split()) for t in texts]
        # slices (non-zero offsets) and large_string
        assert word_counts(arr.slice(101, 900)).tolist() == [len(t.split()) for t in texts[101:1001]]
        large = pa.array(texts, pa.large_string()).slice(7, 50)
        assert word_counts(large).tolist() == [len(t.split()) for t in texts[7:57]]

    def test_all_empty_and_no_rows(self):
        assert word_counts(pa.array(["", "", " "])).tolist() == [0, 0, 0]
        assert word_counts(pa.array([], pa.string())).tolist() == []


def test_log_histogram_counts_every_value_once():
    values = np.array([0, 0, 1, 2, 5, 50, 500, 5000])
    hist = log_histogram(values, bins=10)
    assert sum(hist["counts"]) == len(values)
    assert hist["edges"][:2] == [0, 1] and hist["counts"][0] == 2  # the empty bin
    assert hist["edges"] == sorted(set(hist["edges"])) and hist["edges"][-1] > 5000


def test_planted_defects_recall_and_no_false_flags(corpus):
    pairs = _alpaca_pairs(corpus)
    rng = np.random.default_rng(1)
    planted = rng.choice(len(pairs), 40, replace=False)
    empty, blank, contentless, runaway, long_prompt = (set(planted[i:i + 8].tolist()) for i in range(0, 40, 8))
    rows = []
    for i, (p, r) in enumerate(pairs):
        if i in empty:
            r = ""
        elif i in blank:
            r = "  \n\t "
        elif i in contentless:
            r = ["...", "?", "-", "—", "!!!", "* * *", "…", "()"][len(rows) % 8]
        elif i in runaway:
            r = (r + " ") * (25_000 // max(len(r), 1) + 1)  # a looping generation, >= 25k chars
        elif i in long_prompt:
            p = (p + "\n") * (6_000 // len(p) + 1)  # a pasted-in document, >= 6k chars
        rows.append((p, r))
    result = CHECK.run(sft(rows))
    stats = result.stats["fields"]
    assert set(result.flagged) == set(planted.tolist())  # recall 1.0, no clean row flagged
    assert stats["response"]["empty"] == 16 and stats["response"]["contentless"] == 8
    assert stats["response"]["too_long"] == 8 and stats["prompt"]["too_long"] == 8
    assert stats["prompt"]["empty"] == stats["prompt"]["too_short"] == 0
    index = sorted(runaway)[0]
    assert result.reasons[index].startswith(f"response too long: {len(rows[index][1].strip()):,} chars (limit ")
    assert all(result.reasons[i] == "response empty" for i in empty | blank)
    assert all(result.reasons[i] == "response has no letter or digit" for i in contentless)
    # the limit is 4 x p95 of the field (not pulled up by the eight runaway replies)
    chars = np.array([len(r.strip()) for _, r in rows])
    assert stats["response"]["thresholds"]["max_chars"] == int(np.ceil(4 * np.quantile(chars[chars > 0], 0.95)))


def test_options_min_chars_and_fixed_max(corpus):
    pairs = _alpaca_pairs(corpus)[:200]
    opts = LengthOptions(min_chars={"prompt": 30}, max_chars={"response": 1500}, flag_contentless=False)
    result = CHECK.run(sft(pairs), opts)
    short = {i for i, (p, _) in enumerate(pairs) if 0 < len(p.strip()) < 30}
    long_ = {i for i, (_, r) in enumerate(pairs) if len(r.strip()) > 1500}
    assert short and long_
    assert set(result.flagged) == short | long_
    assert result.stats["fields"]["response"]["thresholds"]["max_rule"] == "fixed (max_chars)"
    assert result.options["max_chars"] == {"response": 1500}


def test_statistics_match_an_independent_computation(corpus):
    loaded = load(corpus / "llama_factory/alpaca_en_demo.json")
    result = CHECK.run(loaded.dataset)
    raw = json.loads((corpus / "llama_factory/alpaca_en_demo.json").read_text(encoding="utf-8"))
    chars = np.array([len(r["output"].strip()) for r in raw])
    words = np.array([len(r["output"].split()) for r in raw])
    stats = result.stats["fields"]["response"]
    assert stats["chars"]["count"] == len(raw) == loaded.valid
    assert stats["chars"]["median"] == pytest.approx(np.median(chars))
    assert stats["chars"]["max"] == chars.max() and stats["chars"]["min"] == chars.min()
    assert stats["words"]["p95"] == pytest.approx(np.percentile(words, 95))
    assert stats["words"]["mean"] == pytest.approx(words.mean(), abs=1e-3)
    assert sum(stats["histogram"]["chars"]["counts"]) == len(raw)
    assert describe(chars)["p5"] == stats["chars"]["p5"]
    # a clean, curated demo file: nothing is far too long or empty
    assert result.count == 0


def test_real_runaway_generations_in_falcon_outputs(corpus):
    """falcon-7b-instruct's alpaca_eval outputs hold replies that loop until the token limit;
    the flagged ones are exactly such loops (they compress >= 5x; a normal reply ~2x)."""
    path = corpus / "alpaca_eval/falcon-7b-instruct_outputs.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    result = CHECK.run(load(path).dataset)
    too_long = [i for i, r in result.reasons.items() if "response too long" in r]

    def ratio(t: str) -> float:
        return len(t.encode()) / len(zlib.compress(t.encode()))

    assert len(too_long) >= 4
    assert all(ratio(raw[i]["output"]) >= 5 for i in too_long)
    assert np.median([ratio(r["output"]) for r in raw if len(r["output"]) > 300]) < 2.5


@pytest.mark.parametrize("dataset, names", [
    (sft([("hi", "hello")]), {"prompt", "response"}),
    (preference([("q", "a", "b")]), {"prompt", "chosen", "rejected"}),
    (unpaired([("q", "a", True)]), {"prompt", "response"}),
    (text(["short", "a longer text that is certainly long enough"]), {"text"}),
])
def test_runs_on_every_kind(dataset, names):
    result = CHECK.run(dataset)
    assert result.applicable and set(result.stats["fields"]) == names
    if names == {"text"}:  # raw text needs 20 characters
        assert result.flagged == [0] and result.reasons[0] == "text too short: 5 chars (minimum 20)"
    else:
        assert result.flagged == []


def test_my_checks_give_the_same_results_in_worker_processes(corpus):
    """More than one batch (20k rows) so CheckData.map really uses spawned workers."""
    from hubtools.checks import run_checks

    pairs = _alpaca_pairs(corpus)
    rows = [(p, r, pairs[(i + 7) % len(pairs)][1]) for i, (p, r) in
            enumerate(pairs[i % len(pairs)] for i in range(20_500))]
    rows[20_100] = (rows[20_100][0], "", "x")
    dataset = preference(rows)
    names = ["length_outliers", "categories", "diversity", "preference"]
    one = run_checks(dataset, checks=names, num_proc=1)
    two = run_checks(dataset, checks=names, num_proc=2)
    for name in names:
        assert two.results[name].to_dict() == one.results[name].to_dict(), name
    assert 20_100 in one.results["length_outliers"].flagged and 20_100 in one.results["preference"].flagged
