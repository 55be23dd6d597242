"""The ``diversity`` check: distinct-n, openings, opening-word entropy, template keys, and
flags for over-used templates (planted in real Alpaca prompts), on every kind."""

from __future__ import annotations

import json
import math
import re
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from hubtools.checks import REGISTRY
from hubtools.checks.diversity import distinct_n, group_ranks, template_keys
from tests.fixtures.build import preference, sft, text, unpaired

CHECK = REGISTRY["diversity"]

COUNTRIES = ["France", "Peru", "Japan", "Kenya", "Chile", "Norway", "Egypt", "India", "Brazil", "Canada",
             "Mexico", "Spain", "Italy", "Greece", "Turkey", "Poland", "Sweden", "Finland", "Ireland", "Portugal",
             "Austria", "Hungary", "Romania", "Bulgaria", "Serbia", "Croatia", "Morocco", "Nigeria", "Ghana",
             "Ethiopia", "Vietnam", "Thailand", "Malaysia", "Indonesia", "Australia", "Argentina", "Colombia",
             "Bolivia", "Ecuador", "Uruguay", "Paraguay", "Cuba", "Jamaica", "Iceland", "Denmark", "Belgium",
             "Netherlands", "Switzerland", "Germany", "Ukraine", "Latvia", "Lithuania", "Estonia", "Nepal",
             "Mongolia", "Laos", "Cambodia", "Bhutan", "Oman", "Qatar", "New Zealand", "South Africa"]


def _alpaca_prompts(corpus) -> list[str]:
    rows = json.loads((corpus / "llama_factory/alpaca_en_demo.json").read_text(encoding="utf-8"))
    return [r["instruction"] + ("\n\n" + r["input"] if r["input"] else "") for r in rows]


def test_distinct_n_exact():
    result = distinct_n(pa.array(["The cat, the CAT!", "the dog"]))
    # unigrams: the cat the cat | the dog -> 3 unique of 6; bigrams: the-cat cat-the the-cat | the-dog
    assert result == {"distinct_1": 0.5, "distinct_2": 0.75, "tokens": 6, "bigrams": 4}
    assert distinct_n(pa.array(["", "  "]))["tokens"] == 0


def test_template_keys_mask_numbers_quotes_and_names():
    keys = template_keys(pa.array([
        "What is the capital of France?",
        "What is the capital of New Zealand?",
        'Translate "good morning" into Spanish.',
        'Translate "see you tomorrow" into Spanish.',
        "Add 12 and 15.",
        "Add 3.5 and 100.",
        "Summarize this article for me please. " + "Lorem ipsum dolor sit amet. " * 20 + "Thanks a lot in advance!",
        "Summarize this article for me please. " + "Other words entirely here. " * 30 + "Thanks a lot in advance!",
    ])).to_pylist()
    assert keys[0] == keys[1] == "what is the capital of <name>?"
    assert keys[2] == keys[3] == "translate <q> into <name>."
    assert keys[4] == keys[5] == "add 0 and 0."
    assert keys[6] == keys[7] == "summarize this article for me … thanks a lot in advance!"


def test_template_keys_shortcuts_give_the_plain_formulas_keys(corpus):
    """template_keys masks a text's tail only when it is longer than the 300-character head,
    runs the quote mask without its {0,300} bound (no quote in a 300-character slice is longer)
    and builds only the key each row needs: the same keys as masking head and tail in full and
    choosing, on real prompts and replies and on quotes, names and numbers at the 300 edge."""
    import pyarrow.compute as pc

    from hubtools.checks import diversity as div
    from hubtools.checks.length_outliers import word_counts

    def plain_mask(arr):
        arr = pc.replace_substring_regex(arr, div._QUOTED, "<q>")
        arr = pc.replace_substring_regex(arr, div._NAME_RUN, r"\1\2<name>")
        return pc.replace_substring_regex(pc.utf8_lower(arr), div._NUMBER, "0")

    def plain_keys(arr, words=5):
        head = plain_mask(pc.utf8_slice_codeunits(arr, 0, 300))
        tail = plain_mask(pc.utf8_slice_codeunits(arr, -300, 2**31 - 1))
        split = pc.binary_join_element_wise(div._first_words(head, words),
                                            pc.utf8_reverse(div._first_words(pc.utf8_reverse(tail), words)), " … ")
        return pc.if_else(pa.array(word_counts(arr) > 2 * words), split, div._first_words(head, 2 * words))

    rows = json.loads((corpus / "llama_factory/alpaca_en_demo.json").read_text(encoding="utf-8"))
    texts = [r["instruction"] + "\n" + r["input"] for r in rows] + [r["output"] for r in rows]
    texts += ['"' + "a" * 298 + '"', '"' + "a" * 299 + '"', "x " * 140 + '"Tail Quote" at 12.5', "“" + "b " * 150 + "”",
              'He said "hello" to Bob Smith 3 times', "", "   ", "one two three four five six seven eight nine ten"]
    values = pa.array(texts, pa.string())
    assert pc.sum(pc.greater(pc.utf8_length(values), 300)).as_py() > 300  # both paths well used
    assert template_keys(values).equals(plain_keys(values))
    assert template_keys(values, 2).equals(plain_keys(values, 2))


def test_group_ranks_against_a_loop():
    codes = np.random.default_rng(0).integers(0, 7, 500)
    counts, rank, first = group_ranks(codes, 9)
    seen: Counter = Counter()
    for pos, c in enumerate(codes):
        assert rank[pos] == seen[c]
        seen[c] += 1
    assert counts.tolist() == [seen[g] for g in range(9)]
    assert first.tolist() == [int(np.flatnonzero(codes == g)[0]) if seen[g] else -1 for g in range(9)]


def test_planted_template_is_flagged_beyond_the_cap(corpus):
    prompts = _alpaca_prompts(corpus)
    planted = [f"What is the capital of {c}?" for c in COUNTRIES]
    rows = prompts[:500] + planted + prompts[500:]
    result = CHECK.run(sft([(p, "answer") for p in rows]))
    n = len(rows)
    cap = max(20, int(0.02 * n))
    planted_idx = list(range(500, 500 + len(planted)))
    assert result.flagged == planted_idx[cap:]  # recall 1.0 beyond the cap; no Alpaca prompt flagged
    templates = result.stats["templates"]
    top = templates["top"][0]
    assert top == {"template": "what is the capital of <name>?", "count": len(planted),
                   "share": round(len(planted) / n, 4), "first_index": 500, "example": planted[0], "over_used": True}
    assert templates["over_used"] == 1 and templates["cap"] == cap
    assert result.reasons[planted_idx[-1]] == (
        f"over-used template ({len(planted)} prompts = {len(planted) / n:.1%}, cap {cap}): "
        "what is the capital of <name>?")


def test_keep_option_and_share_threshold():
    rows = [f"Tell me a fact about the number {i}." for i in range(30)] + [f"unique prompt {w}" for w in
                                                                           "abcdefghijklmnopqrstuvwxyz"]
    opts = CHECK.make_options({"max_template_share": 0.1, "min_template_count": 5, "keep": 1})
    result = CHECK.run(sft([(p, "ok") for p in rows]), opts)
    assert result.stats["templates"]["cap"] == 5
    assert result.flagged == list(range(1, 30))  # all but the first member of the 30-strong template
    assert result.stats["templates"]["over_used"] == 1 and result.stats["templates"]["unique"] == 27


def test_openings_and_opening_word_entropy():
    rows = (["Write a poem about the sea."] * 4 + ["Please write a story about a dog."] * 2
            + ["Can you explain gravity?"] * 2 + ["List three fruits."] * 2 + ["Why is grass green?"] * 2)
    stats = CHECK.run(sft([(p, "ok") for p in rows])).stats
    openings = stats["openings"]
    assert openings["top"][0] == {"opening": "write a poem", "count": 4, "share": round(4 / 12, 4)}
    assert openings["top_share"] == round(4 / 12, 4) and openings["top10_share"] == 1.0
    words = stats["opening_words"]
    assert {w["word"]: w["count"] for w in words["top"]} == {"write": 6, "explain": 2, "list": 2, "why": 2}
    p = np.array([6, 2, 2, 2]) / 12
    assert words["entropy_bits"] == pytest.approx(-(p * np.log2(p)).sum(), abs=1e-4)
    assert words["normalized_entropy"] == pytest.approx(words["entropy_bits"] / 2, abs=1e-4)


def test_real_alpaca_prompts_statistics_match_independent_counts(corpus):
    prompts = _alpaca_prompts(corpus)
    result = CHECK.run(sft([(p, "ok") for p in prompts]))
    stats = result.stats
    assert result.flagged == []  # a varied, hand-curated demo file
    openings = Counter(" ".join(re.sub(r"[^\w\s]+|_", " ", p.lower()).split()[:3]) for p in prompts)
    (top, count), = openings.most_common(1)
    assert stats["openings"]["top"][0] == {"opening": top, "count": count, "share": round(count / len(prompts), 4)}
    words = [w for p in prompts for w in re.sub(r"[^\w\s]+|_", " ", p.lower()).split()]
    assert stats["distinct_1"] == round(len(set(words)) / len(words), 4)
    assert stats["sample"]["prompts"] == len(prompts) and stats["sample"]["tokens"] == len(words)
    assert 0.5 < stats["opening_words"]["normalized_entropy"] < 1
    assert math.isclose(sum(o["share"] for o in stats["openings"]["top"][:10]), stats["openings"]["top10_share"],
                        abs_tol=2e-3)


def test_sample_is_bounded_and_seeded():
    rows = [f"prompt number {i} about topic {i % 97}" for i in range(300)]
    opts = CHECK.make_options({"sample_size": 100})
    a = CHECK.run(text(rows), opts).stats
    b = CHECK.run(text(rows), opts).stats
    assert a["sample"]["prompts"] == 100 and a["distinct_2"] == b["distinct_2"]
    assert a["field"] == "text"


@pytest.mark.parametrize("dataset", [
    sft([("Write a poem.", "ok"), ("", "empty prompt")]),
    preference([("Pick one.", "a", "b")]),
    unpaired([("Rate this.", "fine", False)]),
    text(["raw text", ""]),
])
def test_runs_on_every_kind(dataset):
    result = CHECK.run(dataset)
    assert result.applicable and result.flagged == []
    assert result.stats["prompts"] == len(dataset)
    json.dumps(result.to_dict())  # JSON-serialisable as quality.json needs
