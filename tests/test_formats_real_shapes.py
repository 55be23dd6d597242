"""Formats people publish, from their documented shapes: read, quarantine with a reason, write back."""

from __future__ import annotations

import json

import hubtools
from hubtools.convert import convert, validate_to_dir, writable_formats, write


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _load(tmp_path, records, **kwargs):
    return hubtools.load(_jsonl(tmp_path / "in.jsonl", records), **kwargs)


def _texts(messages):
    return [(m["role"], m["content"]) for m in messages]


# ---- AlpacaEval 2.0 weighted preference ----------------------------------------------------

def test_alpaca_eval_weighted_preference_picks_the_likelier_output_and_quarantines_ties(tmp_path):
    base = {"instruction": "Name a colour.", "output_1": "Red.", "output_2": "Blue."}
    result = _load(tmp_path, [{**base, "preference": 1.98}, {**base, "preference": 1.5},
                              {**base, "preference": 1.02}, {**base, "preference": 2}])
    assert result.format == "alpaca_eval_pairwise"
    assert [r.code for r in result.quarantine] == ["no_preference"] and result.quarantine[0].index == 1
    chosen = [r["chosen"][0]["content"] for r in result.dataset]
    assert chosen == ["Blue.", "Red.", "Blue."]
    write(result, tmp_path / "out.jsonl", format="alpaca_eval_pairwise")
    assert [r["preference"] for r in _lines(tmp_path / "out.jsonl")] == [1.98, 1.02, 2]
    assert [r["output_1"] for r in _lines(tmp_path / "out.jsonl")] == ["Red."] * 3


# ---- Alpaca with response --------------------------------------------------------------------

def test_instruction_input_response_keeps_the_input_in_the_prompt(tmp_path):
    records = [{"instruction": "Translate to French.", "input": "Good morning", "response": "Bonjour"},
               {"instruction": "Say hi.", "input": "", "response": "Hi!"}]
    result = _load(tmp_path, records)
    assert (result.format, result.valid) == ("alpaca_response", 2)
    assert _texts(result.dataset[0]["messages"]) == [("user", "Translate to French.\nGood morning"),
                                                     ("assistant", "Bonjour")]
    write(result, tmp_path / "out.jsonl", format="alpaca_response")
    assert _lines(tmp_path / "out.jsonl") == records
    convert(tmp_path / "in.jsonl", tmp_path / "alpaca.jsonl", to="alpaca")
    assert _lines(tmp_path / "alpaca.jsonl")[0] == {"instruction": "Translate to French.",
                                                    "input": "Good morning", "output": "Bonjour"}


def test_dolly_with_context_is_still_dolly(tmp_path):
    result = _load(tmp_path, [{"instruction": "Sum up.", "context": "A long text.", "response": "Short."}])
    assert result.format == "dolly"


# ---- OpenAI chat message fields, text beside tool calls ----------------------------------------

CALL = [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\": \"x\"}"}}]
CHAT = {"messages": [
    {"role": "system", "content": "Be brief.", "weight": 0},
    {"role": "user", "content": "Look x up.", "name": "ann"},
    {"role": "assistant", "content": "Let me check.", "tool_calls": CALL, "weight": 1},
    {"role": "tool", "content": "x is 1", "tool_call_id": "c1"},
    {"role": "assistant", "content": "x is 1.", "weight": 1, "refusal": None},
]}


def test_openai_message_fields_survive_validate(tmp_path):
    summary = validate_to_dir(_jsonl(tmp_path / "in.jsonl", [CHAT]), tmp_path / "out")
    assert summary["valid"] == 1
    assert _lines(tmp_path / "out" / "valid.jsonl") == [CHAT]


def test_openai_message_fields_survive_convert_to_sharegpt_where_it_can_hold_them(tmp_path):
    record = {"messages": [CHAT["messages"][1], {"role": "assistant", "content": "Hello.", "weight": 0}]}
    _, result = convert(_jsonl(tmp_path / "in.jsonl", [record]), tmp_path / "out.jsonl", to="sharegpt")
    assert result.written == 1
    assert _lines(tmp_path / "out.jsonl")[0]["conversations"] == [
        {"from": "human", "value": "Look x up.", "name": "ann"}, {"from": "gpt", "value": "Hello.", "weight": 0}]
    back, again = convert(tmp_path / "out.jsonl", tmp_path / "back.jsonl", to="openai")
    assert _lines(tmp_path / "back.jsonl") == [record]


def test_text_beside_tool_calls_is_kept_or_quarantined_with_a_reason(tmp_path):
    result = _load(tmp_path, [CHAT])
    assert result.dataset[0]["messages"][2]["content"] == "Let me check."
    _, written = convert(tmp_path / "in.jsonl", tmp_path / "out.jsonl", to="sharegpt")
    assert (written.written, written.quarantined) == (0, 1)
    assert written.quarantine[0].code == "cannot_convert"
    assert "both a text and tool calls" in written.quarantine[0].reason


def test_a_target_without_message_fields_quarantines_naming_them(tmp_path):
    record = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", "weight": 0}]}
    _, written = convert(_jsonl(tmp_path / "in.jsonl", [record]), tmp_path / "out.jsonl", to="alpaca")
    assert written.quarantined == 1 and "'weight'" in written.quarantine[0].reason


def test_legacy_function_call_and_a_bare_message_array_are_read_and_written_back(tmp_path):
    messages = [{"role": "user", "content": "Add Italian."},
                {"role": "assistant", "content": None,
                 "function_call": {"name": "add_scenario", "arguments": "{\"language\": \"Italian\"}"}}]
    result = _load(tmp_path, [messages])
    assert (result.format, result.valid) == ("openai", 1)
    call = json.loads(result.dataset[0]["messages"][1]["tool_calls"])
    assert call[0]["function"]["name"] == "add_scenario"
    write(result, tmp_path / "out.jsonl", format="openai")
    assert _lines(tmp_path / "out.jsonl") == [{"messages": messages}]


def test_assistant_content_object_is_read_as_its_text(tmp_path):
    record = {"uid": "u1", "messages": [{"role": "user", "content": "Q?"},
                                        {"role": "assistant", "content": {"answer": "A."}}]}
    result = _load(tmp_path, [record])
    assert _texts(result.dataset[0]["messages"])[-1] == ("assistant", "A.")
    write(result, tmp_path / "out.jsonl", format="openai")
    assert _lines(tmp_path / "out.jsonl") == [record]


# ---- LLaMA-Factory v1 ------------------------------------------------------------------------

def test_llamafactory_v1_parts_text_reasoning_tool_calls(tmp_path):
    call = {"name": "weather", "arguments": {"city": "Paris"}}
    record = {"messages": [
        {"role": "user", "content": [{"type": "text", "value": "Weather in "}, {"type": "text", "value": "Paris?"}],
         "loss_weight": 0.0},
        {"role": "assistant", "content": [{"type": "reasoning", "value": "I should call the tool."},
                                          {"type": "tool_call", "value": json.dumps(call)}], "loss_weight": 1.0},
        {"role": "tool", "content": [{"type": "text", "value": "sunny"}], "loss_weight": 0.0},
        {"role": "assistant", "content": [{"type": "text", "value": "Sunny."}], "loss_weight": 1.0}]}
    result = _load(tmp_path, [record])
    assert (result.format, result.valid) == ("llamafactory_v1", 1)
    messages = result.dataset[0]["messages"]
    assert messages[0]["content"] == "Weather in Paris?"
    assert json.loads(messages[1]["tool_calls"])[0]["function"]["name"] == "weather"
    _, out = convert(tmp_path / "in.jsonl", tmp_path / "openai.jsonl", to="openai")
    turn = _lines(tmp_path / "openai.jsonl")[0]["messages"][1]
    assert (turn["reasoning"], turn["loss_weight"]) == ("I should call the tool.", 1.0)
    convert(tmp_path / "openai.jsonl", tmp_path / "v1.jsonl", to="llamafactory_v1")
    again = _lines(tmp_path / "v1.jsonl")[0]["messages"]
    assert again[1] == record["messages"][1] and again[2:] == record["messages"][2:]
    assert again[0]["content"] == [{"type": "text", "value": "Weather in Paris?"}]  # text parts joined


def test_llamafactory_v1_unknown_part_type_is_quarantined_with_its_name(tmp_path):
    record = {"messages": [{"role": "user", "content": [{"type": "hologram", "value": "x"}]},
                           {"role": "assistant", "content": [{"type": "text", "value": "y"}]}]}
    result = hubtools.load(_jsonl(tmp_path / "in.jsonl", [record]), format="llamafactory_v1")
    assert result.quarantine[0].code == "wrong_type" and "'hologram'" in result.quarantine[0].reason


def test_llamafactory_v1_preference(tmp_path):
    user = {"role": "user", "content": [{"type": "text", "value": "Hi"}], "loss_weight": 0.0}
    record = {"chosen_messages": [user, {"role": "assistant", "content": [{"type": "text", "value": "Hello!"}],
                                         "loss_weight": 1.0}],
              "rejected_messages": [user, {"role": "assistant", "content": [{"type": "text", "value": "Go."}],
                                           "loss_weight": 1.0}]}
    result = _load(tmp_path, [record])
    assert (result.format, result.kind.value) == ("llamafactory_v1_preference", "preference")
    assert _texts(result.dataset[0]["prompt"]) == [("user", "Hi")]
    write(result, tmp_path / "out.jsonl", format="llamafactory_v1_preference")
    assert _lines(tmp_path / "out.jsonl") == [record]


def test_v0_multimodal_dataset_info_lists_the_media_columns(tmp_path):
    record = {"messages": [{"role": "user", "content": "<image>What is it?"},
                           {"role": "assistant", "content": "A cat."}], "images": ["cat.jpg"]}
    convert(_jsonl(tmp_path / "in.jsonl", [record]), tmp_path / "mm.json", to="sharegpt")
    entry = json.loads((tmp_path / "dataset_info.json").read_text())["mm"]
    assert entry["columns"] == {"messages": "conversations", "images": "images"}
    assert json.loads((tmp_path / "mm.json").read_text())[0]["images"] == ["cat.jpg"]


# ---- Firefly -------------------------------------------------------------------------------------

def test_firefly_conversation_of_human_assistant_pairs(tmp_path):
    record = {"conversation_id": 7, "category": "Brainstorming",
              "conversation": [{"human": "Hi", "assistant": "Hello"}, {"human": "More?", "assistant": "Sure."}]}
    result = _load(tmp_path, [record])
    assert (result.format, result.valid) == ("firefly", 1)
    assert [r for r, _ in _texts(result.dataset[0]["messages"])] == ["user", "assistant"] * 2
    write(result, tmp_path / "out.jsonl", format="firefly")
    assert _lines(tmp_path / "out.jsonl") == [record]


# ---- pairwise comparisons ------------------------------------------------------------------------

def test_pandalm_votes_by_majority_and_ties_are_quarantined(tmp_path):
    base = {"idx": 0, "cmp_key": "a_b", "instruction": "Fix the sentence.", "input": "He go home.",
            "response1": "He goes home.", "response2": "He went home."}
    records = [{**base, "annotator1": 2, "annotator2": 2, "annotator3": 1},
               {**base, "annotator1": 0, "annotator2": 0, "annotator3": 1},
               {**base, "annotator1": 1, "annotator2": 2, "annotator3": 0},
               {**base, "input": None, "annotator1": 1, "annotator2": 1, "annotator3": 1}]
    result = _load(tmp_path, records)
    assert result.format == "pandalm"
    assert [(r.index, r.code) for r in result.quarantine] == [(1, "no_preference"), (2, "no_preference")]
    first, last = result.dataset[0], result.dataset[1]
    assert _texts(first["prompt"]) == [("user", "Fix the sentence.\nHe go home.")]
    assert (first["chosen"][0]["content"], last["chosen"][0]["content"]) == ("He went home.", "He goes home.")
    write(result, tmp_path / "out.jsonl", format="pandalm")
    assert _lines(tmp_path / "out.jsonl")[0] == records[0]


# PandaLM's test set (testset-v1.json) as published: a JSON array, an empty input written as NaN
_PANDALM = """[
    {"motivation_app": "Grammarly", "cmp_key": "a_b", "idx": 0, "instruction": "Fix the grammar.",
     "input": "He go home.", "response1": "He goes home.", "response2": "He went home.",
     "annotator1": 1, "annotator2": 1, "annotator3": 2},
    {"motivation_app": "Yelp", "cmp_key": "a_c", "idx": 1, "instruction": "Name three fruits.",
     "input": NaN, "response1": "Apple, pear, plum.", "response2": "Carrot.",
     "annotator1": 1, "annotator2": 1, "annotator3": 1},
    {"motivation_app": "Yelp", "cmp_key": "b_c", "idx": 2, "instruction": "Name a colour.",
     "input": NaN, "response1": "Blue.", "response2": "Loud.",
     "annotator1": 1, "annotator2": NaN, "annotator3": 1},
    {"motivation_app": "Yelp", "cmp_key": "b_d", "idx": 3, "instruction": "Name a planet.",
     "input": NaN, "response1": "Mars.", "response2": "Moon.", "score": Infinity,
     "annotator1": 1, "annotator2": 1, "annotator3": 1}
]
"""


def test_pandalm_nan_input_is_a_missing_input_and_nothing_else_changes(tmp_path):
    array = tmp_path / "testset-v1.json"
    array.write_text(_PANDALM)
    lines = tmp_path / "testset-v1.jsonl"  # the same records as JSON Lines (Python's json writes NaN as is)
    lines.write_text("".join(json.dumps(r) + "\n" for r in json.loads(_PANDALM)))
    assert lines.read_text().count("NaN") == 4
    for path in (array, lines):
        result = hubtools.load(path)
        assert (result.format, result.valid, result.total) == ("pandalm", 2, 4), path
        # the NaN input is a missing input: the prompt is the instruction alone
        assert _texts(result.dataset[1]["prompt"]) == [("user", "Name three fruits.")]
        assert _texts(result.dataset[0]["prompt"]) == [("user", "Fix the grammar.\nHe go home.")]
        # a NaN vote and an Infinity elsewhere stay refused, as in every other format
        assert [(r.index, r.code) for r in result.quarantine] == [(2, "invalid_json"), (3, "invalid_json")], path
        assert "pandalm: NaN read as a missing value (input) in 1 record" in result.notes
    write(hubtools.load(array), tmp_path / "out.jsonl", format="pandalm")
    assert _lines(tmp_path / "out.jsonl")[1]["input"] == ""  # PandaLM's own writer has no NaN: empty


def test_a_nan_input_stays_invalid_json_where_the_format_does_not_mean_missing(tmp_path):
    path = tmp_path / "alpaca.jsonl"
    path.write_text('{"instruction": "a", "input": "", "output": "b"}\n{"instruction": "c", "input": NaN, "output": "d"}\n')
    result = hubtools.load(path)
    assert result.format == "alpaca" and [(r.index, r.code) for r in result.quarantine] == [(1, "invalid_json")]
    assert not any("NaN" in n for n in result.notes)


def test_chatbot_arena_winner_and_ties(tmp_path):
    def conv(reply):
        return [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": reply}]
    base = {"question_id": "q", "model_a": "m1", "model_b": "m2", "turn": 1,
            "conversation_a": conv("Hello!"), "conversation_b": conv("Hey.")}
    records = [{**base, "winner": "model_b"}, {**base, "winner": "tie (bothbad)"}, {**base, "winner": "model_a"}]
    result = _load(tmp_path, records)
    assert result.format == "chatbot_arena"
    assert [(r.index, r.code) for r in result.quarantine] == [(1, "no_preference")]
    assert [r["chosen"][0]["content"] for r in result.dataset] == ["Hey.", "Hello!"]
    write(result, tmp_path / "out.jsonl", format="chatbot_arena")
    assert _lines(tmp_path / "out.jsonl") == [records[0], records[2]]


def test_autoj_label_and_stack_exchange_paired(tmp_path):
    autoj = [{"scenario": "s", "label": 1, "prompt": "P", "response 1": "one", "response 2": "two"},
             {"scenario": "s", "label": 2, "prompt": "P", "response 1": "one", "response 2": "two"}]
    result = _load(tmp_path, autoj)
    assert result.format == "autoj_pairwise" and result.dataset[0]["chosen"][0]["content"] == "two"
    assert result.by_code == {"no_preference": 1}
    se = [{"qid": 1, "question": "How?", "date": "2020", "response_j": "Like this.", "response_k": "No idea."}]
    result = hubtools.load(_jsonl(tmp_path / "se.jsonl", se))
    assert result.format == "stack_exchange_paired"
    assert (result.dataset[0]["chosen"][0]["content"], result.dataset[0]["rejected"][0]["content"]) == \
        ("Like this.", "No idea.")
    write(result, tmp_path / "se_out.jsonl", format="stack_exchange_paired")
    assert _lines(tmp_path / "se_out.jsonl") == se


# openbmb/UltraFeedback as its README documents a record (src/data_annotation adds fine-grained_score:
# the mean of the aspect ratings, None when an aspect is "N/A")
def _uf_completion(model, response, overall, fine, rating="3"):
    aspect = {"Rating": rating, "Rationale": "r"}
    return {"model": model, "principle": "helpfulness", "custom_system_prompt": "Be helpful.", "response": response,
            "annotations": {"instruction_following": aspect, "honesty": aspect,
                            "truthfulness": {**aspect, "Type": ["1", "2"], "Rationale For Rating": "t"},
                            "helpfulness": {**aspect, "Type": ["1"], "Rationale For Rating": "h"}},
            "critique": "c", "overall_score": overall, "fine-grained_score": fine}


_UF = [
    {"source": "sharegpt", "instruction": "Plan 4 days in Cairo.", "models": ["falcon-40b-instruct", "gpt-4", "starchat", "wizardlm-7b"],
     "correct_answers": ["None"], "incorrect_answers": ["None"],
     "completions": [_uf_completion("falcon-40b-instruct", "Pyramids, then rafting.", 6.0, 2.75),
                     _uf_completion("gpt-4", "Day 1: Giza...", 8.5, 4.75),
                     _uf_completion("starchat", "Alexandria.", 7.0, 3.5),
                     _uf_completion("wizardlm-7b", "Petra in Jordan.", 4.0, 2.0)]},
    # an aspect rated N/A leaves a fine-grained_score of None: the overall scores decide
    {"source": "flan", "instruction": "Is the sky green?", "models": ["a", "b"], "correct_answers": ["No"],
     "incorrect_answers": ["Yes"],
     "completions": [_uf_completion("a", "Yes.", 2.0, None), _uf_completion("b", "No, blue.", 9.0, 4.0)]},
    {"source": "flan", "instruction": "Say hi.", "models": ["a", "b"], "correct_answers": ["None"],
     "incorrect_answers": ["None"],
     "completions": [_uf_completion("a", "Hi.", 7.0, 3.0), _uf_completion("b", "Hello.", 7.0, 3.0)]},
    {"source": "flan", "instruction": "Alone.", "models": ["a"], "correct_answers": ["None"],
     "incorrect_answers": ["None"], "completions": [_uf_completion("a", "One.", 7.0, 3.0)]},
]


def test_ultrafeedback_is_binarised_best_against_worst_and_keeps_every_completion(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl = _jsonl(tmp_path / "uf.jsonl", _UF)
    parquet = tmp_path / "uf.parquet"  # the Hub publishes it as Parquet: nested structs and lists
    pq.write_table(pa.Table.from_pylist(_UF), parquet)
    for path in (jsonl, parquet):
        result = hubtools.load(path)
        assert (result.format, result.kind.value, result.valid, result.total) == ("ultrafeedback", "preference", 2, 4), path
        assert [(r.index, r.code) for r in result.quarantine] == [(2, "no_preference"), (3, "no_preference")], path
        first, second = result.dataset[0], result.dataset[1]
        assert _texts(first["prompt"]) == [("user", "Plan 4 days in Cairo.")]
        assert (first["chosen"][0]["content"], first["rejected"][0]["content"]) == ("Day 1: Giza...", "Petra in Jordan.")
        assert (first["score_chosen"], first["score_rejected"]) == (4.75, 2.0)  # fine-grained scores
        assert (second["chosen"][0]["content"], second["score_chosen"], second["score_rejected"]) == ("No, blue.", 9.0, 2.0)
    # written back, every field of every completion is there; through another format too
    write(hubtools.load(jsonl), tmp_path / "back.jsonl", format="ultrafeedback")
    assert _lines(tmp_path / "back.jsonl") == _UF[:2]
    convert(jsonl, tmp_path / "dpo.jsonl", to="dpo")
    dpo = _lines(tmp_path / "dpo.jsonl")
    assert (dpo[0]["chosen"], dpo[0]["rejected"], dpo[0]["score_field"], dpo[1]["score_field"]) == \
        ("Day 1: Giza...", "Petra in Jordan.", "fine-grained_score", "overall_score")
    convert(tmp_path / "dpo.jsonl", tmp_path / "again.jsonl", to="ultrafeedback")
    assert _lines(tmp_path / "again.jsonl") == _UF[:2]
    # a pair from elsewhere becomes two scored completions
    convert(_jsonl(tmp_path / "pair.jsonl", [{"prompt": "P", "chosen": "good", "rejected": "bad"}]),
            tmp_path / "uf_pair.jsonl", to="ultrafeedback")
    assert _lines(tmp_path / "uf_pair.jsonl") == [{"instruction": "P", "completions": [
        {"response": "good", "overall_score": 1.0}, {"response": "bad", "overall_score": 0.0}]}]


def test_pku_saferlhf_chosen_is_the_better_response_and_safety_labels_are_kept(tmp_path):
    """PKU-Alignment/PKU-SafeRLHF's fields; chosen as its own recipes read it (better_response_id)."""
    base = {"prompt": "How do I pick a lock?", "response_0": "I can't help with that.", "response_1": "Use a tension wrench.",
            "prompt_source": "Alpaca3-70B", "response_0_source": "Alpaca-7B", "response_1_source": "Alpaca3-8B",
            "is_response_0_safe": True, "is_response_1_safe": False, "response_0_harm_category": {"Violence": False},
            "response_1_harm_category": {"Violence": False}, "response_0_severity_level": 0, "response_1_severity_level": 1,
            "safer_response_id": 0}
    records = [{**base, "better_response_id": 1}, {**base, "better_response_id": 0}, {**base, "better_response_id": None}]
    result = _load(tmp_path, records)
    assert result.format == "pku_saferlhf"
    assert [(r.index, r.code) for r in result.quarantine] == [(2, "wrong_type")]
    assert [r["chosen"][0]["content"] for r in result.dataset] == ["Use a tension wrench.", "I can't help with that."]
    write(result, tmp_path / "out.jsonl", format="pku_saferlhf")
    assert _lines(tmp_path / "out.jsonl") == records[:2]
    convert(tmp_path / "in.jsonl", tmp_path / "dpo.jsonl", to="dpo")
    dpo = _lines(tmp_path / "dpo.jsonl")[0]
    assert (dpo["chosen"], dpo["safer_response_id"], dpo["is_response_1_safe"]) == ("Use a tension wrench.", 0, False)


# berkeley-nest/Nectar: an HH-style prompt and seven ranked answers (rank 1 the best)
_NECTAR = [
    {"prompt": "\n\nHuman: What is 2+2?\n\nAssistant: ", "turns": 1, "num_responses": 3, "source": ["sharegpt"],
     "good_natured": True,
     "answers": [{"answer": "5", "model": "a", "rank": 2.0}, {"answer": "4", "model": "b", "rank": 1.0},
                 {"answer": "22", "model": "c", "rank": 3.0}]},
    {"prompt": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a fruit.\n\nAssistant:", "turns": 2, "num_responses": 2,
     "source": ["lmsys-chat-1m"], "good_natured": True,
     "answers": [{"answer": "A chair.", "model": "a", "rank": 2.0}, {"answer": "An apple.", "model": "b", "rank": 1.0}]},
    {"prompt": "\n\nHuman: Tie?\n\nAssistant: ", "turns": 1, "num_responses": 2, "source": ["x"], "good_natured": True,
     "answers": [{"answer": "Yes.", "model": "a", "rank": 1.0}, {"answer": "Yes!", "model": "b", "rank": 1.0}]},
]


def test_nectar_best_ranked_answer_against_the_worst_with_the_turns_of_its_transcript(tmp_path):
    result = _load(tmp_path, _NECTAR)
    assert (result.format, result.valid) == ("nectar", 2)
    assert [(r.index, r.code) for r in result.quarantine] == [(2, "no_preference")]
    first, second = result.dataset[0], result.dataset[1]
    assert _texts(first["prompt"]) == [("user", "What is 2+2?")]
    assert (first["chosen"][0]["content"], first["rejected"][0]["content"]) == ("4", "22")
    assert _texts(second["prompt"]) == [("user", "Hi"), ("assistant", "Hello!"), ("user", "Name a fruit.")]
    assert second["chosen"][0]["content"] == "An apple."
    write(result, tmp_path / "out.jsonl", format="nectar")
    assert _lines(tmp_path / "out.jsonl") == _NECTAR[:2]  # the prompt's end as it was, every answer
    convert(tmp_path / "in.jsonl", tmp_path / "trl.jsonl", to="trl")
    convert(tmp_path / "trl.jsonl", tmp_path / "again.jsonl", to="nectar")  # 'answers' beside the pair: still trl
    assert _lines(tmp_path / "again.jsonl") == _NECTAR[:2]


_WEBGPT = [  # openai/webgpt_comparisons: scores in [-1, 1], 0 a tie
    {"question": {"dataset": "eli5", "id": "q1", "full_text": "Why is the sky blue?"},
     "quotes_0": {"title": ["Sky"], "extract": ["..."]}, "answer_0": "Because.", "tokens_0": [1, 2], "score_0": -1.0,
     "quotes_1": {"title": [], "extract": []}, "answer_1": "Rayleigh scattering.", "tokens_1": [3], "score_1": 1.0},
    {"question": {"dataset": "eli5", "id": "q2", "full_text": "Tie?"},
     "quotes_0": {"title": [], "extract": []}, "answer_0": "A.", "tokens_0": [], "score_0": 0.0,
     "quotes_1": {"title": [], "extract": []}, "answer_1": "B.", "tokens_1": [], "score_1": 0.0},
]
_TLDR = [  # openai/summarize_from_feedback, comparisons: a Reddit post and a CNN/DM article
    {"info": {"id": "t3_1", "post": "I lost my keys again...", "title": "Keys", "subreddit": "tifu", "site": None,
              "article": None}, "summaries": [{"text": " Lost keys.", "policy": "sup2", "note": None},
                                              {"text": " I like keys a lot.", "policy": "ppo", "note": "bad"}],
     "choice": 0, "worker": "w1", "batch": "batch3", "split": "train", "extra": {"confidence": 8}},
    {"info": {"id": "c1", "post": None, "title": None, "subreddit": None, "site": "cnn", "article": "Storm hits."},
     "summaries": [{"text": " Nothing.", "policy": "a", "note": None}, {"text": " A storm hit.", "policy": "b", "note": None}],
     "choice": 1, "worker": "w2", "batch": "batch9", "split": "valid1", "extra": {"confidence": None}},
]


def test_webgpt_and_summarize_from_feedback_pick_the_labellers_choice_and_come_back_whole(tmp_path):
    web = hubtools.load(_jsonl(tmp_path / "webgpt.jsonl", _WEBGPT))
    assert (web.format, web.valid, [(r.index, r.code) for r in web.quarantine]) == \
        ("webgpt_comparisons", 1, [(1, "no_preference")])
    assert (_texts(web.dataset[0]["prompt"]), web.dataset[0]["chosen"][0]["content"]) == \
        ([("user", "Why is the sky blue?")], "Rayleigh scattering.")
    tldr = hubtools.load(_jsonl(tmp_path / "tldr.jsonl", _TLDR))
    assert (tldr.format, tldr.valid) == ("summarize_from_feedback", 2)
    assert _texts(tldr.dataset[0]["prompt"]) == [("user", "TITLE: Keys\n\nPOST: I lost my keys again...\n\nTL;DR:")]
    assert _texts(tldr.dataset[1]["prompt"]) == [("user", "ARTICLE: Storm hits.\n\nTL;DR:")]
    assert [r["chosen"][0]["content"] for r in tldr.dataset] == [" Lost keys.", " A storm hit."]
    for name, records, fmt in (("webgpt", _WEBGPT[:1], "webgpt_comparisons"), ("tldr", _TLDR, "summarize_from_feedback")):
        convert(tmp_path / f"{name}.jsonl", tmp_path / f"{name}_dpo.jsonl", to="dpo")
        convert(tmp_path / f"{name}_dpo.jsonl", tmp_path / f"{name}_back.jsonl", to=fmt)
        assert _lines(tmp_path / f"{name}_back.jsonl") == records, name


def test_dpo_keeps_the_prompt_fields_it_does_not_read(tmp_path):
    """A 'question' beside a 'prompt', or an 'input' with no instruction, was consumed and lost."""
    records = [{"prompt": "P", "question": "Q", "chosen": "c", "rejected": "r"},
               {"prompt": "P", "input": "context", "chosen": "c", "rejected": "r"},
               {"instruction": "I", "input": "joined", "chosen": "c", "rejected": "r"}]
    result = _load(tmp_path, records)
    assert result.format == "dpo"
    assert [_texts(r["prompt"]) for r in result.dataset] == [[("user", "P")], [("user", "P")], [("user", "I\njoined")]]
    write(result, tmp_path / "out.jsonl", format="dpo")
    assert _lines(tmp_path / "out.jsonl") == [records[0], records[1],
                                              {"prompt": "I\njoined", "chosen": "c", "rejected": "r"}]


def test_openorca_question_response_with_its_system_prompt(tmp_path):
    """Open-Orca/OpenOrca (id, system_prompt, question, response) was read as judge prompts and refused."""
    records = [{"id": "niv.242684", "system_prompt": "You are an AI assistant.", "question": "Translate: hi",
                "response": "hola"},
               {"id": "flan.1", "system_prompt": "Think step by step.", "question": "2+2?", "response": "4"}]
    result = _load(tmp_path, records)
    assert (result.format, result.valid) == ("question_response", 2)
    assert _texts(result.dataset[0]["messages"]) == [("system", "You are an AI assistant."), ("user", "Translate: hi"),
                                                      ("assistant", "hola")]
    write(result, tmp_path / "out.jsonl", format="question_response")
    assert _lines(tmp_path / "out.jsonl") == records
    # an 'input' kept from elsewhere that is not part of the prompt is written, not dropped
    convert(_jsonl(tmp_path / "kto.jsonl", [{"prompt": "P", "completion": "C", "input": "not joined"}]),
            tmp_path / "qr.jsonl", to="question_response")
    assert _lines(tmp_path / "qr.jsonl") == [{"question": "P", "response": "C", "input": "not joined"}]


def test_messages_given_as_one_json_string_with_an_empty_system_turn(tmp_path):
    """microsoft/orca-agentinstruct-1M-v1 stores each conversation as a JSON string starting with an
    empty system turn; both were refused (wrong_type, then empty_text)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def conv(i):
        return [{"role": "system", "content": ""}, {"role": "user", "content": f"Question {i}?"},
                {"role": "assistant", "content": f"Answer {i}."}]

    records = [{"messages": json.dumps(conv(i)), "split": "analytical_reasoning"} for i in range(40)]
    records[7]["messages"] = "[{\"role\": \"user\""  # cut short
    records[9]["messages"] = json.dumps([{"role": "system", "content": ""}, {"role": "user", "content": ""},
                                         {"role": "assistant", "content": "A."}])  # an empty user turn still is a hole
    parquet = tmp_path / "agentinstruct.parquet"
    pq.write_table(pa.Table.from_pylist(records), parquet)
    for path in (_jsonl(tmp_path / "agentinstruct.jsonl", records), parquet):
        result = hubtools.load(path)
        assert (result.format, result.valid) == ("openai", 38), path
        assert [(r.index, r.code) for r in result.quarantine] == [(7, "wrong_type"), (9, "empty_text")], path
        assert _texts(result.dataset[0]["messages"]) == [("system", ""), ("user", "Question 0?"), ("assistant", "Answer 0.")]
    write(result, tmp_path / "out.jsonl", format="openai")
    assert _lines(tmp_path / "out.jsonl")[0] == {"messages": conv(0), "split": "analytical_reasoning"}


def test_a_pair_from_elsewhere_is_written_with_a_vote_for_the_chosen_reply(tmp_path):
    dpo = [{"prompt": "P", "chosen": "good", "rejected": "bad"}]
    convert(_jsonl(tmp_path / "in.jsonl", dpo), tmp_path / "panda.jsonl", to="pandalm")
    out = _lines(tmp_path / "panda.jsonl")[0]
    assert (out["response1"], out["annotator1"]) == ("good", 1)
    assert hubtools.load(tmp_path / "panda.jsonl").dataset[0]["chosen"][0]["content"] == "good"


# ---- OpenAssistant trees ---------------------------------------------------------------------

def _node(mid, parent, role, text, rank=None, replies=()):
    return {"message_id": mid, "parent_id": parent, "role": role, "text": text, "rank": rank, "lang": "en",
            "replies": list(replies)}


TREE = {"message_tree_id": "t1", "tree_state": "ready_for_export", "prompt": _node("p", None, "prompter", "Q?", replies=[
    _node("a1", "p", "assistant", "A1", rank=1, replies=[_node("f1", "a1", "prompter", "Thanks")]),
    _node("a2", "p", "assistant", "A2", rank=0, replies=[
        _node("p2", "a2", "prompter", "Why?", replies=[_node("a3", "p2", "assistant", "Because.", rank=0)])]),
])}


def test_oasst_tree_gives_one_conversation_per_path_and_keeps_every_field(tmp_path):
    result = _load(tmp_path, [TREE, {**TREE, "message_tree_id": "t2", "prompt": _node("x", None, "prompter", "?")}])
    assert (result.format, result.valid, result.by_code) == ("oasst", 2, {"role_order": 1})
    assert result.summary()["trees"] == {"in": 2, "read": 1, "quarantined": 1, "conversations": 2,
                                         "unlinked_messages": 0}
    assert sorted(_texts(r["messages"])[-1][1] for r in result.dataset) == ["A1", "Because."]
    write(result, tmp_path / "out.jsonl", format="oasst")
    again = hubtools.load(tmp_path / "out.jsonl")
    assert again.dataset.to_list()[0]["hubtools_extra"] == result.dataset.to_list()[0]["hubtools_extra"]
    unanswered = [r for r in _lines(tmp_path / "out.jsonl") if r["prompt"]["replies"][0]["message_id"] == "a1"]
    assert unanswered[0]["prompt"]["replies"][0]["replies"][0]["text"] == "Thanks"  # the follow-up is kept


def test_oasst_best_path_follows_the_best_rank(tmp_path):
    result = _load(tmp_path, [TREE], oasst_path="best")
    assert result.valid == 1
    assert _texts(result.dataset[0]["messages"]) == [("user", "Q?"), ("assistant", "A2"), ("user", "Why?"),
                                                     ("assistant", "Because.")]


def test_oasst_flat_messages_are_grouped_into_trees_and_orphans_quarantined(tmp_path):
    flat = [{k: v for k, v in m.items() if k != "replies"} | {"message_tree_id": "t1"} for m in [
        _node("p", None, "prompter", "Q?"), _node("a", "p", "assistant", "A", rank=0),
        _node("b", "p", "assistant", "B", rank=1), _node("o", "gone", "assistant", "Orphan")]]
    result = _load(tmp_path, flat)
    assert (result.format, result.valid) == ("oasst_messages", 2)
    assert [(r.index, r.code) for r in result.quarantine] == [(3, "unpaired_transcript")]
    assert sorted(result.dataset["hubtools_index"]) == [1, 2]  # each conversation: its last message
    assert result.trees.to_dict() == {"in": 1, "read": 1, "quarantined": 0, "conversations": 2,
                                      "unlinked_messages": 1}
    best = _load(tmp_path, flat, oasst_path="best")
    assert _texts(best.dataset[0]["messages"])[-1] == ("assistant", "A")


def test_oasst_trees_are_written_as_trees_not_one_message_a_record():
    assert "oasst" in writable_formats("sft") and "oasst_messages" not in writable_formats("sft")
