"""The ``preference`` check: planted identical, near-identical, empty and mis-scored pairs among
real, different replies; the length bias of real preference files against the raw files;
not applicable to other kinds."""

from __future__ import annotations

import difflib
import gzip
import json
import re

import numpy as np
import pyarrow as pa
import pytest

from hubtools.checks import REGISTRY, run_checks
from hubtools.checks.preference import word_jaccard
from hubtools.load import load
from tests.fixtures.build import preference, sft, text, unpaired

CHECK = REGISTRY["preference"]


def _clean_pairs(corpus, n: int = 160) -> list[tuple[str, str, str]]:
    """Real pairs: text-davinci-003 vs alpaca-7b on the same instruction, kept only when the two
    replies are clearly different by an independent yardstick (difflib word ratio < 0.5)."""
    a = json.loads((corpus / "alpaca_eval/text_davinci_003_outputs.json").read_text(encoding="utf-8"))
    b = {r["instruction"]: r["output"] for r in
         json.loads((corpus / "alpaca_eval/alpaca-7b_outputs.json").read_text(encoding="utf-8"))}
    out = []
    for row in a:
        c, r = row["output"].strip(), b.get(row["instruction"], "").strip()
        if c and r and len(c.split()) >= 40 and len(c) < 2000 and len(r) < 2000 \
                and difflib.SequenceMatcher(None, c.lower().split(), r.lower().split()).ratio() < 0.5:
            out.append((row["instruction"], c, r))
        if len(out) == n:
            break
    return out


def test_word_jaccard_matches_python_sets():
    rng = np.random.default_rng(0)
    vocab = np.array(["a", "b", "c", "d", "E", "e,", "f!", "g", "h", "i"])
    a = [" ".join(rng.choice(vocab, rng.integers(0, 8))) for _ in range(500)]
    b = [" ".join(rng.choice(vocab, rng.integers(0, 8))) for _ in range(500)]

    def words(t: str) -> set[str]:
        return set(re.sub(r"[^\w\s]+", " ", t.lower()).split())

    expected = [len(words(x) & words(y)) / len(words(x) | words(y)) if words(x) | words(y) else 1.0
                for x, y in zip(a, b)]
    assert np.allclose(word_jaccard(pa.array(a), pa.array(b)), expected)


def test_planted_defects_recall_and_no_false_flags(corpus):
    pairs = _clean_pairs(corpus)
    assert len(pairs) == 160
    rows = [list(p) for p in pairs]
    scores = [(8.0, 5.0)] * len(rows)
    identical, near, empty_c, empty_r = range(0, 8), range(8, 16), range(16, 24), range(24, 32)
    low_margin = range(32, 40)
    for i in identical:
        rows[i][2] = "  " + rows[i][1].upper().replace(" ", "   ") + "\n"
    for i in near:  # one word changed in a reply of >= 40 words
        words = rows[i][1].split()
        words[len(words) // 2] = "zebra"
        rows[i][2] = " ".join(words)
    for i in empty_c:
        rows[i][1] = " \n "
    for i in empty_r:
        rows[i][2] = ""
    scores = [(4.0, 6.5) if i in low_margin[:4] else (5.0, 5.0) if i in low_margin else s
              for i, s in enumerate(scores)]
    result = CHECK.run(preference([tuple(r) for r in rows], scores))
    assert result.flagged == list(range(40))  # recall 1.0; none of the 120 clean pairs flagged
    stats = result.stats
    assert (stats["identical"], stats["near_identical"], stats["empty_chosen"], stats["empty_rejected"]) == (8, 8, 8, 8)
    assert result.reasons[0] == "chosen and rejected are identical"
    assert result.reasons[8].startswith("chosen and rejected near-identical (word Jaccard 0.9")
    assert result.reasons[16] == "chosen is empty" and result.reasons[24] == "rejected is empty"
    assert result.reasons[32] == "chosen not scored higher: 4 vs 6.5"
    assert result.reasons[39] == "chosen not scored higher: 5 vs 5"
    margin = stats["scores"]
    assert margin["pairs_with_scores"] == 160 and margin["low_margin"] == 8
    assert margin["margin"]["min"] == -2.5 and margin["margin"]["max"] == 3
    assert sum(margin["histogram"]["counts"]) == 160
    longer = sum(len(c.strip()) > len(r.strip()) for _, c, r in rows)
    assert stats["length_bias"]["chosen_longer"] == longer
    assert stats["length_bias"]["chosen_longer_share"] == round(longer / 160, 4)


def test_min_margin_and_near_options(corpus):
    pairs = _clean_pairs(corpus, 20)
    scores = [(5.0 + i / 10, 5.0) for i in range(20)]  # margins 0.0 .. 1.9
    opts = CHECK.make_options({"min_margin": 0.5, "near_threshold": 0.2})
    result = CHECK.run(preference(pairs, scores), opts)
    low = {i for i in range(20) if i / 10 <= 0.5 + 1e-9}
    jac = word_jaccard(pa.array([c for _, c, _ in pairs]), pa.array([r for _, _, r in pairs]))
    near = {i for i in range(20) if jac[i] >= 0.2}
    assert set(result.flagged) == low | near
    assert "score margin 0.3 <= 0.5" in result.reasons[3]


def test_without_scores_the_margin_is_not_reported():
    result = CHECK.run(preference([("q", "a good answer", "a bad reply")]))
    assert result.stats["scores"] is None and result.flagged == []


def test_dpo_demo_length_bias_equals_the_raw_file(corpus):
    path = corpus / "llama_factory/dpo_en_demo.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    c = np.array([len(r["chosen"]["value"].strip()) for r in raw])
    r = np.array([len(r["rejected"]["value"].strip()) for r in raw])
    bias = CHECK.run(load(path).dataset).stats["length_bias"]
    assert bias["chosen_longer"] == int((c > r).sum()) and bias["rejected_longer"] == int((c < r).sum())
    assert bias["chosen_longer_share"] == round(float((c > r).mean()), 4)
    assert bias["median_length_ratio"] == pytest.approx(np.median(c / r), abs=1e-4)


def _hh_final_reply(transcript: str) -> str:
    return transcript.rsplit("\n\nAssistant:", 1)[1].strip()


def test_hh_length_bias_equals_the_raw_file(corpus, tmp_path):
    """HH-RLHF pairs share the conversation and differ in the last reply. On the pairs where
    that holds and both last replies are non-empty, the rate computed from the raw transcripts
    and the check's rate are the same; the whole file differs by at most the other pairs."""
    path = corpus / "hh_rlhf/harmless_base_test.jsonl.gz"
    lines = [line for line in gzip.open(path, "rt", encoding="utf-8") if line.strip()]
    rows = [json.loads(line) for line in lines]

    def simple(row: dict) -> bool:
        c, r = row["chosen"], row["rejected"]
        return (c.rsplit("\n\nAssistant:", 1)[0] == r.rsplit("\n\nAssistant:", 1)[0]
                and bool(_hh_final_reply(c)) and bool(_hh_final_reply(r)))

    keep = [i for i, row in enumerate(rows) if simple(row)]
    longer = sum(len(_hh_final_reply(rows[i]["chosen"])) > len(_hh_final_reply(rows[i]["rejected"])) for i in keep)
    subset = tmp_path / "hh_simple.jsonl"
    subset.write_text("".join(lines[i] for i in keep), encoding="utf-8")
    stats = run_checks(subset, checks=["preference"]).results["preference"].stats
    assert stats["pairs"] == len(keep)
    assert stats["length_bias"]["chosen_longer"] == longer
    assert stats["length_bias"]["chosen_longer_share"] == round(longer / len(keep), 4)
    assert stats["length_bias"]["chosen_longer_share"] < 0.5  # harmless replies are the shorter ones

    whole = CHECK.run(load(path).dataset).stats
    assert abs(whole["length_bias"]["chosen_longer"] - longer) <= len(rows) - len(keep)


def test_hh_has_real_near_identical_pairs(corpus):
    """A few HH pairs differ only in punctuation ("You're welcome!" vs "You're welcome.")."""
    path = corpus / "hh_rlhf/harmless_base_test.jsonl.gz"
    result = CHECK.run(load(path).dataset)
    raw = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8") if line.strip()]
    same_words = [i for i, row in enumerate(raw)
                  if set(re.findall(r"\w+", _hh_final_reply(row["chosen"]).lower()))
                  == set(re.findall(r"\w+", _hh_final_reply(row["rejected"]).lower()))
                  and _hh_final_reply(row["chosen"]) and _hh_final_reply(row["chosen"]) != _hh_final_reply(row["rejected"])]
    assert same_words  # really there
    assert set(same_words) <= set(result.flagged)
    assert result.stats["near_identical"] >= len(same_words)


@pytest.mark.parametrize("dataset, kind", [
    (sft([("q", "a")]), "sft"), (unpaired([("q", "a", True)]), "unpaired"), (text(["t"]), "text")])
def test_not_applicable_to_other_kinds(dataset, kind):
    result = CHECK.run(dataset)
    assert result.applicable is False and result.flagged == []
    assert result.stats == {"skipped": f"does not apply to {kind} data"}
