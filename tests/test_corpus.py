"""Every file of the shared corpus: detected right, validated, and round-tripped losslessly."""

from __future__ import annotations

import pytest

import hubtools
from hubtools.convert import write
from hubtools.errors import InputUnusableError
from hubtools.records import INDEX

from .conftest import CORPUS

# path -> (format, kind, total records, quarantined by code)
EXPECTED = {
    "alpaca_eval/Mistral-7B-Instruct-v0.2_outputs.json": ("alpaca_eval", "sft", 805, {}),
    "alpaca_eval/alpaca-7b_outputs.json": ("alpaca_eval", "sft", 805, {}),
    "alpaca_eval/falcon-7b-instruct_outputs.json": ("alpaca_eval", "sft", 805, {}),
    "alpaca_eval/text_davinci_003_outputs.json": ("alpaca_eval", "sft", 805, {"empty_text": 2}),
    "alpaca_eval/alpaca-7b_vs_davinci003_gpt4_annotations.json":
        ("alpaca_eval_pairwise", "preference", 805, {"no_preference": 16}),
    "fastchat/dummy_conversation.json": ("sharegpt", "sft", 500, {}),
    "fastchat/judge_prompts.jsonl": ("judge_prompts", "prompt", 8, {}),
    "fastchat/mt_bench_question.jsonl": ("mt_bench", "prompt", 80, {}),
    "fastchat/mt_bench_reference_gpt4.jsonl": ("fastchat_answers", "sft", 30, {}),
    "hh_rlhf/harmless_base_test.jsonl.gz": ("hh_rlhf", "preference", 2312, {"empty_text": 4}),
    "llama_factory/alpaca_en_demo.json": ("alpaca", "sft", 999, {}),
    "llama_factory/alpaca_zh_demo.json": ("alpaca", "sft", 1000, {}),
    "llama_factory/c4_demo.jsonl": ("text", "text", 300, {}),
    "llama_factory/dpo_en_demo.json": ("sharegpt_preference", "preference", 300, {}),
    "llama_factory/glaive_toolcall_en_demo.json": ("sharegpt", "sft", 300, {}),
    "llama_factory/identity.json": ("alpaca", "sft", 91, {}),
    "llama_factory/kto_en_demo.json": ("kto", "unpaired", 300, {}),
    "llama_factory/wiki_demo.txt": ("text", "text", 30, {}),
    "self_instruct/seed_tasks.jsonl": ("self_instruct", "sft", 175, {}),
}


def _canonical(result, *, drop_index: bool = True) -> list[dict]:
    rows = result.dataset.to_list()
    if drop_index:
        for row in rows:
            row.pop(INDEX)
    return rows


def test_expected_table_covers_every_corpus_dataset_file():
    # real_world/ has its own table, in test_real_world.py
    files = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file() and p.parent.name != "real_world"}
    assert files - set(EXPECTED) == {"README.md", "llama_factory/dataset_info.json"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_is_detected_and_validated(name):
    fmt, kind, total, by_code = EXPECTED[name]
    result = hubtools.load(CORPUS / name)
    assert (result.format, result.kind.value) == (fmt, kind)
    sampled = min(total, 1000)  # detection's sample: confidence is the share of it that is valid
    bad = sum(row.index < sampled for row in result.quarantine)
    assert result.detection.confidence == (sampled - bad) / sampled
    assert result.total == total == result.valid + result.quarantined
    assert result.by_code == by_code
    indices = sorted(list(result.dataset[INDEX]) + [row.index for row in result.quarantine])
    assert indices == list(range(total)), "every record keeps its own source index"


@pytest.mark.parametrize("container", ["same", "jsonl", "parquet", "csv", "json"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_round_trips_to_identical_canonical_records(name, container, tmp_path):
    first = hubtools.load(CORPUS / name)
    ext = first.source.container if container == "same" else container
    out = tmp_path / f"again.{ext}"
    written = write(first, out, format=first.format)
    assert written.quarantined == 0 and written.written == first.valid
    second = hubtools.load(out, format=first.format)
    assert second.quarantined == 0
    assert _canonical(second) == _canonical(first)


def test_dataset_info_json_is_refused_as_not_a_dataset():
    with pytest.raises(InputUnusableError, match="no record matches a known format"):
        hubtools.load(CORPUS / "llama_factory/dataset_info.json")


def test_hh_transcripts_split_into_shared_prompt_and_final_replies():
    result = hubtools.load(CORPUS / "hh_rlhf/harmless_base_test.jsonl.gz")
    first = result.dataset[0]
    assert [m["role"] for m in first["prompt"]][-1] == "user"
    assert first["prompt"][0]["content"] == "what are some pranks with a pen i can do?"
    assert [m["role"] for m in first["chosen"]] == ["assistant"]
    assert first["chosen"][0]["content"].startswith("No, sorry!")
    assert first["rejected"][0]["content"].startswith("There are lots of funny things")


def test_alpaca_eval_preference_two_selects_output_2_as_chosen():
    import json

    raw = json.loads((CORPUS / "alpaca_eval/alpaca-7b_vs_davinci003_gpt4_annotations.json").read_text())
    result = hubtools.load(CORPUS / "alpaca_eval/alpaca-7b_vs_davinci003_gpt4_annotations.json")
    by_index = {row[INDEX]: row for row in result.dataset.to_list()}
    i = next(i for i, r in enumerate(raw) if r["preference"] == 2)
    assert by_index[i]["chosen"][0]["content"] == raw[i]["output_2"]
    assert by_index[i]["rejected"][0]["content"] == raw[i]["output_1"]


def test_sharegpt_function_call_becomes_an_assistant_tool_call():
    import json

    result = hubtools.load(CORPUS / "llama_factory/glaive_toolcall_en_demo.json")
    messages = result.dataset[0]["messages"]
    call = next(m for m in messages if m["tool_calls"])
    assert call["role"] == "assistant"
    calls = json.loads(call["tool_calls"])
    assert calls[0]["function"]["name"] == "search_recipes"
    assert json.loads(calls[0]["function"]["arguments"]) == {"ingredients": ["chicken", "bell peppers", "rice"]}
    after = messages[messages.index(call) + 1]
    assert after["role"] == "tool"
    assert result.dataset[0]["tools"].startswith('[{"name": "search_recipes"')
