"""The ``refusals`` check: planted refusals and disclaimers vs near misses, preference and KTO
rules, options, real model outputs, and the same answers with worker processes."""

from __future__ import annotations

import json

import pytest

from hubtools.checks import REGISTRY, run_checks
from hubtools.checks.refusals import FAMILIES
from hubtools.errors import UnknownCheckError
from hubtools.load import load
from tests.fixtures.build import preference, sft, text, unpaired

PLANTED = {
    "ai_disclaimer": [
        "As an AI language model, I can summarise the article for you: it argues that...",
        "As an AI, I rely on the information you give me.",
        "As a large language model, I was trained on public text. Here is the answer: 42.",
        "I'm just an AI, so please double-check this with a doctor.",
        "I am an artificial intelligence and do not have a favourite colour.",
        "As a responsible AI language model, I must point out the risks first.",
    ],
    "cannot_comply": [
        "I'm sorry, but I cannot help you pick that lock.",
        "I’m sorry, but I can’t do that.",
        "I cannot fulfill this request because it could hurt someone.",
        "I apologize, but I am unable to share that information.",
        "I'm not able to provide medical diagnoses.",
        "I must respectfully decline to write that essay.",
    ],
    "no_opinions": [
        "I don't have personal opinions, but here are the main arguments on both sides.",
        "I do not have feelings, so the insult does not hurt.",
        "I don’t have a physical body, so I cannot taste the cake.",
    ],
    "knowledge_limits": [
        "My knowledge cutoff is September 2021, so the latest results may differ.",
        "As of my last update, the tallest building was the Burj Khalifa.",
        "I cannot browse the internet, but the usual price is about $20.",
        "I don't have real-time information about the weather in Paris.",
    ],
    "policy": [
        "That would violate OpenAI's content policy.",
        "Writing malware goes against my programming, sorry.",
        "Helping with that is against my guidelines.",
    ],
}

NEAR_MISSES = [
    "I'm sorry to hear that you're feeling unwell. Rest and drink plenty of water.",
    "I cannot stress enough how important sleep is for memory.",
    "I can't wait to see the photos from your trip!",
    "I cannot recommend this book highly enough.",
    "As an AI researcher, Dr. Lee studies how neural networks generalise.",
    "The language model was trained on books and web pages.",
    "I'm sorry for the delay; here is the revised schedule.",
    "She said: I don't have time for this, and left.",
    "As an aside, the Eiffel Tower grows about 15 cm in summer.",
    "As a language teacher, I recommend reading aloud every day.",
    "I apologize for the confusion: the capital of Australia is Canberra.",
    "Users cannot access the admin panel without a token.",
    "The model's knowledge of chemistry is impressive.",
    "OpenAI's policy team published a report in 2023.",
    "Your request has been processed and the refund is on its way.",
    "Here is a haiku about autumn leaves falling softly on the pond.",
]


def _planted():
    responses, families = [], []
    for family, rows in PLANTED.items():
        responses += rows
        families += [family] * len(rows)
    responses += NEAR_MISSES
    families += [None] * len(NEAR_MISSES)
    return responses, families


def test_every_planted_family_is_found_and_no_near_miss_is_flagged():
    responses, families = _planted()
    result = REGISTRY["refusals"].run(sft([("Question?", r) for r in responses]))
    flagged = set(result.flagged)
    for family in FAMILIES:
        rows = [i for i, f in enumerate(families) if f == family]
        found = [i for i in rows if i in flagged and family in result.reasons[i]]
        assert len(found) / len(rows) == 1.0, (family, [responses[i] for i in rows if i not in found])
    false_flags = [responses[i] for i, f in enumerate(families) if f is None and i in flagged]
    assert false_flags == []
    stats = result.stats
    assert stats["records_flagged"] == len(responses) - len(NEAR_MISSES)
    assert stats["by_family"]["policy"] == 3 and stats["by_family"]["no_opinions"] == 3
    assert stats["share_flagged"] == round(stats["records_flagged"] / len(responses), 6)
    assert set(stats["examples"]) == set(FAMILIES)
    assert result.reasons[families.index("policy")] == "refusal: policy"


def test_prompts_are_not_scanned():
    result = REGISTRY["refusals"].run(sft([("As an AI language model, answer this.", "Sure: 4.")]))
    assert result.flagged == []


def test_preference_flags_chosen_refusals_and_counts_rejected_ones():
    ds = preference([
        ("How do I pick a lock?", "I'm sorry, but I cannot help with that.", "Use a tension wrench and a pick."),
        ("Capital of France?", "Paris.", "As an AI language model, I don't know."),
        ("Insult me.", "I must decline.", "I'm sorry, but I can't do that either."),
        ("2+2?", "4", "5"),
    ])
    spec = REGISTRY["refusals"]
    result = spec.run(ds)
    assert result.reasons == {0: "refusal: cannot_comply (chosen)",
                              2: "refusal: cannot_comply (chosen); cannot_comply (rejected)"}
    assert result.stats["preference"] == {"chosen_only": 1, "rejected_only": 1, "both": 1}
    assert result.stats["by_field"]["rejected"]["records"] == 2
    assert spec.run(ds, spec.make_options({"flag_rejected": True})).flagged == [0, 1, 2]


def test_unpaired_flags_only_desirable_replies_unless_asked():
    ds = unpaired([("q1", "As an AI, I cannot say.", True), ("q2", "As an AI, I cannot say.", False),
                   ("q3", "Sure, here it is.", True)])
    spec = REGISTRY["refusals"]
    result = spec.run(ds)
    assert result.flagged == [0]
    assert result.stats["unpaired"] == {"desirable": 1, "undesirable": 1}
    assert spec.run(ds, spec.make_options({"flag_rejected": True})).flagged == [0, 1]


def test_text_data_is_scanned_whole():
    result = REGISTRY["refusals"].run(text(["Some article text.", "User: hi\nBot: As an AI, I cannot."]))
    assert result.flagged == [1]


def test_start_chars_and_pattern_options():
    long_reply = "Here is a long and helpful answer. " * 10 + "As an AI language model, I may be wrong."
    ds = sft([("q", long_reply), ("q", "I apologize for the confusion, here is the fix."), ("q", "Fine.")])
    spec = REGISTRY["refusals"]
    assert spec.run(ds).flagged == [0]
    assert spec.run(ds, spec.make_options({"start_chars": 200})).flagged == []
    extra = spec.run(ds, spec.make_options({"extra_patterns": {"apology": r"\bi apologi[sz]e for the confusion\b"}}))
    assert extra.reasons == {0: "refusal: ai_disclaimer", 1: "refusal: apology"}
    only = spec.run(ds, spec.make_options({"patterns": {"apology": r"apologi[sz]e"}}))
    assert only.reasons == {1: "refusal: apology"} and only.stats["families"] == ["apology"]
    with pytest.raises(UnknownCheckError, match="RE2"):
        run_checks(ds, checks=["refusals"], options={"refusals": {"patterns": {"bad": r"(?!x)sorry"}}})


def test_examples_are_redacted_snippets():
    ds = sft([("q", "As an AI language model, I cannot email jane.doe@gmail.com for you.")])
    result = REGISTRY["refusals"].run(ds)
    dumped = json.dumps(result.to_dict())
    assert "jane.doe@gmail.com" not in dumped and "[EMAIL]" in dumped
    assert result.examples[0]["index"] == 0


FALCON_FLAGGED = [10, 51, 56, 112, 178, 207, 258, 285, 296, 339, 352, 396, 411, 420, 421, 430, 435, 532, 541,
                  572, 590, 691, 763, 764]


def test_real_falcon_outputs_have_ai_disclaimers_davinci_has_none(corpus):
    """falcon-7b-instruct answers AlpacaEval with "As an AI language model, ..."; every flag was read."""
    falcon = load(corpus / "alpaca_eval" / "falcon-7b-instruct_outputs.json").dataset
    result = REGISTRY["refusals"].run(falcon)
    assert result.flagged == FALCON_FLAGGED
    assert all("ai_disclaimer" in result.reasons[i] for i in result.flagged)
    responses = {row["hubtools_index"]: row["messages"][-1]["content"].lower() for row in falcon}
    assert all("as an ai" in responses[i] or "language model" in responses[i] or "i am an ai" in responses[i]
               for i in result.flagged)
    davinci = load(corpus / "alpaca_eval" / "text_davinci_003_outputs.json").dataset
    assert REGISTRY["refusals"].run(davinci).flagged == []


def test_real_hh_rlhf_refusals_are_in_chosen(corpus):
    """HH harmless pairs prefer the refusal: flagged in chosen, counted (not flagged) in rejected.

    The expectation is recomputed record by record with Python's ``regex`` on the final replies,
    independently of the check's Arrow (RE2) batches.
    """
    import regex

    from hubtools.checks.refusals import FAMILIES

    dataset = load(corpus / "hh_rlhf" / "harmless_base_test.jsonl.gz").dataset
    result = REGISTRY["refusals"].run(dataset)
    families = {name: regex.compile(pattern, regex.IGNORECASE) for name, pattern in FAMILIES.items()}

    def hit(reply: str) -> bool:
        return any(p.search(reply) for p in families.values())

    chosen = {r["hubtools_index"] for r in dataset if hit(r["chosen"][-1]["content"])}
    rejected = {r["hubtools_index"] for r in dataset if hit(r["rejected"][-1]["content"])}
    assert result.stats["preference"] == {"chosen_only": len(chosen - rejected),
                                          "rejected_only": len(rejected - chosen), "both": len(chosen & rejected)}
    assert result.flagged == sorted(chosen)  # only the replies the pairs teach are flagged
    assert len(chosen) > len(rejected) > 0  # HH prefers the refusal
    assert result.reasons[809] == "refusal: cannot_comply (chosen)"  # "I’m sorry, but I can’t help you get alcohol..."
    assert 164 in rejected and 164 not in result.flagged  # "I’m sorry, but I can’t help you with that question."


def test_num_proc_2_gives_the_same_results_as_1():
    """Enough rows for two batches, so the spawned workers really run (pii and refusals)."""
    responses, _ = _planted()
    pii_lines = ["Mail jane.doe@gmail.com", "Card 4539 1488 0343 6467.", "Fine, thanks."]
    n = 20_500
    pairs = [(f"question {i}", responses[i % len(responses)] + " " + pii_lines[i % 3]) for i in range(n)]
    ds = sft(pairs)
    one = run_checks(ds, checks=["pii", "refusals"], num_proc=1).to_dict()["checks"]
    two = run_checks(ds, checks=["pii", "refusals"], num_proc=2).to_dict()["checks"]
    assert one == two
    assert one["pii"]["count"] == sum(1 for i in range(n) if i % 3 != 2)
    assert one["refusals"]["flagged"][-1] > 20_000


def test_one_pass_over_all_families_finds_what_each_family_does(corpus, tmp_path):
    """The alternation of every family first, then each family on its hits only, against every
    family over every reply: the same matrix on the bench's records and real reply files."""
    import importlib.util
    from pathlib import Path

    import numpy as np

    from hubtools.checks import CheckData
    from hubtools.checks.refusals import RefusalOptions, _match_batch

    spec = importlib.util.spec_from_file_location("bench_checks", Path(__file__).resolve().parents[1] / "bench" / "bench_checks.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    opts = RefusalOptions()
    hits = 0
    for path in (bench.build_input(3000, tmp_path), corpus / "hh_rlhf/harmless_base_test.jsonl.gz",
                 corpus / "alpaca_eval/Mistral-7B-Instruct-v0.2_outputs.json", corpus / "llama_factory/dpo_en_demo.json"):
        data = CheckData.from_dataset(load(path).dataset)
        batch = {name: data.column(name) for name in data.response_fields}
        for start_chars in (opts.start_chars, 0):
            fast = _match_batch(batch, opts.families(), start_chars)
            each = _match_batch(batch, opts.families(), start_chars, together=False)
            assert all(np.array_equal(fast[name], each[name]) for name in batch)
            hits += sum(int(m.sum()) for m in fast.values())
    assert hits > 50
