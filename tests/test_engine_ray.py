"""The Ray engine gives the local engine's answers: every corpus file and a synthetic file with
planted duplicates, on a local Ray this module starts (and stops) itself."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pyarrow.parquet as pq
import pytest
import ray
from typer.testing import CliRunner

from hubtools.checks import run_checks
from hubtools.checks.filter import filter_dataset
from hubtools.cli import app
from hubtools.errors import HubtoolsError
from hubtools.load import load
from hubtools.records import INDEX

from .conftest import CORPUS
from .test_engine_ray_shuffle import assert_near_same

#: files of the corpus that are not datasets (a registry of datasets, judge prompt templates
#: are datasets too, so only this one is left out)
NOT_DATA = {"README.md", "dataset_info.json"}
#: corpus files hubtools.load refuses (so neither engine checks them)
NOT_CHECKABLE: set[str] = set()


@pytest.fixture(scope="module")
def local_ray():
    """A small local Ray for the module: 2 CPUs, a 400 MB object store (spilling beyond)."""
    ray.init(num_cpus=2, object_store_memory=400 * 1024 * 1024, include_dashboard=False,
             log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def corpus_files(corpus):
    return sorted(p for p in corpus.rglob("*") if p.is_file() and p.name not in NOT_DATA)


def assert_same(local, distributed, where: str) -> None:
    """Same checks, same flagged indices, reasons and figures."""
    assert list(local.results) == list(distributed.results), where
    for name, expected in local.results.items():
        got = distributed.results[name]
        if name == "near_duplicates":  # same clusters; Ray also decides pairs already clustered
            assert_near_same(expected, got, where)
            continue
        assert got.flagged == expected.flagged, f"{where}: {name} flags differ"
        assert got.reasons == expected.reasons, f"{where}: {name} reasons differ"
        assert got.stats == expected.stats, f"{where}: {name} figures differ"
        assert got.applicable == expected.applicable, f"{where}: {name}"


def planted(path, rows: int, corpus) -> tuple[set[int], set[int]]:
    """Alpaca records from the corpus's words with planted exact (case/space) and near
    (one word changed in a long reply) duplicates; returns (exact, near) planted indices."""
    seeds = json.loads((corpus / "llama_factory" / "alpaca_en_demo.json").read_text(encoding="utf-8"))
    vocab = sorted({w for s in seeds for w in s["output"].split() if w.isalpha()})
    rng = random.Random(7)
    records, exact, near = [], set(), set()
    for i in range(rows):
        roll = rng.random()
        if i > 100 and roll < 0.03:
            base = records[rng.randrange(i)]
            records.append({**base, "instruction": "  " + base["instruction"].upper()})
            exact.add(i)
        elif i > 100 and roll < 0.06:
            base = records[rng.randrange(i)]
            words = base["output"].split()
            if len(words) > 60:
                words[rng.randrange(len(words))] = rng.choice(vocab)
                near.add(i)
            records.append({**base, "output": " ".join(words)})
        else:
            seed = seeds[rng.randrange(len(seeds))]
            mutate = lambda text: " ".join(rng.choice(vocab) if rng.random() < 0.4 else w for w in text.split())
            records.append({"instruction": mutate(seed["instruction"]), "input": seed["input"],
                            "output": mutate(seed["output"]) + f" ({i})"})
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return exact, near


@pytest.mark.parametrize("name", [str(p.relative_to(CORPUS)) for p in corpus_files(CORPUS)])
def test_corpus_file_same_results_on_ray(local_ray, corpus, name):
    """Each corpus file gives the same results on Ray as locally (both from the same load)."""
    try:
        loaded = load(corpus / name)
    except HubtoolsError:  # not a dataset: the same error whatever the engine
        assert name in NOT_CHECKABLE
        return
    local = run_checks(loaded)
    distributed = run_checks(loaded, engine="ray")
    assert_same(local, distributed, name)
    engine = distributed.dataset["engine"]
    assert engine["name"] == "ray" and engine["cluster"]["cpus"] == 2
    assert "group on Ray" in engine["dataset_wide"] and "loaded before the run" in engine["input"]
    for check, figures in engine["checks"].items():
        assert figures["records_in"] == loaded.valid
        assert figures["flagged"] == distributed.results[check].count
        assert all(step["where"] in ("ray tasks", "ray actors", "ray shuffle", "driver") for step in figures["steps"])
    if loaded.valid:
        assert engine["checks"]["length_outliers"]["steps"][0]["where"] == "ray tasks"


def test_planted_duplicates_found_alike(local_ray, corpus, tmp_path):
    """20k records, several batches: the planted duplicates are flagged, identically."""
    path = tmp_path / "planted.jsonl"
    exact, near = planted(path, 20_000, corpus)
    loaded = load(path)
    local = run_checks(loaded, checks="exact_duplicates,near_duplicates,length_outliers,language,pii,refusals")
    distributed = run_checks(loaded, checks="exact_duplicates,near_duplicates,length_outliers,language,pii,"
                                            "refusals", engine="ray")
    assert_same(local, distributed, "planted")
    assert exact <= set(distributed.results["exact_duplicates"].flagged)
    assert near <= set(distributed.results["near_duplicates"].flagged) | exact
    steps = distributed.dataset["engine"]["checks"]["exact_duplicates"]["steps"]
    assert steps[0]["where"] == "ray tasks"


def test_planted_duplicates_of_100k_records_found_alike(local_ray, corpus, tmp_path):
    """The issue's parity size: 100k records with planted duplicates, the dataset-wide checks
    (grouping on the cluster, LSH pairs, connected components in rounds) give the local flags."""
    path = tmp_path / "planted.jsonl"
    exact, near = planted(path, 100_000, corpus)
    loaded = load(path)
    checks = "exact_duplicates,near_duplicates,length_outliers,refusals"
    local = run_checks(loaded, checks=checks)
    distributed = run_checks(loaded, checks=checks, engine="ray")
    assert_same(local, distributed, "planted 100k")
    assert len(exact) > 2_500 and exact <= set(distributed.results["exact_duplicates"].flagged)
    assert near <= set(distributed.results["near_duplicates"].flagged) | exact
    places = {step["where"] for step in distributed.dataset["engine"]["checks"]["near_duplicates"]["steps"]}
    assert "ray shuffle" in places


def test_unknown_engine_is_an_error(corpus):
    with pytest.raises(HubtoolsError, match="unknown engine"):
        run_checks(corpus / "llama_factory" / "identity.json", engine="spark")


def test_cli_check_and_filter_on_ray(local_ray, corpus, tmp_path):
    """`check --engine ray` writes the local report plus the flags as Parquet shards;
    `filter --engine ray` removes what the local engine removes."""
    src = corpus / "llama_factory" / "alpaca_en_demo.json"
    cli = CliRunner()
    args = ["--checks", "exact_duplicates,near_duplicates,refusals"]
    ray_run = cli.invoke(app, ["check", str(src), "--out", str(tmp_path / "ray"), *args, "--engine", "ray"],
                         catch_exceptions=False)
    assert ray_run.exit_code == 0, ray_run.output
    local_run = cli.invoke(app, ["check", str(src), "--out", str(tmp_path / "local"), *args], catch_exceptions=False)
    assert local_run.exit_code == 0, local_run.output
    ray_quality = json.loads((tmp_path / "ray" / "quality.json").read_text())
    local_quality = json.loads((tmp_path / "local" / "quality.json").read_text())
    for name, result in local_quality["checks"].items():
        assert ray_quality["checks"][name]["flagged"] == result["flagged"]
    assert (tmp_path / "ray" / "dataset_quality_report.md").is_file()
    shards = pq.read_table(tmp_path / "ray" / "flagged").to_pylist()
    expected = sorted((int(i), name, r["reasons"][str(i)]) for name, r in local_quality["checks"].items()
                      for i in r["flagged"])
    assert [(s["index"], s["check"], s["reason"]) for s in shards] == expected and expected
    assert not (tmp_path / "local" / "flagged").exists()

    filtered = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"filter-{engine}"
        run = cli.invoke(app, ["filter", str(src), "--out", str(out), "--drop", "exact_duplicates,refusals",
                               "--engine", engine, "--json"], catch_exceptions=False)
        assert run.exit_code == 0, run.output
        filtered[engine] = json.loads(run.stdout)
        filtered[engine]["removed_rows"] = (out / "removed.jsonl").read_text()
    assert filtered["ray"]["kept"] == filtered["local"]["kept"] and filtered["ray"]["removed"] > 0
    assert filtered["ray"]["removed_rows"] == filtered["local"]["removed_rows"]
    # with Ray the kept records are Parquet shards of canonical records, each with its source index
    kept = pq.read_table(tmp_path / "filter-ray" / "kept")
    removed = {json.loads(line)["index"] for line in filtered["ray"]["removed_rows"].splitlines()}
    assert kept.num_rows == filtered["ray"]["kept"] and "messages" in kept.column_names
    assert set(kept.column(INDEX).to_pylist()) == set(range(filtered["ray"]["read"])) - removed


def test_filter_jsonl_shards(corpus, tmp_path):
    """--shards jsonl: kept records in shards of the size asked, kept + removed = read."""
    result = filter_dataset(corpus / "llama_factory" / "identity.json", tmp_path, drop="exact_duplicates",
                            shards="jsonl", shard_rows=40)
    parts = sorted((tmp_path / "kept").iterdir())
    assert [p.name for p in parts] == ["part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"]
    rows = [json.loads(line) for p in parts for line in p.read_text().splitlines()]
    assert len(rows) == result.kept == 91 - result.removed and rows[0]["messages"]


def test_ray_options_need_the_ray_engine(corpus, tmp_path):
    run = CliRunner().invoke(app, ["check", str(corpus / "llama_factory" / "identity.json"), "--out",
                                   str(tmp_path), "--ray-address", "auto"])
    assert run.exit_code != 0 and "--engine ray" in run.output


def descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (this test's Ray: its GCS, raylet and their workers)."""
    out, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            kids = [int(k) for t in os.listdir(f"/proc/{parent}/task")
                    for k in open(f"/proc/{parent}/task/{t}/children").read().split()]
        except OSError:
            kids = []
        out += kids
        frontier += kids
    return out


@contextmanager
def killing_one_worker(marker: bytes) -> Iterator[list[str]]:
    """While the block runs, SIGKILL the first Ray worker under this process whose title holds
    ``marker`` (e.g. ``b"MapBatches"``); yields the list of the titles killed."""
    killed: list[str] = []
    stop = threading.Event()

    def kill_one() -> None:
        while not stop.is_set() and not killed:
            for pid in descendants(os.getpid()):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as fh:
                        title = fh.read()
                except OSError:
                    continue
                if title.startswith(b"ray::") and marker in title:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(title.split(b"\0")[0].decode(errors="replace"))
                    return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_one)
    killer.start()
    try:
        yield killed
    finally:
        stop.set()
        killer.join()


def test_killed_worker_is_retried_without_losing_a_record(local_ray, corpus, tmp_path):
    """A Ray worker killed (SIGKILL) while it runs a batch: Ray runs the batch again and the
    results are the local ones, no row lost or counted twice."""
    path = tmp_path / "planted.jsonl"
    planted(path, 21_000, corpus)  # two batches
    loaded = load(path)
    checks = "repetition,refusals"
    expected = run_checks(loaded, checks=checks)
    with killing_one_worker(b"MapBatches") as killed:
        distributed = run_checks(loaded, checks=checks, engine="ray")
    assert killed, "no busy Ray worker was seen to kill"
    assert_same(expected, distributed, "after a killed worker")


def test_model_check_runs_in_an_actor_pool(local_ray, corpus, tmp_path):
    """A model backend (transformers, a tiny classifier built here) runs in Ray actors, which
    load the model once each; the scores and flags are the local ones."""
    from tests.fixtures.tiny_models import tiny_bert_classifier

    model = tiny_bert_classifier(tmp_path / "classifier", {0: "non-toxic", 1: "toxic"})
    loaded = load(corpus / "llama_factory" / "identity.json")
    options = {"toxicity": {"backend": "transformers", "model": str(model), "threshold": 0.5}}
    local = run_checks(loaded, checks="toxicity", options=options)
    distributed = run_checks(loaded, checks="toxicity", options=options, engine="ray")
    assert_same(local, distributed, "toxicity, transformers backend")
    steps = distributed.dataset["engine"]["checks"]["toxicity"]["steps"]
    assert [s["where"] for s in steps] == ["ray actors"]


def _timed_batch(batch) -> tuple[int, float, float]:
    """A batch function (module level: Ray workers import it) that waits 0.3 s: its worker,
    start and end."""
    started = time.time()
    time.sleep(0.3)
    return os.getpid(), started, time.time()


def test_maps_use_every_cpu_from_the_first_block(local_ray, tmp_path):
    """A map over the view's blocks runs on both CPUs from its first task (Ray Data's budget
    backpressure would run the first blocks one at a time, leaving a CPU idle in every pass)."""
    from hubtools.checks.base import BATCH_SIZE, CheckData
    from hubtools.checks.engines.ray import RayCheckData, RayEngine

    path = tmp_path / "short.jsonl"
    path.write_bytes(b"".join(b'{"text": "t%d"}\n' % i for i in range(4 * BATCH_SIZE)))
    engine = RayEngine()
    engine.connect()
    view = RayCheckData.wrap(CheckData.from_dataset(load(path).dataset), engine)
    for _ in range(2):  # the second pass: its workers started already
        runs = sorted(view.map(_timed_batch, ["text"]), key=lambda r: r[1])
    assert len(runs) == 4
    (pid_a, _, end_a), (pid_b, start_b, _) = runs[:2]
    assert pid_a != pid_b and start_b < end_a, runs


def test_worker_memory_bounds_how_many_tasks_a_node_runs(local_ray, tmp_path):
    """--ray-worker-memory: every task reserves that much of Ray's memory resource, so a node
    whose memory holds one such task runs its batches one at a time (two CPUs or not), with the
    same results; more than any node holds is an error when the run starts, not a hang."""
    from hubtools.checks.base import BATCH_SIZE, CheckData
    from hubtools.checks.engines import get_engine
    from hubtools.checks.engines.ray import RayCheckData
    from hubtools.errors import HubtoolsError

    node_memory = max(n["Resources"]["memory"] for n in ray.nodes() if n["Alive"])
    path = tmp_path / "short.jsonl"
    path.write_bytes(b"".join(b'{"text": "t%d"}\n' % i for i in range(4 * BATCH_SIZE)))
    engine = get_engine("ray", worker_memory=int(node_memory * 0.6))
    engine.connect()
    assert engine.describe()["cluster"]["task_slots"] == 1
    view = RayCheckData.wrap(CheckData.from_dataset(load(path).dataset), engine)
    runs = sorted(view.map(_timed_batch, ["text"]), key=lambda r: r[1])
    assert len(runs) == 4
    assert all(later[1] >= earlier[2] for earlier, later in zip(runs, runs[1:])), runs

    loaded = load(CORPUS / "llama_factory" / "alpaca_en_demo.json")
    checks = "exact_duplicates,near_duplicates,length_outliers"
    assert_same(run_checks(loaded, checks=checks), run_checks(loaded, checks=checks, engine=engine), "worker memory")

    with pytest.raises(HubtoolsError, match="no node of the Ray cluster has") as info:
        get_engine("ray", worker_memory=int(node_memory) * 2).connect()
    assert "--ray-worker-memory" in info.value.hint
    with pytest.raises(HubtoolsError, match="local engine"):
        get_engine("local", worker_memory="1GB")


def kill_marked(marker: str) -> list[int]:
    """Kill (SIGKILL) the processes whose command line holds ``marker`` (a cluster's own temp
    folder) and their descendants; return their pids. Never `ray stop`: it stops every Ray."""
    pids = set()
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()):
        try:
            if marker.encode() in open(f"/proc/{pid}/cmdline", "rb").read():
                pids |= {pid, *descendants(pid)}
        except OSError:
            continue
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return sorted(pids)


@pytest.fixture
def two_node_cluster():
    """`ray start --head` and `ray start --address` on this machine: two nodes of one CPU and a
    100 MB object store each; removed after the test by its own temp folder's processes."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths live in it
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # a throwaway cluster on localhost
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    common = ["--num-cpus=1", "--object-store-memory=100000000", "--disable-usage-stats"]
    try:
        subprocess.run([*ray_cli, "start", "--head", f"--port={port}", "--include-dashboard=false",
                        f"--temp-dir={temp}", *common], env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([*ray_cli, "start", f"--address=127.0.0.1:{port}", *common], env=env, check=True,
                       capture_output=True, timeout=120)
        yield f"127.0.0.1:{port}", env
    finally:
        # a killed parent may have started a child between two scans, and SIGKILL takes a moment
        # on a loaded machine: scan again until a scan finds nothing, for at most 30 s
        deadline = time.monotonic() + 30
        while kill_marked(temp) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not kill_marked(temp), "a process of the test cluster survived 30 s of SIGKILLs"


def test_two_node_cluster_same_results(two_node_cluster, corpus, tmp_path):
    """`hubtools check --engine ray --ray-address` on a two-node cluster: the local flags."""
    address, env = two_node_cluster
    path = tmp_path / "planted.jsonl"
    planted(path, 100_000, corpus)  # the parity size, spread over both nodes
    checks = "exact_duplicates,near_duplicates,length_outliers,refusals"
    run = subprocess.run([sys.executable, "-m", "hubtools.cli", "check", str(path), "--out", str(tmp_path / "out"),
                          "--checks", checks, "--engine", "ray", "--ray-address", address],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    quality = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert quality["dataset"]["engine"]["cluster"]["nodes"] == 2
    assert quality["dataset"]["engine"]["address"] == address
    local = run_checks(load(path), checks=checks)
    for name, result in local.results.items():
        assert quality["checks"][name]["flagged"] == result.flagged, name
    assert pq.read_table(tmp_path / "out" / "flagged").num_rows == sum(r.count for r in local.results.values())


def test_engine_starts_a_bounded_local_ray_and_stops_it(corpus, tmp_path):
    """Without --ray-address the run starts its own Ray with the CPUs and object store memory
    asked for (beyond it Ray spills to disk), and stops it at the end (own process: the
    module's Ray is not involved)."""
    out = tmp_path / "out"
    script = ("import json, sys, ray\n"
              "from hubtools.cli import app\n"
              "try:\n"
              "    app(sys.argv[1:])\n"
              "except SystemExit as exc:\n"
              "    assert not exc.code, exc.code\n"
              "print(json.dumps({'still_running': ray.is_initialized()}))\n")
    run = subprocess.run([sys.executable, "-c", script, "check", str(corpus / "llama_factory" / "identity.json"),
                          "--out", str(out), "--checks", "exact_duplicates,length_outliers", "--engine", "ray",
                          "--ray-workers", "1", "--ray-memory", "100MB"],
                         env={**os.environ, "RAY_AUTH_MODE": "disabled"}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"still_running": False}
    engine = json.loads((out / "quality.json").read_text())["dataset"]["engine"]
    assert engine["cluster"]["cpus"] == 1 and engine["object_store_memory"] == 100 * 1024 * 1024
    assert engine["cluster"]["object_store_memory"] == 100 * 1024 * 1024


def test_blocks_hold_one_to_four_batches_and_give_every_cpu_four():
    """The in-store view's block size: bigger blocks cost Ray fewer tasks and shuffle partitions, but a
    cluster's CPUs each still get at least four blocks where the input has the rows."""
    from hubtools.checks.base import BATCH_SIZE
    from hubtools.checks.engines.ray import BLOCK_BATCHES, block_rows

    assert block_rows(1_000_000, 2, BATCH_SIZE) == BLOCK_BATCHES * BATCH_SIZE  # 13 blocks, not 50
    assert block_rows(3_000, 2, BATCH_SIZE) == BATCH_SIZE  # never under one batch
    assert block_rows(1_000_000, 100, BATCH_SIZE) == BATCH_SIZE  # 50 blocks for 100 CPUs
    assert block_rows(200_000, 2, BATCH_SIZE) == BATCH_SIZE  # 10 blocks: at least 4 per CPU
    assert block_rows(400_000, 2, BATCH_SIZE) == 2 * BATCH_SIZE
    for rows, cpus, batch in ((1_000_000, 2, 512), (10_000_000, 8, 32), (50_000, 3, 7_000), (10, 1, 30_000)):
        block = block_rows(rows, cpus, batch)
        assert block % batch == 0 and block <= max(BLOCK_BATCHES * BATCH_SIZE, batch)
        assert block > BATCH_SIZE - batch  # about a batch at the least
