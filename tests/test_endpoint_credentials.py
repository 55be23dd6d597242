"""Which credential goes to which endpoint, and which endpoints a public app may call.

The CLI runs in its own interpreter with ``HF_TOKEN`` set (as on a laptop logged in to the Hub) and
talks to a catcher endpoint that records every Authorization header and echoes it in its errors:
``HF_TOKEN`` never reaches it, the key given for it does, and no output shows either.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from hubtools import config
from hubtools.errors import BackendError
from hubtools.generate import InferenceClientBackend, check_endpoint, make_backend
from hubtools.generate.credentials import choose_credential, is_hf_endpoint, resolve_credential
from hubtools.generate.endpoint_guard import EndpointGuard, is_public_address
from tests.fixtures.catcher import Catcher
from tests.fixtures.hub import PROJECT_ROOT
from tests.fixtures.openai import OPENAI_TOKEN

from .conftest import CORPUS

#: the laptop's Hugging Face token: shaped like no known secret, so only remembering it can mask it
SERVER_TOKEN = "laptop-hf-token-5d0c1e9a"
HELLO = [{"role": "user", "content": "Name the capital of France."}]


@pytest.fixture
def catcher(openai_server):
    """A catcher in front of the stand-in; the key it forwards is the stand-in's."""
    catcher = Catcher(openai_server.url, OPENAI_TOKEN).start()
    yield catcher
    catcher.stop()


# --------------------------------------------------------------------------- the policy


class TestChooseCredential:
    @pytest.fixture(autouse=True)
    def environment(self, monkeypatch):
        monkeypatch.setattr(config, "HF_TOKEN", SERVER_TOKEN)
        monkeypatch.setattr(config, "API_KEY", None)
        monkeypatch.setattr(config, "OPENAI_API_KEY", "sk-openai-key-1234")
        monkeypatch.setattr(config, "HF_ENDPOINT", "http://127.0.0.1:9/")

    @pytest.mark.parametrize("endpoint", [
        None, "https://router.huggingface.co/v1", "https://api-inference.huggingface.co/models/x",
        "https://abc123.us-east-1.aws.endpoints.huggingface.cloud/v1", "http://127.0.0.1:9/api/x"])
    def test_hugging_face_hosts_get_hf_token(self, endpoint):
        assert is_hf_endpoint(endpoint)
        chosen = choose_credential(endpoint)
        assert (chosen.value, chosen.source) == (SERVER_TOKEN, "HF_TOKEN")

    @pytest.mark.parametrize("endpoint", [
        "http://127.0.0.1:8000/v1", "http://router.huggingface.co/v1", "https://router.huggingface.co:8443/v1",
        "https://huggingface.co.example.com/v1", "https://huggingface.co@example.com/v1",
        "https://example.com/huggingface.co/v1", "https://endpoints.huggingface.cloud.example.com/v1",
        "http://127.0.0.1:10/api", "https://api.openai.com.example.com/v1"])
    def test_other_endpoints_get_nothing_from_the_environment_but_their_own_keys(self, endpoint):
        assert not is_hf_endpoint(endpoint)
        assert choose_credential(endpoint).source == "none"
        assert choose_credential(endpoint, hf_token="hf_signedInUser1234", environment=False).source == "none"
        assert choose_credential(endpoint, api_key=" typed-key ").value == "typed-key"

    def test_hubtools_api_key_goes_to_other_endpoints_and_openai_key_only_to_openai(self, monkeypatch):
        assert choose_credential("https://api.openai.com/v1").source == "OPENAI_API_KEY"
        monkeypatch.setattr(config, "API_KEY", "hubtools-key-77")
        assert choose_credential("http://127.0.0.1:8000/v1").source == "HUBTOOLS_API_KEY"
        assert choose_credential("https://router.huggingface.co/v1").source == "HF_TOKEN"
        assert choose_credential("https://router.huggingface.co/v1", api_key="x-key").source == "--api-key"

    def test_the_app_never_takes_the_environment(self):
        assert choose_credential(None, environment=False).source == "none"
        chosen = choose_credential(None, hf_token="oauth-token-1", hf_token_source="sign-in", environment=False)
        assert (chosen.value, chosen.source) == ("oauth-token-1", "sign-in")
        assert SERVER_TOKEN not in repr(choose_credential(None))

    def test_a_hugging_face_token_named_for_another_endpoint_is_an_error(self):
        with pytest.raises(BackendError) as info:
            resolve_credential("http://127.0.0.1:8000/v1", token="hf_mytoken12345")
        assert info.value.reason == "auth" and "--api-key" in info.value.hint
        assert resolve_credential("http://127.0.0.1:8000/v1", token="hf_x", api_key="k").source == "--api-key"


# --------------------------------------------------------------------------- the library


def test_no_key_means_no_authorization_header_even_with_hf_token_set(catcher, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SERVER_TOKEN)  # what huggingface_hub would pick up by itself
    monkeypatch.setattr(config, "HF_TOKEN", SERVER_TOKEN)
    backend = InferenceClientBackend("stand-in-small", endpoint=catcher.base_url)  # sync path
    with pytest.raises(BackendError) as info:
        backend.complete(HELLO)
    assert info.value.reason == "auth" and info.value.hint.startswith("pass this endpoint's key with --api-key")

    async def run(b):
        try:
            return await b.acomplete(HELLO)
        finally:
            await b.aclose()

    with pytest.raises(BackendError):
        asyncio.run(run(make_backend("stand-in-small", endpoint=catcher.base_url)))  # async path
    assert InferenceClientBackend(endpoint=catcher.base_url).model == "tgi"  # GET /models: no header either
    assert catcher.authorizations() == {None} and len(catcher.seen) == 3
    keyed = make_backend("stand-in-small", endpoint=catcher.base_url, api_key=OPENAI_TOKEN)
    assert keyed.complete(HELLO).text and asyncio.run(run(keyed)).text
    assert catcher.authorizations() == {None, f"Bearer {OPENAI_TOKEN}"}


def test_an_echoed_key_comes_back_as_status_and_a_short_redacted_reason(catcher):
    with pytest.raises(BackendError) as info:
        InferenceClientBackend("echo", endpoint=catcher.base_url, token=OPENAI_TOKEN).complete(HELLO)
    said = f"{info.value} {info.value.hint}"
    assert info.value.reason == "bad_request" and info.value.status == 400
    assert "request refused (400): model echo refuses a request with Authorization: Bearer ***" in said
    assert OPENAI_TOKEN not in said
    check = check_endpoint(catcher.base_url, "stand-in-small", api_key="typed-key-6a2f")
    assert "the key was rejected (401) (credential: --api-key)" in check.line()
    assert "typed-key-6a2f" not in json.dumps(check.to_dict()) + check.line()


# --------------------------------------------------------------------------- the CLI, HF_TOKEN set

CLI = """
import json, sys
from typer.testing import CliRunner
from hubtools.cli import app

out = []
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(app, args)
    out.append({"args": args, "code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr,
                "exception": None if r.exception is None or isinstance(r.exception, SystemExit) else repr(r.exception)})
print(json.dumps(out))
"""


def run_cli(runs: list[list[str]], tmp_path, **env) -> list[dict]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("HF_", "HUGGINGFACE_", "HUBTOOLS_")) and k != "OPENAI_API_KEY"}
    clean.update(HF_TOKEN=SERVER_TOKEN, HF_HOME=str(tmp_path / "hf_home"), PYTHONPATH=str(PROJECT_ROOT), **env)
    done = subprocess.run([sys.executable, "-c", CLI, json.dumps(runs)], capture_output=True, text=True,
                          env=clean, timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_cli_sends_hf_token_to_no_other_endpoint_and_names_the_credential(catcher, tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text((CORPUS / "llama_factory" / "wiki_demo.txt").read_text(encoding="utf-8")[:3000], encoding="utf-8")
    gold = tmp_path / "gold.json"
    gold.write_text(json.dumps([{"instruction": "What is anarchism?", "input": "",
                                 "output": "A political philosophy sceptical of authority."}]), encoding="utf-8")
    at = ["--endpoint", catcher.base_url]
    key = ["--api-key", OPENAI_TOKEN]
    runs = [
        ["endpoint", "check", *at, "--model", "stand-in-small"],
        ["endpoint", "check", *at, "--model", "stand-in-small", *key],
        ["endpoint", "check", *at, "--model", "echo", *key],
        ["generate", "instructions", str(doc), "--out", "p", *at, "--model", "stand-in-large", *key,
         "--chunk-size", "100000", "--per-chunk", "1"],
        ["generate", "responses", "p/prompts.jsonl", "--out", "r", *at, "--model", "stand-in-small", *key],
        ["generate", "responses", "p/prompts.jsonl", "--out", "r2", *at, "--model", "stand-in-small"],
        ["judge", "r/responses.jsonl", "--out", "j", *at, "--model", "stand-in-judge", *key],
        ["crossval", "r/responses.jsonl", str(gold), "--out", "c", *at, "--model", "stand-in-judge", *key],
    ]
    results = run_cli(runs, tmp_path)
    assert [r["exception"] for r in results] == [None] * len(runs)
    no_key, ok, echo, instructions, responses, unkeyed, judged, crossval = results
    assert no_key["code"] == 1 and "the endpoint needs a key and none was sent (401) (credential: none)" in \
        no_key["stdout"]
    assert ok["code"] == 0 and ok["stdout"].startswith("ok: ") and "(credential: --api-key)" in ok["stdout"]
    assert echo["code"] == 1 and "request refused (400): model echo refuses a request with Authorization: Bearer ***" \
        in echo["stdout"]
    assert [instructions["code"], responses["code"], judged["code"], crossval["code"]] == [0, 0, 0, 0], results
    assert unkeyed["code"] == 1 and "the key was rejected (401)" in unkeyed["stdout"] + unkeyed["stderr"]
    # the catcher saw the key it was given, or nothing: never the laptop's HF_TOKEN
    assert catcher.authorizations() == {None, f"Bearer {OPENAI_TOKEN}"}
    posts = [auth for method, _, auth in catcher.seen if method == "POST"]
    assert posts.count(f"Bearer {OPENAI_TOKEN}") >= 5  # instructions, responses, judge, crossval
    shown = json.dumps([{k: v for k, v in r.items() if k != "args"} for r in results])
    assert SERVER_TOKEN not in shown and OPENAI_TOKEN not in shown
    for folder in ("p", "r", "r2", "j", "c"):
        for path in (tmp_path / folder).rglob("*"):
            if path.is_file():
                text = path.read_bytes().decode("utf-8", "replace")
                assert SERVER_TOKEN not in text and OPENAI_TOKEN not in text, path


def test_the_cli_takes_hubtools_api_key_and_refuses_token_for_another_endpoint(catcher, tmp_path):
    at = ["endpoint", "check", "--endpoint", catcher.base_url, "--model", "stand-in-small"]
    env_key, token = run_cli([at, [*at, "--token", SERVER_TOKEN]], tmp_path, HUBTOOLS_API_KEY=OPENAI_TOKEN)
    assert env_key["code"] == 0 and env_key["stdout"].rstrip().endswith("(credential: HUBTOOLS_API_KEY)")
    assert token["code"] == 1 and "--token is a Hugging Face token and goes only to Hugging Face hosts" in \
        token["stdout"]
    assert catcher.authorizations() == {f"Bearer {OPENAI_TOKEN}"} and len(catcher.seen) == 1
    shown = json.dumps([r["stdout"] + r["stderr"] for r in (env_key, token)])
    assert SERVER_TOKEN not in shown and OPENAI_TOKEN not in shown


# --------------------------------------------------------------------------- the endpoint guard


@pytest.mark.parametrize(("address", "public"), [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("127.0.0.1", False), ("10.0.0.1", False),
    ("172.16.5.4", False), ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
    ("0.0.0.0", False), ("224.0.0.1", False), ("240.0.0.1", False), ("255.255.255.255", False), ("::1", False),
    ("::", False), ("fe80::1", False), ("fc00::1", False), ("ff02::1", False), ("::ffff:127.0.0.1", False),
    ("::ffff:8.8.8.8", True), ("2002:7f00:1::", False), ("64:ff9b::a9fe:a9fe", False), ("not-an-ip", False)])
def test_public_addresses(address, public):
    assert is_public_address(address) is public


class TestEndpointGuard:
    guard = EndpointGuard(allowed=("http://10.0.0.5:8000/v1", "https://models.internal"))

    @pytest.mark.parametrize("url", ["http://10.0.0.5:8000/v1", "http://10.0.0.5:8000/v1/chat/completions",
                                     "https://models.internal/anything", "https://8.8.8.8/v1",
                                     "https://[2606:4700:4700::1111]/v1"])
    def test_accepted(self, url):
        self.guard.check(url)

    @pytest.mark.parametrize(("url", "why"), [
        ("http://8.8.8.8/v1", "only https"), ("http://10.0.0.5:8000/v10", "only https"),
        ("http://10.0.0.5:8001/v1", "only https"), ("http://10.0.0.5.example.com:8000/v1", "only https"),
        ("https://127.0.0.1:8000/v1", "127.0.0.1 is not a public address"),
        ("https://localhost/v1", "is not a public address"),
        ("https://[::ffff:169.254.169.254]/v1", "is not a public address"),
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is not a public address"),
        ("file:///etc/passwd", "only https")])
    def test_refused(self, url, why):
        with pytest.raises(BackendError) as info:
            self.guard.check(url)
        assert info.value.reason == "refused" and why in str(info.value)
        assert "HUBTOOLS_ALLOWED_ENDPOINTS" in info.value.hint

    def test_the_connection_itself_goes_only_to_public_addresses(self):
        with pytest.raises(OSError, match="refused: localhost resolved to"):
            asyncio.run(self._resolve("localhost"))
        assert asyncio.run(self._resolve("localhost", allowed=True))  # unless the operator allowed the host

    async def _resolve(self, host: str, allowed: bool = False):
        guard = EndpointGuard(allowed=(f"https://{host}",)) if allowed else self.guard
        return await guard.resolver().resolve(host, 443)

    def test_a_redirect_is_checked_like_the_first_request(self, catcher, openai_server):
        guard = EndpointGuard(allowed=(catcher.url,))  # the catcher is allowed, the stand-in is not
        backend = InferenceClientBackend("stand-in-small", endpoint=f"{catcher.url}/hop/v1", token=OPENAI_TOKEN,
                                         guard=guard)
        with pytest.raises(BackendError) as info:
            backend.complete(HELLO)
        assert info.value.reason == "refused" and "only https endpoints" in str(info.value)
        assert openai_server.completions() == [] and [m for m, _, _ in catcher.seen] == ["POST"]
        allowed = InferenceClientBackend("stand-in-small", endpoint=catcher.base_url, token=OPENAI_TOKEN, guard=guard)
        assert allowed.complete(HELLO).text.startswith("Answer from stand-in-small")
