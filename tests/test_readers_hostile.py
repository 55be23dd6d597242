"""Hostile input: each reader case ends in a quarantine row with a code or a clear refusal, never a
traceback or a crash, and nothing is changed silently (numbers, keys, types)."""

from __future__ import annotations

import csv
import datetime
import decimal
import gzip
import hashlib
import json
import multiprocessing
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import hubtools
from hubtools.app.isolate import run_isolated
from hubtools.app.load_tab import load_upload
from hubtools.app.session import AppSettings, Session
from hubtools.convert import validate_to_dir
from hubtools.errors import InputTooLargeError, InputUnusableError, ReaderCrashedError

GOOD = {"instruction": "Say hi", "input": "", "output": "Hi!"}
GOOD_LINE = json.dumps(GOOD)


def _validate(path, out, **kwargs) -> tuple[dict, list[dict], list[dict]]:
    """validate_to_dir, then (summary, quarantine rows, valid records) as written."""
    summary = validate_to_dir(path, out, **kwargs)
    assert summary["total"] == summary["valid"] + summary["quarantined"]
    rows = [json.loads(line) for line in Path(summary["files"]["quarantine"]).read_text().splitlines()]
    valid_path = Path(summary["files"]["valid"])
    if valid_path.suffix == ".parquet":
        valid = pq.read_table(valid_path).to_pylist()
        valid = [{k: v for k, v in row.items() if v is not None} for row in valid]
    elif valid_path.suffix == ".csv":
        valid = list(csv.DictReader(valid_path.open(newline="")))
    else:
        text = valid_path.read_text()
        valid = json.loads(text) if valid_path.suffix == ".json" else [json.loads(line) for line in text.splitlines()]
    return summary, rows, valid


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


# ---- nesting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [200, 3_000, 20_000])
def test_deep_jsonl_line_is_quarantined_and_never_reaches_the_columnar_parser(tmp_path, levels):
    # 20,000 levels segfaulted pyarrow's JSON parser (the fast path for clean JSON Lines)
    path = tmp_path / "deep.jsonl"
    path.write_text("\n".join([GOOD_LINE] * 5 + [f'{{"instruction": "a", "output": "b", "x": {_deep(levels)}}}']) + "\n")
    summary, rows, valid = _validate(path, tmp_path / "out")
    assert (summary["valid"], summary["by_code"]) == (5, {"too_deep": 1})
    assert rows[0]["index"] == 5 and "deeper than 128 levels" in rows[0]["reason"]


def test_deep_record_in_a_json_array_and_in_a_single_json_document(tmp_path):
    array = tmp_path / "deep.json"
    array.write_text(f'[{GOOD_LINE}, {{"instruction": "a", "output": "b", "x": {_deep(5_000)}}}, {GOOD_LINE}]')
    summary, rows, _ = _validate(array, tmp_path / "a")
    assert (summary["valid"], summary["by_code"]) == (2, {"too_deep": 1}) and rows[0]["index"] == 1
    single = tmp_path / "single.json"
    single.write_text(f'{{"instruction": "a", "output": "b", "x": {_deep(300)}}}')
    with pytest.raises(InputUnusableError, match="deeper than 128"):
        hubtools.load(single)


def test_nesting_up_to_the_bound_is_kept(tmp_path):
    path = tmp_path / "nested.jsonl"
    path.write_text(json.dumps({**GOOD, "x": json.loads(_deep(100))}) + "\n")
    summary, _, valid = _validate(path, tmp_path / "out")
    assert summary["valid"] == 1 and valid[0]["x"] == json.loads(_deep(100))


# ---- numbers and keys: nothing changed silently --------------------------------------------------

_TRICKY = [
    ('"n": -1e-400', "unsafe_number", "too small"),
    ('"n": 1e400', "unsafe_number", "too large"),
    ('"n": 123456789012345678901234567890', "unsafe_number", "64 bits"),
    ('"n": ' + "1" * 5_000, "unsafe_number", "5,000 digits"),
    ('"instruction": "again"', "duplicate_key", "'instruction' appears twice"),
    ('"n": NaN', "invalid_json", ""),
]


@pytest.mark.parametrize("container", ["json", "jsonl"])
def test_numbers_a_parser_would_change_and_repeated_keys_are_quarantined(tmp_path, container):
    records = [f'{{"instruction": "a", "output": "b", {extra}}}' for extra, _, _ in _TRICKY]
    lines = [GOOD_LINE, *records, '{"instruction": "a", "output": "b", "n": 9007199254740993, "m": -0.0}']
    path = tmp_path / f"numbers.{container}"
    path.write_text("[" + ",\n".join(lines) + "]" if container == "json" else "\n".join(lines) + "\n")
    summary, rows, valid = _validate(path, tmp_path / "out")
    assert [row["code"] for row in rows] == [code for _, code, _ in _TRICKY]
    for row, (_, _, words) in zip(rows, _TRICKY):
        assert words in row["reason"]
    # integers past 2^53 that fit 64 bits, and a literal -0.0, are kept exactly
    assert summary["valid"] == 2
    written = (tmp_path / "out" / f"valid.{container}").read_text()
    assert "9007199254740993" in written and "-0.0" in written


def test_a_csv_cell_is_decoded_only_when_json_reads_it_exactly(tmp_path):
    path = tmp_path / "cells.csv"
    path.write_text('instruction,output,score\nSay hi,Hi!,-1e-400\nSay yo,Yo!,2\n')
    summary, _, valid = _validate(path, tmp_path / "out")
    assert summary["valid"] == 2 and [row["score"] for row in valid] == ["-1e-400", "2"]  # kept as written


# ---- encodings ----------------------------------------------------------------------------------


def test_latin1_csv_rows_are_quarantined_as_invalid_utf8_and_the_rest_read(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("instruction,input,output\ncafé crème,,ok\nSay hi,,Hi!\n".encode("latin-1"))
    summary, rows, valid = _validate(path, tmp_path / "out")
    assert (summary["valid"], summary["by_code"]) == (1, {"invalid_utf8": 1})
    assert "caf\\xe9 cr\\xe8me" in rows[0]["raw"]  # the bytes shown as they are, not replaced


def test_invalid_utf8_inside_a_malformed_record_of_a_json_array(tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(b'[' + GOOD_LINE.encode() + b', {"instruction": "caf\xe9", "output": "b",}, '
                     + GOOD_LINE.encode() + b']')
    summary, rows, _ = _validate(path, tmp_path / "out")
    assert (summary["valid"], summary["by_code"]) == (2, {"invalid_json": 1})
    assert rows[0]["raw"] == '{"instruction": "caf\\xe9", "output": "b",}'


def test_lone_surrogate_escape_in_a_json_array_is_quarantined(tmp_path):
    path = tmp_path / "surrogate.json"
    path.write_text(f'[{{"instruction": "a\\ud800", "output": "b"}}, {GOOD_LINE}, '
                    '{"instruction": "\\ud83d\\ude00", "output": "b"}]')
    summary, rows, valid = _validate(path, tmp_path / "out")
    assert (summary["valid"], summary["by_code"]) == (2, {"invalid_json": 1})
    assert "lone surrogate" in rows[0]["reason"]
    assert valid[1]["instruction"] == "\U0001F600"  # a proper pair is one character


# ---- Parquet --------------------------------------------------------------------------------------


def test_parquet_binary_decimal_and_timestamp_columns_are_kept_as_text_with_the_type_noted(tmp_path):
    path = tmp_path / "types.parquet"
    pq.write_table(pa.table({
        "instruction": ["a", "b"], "output": ["x", "y"],
        "blob": pa.array([b"\x00\xff", b"text"]),
        "price": pa.array([decimal.Decimal("1.10"), decimal.Decimal("2.50")], pa.decimal128(5, 2)),
        "at": pa.array([datetime.datetime(2020, 1, 2, 3, 4, 5), None], pa.timestamp("us")),
    }), path)
    summary, _, valid = _validate(path, tmp_path / "out")
    assert summary["valid"] == 2
    assert [(r["blob"], r["price"]) for r in valid] == [("AP8=", "1.10"), ("text", "2.50")]
    assert valid[0]["at"] == "2020-01-02T03:04:05" and "at" not in valid[1]
    notes = " | ".join(summary["notes"])
    assert "'blob' is binary" in notes and "'price' is decimal128(5, 2)" in notes and "'at' is timestamp[us]" in notes


def test_parquet_nan_is_quarantined_not_written_as_null(tmp_path):
    path = tmp_path / "nan.parquet"
    pq.write_table(pa.table({"instruction": ["a", "b"], "output": ["x", "y"], "score": [float("nan"), 1.5]}), path)
    summary, rows, valid = _validate(path, tmp_path / "out")
    assert (summary["by_code"], [r["score"] for r in valid]) == ({"unsafe_number": 1}, [1.5])


def test_corrupt_parquet_page_quarantines_its_row_group_and_keeps_the_others(tmp_path):
    path = tmp_path / "pages.parquet"
    rows = [{"instruction": f"question {i}", "output": f"answer {i}"} for i in range(30)]
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=10, compression="none")
    data = bytearray(path.read_bytes())
    middle = bytes(data).index(b"question 15")  # inside the second row group's data page
    data[middle - 40:middle + 40] = b"\xff" * 80
    path.write_bytes(bytes(data))
    summary, quarantine, _ = _validate(path, tmp_path / "out")
    assert summary["valid"] == 20 and summary["by_code"] == {"unreadable": 1}
    assert "row group 1" in quarantine[0]["reason"]


# ---- gzip ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_damaged_gzip_keeps_the_whole_lines_and_ends_in_one_truncated_record(tmp_path, damage):
    lines = (json.dumps({**GOOD, "instruction": hashlib.sha256(b"%d" % i).hexdigest()}) for i in range(2000))
    packed = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2] if damage == "truncated" else
                     packed[: len(packed) // 2] + b"\xff" * 64 + packed[len(packed) // 2 + 64:])
    summary, rows, _ = _validate(path, tmp_path / "out")
    assert summary["valid"] > 100 and rows[-1]["code"] == "truncated" and rows[-1]["index"] == summary["total"] - 1
    if damage == "truncated":
        assert summary["by_code"] == {"truncated": 1} and "cut short" in rows[-1]["reason"]
    else:  # deflate may inflate damaged bytes into garbage before it sees the damage: those lines are quarantined
        assert "corrupt" in rows[-1]["reason"]


def test_gzip_json_array_and_csv_cut_short(tmp_path):
    records = [{**GOOD, "instruction": f"Say hi {i}"} for i in range(500)]
    array = gzip.compress(json.dumps(records).encode(), mtime=0)
    (tmp_path / "a.json.gz").write_bytes(array[: len(array) // 2])
    summary, _, _ = _validate(tmp_path / "a.json.gz", tmp_path / "a")
    assert summary["by_code"] == {"truncated": 1} and summary["valid"] > 50
    table = gzip.compress(("instruction,output\n" + "".join(f"q{i},a{i}\n" for i in range(3000))).encode(), mtime=0)
    (tmp_path / "t.csv.gz").write_bytes(table[: len(table) // 2])
    summary, _, valid = _validate(tmp_path / "t.csv.gz", tmp_path / "t")
    assert summary["by_code"] == {"truncated": 1} and valid[-1]["output"] == f"a{summary['valid'] - 1}"


def test_a_file_named_gz_that_is_not_gzip_is_refused(tmp_path):
    path = tmp_path / "plain.jsonl.gz"
    path.write_text(GOOD_LINE + "\n")
    with pytest.raises(InputUnusableError, match="not a gzip file"):
        hubtools.load(path)


def test_the_byte_limit_counts_decompressed_bytes(tmp_path):
    path = tmp_path / "bomb.jsonl.gz"
    line = json.dumps({**GOOD, "output": "x" * 5_000_000}) + "\n"
    path.write_bytes(gzip.compress(line.encode() * 4, mtime=0))
    assert path.stat().st_size < 200_000
    with pytest.raises(InputTooLargeError, match="over 10 MB once decompressed"):
        hubtools.load(path, max_bytes=10 * 1024 * 1024)
    assert hubtools.load(path).total == 4  # the command line gives no limit


def test_too_long_record_keeps_a_prefix_its_size_and_sha256(tmp_path):
    path = tmp_path / "long.jsonl"
    long_line = json.dumps({**GOOD, "output": "y" * 3_000_000}).encode()
    path.write_bytes(GOOD_LINE.encode() + b"\n" + long_line + b"\n")
    summary, rows, _ = _validate(path, tmp_path / "out")
    assert summary["by_code"] == {"too_long": 1}
    assert rows[0]["raw"] == long_line[:2000].decode()
    assert rows[0]["raw_bytes"] == len(long_line) and rows[0]["raw_sha256"] == hashlib.sha256(long_line).hexdigest()
    assert (tmp_path / "out" / "quarantine.jsonl").stat().st_size < 5_000


# ---- directories ---------------------------------------------------------------------------------


def test_directory_with_a_binary_and_an_unreadable_file_reads_the_rest(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_text(GOOD_LINE + "\n" + GOOD_LINE + "\n")
    (data / "b.jsonl").write_bytes(bytes(range(256)) * 8)
    # a file that opens but cannot be read (EIO), as root too
    (data / "c.jsonl").symlink_to("/proc/self/mem")
    (data / "d.json").write_text(json.dumps([GOOD]))
    summary, rows, _ = _validate(data, tmp_path / "out")
    assert summary["valid"] == 3 and summary["by_code"] == {"unreadable": 2}
    assert [(row["file"], row["code"]) for row in rows] == [("b.jsonl", "unreadable"), ("c.jsonl", "unreadable")]
    assert "binary file" in rows[0]["reason"]


def _load_as_nobody(path: str, results) -> None:
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)  # root reads every file: drop to nobody, who cannot
    try:
        result = hubtools.load(path)
    except InputUnusableError as exc:
        results.put(f"refused: {exc}")
    else:
        results.put(f"read: {result.valid} {result.by_code} {[row.file for row in result.quarantine]}")


def _run_as_nobody(path: Path) -> str:
    """Load ``path`` in a forked child that cannot bypass file permissions (as root it becomes nobody)."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_load_as_nobody, args=(str(path), results))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    return results.get(timeout=5)


def test_permissions_a_file_is_quarantined_a_directory_is_refused():
    with tempfile.TemporaryDirectory() as top:
        os.chmod(top, 0o755)
        data = Path(top, "data")
        data.mkdir(mode=0o755)
        (data / "a.jsonl").write_text(GOOD_LINE + "\n")
        (data / "secret.jsonl").write_text(GOOD_LINE + "\n")
        for path in data.iterdir():
            path.chmod(0o644)
        (data / "secret.jsonl").chmod(0)
        hubtools.load(data / "a.jsonl")  # every module the child needs is imported before it drops its rights
        assert _run_as_nobody(data).strip() == "read: 1 {'unreadable': 1} ['secret.jsonl']"
        data.chmod(0o311)  # can pass through, cannot list
        assert "cannot list this directory (Permission denied)" in _run_as_nobody(data)
        data.chmod(0o755)
        single = data / "secret.jsonl"
        assert "cannot read this file (Permission denied)" in _run_as_nobody(single)


# ---- the app -------------------------------------------------------------------------------------


def _crash(_: int) -> None:
    import ctypes

    ctypes.string_at(0)  # a segfault, as a parser bug would give


def test_a_crash_in_the_reader_process_is_a_refusal_and_the_next_call_works():
    with pytest.raises(ReaderCrashedError, match="crashed on this input .signal 11"):
        run_isolated(_crash, 0)
    assert run_isolated(sorted, [3, 1, 2]) == [1, 2, 3]
    with pytest.raises(InputUnusableError, match="no such file"):  # errors come back with their type
        run_isolated(hubtools.load, "/nonexistent/file.jsonl")


def test_app_upload_of_deep_nesting_and_of_a_gzip_bomb(tmp_path):
    deep = tmp_path / "deep.jsonl"
    deep.write_text(GOOD_LINE + "\n" + f'{{"instruction": "a", "output": "b", "x": {_deep(20_000)}}}' + "\n")
    settings = AppSettings(max_upload_mb=1, app_dir=tmp_path)
    screen = load_upload(settings, str(deep), Session())
    assert "1 valid" in screen.summary and [row[1] for row in screen.quarantine] == ["too_deep"]
    bomb = tmp_path / "bomb.jsonl.gz"
    packed = gzip.compress((json.dumps({**GOOD, "output": "z" * 4_000_000}) + "\n").encode(), mtime=0)
    bomb.write_bytes(packed[:-4] + (100).to_bytes(4, "little"))  # its trailer lies: the reader counts
    screen = load_upload(settings, str(bomb), Session())
    assert "over 1 MB once decompressed" in screen.summary and screen.session.dataset is None


def test_app_refuses_a_gzip_whose_trailer_states_a_size_over_the_limit(tmp_path):
    from hubtools.app.session import too_big

    path = tmp_path / "big.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n" * 3 * 1024 * 1024, mtime=0))
    assert "It is 3.0 MB once decompressed" in too_big(path, AppSettings(max_upload_mb=2))
    assert too_big(path, AppSettings(max_upload_mb=4)) is None


def test_two_columns_of_one_name_are_refused_not_renamed_or_dropped(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("instruction,output,output\nSay hi,Hi!,Hello!\n")
    with pytest.raises(InputUnusableError, match="two columns are named 'output'"):
        hubtools.load(path)
    table = pa.table([pa.array(["Say hi"]), pa.array(["Hi!"]), pa.array(["Hello!"])],
                     names=["instruction", "output", "output"])
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(InputUnusableError, match="two columns are named 'output'"):
        hubtools.load(tmp_path / "dup.parquet")


def test_gzip_members_one_after_the_other_and_zero_padding_read_as_one_stream(tmp_path):
    first, second = (gzip.compress(("\n".join([GOOD_LINE] * n) + "\n").encode(), mtime=0) for n in (3, 4))
    path = tmp_path / "members.jsonl.gz"
    path.write_bytes(first + second + b"\x00" * 512)
    result = hubtools.load(path)
    assert (result.valid, result.quarantined) == (7, 0)
    path.write_bytes(first + second + b"garbage")
    result = hubtools.load(path)
    assert result.valid == 7 and result.by_code == {"truncated": 1}


def test_the_columnar_path_refuses_deep_lines_and_risky_floats_but_keeps_clean_files(tmp_path):
    from hubtools._fastpath import fast_load
    from hubtools.io import open_source

    def fast(lines: list[str]) -> bool:
        path = tmp_path / "in.jsonl"
        path.write_text("\n".join(lines) + "\n")
        return fast_load(open_source(path), format=None, max_chars=1_000_000) is not None

    pair = {"prompt": "Which?", "chosen": "This one.", "rejected": "That one."}
    assert fast([GOOD_LINE] * 20) and fast([json.dumps({**pair, "score_chosen": 1.5, "score_rejected": 0.25})] * 5)
    assert not fast([GOOD_LINE] * 5 + [f'{{"instruction": "a", "output": "b", "x": {_deep(20_000)}}}'])
    for score in ("NaN", "-1e-400", "12345678901234567890"):  # pyarrow would read them as nan, -0.0, a float
        assert not fast([json.dumps(pair)[:-1] + f', "score_chosen": {score}, "score_rejected": 1}}'] * 3), score


def test_a_bad_line_in_the_second_file_of_a_folder_gets_its_folder_wide_index(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"text": "one"}\n{"text": "two"}\n')
    (folder / "b.jsonl").write_text('{"text": "three"}\n{"text": broken\n')
    result = hubtools.load(folder)
    assert [(row.index, row.code) for row in result.quarantine] == [(3, "invalid_json")]
    assert result.dataset["hubtools_index"] == [0, 1, 2]
