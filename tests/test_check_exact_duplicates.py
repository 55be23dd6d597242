"""The ``exact_duplicates`` check: planted case/whitespace variants vs near misses, prompt-only
repeats, every kind, and the real demo files recounted with plain Python."""

from __future__ import annotations

import json

import pytest

from hubtools.checks import REGISTRY, run_checks
from hubtools.load import load
from tests.fixtures.build import preference, sft, text, unpaired

SPEC = REGISTRY["exact_duplicates"]

BASES = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Name three primary colours.", "Red, yellow and blue."),
    ("Translate 'good morning' into Spanish.", "Buenos días."),
    ("Write a haiku about the sea.",
     "Waves fold into foam\nsalt wind combs the silver dunes\ngulls stitch sky to shore"),
    ("Give me a synonym for happy.", "Joyful."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("Explain photosynthesis in one sentence.", "Plants turn light, water and CO2 into sugar and oxygen."),
    ("What is 12 times 12?", "144"),
    ("Suggest a name for a bakery.", "Rise & Shine Bakehouse."),
    ("Who wrote Pride and Prejudice?", "Jane Austen wrote Pride and Prejudice in 1813."),
]

#: base index -> variants that differ from it only in case and whitespace
VARIANTS = {
    0: [("what is the capital of france?", "the capital of france is paris."),
        ("  WHAT IS THE CAPITAL OF FRANCE?  ", "THE CAPITAL OF FRANCE IS PARIS.\n"),
        ("What  is\tthe capital\nof France?", "The capital of France\u00a0is Paris.")],
    3: [("write a HAIKU about the sea.",
         "waves fold into foam salt wind combs the silver dunes gulls stitch sky to shore"),
        ("Write a haiku about the sea.\r\n",
         "Waves fold into foam\n\n\tsalt wind combs the silver dunes\u2003gulls stitch sky to shore")],
    5: [("How many legs does a spider have?", "A SPIDER HAS EIGHT LEGS.")],
    7: [("What is 12 times 12?", "  144  ")],
    9: [("who wrote pride and prejudice?", "jane austen wrote pride and prejudice in 1813."),
        ("Who  wrote  Pride  and  Prejudice?", "Jane Austen wrote Pride and Prejudice in 1813.")],
}

#: like a base record but not the same text: must never be flagged
NEAR_MISSES = [
    ("What is the capital of France?!", "The capital of France is Paris."),   # prompt punctuation
    ("What is the capital of France?", "The capital of France is Paris!"),   # reply punctuation
    ("Name three primary colors.", "Red, yellow and blue."),                 # one letter
    ("Give me a synonym for sad.", "Joyful."),                               # one word
    ("What is 12 times 12?", "1 44"),                                        # a space inside a word
    ("How many legs does a", "spider have? A spider has eight legs."),     # text slid across fields
    ("Whatis the capital of France?", "The capital of France is Paris."),    # a space removed
    ("What is 12 times 12?1", "44"),                                         # a digit moved across fields
]


def _planted():
    """Bases, then their variants (with the base they copy), then near misses."""
    pairs = list(BASES)
    copy_of: dict[int, int] = {}
    for base, variants in VARIANTS.items():
        for variant in variants:
            copy_of[len(pairs)] = base
            pairs.append(variant)
    near = list(range(len(pairs), len(pairs) + len(NEAR_MISSES)))
    pairs += NEAR_MISSES
    return pairs, copy_of, near


@pytest.fixture(scope="module")
def planted():
    """Whole-example duplicates only (prompt-only repeats are tested below)."""
    pairs, copy_of, near = _planted()
    return SPEC.run(sft(pairs), SPEC.make_options({"flag_same_prompt": False})), copy_of, near


def test_every_case_and_whitespace_variant_is_flagged_as_a_copy_of_the_first(planted):
    result, copy_of, _ = planted
    found = [i for i, base in copy_of.items() if result.reasons.get(i) == f"duplicate of #{base}"]
    recall = len(found) / len(copy_of)
    assert recall == 1.0, sorted(set(copy_of) - set(found))
    assert not set(VARIANTS) & set(result.flagged)  # the first member is kept
    assert result.stats["duplicates"] == len(copy_of) == 9
    assert result.stats["groups"] == len(VARIANTS)


def test_distinct_records_and_near_misses_are_never_flagged(planted):
    result, copy_of, near = planted
    distinct = [i for i in range(len(BASES)) if i not in VARIANTS] + near
    false_flags = {i: result.reasons[i] for i in distinct if i in result.flagged}
    assert false_flags == {}
    assert result.flagged == sorted(copy_of)  # and nothing else either
    # by default (sft) a near miss with the very same prompt is flagged, as a prompt repeat only
    pairs, _, _ = _planted()
    default = SPEC.run(sft(pairs))
    assert {i: default.reasons[i] for i in near if i in default.flagged} == {
        near[1]: "same prompt as #0, different reply", near[4]: "same prompt as #7, different reply"}


def test_groups_are_reported_biggest_first_with_their_members(planted):
    result, copy_of, _ = planted
    expected = sorted(([base] + [i for i, b in copy_of.items() if b == base] for base in VARIANTS),
                      key=lambda members: (-len(members), members[0]))
    groups = result.stats["largest_groups"]
    assert [g["indices"] for g in groups] == expected[:5]
    assert [g["size"] for g in groups] == [4, 3, 3, 2, 2]
    assert [g["first"] for g in groups] == [0, 3, 9, 5, 7]
    assert groups[0]["text"] == "What is the capital of France? | The capital of France is Paris."


def test_prompt_only_repeats_are_reported_separately_and_flagged_for_sft():
    ds = sft([("Tell me a joke.", "Why did the chicken cross the road?"),
              ("tell me a JOKE.", "Knock knock."),
              ("Tell me a joke.", "Why did the chicken cross the road?"),
              ("Tell me a joke.", "I only know puns."),
              ("Tell me a story.", "Once upon a time...")])
    result = SPEC.run(ds)
    assert result.reasons == {1: "same prompt as #0, different reply", 2: "duplicate of #0",
                              3: "same prompt as #0, different reply"}
    stats = result.stats
    assert (stats["duplicates"], stats["same_prompt"], stats["same_prompt_different_reply"]) == (1, 3, 2)
    assert stats["prompt_groups"] == 1
    assert stats["largest_prompt_groups"][0]["indices"] == [0, 1, 2, 3]
    assert stats["largest_prompt_groups"][0]["distinct_examples"] == 3
    assert stats["largest_groups"][0]["indices"] == [0, 2]
    quiet = SPEC.run(ds, SPEC.make_options({"flag_same_prompt": False}))
    assert quiet.reasons == {2: "duplicate of #0"}
    assert quiet.stats["same_prompt_different_reply"] == 2


def test_preference_prompt_repeats_are_counted_not_flagged_unless_asked():
    ds = preference([("Capital of France?", "Paris.", "Lyon."),
                     ("capital of france?", "Paris, on the Seine.", "Marseille."),
                     ("CAPITAL OF FRANCE?", " paris. ", "LYON."),
                     ("Capital of Spain?", "Madrid.", "Lyon.")])
    result = SPEC.run(ds)
    assert result.reasons == {2: "duplicate of #0"}
    assert result.stats["same_prompt_different_reply"] == 1
    assert result.stats["largest_prompt_groups"][0]["indices"] == [0, 1, 2]
    asked = SPEC.run(ds, SPEC.make_options({"flag_same_prompt": True}))
    assert asked.reasons == {1: "same prompt as #0, different reply", 2: "duplicate of #0"}


@pytest.mark.parametrize("dataset, expected", [
    (sft([("Hi there", "Hello!"), ("hi  THERE", "hello!"), ("Hi there", "Hello?")]),
     {1: "duplicate of #0", 2: "same prompt as #0, different reply"}),
    (preference([("q", "good", "bad"), ("Q ", "GOOD", " bad"), ("q", "good", "worse"), ("q", "bad", "good")]),
     {1: "duplicate of #0"}),
    (unpaired([("q", "An answer.", True), ("Q", "an   answer.", True), ("q", "Another answer.", True)]),
     {1: "duplicate of #0"}),
    (text(["Some article text.", "some\narticle\ttext.", "Some article text!", "  SOME ARTICLE TEXT.  "]),
     {1: "duplicate of #0", 3: "duplicate of #0"}),
], ids=["sft", "preference", "unpaired", "text"])
def test_every_kind_is_checked(dataset, expected):
    result = SPEC.run(dataset)
    assert result.applicable
    assert result.reasons == expected


def test_text_data_has_no_separate_prompt_key():
    result = SPEC.run(text(["one", "ONE", "two"]))
    assert result.stats["prompt_checked"] is False
    assert result.stats["same_prompt"] == 0


def _norm(value: str) -> str:
    """Plain-Python normalisation: lower case, whitespace runs to one space, ends stripped."""
    return " ".join(value.lower().split())


def _first_of(keys: list) -> dict[int, int]:
    """Index -> index of the first earlier record with the same key (repeats only)."""
    seen: dict = {}
    out = {}
    for i, key in enumerate(keys):
        if key in seen:
            out[i] = seen[key]
        else:
            seen[key] = i
    return out


def test_real_dpo_demo_duplicates_match_a_plain_python_recount(corpus):
    path = corpus / "llama_factory" / "dpo_en_demo.json"
    raw = json.loads(path.read_text())
    keys = [(tuple(_norm(turn["value"]) for turn in row["conversations"]),
             _norm(row["chosen"]["value"]), _norm(row["rejected"]["value"])) for row in raw]
    expected = _first_of(keys)
    expected_prompts = _first_of([key[0] for key in keys])
    assert len(expected) >= 3  # the file really holds repeats

    result = run_checks(path, checks=["exact_duplicates"]).results["exact_duplicates"]
    assert result.reasons == {i: f"duplicate of #{first}" for i, first in expected.items()}
    assert result.stats["groups"] == len(set(expected.values()))
    reported = {g["first"]: g["indices"] for g in result.stats["largest_groups"]}
    assert reported == {first: [first] + [i for i, f in expected.items() if f == first]
                        for first in sorted(set(expected.values()))[:5]}
    # preference data: repeated prompts are counted, not flagged
    assert result.stats["same_prompt"] == len(expected_prompts)
    assert result.stats["same_prompt_different_reply"] == len(set(expected_prompts) - set(expected))


def test_real_alpaca_demo_duplicates_match_a_plain_python_recount(corpus):
    path = corpus / "llama_factory" / "alpaca_en_demo.json"
    raw = json.loads(path.read_text())
    prompts = [_norm(row["instruction"] + " " + row["input"]) for row in raw]
    expected = _first_of([(p, _norm(row["output"])) for p, row in zip(prompts, raw)])
    same_prompt = _first_of(prompts)
    assert len(expected) >= 10

    result = SPEC.run(load(path).dataset)
    assert {i for i, r in result.reasons.items() if r.startswith("duplicate")} == set(expected)
    assert all(result.reasons[i] == f"duplicate of #{first}" for i, first in expected.items())
    # sft data: a repeated prompt with another reply is flagged too
    assert result.flagged == sorted(same_prompt)
    assert result.stats["share_flagged"] == round(len(same_prompt) / len(raw), 6)


def test_real_kto_demo_prompt_repeats_are_reported_but_not_flagged(corpus):
    path = corpus / "llama_factory" / "kto_en_demo.json"
    raw = json.loads(path.read_text())
    prompts = [tuple(_norm(m["content"]) for m in row["messages"][:-1] if m["role"] == "user") for row in raw]
    whole = _first_of([(p, _norm(row["messages"][-1]["content"])) for p, row in zip(prompts, raw)])
    same_prompt = _first_of(prompts)
    assert whole == {} and len(same_prompt) >= 1

    result = SPEC.run(load(path).dataset)
    assert result.flagged == []
    assert result.stats["same_prompt_different_reply"] == len(same_prompt)
    assert sorted(g["indices"][-1] for g in result.stats["largest_prompt_groups"]) == sorted(same_prompt)


def test_hash_is_the_same_for_the_same_bytes_and_apart_for_different_ones(corpus):
    """The keys: equal strings hash alike wherever they sit (a slice, a chunk, large_string, a
    null as ""); every distinct text of real files and of strings one byte apart (each length
    around the 8-byte blocks) gets its own hash."""
    import numpy as np
    import pyarrow as pa

    from hubtools.checks.exact_duplicates import hash_strings

    texts = [r["instruction"] + r["input"] + r["output"]
             for r in json.loads((corpus / "llama_factory/alpaca_en_demo.json").read_text(encoding="utf-8"))]
    texts += ["a" * n for n in range(40)] + ["b" * 7 + "\x00", "b" * 7, "ab" * 8 + "c", "ab" * 8 + "d", "é", "e"]
    distinct = sorted(set(texts))
    hashes = hash_strings(pa.array(distinct))
    assert len(set(hashes.tolist())) == len(distinct) > 1000 and hashes.dtype == np.uint64
    values = pa.array(distinct)
    assert np.array_equal(hash_strings(values.slice(5, 50)), hashes[5:55])
    assert np.array_equal(hash_strings(pa.chunked_array([values.slice(0, 3), values.slice(3)])), hashes)
    assert np.array_equal(hash_strings(values.cast(pa.large_string())), hashes)
    empty = hash_strings(pa.array([""]))[0]
    assert hash_strings(pa.array(["x", None, ""])).tolist()[1:] == [empty, empty]
