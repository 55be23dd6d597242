"""The OpenAI-protocol stand-in itself: wire format, auth, faults, log, standalone mode."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fixtures.openai import OPENAI_MODELS, OPENAI_TOKEN
from tests.openai_server import Fault, answer

ROOT = Path(__file__).resolve().parents[1]


def post(server, body, token=OPENAI_TOKEN, raw: bytes | None = None):
    request = urllib.request.Request(
        f"{server.base_url}/chat/completions", data=raw if raw is not None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def chat(content="What is the capital of France?", **extra):
    return {"model": "stand-in-small", "messages": [{"role": "user", "content": content}], **extra}


def test_chat_completion_has_the_openai_shape_and_is_deterministic(openai_server):
    status, headers, body = post(openai_server, chat(seed=3, temperature=0.7))
    data = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert data["object"] == "chat.completion" and data["model"] == "stand-in-small"
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
    assert data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"]
    assert json.loads(post(openai_server, chat(seed=3, temperature=0.7))[2])["choices"][0] == choice
    other_seed = json.loads(post(openai_server, chat(seed=4, temperature=0.7))[2])["choices"][0]
    assert other_seed["message"]["content"] != choice["message"]["content"]


def test_n_choices_differ_and_max_tokens_truncates(openai_server):
    data = json.loads(post(openai_server, chat(n=3, seed=1, content="Tell me a long story please"))[2])
    texts = [c["message"]["content"] for c in data["choices"]]
    assert len(texts) == 3 and len(set(texts)) == 3
    short = json.loads(post(openai_server, chat(max_tokens=2))[2])["choices"][0]
    assert short["finish_reason"] == "length" and len(short["message"]["content"].split()) == 2


def test_models_are_listed_and_an_unknown_model_is_404(openai_server):
    request = urllib.request.Request(f"{openai_server.base_url}/models",
                                     headers={"Authorization": f"Bearer {OPENAI_TOKEN}"})
    with urllib.request.urlopen(request) as response:
        assert [m["id"] for m in json.loads(response.read())["data"]] == OPENAI_MODELS
    status, _, body = post(openai_server, {**chat(), "model": "gpt-17"})
    assert status == 404 and json.loads(body)["error"]["code"] == "model_not_found"


def test_bearer_token_is_required_and_never_logged(openai_server):
    assert post(openai_server, chat(), token=None)[0] == 401
    assert post(openai_server, chat(), token="sk-wrong")[0] == 401
    assert post(openai_server, chat())[0] == 200
    assert [r.authorized for r in openai_server.log] == [False, False, True]
    assert OPENAI_TOKEN not in repr(openai_server.log)


def test_scripted_faults_come_in_order(openai_server):
    openai_server.queue_faults(Fault(status=429, retry_after=2), Fault(status=503), Fault(kind="malformed"))
    status, headers, _ = post(openai_server, chat())
    assert status == 429 and headers["Retry-After"] == "2"
    assert post(openai_server, chat())[0] == 503
    status, _, body = post(openai_server, chat())
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    assert post(openai_server, chat())[0] == 200
    assert [r.fault for r in openai_server.completions()] == ["429", "503", "malformed", None]


def test_fail_every_and_fail_when(openai_server):
    openai_server.fail_every(3, Fault(status=500))
    statuses = [post(openai_server, chat(f"q{i}"))[0] for i in range(6)]
    assert statuses == [200, 200, 500, 200, 200, 500]
    openai_server.reset()
    openai_server.fail_when("poison", Fault(status=502), times=2)
    assert [post(openai_server, chat(c))[0] for c in ("poison", "fine", "poison", "poison")] == [502, 200, 502, 200]


def test_bad_body_is_400(openai_server):
    assert post(openai_server, None, raw=b"{not json")[0] == 400
    assert post(openai_server, {"model": "stand-in-small"})[0] == 400


def test_latency_is_served_concurrently(make_openai_server):
    server = make_openai_server(latency=0.3)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: post(server, chat(f"q{i}"), token=None)[0], range(8)))
    assert statuses == [200] * 8
    assert server.max_in_flight == 8
    assert all(r.finished - r.started >= 0.3 for r in server.completions())


def test_judge_scripts_are_parseable_and_follow_their_rules():
    rubric = [{"role": "system", "content": "Score with this rubric."},
              {"role": "user", "content": "<question>\nQ\n</question>\n<source>\nalpha beta\n</source>\n"
                                          "<response>\nalpha beta gamma delta\n</response>"}]
    verdict = json.loads(answer(rubric, "j", {}).removeprefix("```json\n").removesuffix("\n```"))
    assert verdict["correctness"]["score"] == 6  # 2 of 4 words in the source: 1 + 9 * 0.5 = 5.5 -> 6
    assert verdict["safety"]["score"] == 10
    pair = [{"role": "user", "content": "<response_a>\nshort\n</response_a>\n<response_b>\na longer one\n</response_b>"}]
    assert answer(pair, "j", {}).endswith("[[B]]")
    assert answer(pair, "j", {}, position_bias="first").endswith("[[A]]")


def test_runs_standalone_as_a_module():
    process = subprocess.Popen([sys.executable, "-m", "tests.openai_server", "--port", "0", "--model", "solo",
                                "--latency", "0"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert "serving solo" in line
        base_url = line.split(" at ")[1].split()[0]
        request = urllib.request.Request(f"{base_url}/chat/completions", data=json.dumps(
            {"model": "solo", "messages": [{"role": "user", "content": "hi"}]}).encode())
        deadline = time.monotonic() + 10
        with urllib.request.urlopen(request, timeout=max(1, deadline - time.monotonic())) as response:
            assert json.loads(response.read())["choices"][0]["message"]["content"].startswith("Answer from solo")
    finally:
        process.terminate()
        process.wait(timeout=10)
