"""Inputs read by Ray Data read tasks give the local load's records, quarantine and source
indices, so the checks flag the same records: folders of JSON Lines and Parquet shards, a file
with bad lines, a Hub dataset on the local Hub server; under a tiny object store (spilling) and
with a read worker killed mid-run."""

from __future__ import annotations

import json
import os
import textwrap

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray

from hubtools.checks import run_checks
from hubtools.checks.engines import get_engine
from hubtools.load import load
from tests.fixtures.hub import run_client_json

from .conftest import CORPUS
from .test_engine_ray import assert_same, killing_one_worker, planted

CHECKS = "length_outliers,refusals,pii,repetition"


#: The module's object store: small, so that one test holds more than fits (and Ray spills).
STORE = 80 * 1024 * 1024


@pytest.fixture(scope="module")
def local_ray():
    """A small local Ray for the module: 2 CPUs, an 80 MB object store (spilling beyond)."""
    ray.init(num_cpus=2, object_store_memory=STORE, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def read_on_ray(source):
    """The input read by the Ray engine's read tasks, and how ``quality.json`` describes it."""
    engine = get_engine("ray")
    loaded = engine.load(source)
    return loaded, engine.describe()["input"]


def assert_same_load(local, distributed) -> None:
    """Same valid records (with their source indices), same quarantine rows, same figures."""
    assert distributed.dataset.data.table.equals(local.dataset.data.table)
    assert [r.to_dict() for r in distributed.quarantine] == [r.to_dict() for r in local.quarantine]
    assert distributed.summary() == local.summary()


def bad_lines(records: list[dict]) -> list[bytes]:
    """The records as JSON Lines with damage: broken JSON, a blank reply, another format, a
    duplicated key, blank lines (not counted)."""
    lines = [orjson.dumps(r) for r in records]
    lines[3] = b'{"instruction": nope}'
    lines[11] = orjson.dumps({**records[11], "output": "   "})
    lines[17] = orjson.dumps({"messages": [{"role": "user", "content": "no reply here"}]})
    lines[23] = b'{"instruction": "a", "instruction": "b", "output": "c"}'
    lines.insert(30, b"")
    lines.insert(31, b"   ")
    return lines


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """A folder of JSON Lines shards (one nested, one gzipped, one binary) with bad lines, and a
    folder of Parquet shards of several row groups with the same records."""
    import gzip

    root = tmp_path_factory.mktemp("shards")
    planted(root / "all.jsonl", 6_000, CORPUS)
    records = [orjson.loads(line) for line in (root / "all.jsonl").read_bytes().splitlines()]
    (root / "all.jsonl").unlink()
    lines = bad_lines(records)
    jsonl = root / "jsonl"
    (jsonl / "more").mkdir(parents=True)
    (jsonl / "part-0.jsonl").write_bytes(b"\n".join(lines[:2_500]) + b"\n")
    (jsonl / "more" / "part-1.jsonl").write_bytes(b"\n".join(lines[2_500:4_000]))
    (jsonl / "part-2.jsonl.gz").write_bytes(gzip.compress(b"\n".join(lines[4_000:]) + b"\n"))
    (jsonl / "part-3.jsonl").write_bytes(b"\x00\x01 not text")  # one unreadable record
    parquet = root / "parquet"
    parquet.mkdir()
    records[11] = {**records[11], "output": "   "}
    records[2_017] = {"messages": [{"role": "user", "content": "no reply here"}]}
    for k, start in enumerate(range(0, len(records), 2_000)):
        pq.write_table(pa.Table.from_pylist(records[start:start + 2_000]), parquet / f"part-{k:02d}.parquet",
                       row_group_size=700)
    (parquet / "part-99.parquet").write_bytes(b"PAR1 not a parquet file PAR1")  # one unreadable record
    return jsonl, parquet, lines


def test_every_corpus_file_reads_alike_on_ray(local_ray):
    """Each corpus file read by a Ray read task: the local load's records, quarantine and
    figures, or the same error."""
    from hubtools.errors import HubtoolsError

    from .test_engine_ray import corpus_files

    files = corpus_files(CORPUS)
    assert len(files) > 30
    for path in files:
        try:
            local = load(path)
        except HubtoolsError as exc:
            with pytest.raises(HubtoolsError) as theirs:
                read_on_ray(path)
            assert str(theirs.value) == str(exc), path
            continue
        distributed, how = read_on_ray(path)
        assert "Ray Data read tasks" in how or "message trees" in how, (path, how)
        assert_same_load(local, distributed)


def test_sharded_jsonl_folder_reads_and_flags_as_locally(local_ray, shards):
    """Four shards read by four tasks: the same records, quarantine (codes, reasons, files,
    indices) and the same flagged indices per check as the local engine."""
    folder = shards[0]
    local = load(folder)
    distributed, how = read_on_ray(folder)
    assert "Ray Data read tasks" in how and "4 task(s) over 4 file(s)" in how
    assert_same_load(local, distributed)
    codes = {r.code for r in distributed.quarantine}
    assert {"invalid_json", "no_reply", "duplicate_key", "unreadable"} <= codes, codes
    assert distributed.total == 6_001  # 6,000 lines (blank ones not counted) + one unreadable file
    assert {r.file for r in distributed.quarantine} >= {"part-0.jsonl", "part-3.jsonl"}

    expected = run_checks(local, checks=CHECKS)
    got = run_checks(folder, checks=CHECKS, engine="ray")
    assert_same(expected, got, "jsonl shards")
    assert got.dataset["engine"]["input"] == how
    read = got.dataset["engine"]["read"]
    assert (read["records_in"], read["quarantined"]) == (6_001, local.quarantined) and read["seconds"] > 0
    assert got.dataset["quarantined"] == local.quarantined and got.results["pii"].count > 0


def test_parquet_folder_reads_and_flags_as_locally(local_ray, shards):
    """Parquet shards of several row groups, one of them not Parquet at all: records, indices,
    quarantine and flags as locally."""
    folder = shards[1]
    local = load(folder)
    distributed, how = read_on_ray(folder)
    assert "4 task(s) over 4 file(s)" in how
    assert_same_load(local, distributed)
    assert [(r.index, r.code) for r in distributed.quarantine] == [(11, "no_reply"), (2_017, "format_mismatch"),
                                                                         (6_000, "unreadable")]
    assert_same(run_checks(local, checks=CHECKS), run_checks(folder, checks=CHECKS, engine="ray"), "parquet")


def test_one_file_with_bad_lines(local_ray, shards, tmp_path):
    """A single file is one task; its bad lines get the local load's rows and indices."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(shards[2][:500]) + b"\n")
    local = load(path)
    distributed, _ = read_on_ray(path)
    assert_same_load(local, distributed)
    assert [r.index for r in distributed.quarantine] == [3, 11, 17, 23]
    assert_same(run_checks(local, checks=CHECKS), run_checks(path, checks=CHECKS, engine="ray"), "one file")


def _ranges(size: int, split: int) -> int:
    """The ranges a file is read in: at most ``split`` bytes each, a multiple of Ray's CPUs."""
    cpus = int(ray.cluster_resources()["CPU"])
    return -(-(-(-size // split)) // cpus) * cpus


def test_byte_ranges_come_in_a_multiple_of_the_cpus_and_cover_the_file_once(tmp_path):
    """A big JSON Lines file's ranges: no more than the split each, as many as a multiple of the
    CPUs (no CPU idles through the last round), end to end over the whole file."""
    from hubtools.checks.engines.ray_input import plan_parts
    from hubtools.io.sources import open_source

    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"text": "x"}\n' * 10_000)  # 140,000 bytes
    for split, cpus, expected in ((40_000, 1, 4), (40_000, 2, 4), (40_000, 3, 6), (30_000, 2, 6), (200_000, 4, 1)):
        parts = plan_parts(open_source(path), split, cpus)
        assert len(parts) == expected, (split, cpus)
        if expected > 1:
            assert parts[0].span[0] == 0 and parts[-1].span[1] == 140_000
            assert all(a.span[1] == b.span[0] for a, b in zip(parts, parts[1:]))
            assert max(p.size for p in parts) <= split


def test_big_jsonl_file_is_read_in_byte_ranges(local_ray, shards, tmp_path):
    """One JSON Lines file (BOM, CRLF and blank lines, bad lines) read in ranges of 40 kB, a task
    each: every line read once, by the range it starts in; indices and quarantine as locally."""
    from hubtools.checks.engines.ray_input import read_on_ray as read_ranges

    lines = [line + b"\r" if k % 7 == 0 else line for k, line in enumerate(shards[2])]
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n\n")
    local = load(path)
    distributed, how = read_ranges(path, split_bytes=40_000)
    parts = _ranges(path.stat().st_size, 40_000)
    assert parts > 20 and f"{parts} task(s) over 1 file(s)" in how
    assert_same_load(local, distributed)
    assert distributed.total == 6_000 and [r.index for r in distributed.quarantine][:4] == [3, 11, 17, 23]


def test_clean_jsonl_ranges_take_the_columnar_path_with_the_local_records(local_ray, tmp_path):
    """A clean JSON Lines file (BOM, CRLF, blank lines between records) read in 40 kB ranges:
    every range is parsed and converted by Arrow in its task, and the records, indices and
    figures are the local load's; a file with one bad line keeps that range on the record path."""
    from hubtools.checks.engines.ray_input import read_on_ray as read_ranges

    path = tmp_path / "clean.jsonl"
    planted(path, 3_000, CORPUS)
    lines = path.read_bytes().splitlines()
    lines = [line + b"\r" if k % 7 == 0 else line for k, line in enumerate(lines)]
    lines[100:100] = [b"", b"  "]
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    local = load(path)
    distributed, how = read_ranges(path, split_bytes=40_000)
    parts = _ranges(path.stat().st_size, 40_000)
    assert parts > 10 and f"({parts} of them parsed and converted column by column by Arrow)" in how, how
    assert_same_load(local, distributed)
    assert distributed.total == 3_000 and distributed.quarantined == 0

    lines[2_000] = b'{"instruction": nope}'
    path.write_bytes(b"\n".join(lines) + b"\n")
    local = load(path)
    distributed, how = read_ranges(path, split_bytes=40_000)
    assert f"({parts - 1} of them parsed" in how, how
    assert_same_load(local, distributed)
    assert [row.index for row in distributed.quarantine] == [row.index for row in local.quarantine] != []


def test_hub_dataset_files_read_by_ray_workers(hub_env, hub_repo_id, corpus, tmp_path):
    """A Hub dataset of three Parquet shards, and one of two JSON Lines files, on the local Hub:
    the workers download and read its files; records, quarantine and flags as the local load's."""
    seeds = json.loads((corpus / "llama_factory" / "alpaca_en_demo.json").read_text(encoding="utf-8"))[:300]
    seeds[7]["output"] = "  "  # a blank reply: quarantined, with its index
    (tmp_path / "rows.json").write_text(json.dumps(seeds), encoding="utf-8")
    code = textwrap.dedent(f"""
        import json, ray
        from datasets import Dataset
        from huggingface_hub import HfApi
        from hubtools.checks import run_checks
        from hubtools.checks.engines import get_engine
        from hubtools.load import load
        rows = json.loads(open({str(tmp_path / "rows.json")!r}, encoding="utf-8").read())
        Dataset.from_list(rows).push_to_hub({hub_repo_id!r}, num_shards=3)
        api = HfApi()
        jsonl = {hub_repo_id!r} + "-jsonl"
        api.create_repo(jsonl, repo_type="dataset")
        for k in range(2):
            body = "\\n".join(json.dumps(r) for r in rows[k * 150:(k + 1) * 150]).encode()
            api.upload_file(path_or_fileobj=body, path_in_repo=f"data/train-{{k}}.jsonl", repo_id=jsonl,
                            repo_type="dataset")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        out = {{}}
        checks = "length_outliers,refusals,pii"
        for repo in ({hub_repo_id!r}, jsonl):
            local = load(repo)
            engine = get_engine("ray")
            mine = engine.load(repo)
            flags = lambda q: {{n: r.flagged for n, r in q.results.items()}}
            out[repo] = {{
                "how": engine.describe()["input"],
                "same_table": mine.dataset.data.table.equals(local.dataset.data.table),
                "quarantine": [[r.to_dict() for r in x.quarantine] for x in (local, mine)],
                "summary": [local.summary(), mine.summary()],
                "flags": [flags(run_checks(local, checks=checks)), flags(run_checks(repo, checks=checks, engine="ray"))],
            }}
        from typer.testing import CliRunner
        from hubtools.cli import app
        run = CliRunner().invoke(app, ["check", {hub_repo_id!r}, "--split", "train", "--out", {str(tmp_path / "q")!r},
                                       "--checks", checks, "--engine", "ray", "--json"])
        out["cli"] = [run.exit_code, json.loads(run.stdout) if run.exit_code == 0 else run.output]
        print(json.dumps(out))
    """)
    out = run_client_json(code, {**hub_env, "RAY_AUTH_MODE": "disabled"}, timeout=300)
    for repo, files in ((hub_repo_id, 3), (hub_repo_id + "-jsonl", 2)):
        got = out[repo]
        assert "Ray Data read tasks" in got["how"] and f"{files} file(s)" in got["how"], got["how"]
        assert got["same_table"], repo
        assert got["quarantine"][0] == got["quarantine"][1] and [r["index"] for r in got["quarantine"][1]] == [7]
        assert got["summary"][0] == got["summary"][1] and got["summary"][1]["total"] == 300
        assert got["flags"][0] == got["flags"][1], repo
    code, report = out["cli"]  # `check --split train --engine ray`: the split read by the workers
    assert code == 0, report
    assert "Ray Data read tasks" in report["dataset"]["engine"]["input"]
    assert {n: r["flagged"] for n, r in report["checks"].items()} == out[hub_repo_id]["flags"][0]


def test_killed_read_worker_is_retried_without_losing_a_record(local_ray, shards):
    """A read task's worker killed (SIGKILL) while it reads a shard: Ray runs the task again and
    the load is the local one, no record lost or read twice."""
    folder = shards[0]
    expected = load(folder)
    with killing_one_worker(b"ReadHubtoolsInput") as killed:
        distributed, _ = read_on_ray(folder)
    assert killed, "no busy read task was seen to kill"
    assert_same_load(expected, distributed)


def spill_lines() -> list[str]:
    """The raylet's "Spilled N MiB" lines so far (Ray writes one after each spill)."""
    session = ray._private.worker._global_node.get_session_dir_path()
    with open(os.path.join(session, "logs", "raylet.out"), encoding="utf-8", errors="replace") as fh:
        return [line for line in fh if "Spilled" in line and "MiB" in line]


def test_more_data_than_the_object_store_holds_spills_and_gives_the_same_flags(local_ray, tmp_path):
    """~90 MB of records through the module's 80 MB object store: Ray spills to disk, nothing
    dies, and the flags are the local engine's."""
    import random

    rng = random.Random(3)
    words = [f"w{k}" for k in range(5_000)]
    folder = tmp_path / "big"
    folder.mkdir()
    for shard in range(4):
        rows = []
        for i in range(1_000):
            size = 3 if i % 97 == 0 else 4_500
            rows.append(orjson.dumps({"instruction": f"shard {shard} record {i}",
                                      "output": " ".join(rng.choices(words, k=size))}))
        (folder / f"part-{shard}.jsonl").write_bytes(b"\n".join(rows) + b"\n")
    assert sum(p.stat().st_size for p in folder.iterdir()) > STORE
    before = len(spill_lines())
    distributed = run_checks(folder, checks="length_outliers", engine="ray")
    assert len(spill_lines()) > before, "Ray did not spill"
    assert "read by Ray Data read tasks" in distributed.dataset["engine"]["input"]
    local = run_checks(load(folder), checks="length_outliers")
    assert local.dataset["total"] == distributed.dataset["total"] == 4_000
    assert_same(local, distributed, "spilled")


def test_recipe_engine_settings_are_checked_with_the_other_problems(tmp_path):
    """engine / ray_* settings of the check and filter stages: wrong ones are listed with the
    recipe's other problems, before anything runs."""
    from hubtools.pipeline import parse_recipe, recipe_problems

    data = CORPUS / "llama_factory" / "identity.json"
    recipe = parse_recipe(f"""
name: x
sources: {{dataset: {data}}}
stages:
  check: {{engine: spark, checks: [pii]}}
  filter: {{drop: [pii], ray_address: auto, ray_memory: lots}}
""", base=tmp_path)
    problems = recipe_problems(recipe, env={})
    for fragment in ("stages.check.engine: use one of local, ray", "stages.filter: ray_address, ray_memory need engine: ray",
                     "stages.filter.ray_memory: not a memory size"):
        assert any(fragment in p for p in problems), (fragment, problems)
    fine = parse_recipe(f"name: x\nsources: {{dataset: {data}}}\nstages:\n  check: {{engine: ray, ray_workers: 2, "
                        f"ray_memory: 512MB}}\n  filter: {{drop: [pii], engine: ray, ray_address: auto}}\n", base=tmp_path)
    assert recipe_problems(fine, env={}) == []


def test_build_with_ray_check_and_filter_stages(local_ray, tmp_path):
    """`hubtools build` whose check and filter stages say engine: ray (on this module's Ray, by
    its address): the same flags and the same kept records as the same recipe on the local engine."""
    from typer.testing import CliRunner

    from hubtools.cli import app

    data = CORPUS / "llama_factory" / "alpaca_en_demo.json"
    address = ray.get_runtime_context().gcs_address
    runs = {}
    for engine in ("local", "ray"):
        extra = f", engine: ray, ray_address: '{address}'" if engine == "ray" else ""
        recipe = tmp_path / f"{engine}.yaml"
        recipe.write_text(f"name: {engine}\nsources: {{dataset: {data}}}\nstages:\n"
                          f"  check: {{checks: [exact_duplicates, refusals, length_outliers]{extra}}}\n"
                          f"  filter: {{drop: [exact_duplicates, refusals]{extra}}}\n")
        run = CliRunner().invoke(app, ["build", str(recipe), "--out", str(tmp_path / engine)], catch_exceptions=False)
        assert run.exit_code == 0, run.output
        quality = json.loads((tmp_path / engine / "check" / "quality" / "quality.json").read_text())
        runs[engine] = quality
    assert runs["ray"]["dataset"]["engine"]["name"] == "ray" and runs["local"]["dataset"]["engine"]["name"] == "local"
    assert runs["ray"]["dataset"]["engine"]["address"] == address
    for name, result in runs["local"]["checks"].items():
        assert runs["ray"]["checks"][name]["flagged"] == result["flagged"], name
    reports = [(tmp_path / e / "report.md").read_text() for e in ("local", "ray")]
    kept = [line for line in reports[0].splitlines() if line.startswith("| filter")]
    assert kept and kept == [line for line in reports[1].splitlines() if line.startswith("| filter")]


def test_filter_reads_a_folder_on_ray_and_removes_what_locally_goes(local_ray, shards, tmp_path):
    """filter_dataset on a folder with the Ray engine: the folder read by read tasks, the same
    removed records and reasons as locally, kept shards + removed = read."""
    from hubtools.checks.filter import filter_dataset

    folder = shards[0]
    local = filter_dataset(folder, tmp_path / "local", drop="pii,refusals")
    engine = get_engine("ray")
    distributed = filter_dataset(folder, tmp_path / "ray", drop="pii,refusals", engine=engine)
    assert "Ray Data read tasks" in engine.describe()["input"]
    assert (tmp_path / "ray" / "removed.jsonl").read_bytes() == (tmp_path / "local" / "removed.jsonl").read_bytes()
    assert (distributed.read, distributed.kept, distributed.removed) == (local.read, local.kept, local.removed)
    assert pq.read_table(tmp_path / "ray" / "kept").num_rows == distributed.kept == 6_001 - distributed.removed


def test_read_blocks_go_to_the_spill_file_straight_from_their_buffers(tmp_path):
    """The driver writes each returned block's record streams from the block's own buffer (no
    Python bytes per envelope): sliced, multi-chunk and empty chunks give every envelope's
    stream back whole, at the place it names."""
    import pyarrow as pa

    from hubtools.checks.engines.ray_input import _VALID, _envelope, _Spill

    envelopes = pa.concat_tables([_envelope(0, i * 3, 3, pa.table({"x": [i, i + 1, i + 2]}), [], [])
                                  for i in range(4)])
    block = pa.concat_tables([envelopes.slice(1, 2), envelopes.slice(0, 0), envelopes.slice(3, 1),
                              envelopes.slice(0, 1)])
    spill = _Spill(str(tmp_path / "blocks"))
    kept = spill.keep_block(block)
    mapped = spill.mapped()
    assert [e["first"] for e in kept] == [3, 6, 9, 0]
    assert [pa.ipc.open_stream(mapped.slice(*e[_VALID])).read_all().column("x").to_pylist() for e in kept] == [
        [1, 2, 3], [2, 3, 4], [3, 4, 5], [0, 1, 2]]


def test_ray_data_still_reads_the_setting_that_lets_read_tasks_run_together():
    """The read sets ``_max_num_blocks_in_streaming_gen_buffer`` (a private DataContext setting)
    on its dataset: with Ray Data's default, 2, a read task paused after two waiting blocks and
    the read tasks ran one at a time. If a Ray upgrade renames it, the setting would do nothing,
    silently: this says so."""
    import inspect

    import ray.data
    from ray.data._internal.execution.operators import task_pool_map_operator

    from hubtools.checks.engines.ray_input import STREAMED_BLOCKS

    assert hasattr(ray.data.DataContext.get_current(), "_max_num_blocks_in_streaming_gen_buffer")
    assert "_max_num_blocks_in_streaming_gen_buffer" in inspect.getsource(task_pool_map_operator)
    assert STREAMED_BLOCKS > 2
