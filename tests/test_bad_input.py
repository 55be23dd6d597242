"""Bad input: each case gives a quarantine row with a reason or one clear error; nothing is lost."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import hubtools
from hubtools.cli import app
from hubtools.errors import InputUnusableError

GOOD = {"instruction": "Say hi", "input": "", "output": "Hi!"}


def _jsonl(path, lines: list[bytes | str | dict]) -> None:
    out = []
    for line in lines:
        if isinstance(line, dict):
            line = json.dumps(line)
        out.append(line.encode() if isinstance(line, str) else line)
    path.write_bytes(b"\n".join(out) + b"\n")


def _load(path, **kwargs):
    result = hubtools.load(path, **kwargs)
    assert result.total == result.valid + result.quarantined
    return result


def _codes(result) -> dict[int, str]:
    return {row.index: row.code for row in result.quarantine}


def test_truncated_jsonl_line_is_quarantined_and_the_rest_kept(tmp_path):
    path = tmp_path / "cut.jsonl"
    _jsonl(path, [GOOD, '{"instruction": "Say hi", "output": "Hel', GOOD])
    result = _load(path)
    assert result.valid == 2 and _codes(result) == {1: "truncated"}
    assert result.quarantine[0].raw == '{"instruction": "Say hi", "output": "Hel'


def test_json_array_cut_short_keeps_whole_records_and_quarantines_the_tail(tmp_path):
    path = tmp_path / "cut.json"
    text = json.dumps([GOOD, GOOD, GOOD], indent=2)
    path.write_text(text[: text.rindex('"output"') + 12])
    result = _load(path)
    assert result.valid == 2 and _codes(result) == {2: "truncated"}


@pytest.mark.parametrize(("record", "code"), [
    ({"instruction": 42, "input": "", "output": "x"}, "wrong_type"),
    # no reply: a prompt in an SFT file (prompt-only, see test_prompt_lists.py)
    ({"instruction": "a", "input": "", "output": None}, "no_reply"),
    ({"instruction": "a", "input": "", "output": "   "}, "no_reply"),
    ({"instruction": "", "input": "", "output": "x"}, "empty_text"),
    ({"instruction": "  ", "input": "the input alone is no instruction", "output": "x"}, "empty_text"),
])
def test_wrong_types_nulls_and_blank_text_are_quarantined(tmp_path, record, code):
    path = tmp_path / "bad.jsonl"
    _jsonl(path, [GOOD, record, GOOD])
    result = _load(path)
    assert _codes(result) == {1: code}
    assert result.quarantine[0].raw == json.dumps(record)


def test_string_instead_of_message_list_is_a_wrong_type(tmp_path):
    path = tmp_path / "chat.jsonl"
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    _jsonl(path, [good, {"messages": "hi there"}, good])
    result = _load(path)
    assert _codes(result) == {1: "wrong_type"}
    assert "not a list of messages" in result.quarantine[0].reason


def test_utf8_bom_and_crlf_line_endings_read_cleanly(tmp_path):
    path = tmp_path / "windows.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(json.dumps(GOOD).encode() for _ in range(3)) + b"\r\n")
    result = _load(path)
    assert result.valid == 3 and result.quarantined == 0
    assert result.dataset[0]["messages"][1]["content"] == "Hi!"


def test_mixed_formats_majority_wins_and_others_name_their_format(tmp_path):
    path = tmp_path / "mixed.jsonl"
    chat = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}
    _jsonl(path, [GOOD, chat, GOOD, GOOD, {"foo": 1}])
    result = _load(path)
    assert result.format == "alpaca" and result.detection.confidence == pytest.approx(0.6)
    assert _codes(result) == {1: "format_mismatch", 4: "format_mismatch"}
    reasons = {row.index: row.reason for row in result.quarantine}
    assert "looks like sharegpt" in reasons[1]
    assert "unrecognised record (keys: foo)" in reasons[4]


def test_ten_megabyte_field_is_quarantined_as_too_long(tmp_path):
    path = tmp_path / "big.jsonl"
    _jsonl(path, [GOOD, {**GOOD, "output": "x" * 10_000_000}])
    result = _load(path)
    assert _codes(result) == {1: "too_long"}
    assert _load(path, max_chars=20_000_000).quarantined == 0


def test_invalid_utf8_on_one_line_is_quarantined(tmp_path):
    path = tmp_path / "latin1.jsonl"
    _jsonl(path, [GOOD, b'{"instruction": "caf\xe9", "input": "", "output": "ok"}', GOOD])
    result = _load(path)
    assert _codes(result) == {1: "invalid_utf8"}
    assert "caf" in result.quarantine[0].raw


def test_invalid_utf8_inside_a_json_array_is_quarantined(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(b'[{"instruction": "a", "output": "b"}, {"instruction": "caf\xe9", "output": "b"}]')
    result = _load(path)
    assert result.valid == 1 and _codes(result) == {1: "invalid_utf8"}


def test_blank_lines_are_skipped_and_not_counted(tmp_path):
    path = tmp_path / "gaps.jsonl"
    _jsonl(path, ["", GOOD, "   ", "", {"instruction": "a", "input": "", "output": ""}, ""])
    result = _load(path)
    assert result.total == 2
    assert _codes(result) == {1: "no_reply"}


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file_is_unusable(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputUnusableError, match="empty"):
        hubtools.load(path)


def test_binary_file_renamed_jsonl_is_unusable(tmp_path):
    path = tmp_path / "model.jsonl"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(InputUnusableError, match="binary file"):
        hubtools.load(path)


def test_a_json_value_that_is_not_an_object_is_quarantined(tmp_path):
    path = tmp_path / "values.jsonl"
    _jsonl(path, [GOOD, "[1, 2]", '"just text"', GOOD])
    result = _load(path)
    assert _codes(result) == {1: "not_an_object", 2: "not_an_object"}


@pytest.mark.parametrize("case", ["empty", "binary", "missing"])
def test_cli_unusable_input_exits_2_with_one_line_and_no_traceback(tmp_path, case):
    path = tmp_path / "in.jsonl"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "binary":
        path.write_bytes(b"\x00\x01\x02" * 100)
    result = CliRunner().invoke(app, ["validate", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output + result.stderr


def test_cli_summary_states_the_invariant_for_every_bad_case(tmp_path):
    path = tmp_path / "all.jsonl"
    _jsonl(path, [GOOD, '{"instruction": "cut', {"instruction": 1, "output": "x"},
                  b'{"instruction": "\xff", "output": "x"}', "", {"messages": "x"}, GOOD])
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["validate", str(path), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["total"] == 6 == summary["valid"] + summary["quarantined"]
    assert summary["by_code"] == {"truncated": 1, "wrong_type": 1, "invalid_utf8": 1, "format_mismatch": 1}
    quarantine = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    assert [q["index"] for q in quarantine] == [1, 2, 3, 4]
    valid = [json.loads(line) for line in (out / "valid.jsonl").read_text().splitlines()]
    assert valid == [GOOD, GOOD]


def test_directory_of_files_reads_in_order_with_continuous_indices(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _jsonl(data / "a.jsonl", [GOOD, GOOD])
    (data / "b.json").write_text(json.dumps([GOOD, {"instruction": "x", "input": "", "output": ""}]))
    (data / "notes.md").write_text("not data")
    result = _load(data)
    assert result.total == 4 and _codes(result) == {3: "no_reply"}
    assert result.quarantine[0].file == "b.json"


def test_gzip_output_is_compressed_and_reads_back(tmp_path):
    import gzip

    from hubtools.convert import write

    src = tmp_path / "in.jsonl"
    _jsonl(src, [GOOD, GOOD])
    write(hubtools.load(src), tmp_path / "out.jsonl.gz", format="alpaca")
    assert [json.loads(line) for line in gzip.open(tmp_path / "out.jsonl.gz", "rt")] == [GOOD, GOOD]
    assert hubtools.load(tmp_path / "out.jsonl.gz").valid == 2


@pytest.mark.parametrize(("broken", "why", "code"), [
    ('{"instruction": "a", "input": "", "output": "b",}', "trailing comma", "invalid_json"),
    ('{"instruction": "a" "input": "", "output": "b"}', "missing comma", "invalid_json"),
    ("{'instruction': 'a', 'input': '', 'output': 'b'}", "single quotes", "invalid_json"),
    ('{"instruction": "say \\"}\\" and ]", "input": "", "output": "b",}', "brackets in a string", "invalid_json"),
    ('{"instruction": "a, "input": "", "output": "b"}', "an unclosed string", "invalid_json"),
    # NaN is not JSON: the strict decoder refuses it (Python's own would read it as a float)
    ('{"instruction": "a", "input": "", "output": NaN}', "NaN", "invalid_json"),
])
def test_a_broken_record_mid_array_is_quarantined_alone(tmp_path, broken, why, code):
    records = [dict(GOOD, instruction=f"Say hi {i}") for i in range(6)]
    text = "[\n" + ",\n".join([*(json.dumps(r) for r in records[:3]), broken,
                                *(json.dumps(r) for r in records[3:])]) + "\n]\n"
    path = tmp_path / "broken.json"
    path.write_text(text)
    result = _load(path)
    assert (result.total, result.valid) == (7, 6), why
    assert _codes(result) == {3: code}
    if code == "invalid_json":
        assert result.quarantine[0].raw == broken
    assert [r["messages"][0]["content"] for r in result.dataset] == [r["instruction"] for r in records]


def test_a_broken_last_record_and_one_with_no_end_keep_what_they_can(tmp_path):
    path = tmp_path / "last.json"
    path.write_text('[{"instruction": "a", "input": "", "output": "b"},\n {"instruction": "c", "output": }]')
    result = _load(path)
    assert (result.valid, _codes(result)) == (1, {1: "invalid_json"})
    path.write_text('[{"instruction": "a", "input": "", "output": "b"}, {"instruction": "c", "output": "d"')
    assert _codes(_load(path)) == {1: "truncated"}  # cut short: the rest of the file is the record
