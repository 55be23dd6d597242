"""The runner against the stand-in: concurrency bound, retries, cache, checkpoint, kill -9 and resume."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from hubtools.errors import BackendError, RunStateError, UnparseableOutputError
from hubtools.generate import InferenceClientBackend, Pricing, Runner, Task
from hubtools.generate.store import Checkpoint
from tests.fixtures.openai import OPENAI_TOKEN
from tests.openai_server import Fault

ROOT = Path(__file__).resolve().parents[1]


def backend_for(server, model="stand-in-small"):
    return InferenceClientBackend(model, endpoint=server.base_url, token=OPENAI_TOKEN)


def tasks(n, **params):
    return [Task(f"row-{i}", [{"role": "user", "content": f"question number {i}"}], dict(params)) for i in range(n)]


def test_concurrency_is_bounded_and_used(make_openai_server):
    server = make_openai_server(latency=0.15)
    outcome = Runner(backend_for(server), concurrency=3).run(tasks(12))
    assert len(outcome.results) == 12 and not outcome.failures
    assert server.max_in_flight == 3


def test_retries_recover_and_honour_retry_after(openai_server):
    openai_server.queue_faults(Fault(status=429, retry_after=0.4), Fault(status=500), Fault(kind="malformed"),
                               Fault(status=503, retry_after=0.2))
    outcome = Runner(backend_for(openai_server), concurrency=1, base_delay=0.01, seed=0).run(tasks(3))
    assert sorted(outcome.results) == ["row-0", "row-1", "row-2"] and not outcome.failures
    stats = outcome.stats.to_dict()
    assert stats["retries"] == 4 and stats["requests"] == 7
    assert stats["errors_by_reason"] == {"rate_limited": 1, "server_error": 2, "malformed": 1}
    log = openai_server.completions()
    assert log[0].status == 429 and log[1].started - log[0].finished >= 0.4
    assert log[3].status == 503 and log[4].started - log[3].finished >= 0.2


def test_backoff_is_exponential_with_jitter_and_capped():
    runner = Runner(backend=type("B", (), {"model": "m"})(), base_delay=0.5, max_delay=4.0, seed=1)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        delays = [runner.backoff(attempt, None) for _ in range(50)]
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays) and len(set(delays)) == 50
    assert 7.0 <= runner.backoff(0, 7.0) <= 8.0


def test_a_row_that_keeps_failing_is_reported_and_the_others_finish(openai_server):
    openai_server.fail_when("number 1\"", Fault(status=500), times=100)
    outcome = Runner(backend_for(openai_server), max_retries=2, base_delay=0.01).run(tasks(4))
    assert sorted(outcome.results) == ["row-0", "row-2", "row-3"]
    assert outcome.failures["row-1"].startswith("server_error")
    assert sum("number 1\"" in json.dumps(r.messages) for r in openai_server.completions()) == 3
    assert outcome.stats.to_dict()["done"] == 3 and outcome.stats.failed == 1


def test_a_bad_model_stops_the_run_at_once(openai_server, tmp_path):
    with pytest.raises(BackendError) as info:
        Runner(backend_for(openai_server, "gpt-17"), checkpoint=tmp_path / "cp.jsonl").run(tasks(20))
    assert info.value.reason == "model_not_found"
    assert len(openai_server.completions()) <= 8  # one per worker, no retries


def test_cache_answers_repeats_without_requests(openai_server, tmp_path):
    cache = tmp_path / "cache.sqlite"
    first = Runner(backend_for(openai_server), cache=cache).run(tasks(5, seed=1))
    assert first.stats.generated == 5 and first.stats.cached == 0
    again = Runner(backend_for(openai_server), cache=cache).run(tasks(5, seed=1))
    assert again.stats.cached == 5 and again.stats.requests == 0 and len(openai_server.completions()) == 5
    assert [again.results[k].completion.text for k in sorted(again.results)] == \
        [first.results[k].completion.text for k in sorted(first.results)]
    other = Runner(backend_for(openai_server), cache=cache).run(tasks(5, seed=2))
    assert other.stats.generated == 5
    other_model = Runner(backend_for(openai_server, "stand-in-large"), cache=cache).run(tasks(5, seed=1))
    assert other_model.stats.generated == 5


def test_unparseable_answers_are_asked_again_with_the_reason(openai_server):
    def parse(text):
        try:
            return json.loads(text.strip().removeprefix("```json").removesuffix("```"))
        except ValueError:
            raise UnparseableOutputError("expected a JSON object") from None

    judge = [{"role": "system", "content": "Use the rubric."},
             {"role": "user", "content": "<response>\nsome words [[garble]]\n</response>"}]
    outcome = Runner(backend_for(openai_server)).run([Task("j", judge, parse=parse, repair="Reply with JSON.")])
    result = outcome.results["j"]
    assert result.value["safety"]["score"] == 10 and result.attempts == 2
    assert outcome.stats.unparseable == 1
    repair = openai_server.completions()[-1].messages
    assert repair[-1]["content"] == "Your answer could not be parsed: expected a JSON object. Reply with JSON."


def test_usage_and_cost_are_accounted(openai_server):
    outcome = Runner(backend_for(openai_server), pricing=Pricing(2.0, 10.0)).run(tasks(4))
    summary = outcome.stats.to_dict()
    prompt = sum(r.completion.usage.prompt_tokens for r in outcome.results.values())
    completion = sum(r.completion.usage.completion_tokens for r in outcome.results.values())
    assert summary["usage"] == {"prompt_tokens": prompt, "completion_tokens": completion,
                                "total_tokens": prompt + completion}
    assert summary["cost_usd"] == pytest.approx((prompt * 2 + completion * 10) / 1e6)
    assert OPENAI_TOKEN not in json.dumps(summary)


def test_checkpoint_refuses_to_overwrite_or_mix_runs(openai_server, tmp_path):
    checkpoint = tmp_path / "cp.jsonl"
    Runner(backend_for(openai_server), checkpoint=checkpoint, header={"stage": "x"}).run(tasks(2))
    with pytest.raises(RunStateError, match="pass --resume"):
        Runner(backend_for(openai_server), checkpoint=checkpoint, header={"stage": "x"}).run(tasks(2))
    with pytest.raises(RunStateError, match="other settings \\(model\\)"):
        Runner(backend_for(openai_server, "stand-in-large"), checkpoint=checkpoint, header={"stage": "x"},
               resume=True).run(tasks(2))
    resumed = Runner(backend_for(openai_server), checkpoint=checkpoint, header={"stage": "x"},
                     resume=True).run(tasks(3))
    assert resumed.stats.resumed == 2 and resumed.stats.generated == 1


def test_a_cut_short_last_line_is_redone_once(openai_server, tmp_path):
    checkpoint = tmp_path / "cp.jsonl"
    Runner(backend_for(openai_server), checkpoint=checkpoint).run(tasks(3))
    data = checkpoint.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    checkpoint.write_bytes(data[: last_start + 25])  # killed in the middle of writing the last row
    outcome = Runner(backend_for(openai_server), checkpoint=checkpoint, resume=True).run(tasks(3))
    assert outcome.stats.resumed == 2 and outcome.stats.generated == 1
    keys = [json.loads(line)["key"] for line in checkpoint.read_bytes().splitlines()[1:]]
    assert sorted(keys) == ["row-0", "row-1", "row-2"]


def test_workers_do_not_wait_for_checkpoint_commits(openai_server, tmp_path, monkeypatch):
    from hubtools.generate import runner as runner_module

    n, all_asked = 5, threading.Event()

    class SlowDisk(Checkpoint):
        def _write_batch(self, batch):
            # the disk holds the first commit until every request has been sent: with one worker,
            # that happens only if the worker goes on without waiting for its row to be on disk
            if not all_asked.wait(timeout=10):
                raise AssertionError("the worker waited for the commit")
            super()._write_batch(batch)

    monkeypatch.setattr(runner_module, "Checkpoint", SlowDisk)
    original = InferenceClientBackend.acomplete

    async def counting(self, messages, **params):
        try:
            return await original(self, messages, **params)
        finally:
            if len(openai_server.completions()) == n:
                all_asked.set()

    monkeypatch.setattr(InferenceClientBackend, "acomplete", counting)
    path = tmp_path / "cp.jsonl"
    outcome = Runner(backend_for(openai_server), checkpoint=path, concurrency=1).run(tasks(n))
    assert len(outcome.results) == n
    # run() returned only once every row was committed
    assert sorted(_checkpoint_keys(path)) == sorted(f"row-{i}" for i in range(n))


def test_a_full_disk_stops_the_run_with_the_os_error(openai_server, tmp_path, monkeypatch):
    from hubtools.generate import runner as runner_module

    class FullDisk(Checkpoint):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._fh.close()
            self._fh = open("/dev/full", "ab")  # a real ENOSPC on write

    monkeypatch.setattr(runner_module, "Checkpoint", FullDisk)
    backend = backend_for(openai_server)
    with pytest.raises(OSError) as info:
        Runner(backend, checkpoint=tmp_path / "cp.jsonl", concurrency=2).run(tasks(6))
    assert info.value.errno == errno.ENOSPC
    assert backend._async is None  # the async client (and its aiohttp session) was closed all the same


_CHILD = textwrap.dedent("""
    import sys
    from hubtools.generate import InferenceClientBackend, Runner, Task
    from hubtools.io import write_jsonl
    url, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    backend = InferenceClientBackend("stand-in-small", endpoint=url, token="%s")
    tasks = [Task(f"row-{i}", [{"role": "user", "content": f"question number {i}"}], {"seed": i}) for i in range(n)]
    outcome = Runner(backend, checkpoint=out + "/checkpoint.jsonl", resume=True, concurrency=4).run(tasks)
    write_jsonl(out + "/rows.jsonl", ({"key": t.key, "text": outcome.results[t.key].completion.text} for t in tasks))
""" % OPENAI_TOKEN)


def _checkpoint_keys(path: Path) -> list[str]:
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")[1:]
    return [json.loads(line)["key"] for line in lines if line.strip() and line.endswith(b"}")]


def test_kill_9_mid_run_then_resume_gives_every_row_exactly_once(make_openai_server, tmp_path):
    server = make_openai_server(token=OPENAI_TOKEN, latency=0.05)
    n = 60
    command = [sys.executable, "-c", _CHILD, server.base_url, str(tmp_path), str(n)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done_before: set[str] = set()

    def asked() -> set[str]:
        # a request the kill cut off mid-body is logged with no messages: it asked for nothing
        return {f"row-{r.messages[0]['content'].split()[-1]}" for r in server.completions() if r.messages}

    for kill_after in (10, 30):  # two kills at different points, then a run to the end
        child = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(_checkpoint_keys(tmp_path / "checkpoint.jsonl")) < kill_after and time.monotonic() < deadline:
            assert child.poll() is None, "the child finished before it could be killed"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert child.returncode == -signal.SIGKILL
        keys = _checkpoint_keys(tmp_path / "checkpoint.jsonl")
        assert len(keys) == len(set(keys)) and kill_after <= len(keys) < n
        assert not asked() & done_before  # rows finished before a kill are not asked again
        done_before |= set(keys)
        server.reset()
    final = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert Counter(r["key"] for r in rows) == Counter(f"row-{i}" for i in range(n))
    assert not asked() & done_before and asked() | done_before == {f"row-{i}" for i in range(n)}
    keys = _checkpoint_keys(tmp_path / "checkpoint.jsonl")
    assert sorted(keys) == sorted(f"row-{i}" for i in range(n))
    # the texts are the ones the stand-in gives for these prompts, whichever process wrote them
    fresh = Runner(InferenceClientBackend("stand-in-small", endpoint=server.base_url, token=OPENAI_TOKEN)).run(
        [Task(f"row-{i}", [{"role": "user", "content": f"question number {i}"}], {"seed": i}) for i in range(n)])
    assert {r["key"]: r["text"] for r in rows} == {k: v.completion.text for k, v in fresh.results.items()}
    assert Checkpoint(tmp_path / "checkpoint.jsonl", {"model": "stand-in-small"}, resume=True).rows.keys() == \
        set(keys)


def test_a_run_that_stopped_before_its_first_row_can_start_again_without_resume(openai_server, tmp_path):
    checkpoint = tmp_path / "cp.jsonl"
    with pytest.raises(BackendError):
        Runner(backend_for(openai_server, "gpt-17"), checkpoint=checkpoint).run(tasks(2))
    assert len(checkpoint.read_bytes().splitlines()) == 1  # the header only: nothing was done
    outcome = Runner(backend_for(openai_server), checkpoint=checkpoint).run(tasks(2))  # another model, no --resume
    assert outcome.stats.generated == 2 and len(_checkpoint_keys(checkpoint)) == 2


def test_a_run_where_nothing_works_stops_early_and_resumes_later(openai_server, tmp_path):
    from hubtools.generate.runner import FAIL_FAST_ROWS

    openai_server.fail_when("question number", Fault(status=400), times=10_000)  # e.g. a refused parameter
    checkpoint = tmp_path / "cp.jsonl"
    with pytest.raises(BackendError) as info:
        Runner(backend_for(openai_server), checkpoint=checkpoint, concurrency=2, max_retries=1,
               base_delay=0.01).run(tasks(200))
    assert info.value.message.startswith(f"stopped: the first {FAIL_FAST_ROWS} rows all failed, none worked")
    assert info.value.reason == "bad_request" and info.value.hint
    assert len(openai_server.completions()) < 20  # not 200 rows' worth of requests
    openai_server.reset()  # the endpoint is fixed: resume finishes the run
    outcome = Runner(backend_for(openai_server), checkpoint=checkpoint, resume=True, concurrency=2).run(tasks(200))
    assert len(outcome.results) == 200 and not outcome.failures


def test_rows_failing_each_in_their_own_way_do_not_stop_the_run(openai_server):
    # e.g. the longest prompts first, each over the context window by a different amount
    for i in range(10):
        openai_server.fail_when(f"question number {i}\"", Fault(status=400 + (i % 2) * 13), times=10)
    outcome = Runner(backend_for(openai_server), concurrency=1, max_retries=0).run(tasks(14))
    assert len(outcome.failures) == 10 and len(outcome.results) == 4  # rows 10-13 still ran
