"""One live run per output folder: concurrent `generate responses` runs (real processes) against
the OpenAI-protocol stand-in, a `--resume` beside a live run, a lock left by a killed run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from hubtools.cli import app
from hubtools.errors import RunLockedError
from hubtools.generate.store import LOCK_FILE, Checkpoint, run_lock
from tests.fixtures.openai import OPENAI_TOKEN

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = 8
runner = CliRunner()
#: the stand-in's key, as HF_TOKEN and as HUBTOOLS_API_KEY (the key for a non-Hugging Face endpoint)
KEY_ENV = {"HF_TOKEN": OPENAI_TOKEN, "HUBTOOLS_API_KEY": OPENAI_TOKEN}


@pytest.fixture
def prompts(tmp_path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"question_id": i, "category": "math", "turns": [f"What is {i} plus {i}?"]})
                            + "\n" for i in range(PROMPTS)))  # MT-Bench questions, as `generate instructions` writes
    return path


def _args(server, prompts: Path, out: Path) -> list[str]:
    return ["generate", "responses", str(prompts), "--out", str(out), "--endpoint", server.base_url,
            "--model", "stand-in-small", "--concurrency", "1"]


def _spawn(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, **KEY_ENV, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "hubtools.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _requested(server) -> Counter:
    return Counter(r.messages[-1]["content"] for r in server.completions())


def _wait_for_rows(checkpoint: Path, rows: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if checkpoint.exists() and len(checkpoint.read_bytes().splitlines()) > rows:
            return
        time.sleep(0.02)
    raise AssertionError(f"the first run did not get going (exit {process.poll()})")


def test_two_runs_started_together_into_one_out_request_each_row_once(make_openai_server, prompts, tmp_path):
    server = make_openai_server(token=OPENAI_TOKEN, latency=0.3)  # 8 rows one at a time: ~2.5 s of run
    out = tmp_path / "r"
    first, second = _spawn(_args(server, prompts, out)), _spawn(_args(server, prompts, out))
    results = {p.pid: (p.wait(timeout=120), *p.communicate()) for p in (first, second)}
    codes = sorted(code for code, _, _ in results.values())
    assert codes == [0, 1], results
    winner = next(pid for pid, (code, _, _) in results.items() if code == 0)
    _, _, refused = next(r for r in results.values() if r[0] == 1)
    assert refused.startswith("error: ") and len(refused.strip().splitlines()) == 1, refused
    assert f"a run is writing here (pid {winner} on {socket.gethostname()}" in refused
    assert "Traceback" not in refused
    requested = _requested(server)
    assert len(requested) == PROMPTS and set(requested.values()) == {1}  # every row asked for once
    summary = json.loads((out / "summary.json").read_text())
    assert summary["candidates"] == PROMPTS and summary["runs"][0]["requests"] == PROMPTS
    assert not (out / LOCK_FILE).exists()  # released when the run ended


def test_a_resume_beside_a_live_run_is_refused(make_openai_server, prompts, tmp_path):
    server = make_openai_server(token=OPENAI_TOKEN, latency=0.2)
    out = tmp_path / "r"
    args = _args(server, prompts, out)
    live = _spawn(args)
    try:
        _wait_for_rows(out / "checkpoint.stand-in-small.jsonl", 2, live)  # header + 2 rows: mid-run
        holder = orjson.loads((out / LOCK_FILE).read_bytes())
        assert holder["pid"] == live.pid and holder["host"] == socket.gethostname()
        assert abs(holder["started"] - time.time()) < 120
        for extra in (["--resume"], []):
            result = runner.invoke(app, [*args, *extra], env=KEY_ENV)
            assert result.exit_code == 1, result.output
            assert f"a run is writing here (pid {live.pid} on {socket.gethostname()} since " in result.stderr
            assert "wait for it to finish (or stop it), or choose another --out" in result.stderr
    finally:
        code, _, err = live.wait(timeout=120), *live.communicate()
    assert code == 0, err
    requested = _requested(server)
    assert len(requested) == PROMPTS and set(requested.values()) == {1}


def test_a_lock_left_by_a_dead_run_is_taken_over_with_a_note(openai_server, prompts, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = {"pid": dead.pid, "host": socket.gethostname(), "started": time.time() - 3600}
    (out / LOCK_FILE).write_bytes(orjson.dumps(stale))
    run = _spawn(_args(openai_server, prompts, out))
    code, _, err = run.wait(timeout=120), *run.communicate()
    assert code == 0, err
    assert f"taking over the lock left by pid {dead.pid} on {socket.gethostname()}" in err
    assert "(no longer running)" in err
    assert len(openai_server.completions()) == PROMPTS
    assert not (out / LOCK_FILE).exists()


def test_the_lock_is_shared_by_a_stage_and_its_checkpoints_but_not_by_another_thread(tmp_path):
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            with run_lock(tmp_path):
                pass
        except RunLockedError as exc:
            errors.append(exc)

    with run_lock(tmp_path) as lock:
        checkpoint = Checkpoint(tmp_path / "checkpoint.x.jsonl", {"stage": "x"})  # same thread: re-entered
        checkpoint.close()
        assert lock.held and (tmp_path / LOCK_FILE).exists()  # the checkpoint did not release it
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert len(errors) == 1 and errors[0].holder["pid"] == os.getpid()
    assert not (tmp_path / LOCK_FILE).exists()
    with run_lock(tmp_path):  # free again
        pass


def test_a_model_judge_into_a_folder_another_process_holds_is_refused_before_any_request(openai_server, tmp_path):
    out = tmp_path / "judged"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom hubtools.generate.store import run_lock\n"
                               "with run_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n",
                               str(out)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        replies = tmp_path / "replies.jsonl"
        replies.write_text(json.dumps({"messages": [{"role": "user", "content": "What is 2 plus 2?"},
                                                    {"role": "assistant", "content": "4."}]}) + "\n")
        result = runner.invoke(app, ["judge", str(replies), "--out", str(out), "--endpoint", openai_server.base_url,
                                     "--model", "stand-in-judge"], env=KEY_ENV)
        assert result.exit_code == 1, result.output
        assert f"a run is writing here (pid {holder.pid} on {socket.gethostname()} since " in result.stderr
        assert openai_server.completions() == [] and not (out / "judged.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
