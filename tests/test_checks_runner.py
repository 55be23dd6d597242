"""The checks framework: the text view, the registry, the runner, batched mapping, the CLI."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from hubtools.checks import REGISTRY, CheckData, run_checks
from hubtools.checks.base import joined_role_text
from hubtools.cli import app
from hubtools.errors import UnknownCheckError
from hubtools.load import canonical_dataset, load
from hubtools.records import Kind, message
from tests.fixtures.build import preference, sft, text, unpaired

runner = CliRunner()


def _upper_lengths(batch):
    """Module level, so a spawned worker can import it."""
    return [len(t.upper()) for t in batch["prompt"].to_pylist()]


def test_joined_role_text_takes_only_the_given_roles_in_order():
    ds = canonical_dataset([
        {"hubtools_index": 0, "messages": [message("system", "be brief"), message("user", "hi"),
                                           message("assistant", "hello"), message("user", "bye"),
                                           message("assistant", "ciao")]},
        {"hubtools_index": 1, "messages": [message("user", "only a question"), message("assistant", "")]},
    ], Kind.SFT)
    column = ds.data.table.column("messages")
    assert joined_role_text(column, ("user",)).to_pylist() == ["hi\n\nbye", "only a question"]
    assert joined_role_text(column, ("assistant",)).to_pylist() == ["hello\n\nciao", ""]
    assert joined_role_text(column, ("system",)).to_pylist() == ["be brief", ""]


@pytest.mark.parametrize("path", ["fastchat/dummy_conversation.json", "llama_factory/glaive_toolcall_en_demo.json",
                                  "llama_factory/alpaca_en_demo.json", "hh_rlhf/harmless_base_test.jsonl.gz",
                                  "real_world/oasst2_filtered_trees_open_paws_first80.jsonl"])
def test_joined_role_text_of_real_files_whole_and_in_chunks_is_the_plain_join(corpus, path):
    """The Arrow join (with its one-message-per-row shortcut, and chunks written straight into
    one buffer) against joining each row's contents in Python, on multi- and single-turn files."""
    table = load(corpus / path).dataset.data.table
    column = next(table.column(name) for name in ("messages", "chosen") if name in table.column_names)
    rows = column.to_pylist()
    cuts = sorted({0, len(rows) // 7, len(rows) // 3, len(rows) // 3 + 1, len(rows)})
    chunked = pa.chunked_array([column.combine_chunks().slice(a, b - a) for a, b in zip(cuts, cuts[1:])])
    assert chunked.num_chunks >= 3
    for roles in (("user",), ("assistant",), ("system",), ("user", "tool")):
        expected = ["\n\n".join(m["content"] or "" for m in row if m["role"] in roles) for row in rows]
        assert joined_role_text(column.combine_chunks(), roles).to_pylist() == expected
        got = joined_role_text(chunked, roles)
        assert got.type == pa.string() and got.null_count == 0 and got.to_pylist() == expected


@pytest.mark.parametrize("build, kind, fields", [
    (lambda: sft([("q", "a")]), Kind.SFT, ["prompt", "response"]),
    (lambda: preference([("q", "good", "bad")]), Kind.PREFERENCE, ["prompt", "chosen", "rejected"]),
    (lambda: unpaired([("q", "a", True)]), Kind.UNPAIRED, ["prompt", "response"]),
    (lambda: text(["just text"]), Kind.TEXT, ["text"]),
])
def test_view_has_the_fields_of_each_kind(build, kind, fields):
    data = CheckData.from_dataset(build())
    assert data.kind is kind
    assert list(data.fields) == fields
    assert all(isinstance(v, pa.Array) and v.null_count == 0 for v in data.fields.values())


def test_view_keeps_source_indices_and_finds_records_by_them():
    data = CheckData.from_dataset(sft([("a", "b"), ("c", "d")], start=10))
    assert data.index.tolist() == [10, 11]
    assert data.record(11) == {"prompt": "c", "response": "d"}
    with pytest.raises(KeyError):
        data.position(3)


def test_map_in_worker_processes_gives_the_same_results_as_in_process():
    prompts = [f"prompt number {i} " * (i % 7) for i in range(2_500)]
    data = CheckData.from_dataset(sft([(p, "r") for p in prompts]))
    inline = data.map(_upper_lengths, ["prompt"], batch_size=300)
    from hubtools.checks.base import make_pool

    pool = make_pool(2)
    try:
        data.pool = pool
        parallel = data.map(_upper_lengths, ["prompt"], batch_size=300)
    finally:
        pool.shutdown()
    assert len(inline) == 9
    assert sum(inline, []) == sum(parallel, []) == [len(p) for p in prompts]


def _batch_place(batch):
    """Where a worker's batch lives: its rows, and whether its text is a file mapping (module level)."""
    import os

    arr = batch["prompt"]
    maps = open(f"/proc/{os.getpid()}/maps").read() if os.path.exists(f"/proc/{os.getpid()}/maps") else ""
    return len(arr), arr.to_pylist()[:1], "hubtools-view-" in maps


def test_local_session_shares_the_view_with_its_workers_through_one_mapped_file():
    """With a pool, the workers read batches from the memory-mapped view file (only each batch's place
    is sent); a view derived later (other arrays) is shipped as before; the file goes with the session."""
    import os
    from dataclasses import replace

    from hubtools.checks.engines.local import LocalEngine

    prompts = [f"prompt {i} é 中 " * (i % 5) for i in range(2_500)]
    data = CheckData.from_dataset(sft([(p, "r") for p in prompts]))
    before = {name: arr.to_pylist() for name, arr in data.fields.items()}
    with LocalEngine().session(data, num_proc=2) as view:
        path = view.shared.path
        assert os.path.exists(path) and path.endswith(".arrow")
        assert {name: arr.to_pylist() for name, arr in view.fields.items()} == before
        places = view.map(_batch_place, ["prompt"], batch_size=300)
        assert [rows for rows, _, _ in places] == [300] * 8 + [100]
        assert [first[0] for _, first, _ in places] == prompts[::300]
        assert all(mapped for _, _, mapped in places)  # read in place from the file
        assert sum(view.map(_upper_lengths, ["prompt"], batch_size=300), []) == [len(p) for p in prompts]
        derived = replace(view, fields={**view.fields, "prompt": pa.array([p.upper() for p in prompts])})
        assert not derived.shared.covers(derived.fields, ["prompt"])
        assert sum(derived.map(_upper_lengths, ["prompt"], batch_size=300), []) == [len(p) for p in prompts]
    assert not os.path.exists(path) and view.shared is None
    assert view.fields["prompt"].to_pylist() == before["prompt"]  # still readable after the file is gone


def test_unknown_check_and_unknown_option_are_clear_errors():
    ds = sft([("a", "b")])
    with pytest.raises(UnknownCheckError, match="no_such_check.*choose from: schema"):
        run_checks(ds, checks="schema,no_such_check")
    with pytest.raises(UnknownCheckError, match="has no option"):
        run_checks(ds, checks=["schema"], options={"schema": {"bogus": 1}})


def test_a_killed_runs_view_file_is_removed_by_the_next_share(tmp_path):
    """A run killed with its view in /dev/shm leaves memory behind: the next share removes the files of
    processes that no longer run, and leaves a running process's file alone."""
    import os
    import signal
    import subprocess
    import sys

    from hubtools.checks import shared_view

    script = ("import sys, pyarrow as pa; from hubtools.checks import shared_view as s; "
              "s._directory = lambda n: sys.argv[1]; v = s.share({'t': pa.array(['x'] * 10)}); "
              "print(v.path, flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    path = child.stdout.readline().strip()
    assert os.path.exists(path) and str(child.pid) in os.path.basename(path)
    assert shared_view.remove_stale(str(tmp_path)) == []  # still running: kept
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdin.close()
    child.stdout.close()
    assert os.path.exists(path)  # a killed process cannot clean up
    mine = tmp_path / f"hubtools-view-{os.getpid()}-0123456789ab.arrow"
    mine.write_bytes(b"")
    assert shared_view.remove_stale(str(tmp_path)) == [os.path.basename(path)]
    assert not os.path.exists(path) and mine.exists()


@pytest.mark.parametrize("name", ["llama_factory/dpo_en_demo.json", "alpaca_eval/alpaca-7b_vs_davinci003_gpt4_annotations.json"])
def test_a_path_read_by_the_run_keeps_only_the_view_of_its_text_with_the_same_results(corpus, name):
    """run_checks(path) drops the dataset's text columns once the view is built (memory); every check
    gives what it gives on the whole loaded dataset, scores and quarantine included."""
    path = corpus / name
    whole = run_checks(load(path))
    slim = run_checks(path)
    text_columns = {"messages", "prompt", "chosen", "rejected", "completion", "text"}
    assert text_columns & set(whole.data.dataset.column_names)
    assert not text_columns & set(slim.data.dataset.column_names)
    assert len(slim.data.dataset) == len(whole.data.dataset)
    assert {k: v for k, v in slim.dataset.items() if k != "engine"} == \
        {k: v for k, v in whole.dataset.items() if k != "engine"}  # the engine's figures hold seconds
    for check in whole.results:
        assert slim.results[check].to_dict() == whole.results[check].to_dict(), check


def test_schema_check_reports_what_validation_quarantined(corpus):
    loaded = load(corpus / "hh_rlhf" / "harmless_base_test.jsonl.gz")
    quality = run_checks(loaded, checks=["schema"])
    result = quality.results["schema"]
    assert result.flagged == sorted(row.index for row in loaded.quarantine)
    assert result.stats["quarantined"] == loaded.quarantined > 0
    assert quality.dataset["total"] == quality.dataset["valid"] + quality.dataset["quarantined"]


def test_checks_that_do_not_apply_say_so():
    spec = REGISTRY.get("preference")
    if spec is None:
        pytest.fail("the preference check is not registered")
    result = spec.run(sft([("a", "b")]))
    assert result.applicable is False and result.flagged == []


def test_check_cli_lists_checks_and_rejects_unknown_ones(corpus, tmp_path):
    listed = runner.invoke(app, ["check", "--list", "--json"])
    assert listed.exit_code == 0
    assert [r["check"] for r in json.loads(listed.stdout)] == list(REGISTRY)
    bad = runner.invoke(app, ["check", str(corpus / "llama_factory" / "alpaca_en_demo.json"),
                              "--out", str(tmp_path), "--checks", "nope"])
    assert bad.exit_code == 1
    assert bad.stderr.count("\n") == 1 and "unknown check(s): nope" in bad.stderr
    assert not (tmp_path / "quality.json").exists()


def test_formatted_reasons_read_like_the_dict_a_check_would_build():
    """The duplicate checks' reasons are columns written out when read: unsorted keys are sorted
    with their columns, a key given twice is an error, and a pickled copy (a result crossing
    processes) reads the same."""
    import pickle

    import numpy as np

    from hubtools.checks.base import CheckResult, FormattedReasons

    reasons = FormattedReasons(np.array([9, 2, 5]), ("duplicate of #{}", "near #{} ({:.2f})"),
                               (np.array([1, 0, 3]), np.array([1.0, 0.5, 0.8149])), kinds=[0, 0, 1])
    expected = {2: "duplicate of #0", 5: "near #3 (0.81)", 9: "duplicate of #1"}
    assert list(reasons) == [2, 5, 9] and dict(reasons.items()) == expected and reasons == expected
    assert 5 in reasons and 4 not in reasons and "5" not in reasons and reasons.get(4, "") == ""
    with pytest.raises(KeyError):
        reasons[10]
    assert pickle.loads(pickle.dumps(reasons)) == expected
    with pytest.raises(ValueError, match="two reasons"):
        FormattedReasons([3, 1, 3], "x{}", ([0, 0, 0],))
    with pytest.raises(ValueError, match="one value per key"):
        FormattedReasons([1, 2], "x{}", ([0],))
    result = CheckResult("exact_duplicates", flagged=reasons.keys_array, reasons=reasons)
    assert result.flagged == [2, 5, 9] and all(type(i) is int for i in result.flagged)
    assert result.to_dict()["reasons"] == {"2": "duplicate of #0", "5": "near #3 (0.81)", "9": "duplicate of #1"}
