"""Tables and text views built into files and mapped back (hubtools/checks/disk_view.py): the Ray
engine's driver holds its input and text view there, not in its own memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from hubtools import load
from hubtools.checks import disk_view, shared_view
from hubtools.checks.base import CheckData
from hubtools.checks.disk_view import IntColumnFile, StringColumnFile, TableFile, build_view
from hubtools.records import Kind


def _pieces() -> list[pa.Array]:
    words = pa.array([f"row {i} " + "é" * (i % 7) for i in range(300)])
    return [words.slice(0, 120), pa.array([], pa.string()), words.slice(120, 1), words.slice(121),  # offsets != 0
            pa.array(["", "large", ""], pa.large_string()), pa.chunked_array([words.slice(5, 3), words.slice(9, 2)])]


def test_string_columns_round_trip_through_files_in_any_shape_of_chunk(tmp_path):
    column = StringColumnFile(str(tmp_path / "c"))
    for piece in _pieces():
        column.append(piece)
    out = column.finish()
    expected = [v for piece in _pieces() for v in piece.to_pylist()]
    assert out.type == pa.string() and out.to_pylist() == expected and out.null_count == 0
    assert list(tmp_path.iterdir()) == []  # mapped, then unlinked: nothing left behind


def test_text_past_32_bit_offsets_becomes_large_string(tmp_path, monkeypatch):
    monkeypatch.setattr(disk_view, "_STRING_LIMIT", 50)  # as if the text passed 2 GiB
    column = StringColumnFile(str(tmp_path / "c"))
    for piece in _pieces():
        column.append(piece)
    out = column.finish()
    assert out.type == pa.large_string()
    assert out.to_pylist() == [v for piece in _pieces() for v in piece.to_pylist()]


def test_a_field_with_nulls_is_refused(tmp_path):
    with pytest.raises(ValueError, match="nulls"):
        StringColumnFile(str(tmp_path / "c")).append(pa.array(["a", None]))


def test_int_columns_and_tables_round_trip(tmp_path):
    ints = IntColumnFile(str(tmp_path / "i"))
    ints.append(np.arange(5))
    ints.append(np.array([], dtype=np.int64))
    ints.append(np.array([7, 9], dtype=np.int32))
    assert ints.finish().tolist() == [0, 1, 2, 3, 4, 7, 9]
    schema = pa.schema([("a", pa.int64()), ("b", pa.string())])
    table = TableFile(str(tmp_path / "t"), schema)
    table.append(pa.table({"a": [1, 2], "b": ["x", "y"]}))
    table.append(schema.empty_table())
    table.append(pa.table({"a": pa.array([3], pa.int32()), "b": ["z"]}))  # cast to the schema
    out = table.finish()
    assert out.schema == schema and out.to_pydict() == {"a": [1, 2, 3], "b": ["x", "y", "z"]}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["llama_factory/alpaca_en_demo.json", "llama_factory/dpo_en_demo.json",
                                  "hh_rlhf/harmless_base_test.jsonl.gz", "llama_factory/glaive_toolcall_en_demo.json"])
def test_the_view_built_in_chunks_on_disk_is_the_view_in_memory(corpus, tmp_path, name):
    loaded = load(corpus / name)
    memory = CheckData.from_dataset(loaded.dataset, loaded.kind)
    table = loaded.dataset.data.table
    before = pa.total_allocated_bytes()
    index, fields = build_view((pa.Table.from_batches([b]) for b in table.to_batches(97)), loaded.kind, str(tmp_path))
    # the view's text lives in the mapped files: none of it was allocated from Arrow's memory pool
    assert pa.total_allocated_bytes() - before < 64 << 10
    assert sum(arr.nbytes for arr in fields.values()) > 100_000
    assert index.tolist() == memory.index.tolist()
    assert list(fields) == list(memory.fields)
    for field_name, arr in fields.items():
        assert arr.equals(memory.fields[field_name]), field_name
    assert list(tmp_path.iterdir()) == []


def test_a_killed_runs_disk_folder_is_removed_by_the_next_run(tmp_path):
    script = ("import sys, time; from hubtools.checks import disk_view as d; "
              "print(d.run_folder(sys.argv[1]), flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    folder = child.stdout.readline().strip()
    (tmp_path / os.path.basename(folder) / "records.arrow").write_bytes(b"half written")
    assert shared_view.remove_stale(str(tmp_path)) == []  # its process still runs
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdin.close()
    child.stdout.close()
    mine = disk_view.run_folder(str(tmp_path))  # the next run removes the dead run's folder
    assert not os.path.exists(folder) and os.path.isdir(mine)
    disk_view.remove_folder(mine)
    assert list(tmp_path.iterdir()) == []


def _resident_kb(path: str) -> int:
    """kB of this process's mappings of ``path`` that are resident (/proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as fh:
        for line in fh:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5:  # a mapping's first line
                inside = line.rstrip().endswith(os.path.basename(path)) or line.rstrip().endswith(
                    os.path.basename(path) + " (deleted)")
            elif inside and line.startswith("Rss:"):
                total += int(head[1])
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="reads /proc/self/smaps (Linux)")
def test_a_views_pages_go_back_to_the_kernel_and_read_again_unchanged(tmp_path):
    """A process that has read a mapped view hands its pages back (drop_pages): what it maps
    falls to nothing and the same texts are read again (MADV_DONTNEED keeps the file's data)."""
    texts = pa.array([f"record {i}: " + "lorem ipsum " * 40 for i in range(20_000)])  # ~10 MB
    _, fields = build_view([pa.table({"text": texts})], Kind.TEXT, str(tmp_path), keep=True)
    data_file = next(str(p) for p in tmp_path.iterdir() if p.name.endswith(".data"))
    before = [fields[name].to_pylist() for name in fields]  # reads every page
    assert _resident_kb(data_file) > 5_000
    shared_view.drop_pages(fields.values())
    assert _resident_kb(data_file) < 200
    assert [fields[name].to_pylist() for name in fields] == before


def test_take_from_a_shared_view_reads_the_same_rows_in_steps(tmp_path, monkeypatch):
    """CheckData.take copies rows of a mapped view a few at a time, handing pages back between:
    the same texts as Arrow's take, and the pages are back once it returns."""
    from hubtools.checks import base
    from hubtools.checks.shared_view import SharedView

    monkeypatch.setattr(base, "TAKE_ROWS", 7)
    texts = pa.array([f"row {i} " + "x" * (i % 300) for i in range(5_000)])
    index, fields = build_view([pa.table({"text": texts})], Kind.TEXT, str(tmp_path), keep=True)
    data = CheckData(kind=Kind.TEXT, index=index, fields=fields, shared=SharedView(str(tmp_path), dict(fields)))
    rows = np.sort(np.random.default_rng(0).choice(5_000, 100, replace=False))
    name = next(iter(fields))
    assert data.take(name, rows).to_pylist() == [fields[name][int(r)].as_py() for r in rows]
    fields[name].to_pylist()  # map every page, then take again: take hands them back
    data.take(name, rows)
    data_file = next(str(p) for p in tmp_path.iterdir() if p.name.endswith(".data"))
    assert _resident_kb(data_file) < 200
