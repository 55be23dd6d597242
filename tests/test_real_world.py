"""The real-world files of ../shared/corpus/real_world: each loads as its kind with nothing lost,
and converts to its own family and back with every field kept."""

from __future__ import annotations

import json

import pytest

import hubtools
from hubtools.convert import convert, validate_to_dir, write
from hubtools.io import iter_raw, open_source
from hubtools.records import INDEX

from .conftest import CORPUS

REAL = CORPUS / "real_world"

# file -> (format, kind, valid, quarantined by code)
EXPECTED = {
    "alpaca_eval_FuseChat-Llama-3.2-3B-Instruct_weighted_gpt4_turbo_annotations_first200.json":
        ("alpaca_eval_pairwise", "preference", 199, {"no_preference": 1}),  # one preference is 1.5
    "alpaca_eval_gpt-3.5-turbo-1106_weighted_gpt4_turbo_annotations_first100.json":
        ("alpaca_eval_pairwise", "preference", 100, {}),
    "arena_hard_v0.1_model_answer_gpt-3.5-turbo-0125.jsonl": ("openai", "sft", 500, {}),
    "arena_hard_v2.0_model_answer_o3-mini-2025-01-31_first50.jsonl": ("openai", "sft", 50, {}),
    "autoj_testdata_pairwise_first144.jsonl": ("autoj_pairwise", "preference", 127, {"no_preference": 17}),
    "elianfactory_firefly_sample.jsonl": ("firefly", "sft", 5, {}),
    "elianfactory_firefly_train_elian.jsonl": ("firefly", "sft", 14, {}),
    "gpteacher_roleplay_simple_deduped_instruct.json": ("alpaca_response", "sft", 1923, {}),
    "llamafactory_mllm_audio_demo.json": ("openai", "sft", 3, {}),
    "llamafactory_mllm_video_demo.json": ("openai", "sft", 3, {}),
    "llamafactory_v1_docs_dpo_example.json": ("llamafactory_v1_preference", "preference", 1, {}),
    "llamafactory_v1_docs_sft_example.json": ("llamafactory_v1", "sft", 1, {}),
    "llamafactory_v1_multimodal_demo.jsonl": ("llamafactory_v1", "sft", 24, {}),
    "llamafactory_v1_multimodal_mixed_demo_pr10528.jsonl": ("llamafactory_v1", "sft", 20, {}),
    # 80 trees: 19 with an answer give 82 conversations; 61 are prompts nobody answered yet
    "oasst2_filtered_trees_open_paws_first80.jsonl": ("oasst", "sft", 82, {"role_order": 61}),
    # 444 flat messages in 74 trees, one conversation per path to a leaf
    "oasst_backend_realistic_seed_messages.json": ("oasst_messages", "sft", 158, {}),
    "openpipe_legacy_function_call_messages.jsonl": ("openai", "sft", 1, {}),
}
#: prompt lists (read by the prompt-only formats) and code instructions (plain Alpaca), tested with those
TESTED_ELSEWHERE = {"arena_hard_v0.1_question.jsonl", "fastchat_vicuna_bench_question.jsonl",
               "oasst_prompt_lottery_en_250_text.jsonl", "codealpaca_code_alpaca_2k.json"}
#: the family a format is written back as, where it is not the format itself
FAMILY = {"oasst_messages": "oasst"}


def _canonical(result) -> list[dict]:
    rows = result.dataset.to_list()
    for row in rows:
        row.pop(INDEX)
    return rows


def test_every_real_world_file_has_an_expectation():
    files = {p.name for p in REAL.iterdir() if p.is_file()}
    assert files == set(EXPECTED) | TESTED_ELSEWHERE


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_world_file_loads_as_its_kind_with_nothing_lost(name):
    fmt, kind, valid, by_code = EXPECTED[name]
    result = hubtools.load(REAL / name)
    assert (result.format, result.kind.value) == (fmt, kind)
    assert (result.valid, result.by_code) == (valid, by_code)
    assert result.total == result.valid + result.quarantined
    if result.trees is None:  # one record in, one record out (or quarantined)
        raw = sum(1 for _ in iter_raw(open_source(REAL / name)))
        assert result.total == raw
        assert sorted(list(result.dataset[INDEX]) + [r.index for r in result.quarantine]) == list(range(raw))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_world_file_round_trips_through_its_own_family(name, tmp_path):
    first = hubtools.load(REAL / name)
    family = FAMILY.get(first.format, first.format)
    written = write(first, tmp_path / "again.jsonl", format=family)
    assert (written.written, written.quarantined) == (first.valid, 0)
    second = hubtools.load(tmp_path / "again.jsonl", format=family)
    assert second.quarantined == 0
    assert _canonical(second) == _canonical(first)


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if not e[0].startswith("oasst")))
def test_real_world_records_are_written_back_as_they_were(name, tmp_path):
    """Every field of every kept record, message fields included, comes back unchanged."""
    first = hubtools.load(REAL / name)
    write(first, tmp_path / "again.jsonl", format=first.format)
    bad = {row.index for row in first.quarantine}
    originals = [item.value for item in iter_raw(open_source(REAL / name)) if item.index not in bad]
    again = [json.loads(line) for line in (tmp_path / "again.jsonl").read_text().splitlines()]
    if name.startswith("openpipe"):  # a bare array of messages is written as {"messages": [...]}
        originals = [{"messages": o} for o in originals]
    assert again == originals


def test_oasst_summary_states_trees_in_equal_trees_read_plus_quarantined(tmp_path):
    summary = validate_to_dir(REAL / "oasst2_filtered_trees_open_paws_first80.jsonl", tmp_path)
    trees = summary["trees"]
    assert trees == {"in": 80, "read": 19, "quarantined": 61, "conversations": 82, "unlinked_messages": 0}
    assert trees["in"] == trees["read"] + trees["quarantined"]
    assert summary["total"] == summary["valid"] + summary["quarantined"] == 82 + 61
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["trees"] == trees


@pytest.mark.parametrize(("name", "conversations"), [
    ("oasst2_filtered_trees_open_paws_first80.jsonl", 19),
    ("oasst_backend_realistic_seed_messages.json", 74),
])
def test_oasst_best_path_gives_one_conversation_per_answered_tree(name, conversations):
    result = hubtools.load(REAL / name, oasst_path="best")
    assert result.valid == result.trees.conversations == result.trees.read == conversations


def test_flat_oasst_conversations_each_have_their_own_index():
    result = hubtools.load(REAL / "oasst_backend_realistic_seed_messages.json")
    assert len(set(result.dataset["hubtools_index"])) == result.valid == 158


def test_nested_oasst_conversations_each_have_their_own_index_in_order():
    result = hubtools.load(REAL / "oasst2_filtered_trees_open_paws_first80.jsonl")
    index = list(result.dataset[INDEX])
    assert len(set(index)) == result.valid == 82 and index == sorted(index)  # the checks look rows up by index
    # a tree's first conversation keeps its record's index, the others follow the last record (80..)
    assert sorted(index + [r.index for r in result.quarantine]) == list(range(result.total)) == list(range(143))


def test_filter_drops_one_oasst_conversation_not_its_siblings(tmp_path):
    from collections import Counter

    from hubtools.checks.filter import filter_dataset
    from hubtools.records import EXTRA, load_extra

    name = "oasst2_filtered_trees_open_paws_first80.jsonl"
    loaded = hubtools.load(REAL / name)
    tree_of = {row[INDEX]: load_extra(row[EXTRA])["message_tree_id"] for row in loaded.dataset}
    result = filter_dataset(REAL / name, tmp_path, drop="refusals")
    assert (result.read, result.kept, result.removed) == (143, 79, 61 + 3)  # read = kept + removed
    assert result.by_reason == {"schema": 61, "refusals": 3}
    removed = [json.loads(line) for line in (tmp_path / "removed.jsonl").read_text().splitlines()]
    refused = [r["index"] for r in removed if "refusals" in r["reasons"]]
    kept = Counter(json.loads(line)["message_tree_id"] for line in (tmp_path / name).read_text().splitlines())
    for tree in {tree_of[i] for i in refused}:  # each refused conversation's siblings are all still there
        conversations = sum(t == tree for t in tree_of.values())
        assert conversations > 1 and kept[tree] == conversations - sum(tree_of[i] == tree for i in refused)


def test_llamafactory_v1_multimodal_converts_to_v0_with_media_columns_in_dataset_info(tmp_path):
    loaded, result = convert(REAL / "llamafactory_v1_multimodal_mixed_demo_pr10528.jsonl",
                             tmp_path / "mm.json", to="sharegpt")
    assert (result.written, result.quarantined) == (20, 0)
    info = json.loads((tmp_path / "dataset_info.json").read_text())["mm"]
    assert info["columns"] == {"messages": "conversations", "images": "images", "videos": "videos"}
    records = json.loads((tmp_path / "mm.json").read_text())
    tokens = sum(turn["value"].count("<image>") for r in records for turn in r["conversations"])
    assert tokens == sum(len(r.get("images", [])) for r in records) > 0
    assert records[0]["conversations"][0]["loss_weight"] == 0.0  # the message field is kept
    back, again = convert(tmp_path / "mm.json", tmp_path / "v1.jsonl", to="llamafactory_v1")
    assert again.written == 20
    original = [item.value for item in iter_raw(open_source(REAL / "llamafactory_v1_multimodal_mixed_demo_pr10528.jsonl"))]
    assert [json.loads(line) for line in (tmp_path / "v1.jsonl").read_text().splitlines()] == original


def test_llamafactory_mllm_audio_entry_names_the_audios_column(tmp_path):
    convert(REAL / "llamafactory_mllm_audio_demo.json", tmp_path / "audio.json", to="openai")
    info = json.loads((tmp_path / "dataset_info.json").read_text())["audio"]
    assert info["columns"]["audios"] == "audios"
