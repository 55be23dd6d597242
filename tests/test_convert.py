"""Conversions between formats: lossless where the target can hold the data, quarantined where not."""

from __future__ import annotations

import json

import pytest

import hubtools
from hubtools.convert import convert, llama_factory_entry, write
from hubtools.errors import UnknownFormatError
from hubtools.load import canonical_dataset
from hubtools.records import message

from .conftest import CORPUS


def test_alpaca_to_sharegpt_to_openai_and_back_gives_the_original_records(tmp_path):
    original = json.loads((CORPUS / "llama_factory/alpaca_en_demo.json").read_text())
    convert(CORPUS / "llama_factory/alpaca_en_demo.json", tmp_path / "a.jsonl", to="sharegpt")
    convert(tmp_path / "a.jsonl", tmp_path / "b.json", to="openai")
    _, result = convert(tmp_path / "b.json", tmp_path / "c.json", to="alpaca")
    assert result.written == len(original) and result.quarantined == 0
    assert json.loads((tmp_path / "c.json").read_text()) == original


def test_sharegpt_output_keeps_the_alpaca_input_split(tmp_path):
    convert(CORPUS / "llama_factory/alpaca_en_demo.json", tmp_path / "a.jsonl", to="sharegpt")
    rows = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    with_input = next(r for r in rows if "input" in r)
    user = with_input["conversations"][0]["value"]
    assert user.endswith("\n" + with_input["input"])


def test_tool_calls_into_alpaca_are_quarantined_with_a_reason(tmp_path):
    loaded, result = convert(CORPUS / "llama_factory/glaive_toolcall_en_demo.json",
                             tmp_path / "tools.json", to="alpaca")
    assert result.written + result.quarantined == loaded.total == 300
    assert result.quarantined > 0
    reasons = {row.reason for row in result.quarantine}
    assert any("tool" in reason for reason in reasons)
    assert {row.code for row in result.quarantine} == {"cannot_convert"}
    rows = [json.loads(line) for line in (tmp_path / "tools.quarantine.jsonl").read_text().splitlines()]
    assert len(rows) == result.quarantined
    assert all(set(row) >= {"index", "code", "reason", "raw"} for row in rows)
    written = json.loads((tmp_path / "tools.json").read_text())
    assert all("function_call" not in json.dumps(r) for r in written)


def test_multi_turn_pairs_into_flat_dpo_are_quarantined(tmp_path):
    loaded, result = convert(CORPUS / "llama_factory/dpo_en_demo.json", tmp_path / "flat.jsonl", to="dpo")
    multi = [r for r in loaded.dataset.to_list()
             if sum(m["role"] == "user" for m in r["prompt"]) > 1]
    assert multi, "the corpus file has multi-turn prompts"
    assert result.quarantined == len(multi)
    assert result.written == loaded.valid - len(multi)
    assert all("one-turn prompt" in row.reason for row in result.quarantine)


def test_hh_rlhf_converts_to_trl_and_back_to_identical_transcripts(tmp_path):
    src = CORPUS / "hh_rlhf/harmless_base_test.jsonl.gz"
    convert(src, tmp_path / "pairs.parquet", to="trl")
    _, back = convert(tmp_path / "pairs.parquet", tmp_path / "hh.jsonl", to="hh_rlhf")
    import gzip

    original = [json.loads(line) for line in gzip.open(src, "rt") if line.strip()]
    again = [json.loads(line) for line in (tmp_path / "hh.jsonl").read_text().splitlines()]
    loaded = hubtools.load(src)
    kept = set(loaded.dataset["hubtools_index"])
    expected = [r for i, r in enumerate(original) if i in kept]
    assert back.written == len(expected)
    assert again == expected


def test_kind_mismatch_names_the_formats_that_fit(tmp_path):
    loaded = hubtools.load(CORPUS / "llama_factory/kto_en_demo.json")
    with pytest.raises(UnknownFormatError, match="kto, trl_unpaired"):
        write(loaded, tmp_path / "x.jsonl", format="alpaca")


def test_system_prompt_survives_sharegpt_and_openai():
    ds = canonical_dataset([{"hubtools_index": 0, "messages": [
        message("system", "be brief"), message("user", "hi"), message("assistant", "hello")],
        "tools": None, "hubtools_extra": None}], "sft")
    from hubtools.formats import FORMATS, from_canonical, to_canonical

    for name in ("sharegpt", "openai", "alpaca"):
        wire = from_canonical(FORMATS[name], ds[0])
        back = to_canonical(FORMATS[name], wire, 0)
        assert back["messages"] == ds[0]["messages"], name


# ---- LLaMA-Factory dataset_info.json ------------------------------------------------------

LF_INFO = json.loads((CORPUS / "llama_factory/dataset_info.json").read_text())
LF_ALPACA_DEFAULTS = {"prompt": "instruction", "query": "input", "response": "output"}


@pytest.mark.parametrize(("src", "to", "corpus_entry"), [
    ("llama_factory/dpo_en_demo.json", "sharegpt_preference", "dpo_en_demo"),
    ("llama_factory/glaive_toolcall_en_demo.json", "sharegpt", "glaive_toolcall_en_demo"),
    ("llama_factory/kto_en_demo.json", "kto", "kto_en_demo"),
    ("llama_factory/c4_demo.jsonl", "text", "c4_demo"),
])
def test_dataset_info_entry_matches_llama_factory_conventions(src, to, corpus_entry, tmp_path):
    out = tmp_path / f"mine.{'jsonl' if to == 'text' else 'json'}"
    convert(CORPUS / src, out, to=to)
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    expected = {**LF_INFO[corpus_entry], "file_name": out.name}
    assert info["mine"] == expected


def test_alpaca_entry_uses_llama_factory_default_columns(tmp_path):
    convert(CORPUS / "llama_factory/identity.json", tmp_path / "id.json", to="alpaca")
    entry = json.loads((tmp_path / "dataset_info.json").read_text())["id"]
    assert entry == {"file_name": "id.json", "columns": LF_ALPACA_DEFAULTS}
    assert "formatting" not in entry and "ranking" not in entry


def test_dataset_info_keeps_other_entries(tmp_path):
    (tmp_path / "dataset_info.json").write_text(json.dumps({"theirs": {"file_name": "t.json"}}))
    convert(CORPUS / "llama_factory/identity.json", tmp_path / "id.json", to="sharegpt")
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert set(info) == {"theirs", "id"}


def test_optional_columns_appear_only_when_written():
    assert "system" not in llama_factory_entry("a.json", "alpaca", ["instruction", "input", "output"])["columns"]
    assert llama_factory_entry("a.json", "alpaca", ["instruction", "system"])["columns"]["system"] == "system"
    assert llama_factory_entry("a.json", "trl") is None


def test_trl_replies_that_repeat_the_prompt_are_read_as_the_replies(tmp_path):
    """HuggingFaceH4/ultrafeedback_binarized: a prompt string, and chosen/rejected full conversations."""
    question = "Which planet is closest to the sun?"
    row = {"prompt": question, "prompt_id": "p1", "score_chosen": 9.0, "score_rejected": 4.0,
           "chosen": [{"role": "user", "content": question}, {"role": "assistant", "content": "Mercury."}],
           "rejected": [{"role": "user", "content": question}, {"role": "assistant", "content": "Venus."}]}
    other = {**row, "prompt": "A different question?"}  # the replies do not repeat this prompt
    path = tmp_path / "uf.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (row, row, other)) + "\n")
    loaded = hubtools.load(path)
    assert (loaded.format, loaded.valid) == ("trl", 2)
    assert [q.code for q in loaded.quarantine] == ["role_order"]  # chosen would start with a user turn
    record = loaded.dataset[0]
    assert [m["content"] for m in record["prompt"]] == [question]
    assert [(m["role"], m["content"]) for m in record["chosen"]] == [("assistant", "Mercury.")]
    assert [(m["role"], m["content"]) for m in record["rejected"]] == [("assistant", "Venus.")]
    assert record["score_chosen"] == 9.0
    write(loaded, tmp_path / "flat.jsonl", format="dpo")
    flat = json.loads((tmp_path / "flat.jsonl").read_text().splitlines()[0])
    assert (flat["prompt"], flat["chosen"], flat["rejected"]) == (question, "Mercury.", "Venus.")


@pytest.mark.parametrize(("name", "rows", "first_user", "first_reply"), [
    ("prompt_completion", [{"prompt": "Capital of Peru?", "completion": "Lima."},
                           {"prompt": [{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": "Capital of Chile?"}],
                            "completion": [{"role": "assistant", "content": "Santiago."}]}],
     "Capital of Peru?", "Lima."),
    ("dolly", [{"instruction": "Summarise this.", "context": "Lima is the capital of Peru.",
                "response": "Lima is Peru's capital.", "category": "summarization"},
               {"instruction": "Name a fruit.", "context": "", "response": "Apple.", "category": "brainstorming"}],
     "Summarise this.\nLima is the capital of Peru.", "Lima is Peru's capital."),
    ("question_answer", [{"question": "What is 6 x 7?", "answer": "6 x 7 = 42 #### 42"},
                         {"question": "What is 2 + 2?", "answer": "4"}],
     "What is 6 x 7?", "6 x 7 = 42 #### 42"),
    ("prompt_response", [{"prompt": "Explain tides.", "response": "The moon pulls.", "helpfulness": 3},
                         {"system": "Be brief.", "prompt": "Why is the sky blue?", "response": "Scattering."}],
     "Explain tides.", "The moon pulls."),
    ("query_response", [{"query": "Define AI.", "response": "Machines that learn."}], "Define AI.",
     "Machines that learn."),
    ("input_output", [{"input": "Translate: hello", "output": "bonjour"}], "Translate: hello", "bonjour"),
    ("problem_solution", [{"problem": "Solve x + 1 = 3.", "solution": "x = 2.", "level": "Level 1"}],
     "Solve x + 1 = 3.", "x = 2."),
    ("conversation", [{"conversation_id": "c1", "model": "vicuna-13b", "language": "English",
                       "conversation": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}],
     "Hi", "Hello"),
])
def test_common_hub_sft_shapes_are_detected_and_round_trip(name, rows, first_user, first_reply, tmp_path):
    path = tmp_path / f"{name}.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    loaded = hubtools.load(path)
    assert (loaded.format, loaded.kind.value, loaded.valid) == (name, "sft", len(rows))
    messages = loaded.dataset[0]["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [("user", first_user), ("assistant", first_reply)]
    write(loaded, tmp_path / "again.jsonl", format=name)
    assert [json.loads(line) for line in (tmp_path / "again.jsonl").read_text().splitlines()] == rows


def test_dolly_becomes_alpaca_with_the_context_as_input(tmp_path):
    path = tmp_path / "dolly.jsonl"
    path.write_text(json.dumps({"instruction": "Summarise this.", "context": "Lima is the capital of Peru.",
                                "response": "Lima is Peru's capital.", "category": "summarization"}) + "\n")
    write(hubtools.load(path), tmp_path / "alpaca.json", format="alpaca")
    assert json.loads((tmp_path / "alpaca.json").read_text()) == [
        {"instruction": "Summarise this.", "input": "Lima is the capital of Peru.", "output": "Lima is Peru's capital.",
         "category": "summarization"}]


def test_kto_data_with_a_label_stays_kto_and_input_alone_is_a_dpo_prompt(tmp_path):
    path = tmp_path / "kto.jsonl"
    path.write_text(json.dumps({"prompt": "Q?", "completion": "A.", "label": True}) + "\n")
    assert hubtools.load(path).format == "trl_unpaired"
    path = tmp_path / "orca.jsonl"  # argilla/distilabel-intel-orca-dpo-pairs
    path.write_text(json.dumps({"system": "You are an AI.", "input": "Q?", "chosen": "Good.", "rejected": "Bad."}) + "\n")
    loaded = hubtools.load(path)
    assert (loaded.format, loaded.valid) == ("dpo", 1)
    assert [(m["role"], m["content"]) for m in loaded.dataset[0]["prompt"]] == [("system", "You are an AI."),
                                                                               ("user", "Q?")]


def test_numeric_answers_stay_text_through_csv(tmp_path):
    rows = [{"question": "What is 2 + 2?", "answer": "4"}, {"question": "What is 3 x 3?", "answer": "9"}]
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    write(hubtools.load(path), tmp_path / "qa.csv", format="question_answer")
    again = hubtools.load(tmp_path / "qa.csv")  # a CSV cell "4" is not the number 4 here
    assert (again.format, again.valid) == ("question_answer", 2)
    assert again.dataset[0]["messages"][1]["content"] == "4"


def test_shp_pairs_follow_labels_and_write_back_in_their_order(tmp_path):
    rows = [{"post_id": "p1", "history": "Which is better for a beginner, Python or C?",
             "human_ref_A": "Python: you see results sooner.", "human_ref_B": "C, to learn memory first.",
             "labels": 1, "score_A": 52, "score_B": 3},
            {"post_id": "p2", "history": "Is it fine to water cacti daily?", "human_ref_A": "Yes, daily.",
             "human_ref_B": "No: let the soil dry out between waterings.", "labels": 0, "score_A": 1, "score_B": 40}]
    path = tmp_path / "shp.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    loaded = hubtools.load(path)
    assert (loaded.format, loaded.kind.value, loaded.valid) == ("shp", "preference", 2)
    assert [r["chosen"][0]["content"] for r in loaded.dataset] == [rows[0]["human_ref_A"], rows[1]["human_ref_B"]]
    write(loaded, tmp_path / "again.jsonl", format="shp")
    assert [json.loads(line) for line in (tmp_path / "again.jsonl").read_text().splitlines()] == rows


def test_capybara_exchanges_become_turns_and_round_trip(tmp_path):
    rows = [{"source": "Airoboros", "conversation": [{"input": "Name a prime.", "output": "7."},
                                                     {"input": "Another?", "output": "11."}]}]
    path = tmp_path / "capybara.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    loaded = hubtools.load(path)
    assert (loaded.format, loaded.valid) == ("capybara", 1)
    assert [m["role"] for m in loaded.dataset[0]["messages"]] == ["user", "assistant", "user", "assistant"]
    write(loaded, tmp_path / "again.jsonl", format="capybara")
    assert [json.loads(line) for line in (tmp_path / "again.jsonl").read_text().splitlines()] == rows
    lmsys = tmp_path / "lmsys.jsonl"  # role/content under the same key is the conversation format
    lmsys.write_text(json.dumps({"conversation": [{"role": "user", "content": "Hi"},
                                                  {"role": "assistant", "content": "Hello"}]}) + "\n")
    assert hubtools.load(lmsys).format == "conversation"
