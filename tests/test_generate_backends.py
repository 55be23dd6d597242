"""Backends against the real clients: InferenceClient -> the OpenAI-protocol stand-in; a tiny local model."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from hubtools.errors import BackendError
from hubtools.generate import (
    InferenceClientBackend,
    TransformersBackend,
    check_endpoint,
    make_backend,
)
from tests.fixtures.openai import OPENAI_TOKEN
from tests.openai_server import Fault

HELLO = [{"role": "user", "content": "Name the capital of France."}]


def backend_for(server, model="stand-in-small", token=OPENAI_TOKEN, **kw) -> InferenceClientBackend:
    return InferenceClientBackend(model, endpoint=server.base_url, token=token, **kw)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class TestInferenceClientBackend:
    def test_complete_sends_messages_and_parameters(self, openai_server):
        completion = backend_for(openai_server).complete(HELLO, temperature=0.7, max_tokens=64, seed=5)
        assert completion.text.startswith("Answer from stand-in-small about Name the capital of France")
        assert completion.model == "stand-in-small" and completion.finish_reason == "stop"
        assert completion.usage.prompt_tokens == 6 and completion.usage.completion_tokens > 0
        request = openai_server.completions()[-1]
        assert request.authorized and request.model == "stand-in-small"
        assert request.messages == HELLO
        assert {k: request.params[k] for k in ("temperature", "max_tokens", "seed")} == \
            {"temperature": 0.7, "max_tokens": 64, "seed": 5}

    def test_canonical_messages_lose_their_empty_keys_on_the_wire(self, openai_server):
        canonical = [{"role": "user", "content": "hi", "name": None, "tool_calls": None, "tool_call_id": None}]
        backend_for(openai_server).complete(canonical)
        assert openai_server.completions()[-1].messages == [{"role": "user", "content": "hi"}]

    def test_async_and_batch_variants_give_the_same_answers(self, openai_server):
        backend = backend_for(openai_server)
        batch = [[{"role": "user", "content": f"question {i}"}] for i in range(5)]
        sync = [backend.complete(m, seed=1).text for m in batch]
        assert [c.text for c in backend.complete_batch(batch, seed=1)] == sync

        async def run():
            try:
                return await backend.acomplete(batch[2], seed=1)
            finally:
                await backend.aclose()

        assert asyncio.run(run()).text == sync[2]
        assert len(openai_server.completions()) == 11

    def test_model_defaults_to_the_first_one_the_server_lists(self, openai_server):
        assert backend_for(openai_server, model=None).model == "stand-in-small"

    @pytest.mark.parametrize(("fault", "reason", "retryable", "retry_after"), [
        (Fault(status=429, retry_after=3), "rate_limited", True, 3.0),
        (Fault(status=503, retry_after=1.5), "server_error", True, 1.5),
        (Fault(status=500), "server_error", True, None),
        (Fault(kind="malformed"), "malformed", True, None),
    ])
    def test_failures_say_whether_to_retry(self, openai_server, fault, reason, retryable, retry_after):
        openai_server.queue_faults(fault)
        with pytest.raises(BackendError) as info:
            backend_for(openai_server).complete(HELLO)
        assert (info.value.reason, info.value.retryable, info.value.retry_after) == (reason, retryable, retry_after)

    def test_auth_and_unknown_model_are_not_retryable(self, openai_server):
        with pytest.raises(BackendError) as info:
            backend_for(openai_server, token="sk-wrong").complete(HELLO)
        assert info.value.reason == "auth" and not info.value.retryable and info.value.status == 401
        with pytest.raises(BackendError) as info:
            backend_for(openai_server, model="gpt-17").complete(HELLO)
        assert info.value.reason == "model_not_found" and "gpt-17" in str(info.value)

    def test_unreachable_and_timeout(self, openai_server):
        with pytest.raises(BackendError) as info:
            InferenceClientBackend("m", endpoint=closed_port_url()).complete(HELLO)
        assert info.value.reason == "unreachable" and info.value.retryable
        openai_server.queue_faults(Fault(kind="hang", seconds=1.5))
        with pytest.raises(BackendError) as info:
            backend_for(openai_server, timeout=0.3).complete(HELLO)
        assert info.value.reason == "timeout"

    def test_async_requests_go_through_the_aiohttp_transport(self, openai_server):
        from httpx_aiohttp.httpx2 import AiohttpTransport

        backend = backend_for(openai_server)

        async def run():
            try:
                answer = await backend.acomplete(HELLO, seed=2)
                # the seam hubtools uses: if huggingface_hub stops calling _get_async_client, this fails
                return answer, backend._async[1]._async_client._transport
            finally:
                await backend.aclose()

        answer, transport = asyncio.run(run())
        assert isinstance(transport, AiohttpTransport)
        assert answer.text == backend.complete(HELLO, seed=2).text
        assert openai_server.completions()[0].authorized

    @pytest.mark.parametrize(("fault", "reason", "retry_after"), [
        (Fault(status=429, retry_after=2), "rate_limited", 2.0),
        (Fault(status=503, retry_after=1.5), "server_error", 1.5),
        (Fault(kind="malformed"), "malformed", None),
        (Fault(kind="hang", seconds=1.5), "timeout", None),
    ])
    def test_async_failures_are_translated_like_sync_ones(self, openai_server, fault, reason, retry_after):
        openai_server.queue_faults(fault)
        backend = backend_for(openai_server, timeout=0.4)

        async def run():
            try:
                await backend.acomplete(HELLO)
            finally:
                await backend.aclose()

        with pytest.raises(BackendError) as info:
            asyncio.run(run())
        assert (info.value.reason, info.value.retryable, info.value.retry_after) == (reason, True, retry_after)

    def test_async_auth_and_unreachable(self, openai_server):
        async def one(backend):
            try:
                await backend.acomplete(HELLO)
            finally:
                await backend.aclose()

        with pytest.raises(BackendError) as info:
            asyncio.run(one(backend_for(openai_server, token="sk-wrong")))
        assert info.value.reason == "auth" and not info.value.retryable
        with pytest.raises(BackendError) as info:
            asyncio.run(one(InferenceClientBackend("m", endpoint=closed_port_url())))
        assert info.value.reason == "unreachable" and info.value.retryable

    def test_the_token_never_appears_in_errors_or_logs(self, openai_server, caplog):
        caplog.set_level(logging.DEBUG)
        secret = OPENAI_TOKEN
        openai_server.queue_faults(Fault(status=500), Fault(status=429, retry_after=1))
        messages = []
        for _ in range(2):
            with pytest.raises(BackendError) as info:
                backend_for(openai_server, token=secret).complete(HELLO)
            messages.append(f"{info.value} {info.value.hint} {info.value!r}")
        messages.append(str(backend_for(openai_server, token=secret).describe()))
        assert all(secret not in m for m in messages)
        assert secret not in caplog.text


class TestEndpointCheck:
    def test_a_working_endpoint_says_ok_in_one_line(self, openai_server):
        result = check_endpoint(openai_server.base_url, "stand-in-judge", api_key=OPENAI_TOKEN)
        assert result.ok and result.line().startswith(f"ok: {openai_server.base_url} answered with model "
                                                      "'stand-in-judge'")
        assert openai_server.completions()[-1].params["max_tokens"] == 1

    def test_each_problem_names_its_fix(self, openai_server, monkeypatch):
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
        cases = {
            "bad token": check_endpoint(openai_server.base_url, "stand-in-small", api_key="sk-wrong"),
            "no token": check_endpoint(openai_server.base_url, "stand-in-small"),
            "model": check_endpoint(openai_server.base_url, "gpt-17", api_key=OPENAI_TOKEN),
            "down": check_endpoint(closed_port_url(), "stand-in-small"),
        }
        lines = {name: result.line() for name, result in cases.items()}
        assert not any(result.ok for result in cases.values())
        assert ("the key was rejected (401) (credential: --api-key). Fix: pass this endpoint's key with --api-key"
                in lines["bad token"])
        assert "needs a key and none was sent (401) (credential: none)" in lines["no token"]
        assert lines["model"].endswith("Fix: use --model with one of: stand-in-small, stand-in-large, stand-in-judge")
        assert "unreachable" in lines["down"] and "Fix: check that the server is running" in lines["down"]
        assert all("\n" not in line for line in lines.values())

    def test_a_hanging_server_times_out(self, openai_server):
        openai_server.queue_faults(Fault(kind="hang", seconds=1.5))
        result = check_endpoint(openai_server.base_url, "stand-in-small", api_key=OPENAI_TOKEN, timeout=0.3)
        assert result.reason == "timeout" and "no answer within 0.3 s" in result.line()


class TestTransformersBackend:
    def test_tiny_local_model_completes_with_its_chat_template(self, tiny_causal_lm):
        backend = make_backend(str(tiny_causal_lm))
        assert isinstance(backend, TransformersBackend)
        assert backend.render(HELLO).endswith("<|user|>\nName the capital of France.\n<|assistant|>\n")
        completion = backend.complete(HELLO, max_tokens=6, temperature=0.9, seed=11)
        assert completion.model == tiny_causal_lm.name
        assert 1 <= completion.usage.completion_tokens <= 6 and completion.usage.prompt_tokens > 5
        assert backend.complete(HELLO, max_tokens=6, temperature=0.9, seed=11).text == completion.text

    def test_batch_and_async_match_single_greedy_calls(self, tiny_causal_lm):
        backend = TransformersBackend(tiny_causal_lm)
        batch = [HELLO, [{"role": "user", "content": "Why is water light?"}]]
        single = [backend.complete(m, max_tokens=5).text for m in batch]
        assert [c.text for c in backend.complete_batch(batch, max_tokens=5)] == single
        assert asyncio.run(backend.acomplete(batch[1], max_tokens=5)).text == single[1]

    def test_a_folder_without_a_model_is_a_clear_error(self, tmp_path):
        with pytest.raises(BackendError) as info:
            TransformersBackend(tmp_path)
        assert "not a loadable transformers model" in str(info.value)


def test_make_backend_picks_by_option(openai_server, tmp_path):
    assert make_backend() is None
    remote = make_backend("stand-in-large", endpoint=openai_server.base_url, api_key=OPENAI_TOKEN)
    assert isinstance(remote, InferenceClientBackend) and remote.describe()["endpoint"] == openai_server.base_url
    provider = make_backend("org/some-model", token="hf_testtoken_read")
    assert isinstance(provider, InferenceClientBackend) and provider.describe()["provider"] == "auto"


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 and its key (PEM files), made here: the client trusts it by SSL_CERT_FILE."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hubtools test endpoint")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


HTTPS_CLIENT = """
import asyncio, json, sys
from hubtools.errors import BackendError
from hubtools.generate import InferenceClientBackend
backend = InferenceClientBackend("stand-in-small", endpoint=sys.argv[1], token=sys.argv[2])
hello = [{"role": "user", "content": "Name the capital of France."}]

async def run():
    try:
        return (await backend.acomplete(hello, seed=3)).text
    finally:
        await backend.aclose()

try:
    out = {"async": asyncio.run(run()), "sync": backend.complete(hello, seed=3).text}
except BackendError as exc:
    out = {"error": exc.reason, "message": str(exc)}
print(json.dumps(out))
"""


def test_an_https_endpoint_is_verified_with_the_trusted_certificates(tmp_path):
    import json
    import os
    import ssl
    import subprocess
    import sys

    from tests.openai_server import OpenAIServer

    cert_file, key_file = _self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    server = OpenAIServer(models=["stand-in-small"], token=OPENAI_TOKEN, tls=tls).start()
    try:
        assert server.base_url.startswith("https://127.0.0.1:")

        def client(**env):
            full = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
            run = subprocess.run([sys.executable, "-c", HTTPS_CLIENT, server.base_url, OPENAI_TOKEN],
                                 capture_output=True, text=True, timeout=120, env={**full, **env})
            assert run.returncode == 0, run.stderr[-2000:]
            return json.loads(run.stdout.strip().splitlines()[-1])

        trusted = client(SSL_CERT_FILE=str(cert_file))
        assert trusted["async"] == trusted["sync"] and trusted["async"].startswith("Answer from stand-in-small")
        untrusted = client()  # the system store does not know this certificate: refused, not ignored
        assert untrusted["error"] == "tls" and "certificate is not trusted" in untrusted["message"]
        assert "SSL_CERT_FILE" in untrusted["message"] and OPENAI_TOKEN not in untrusted["message"]
        assert all(r.authorized for r in server.completions()) and len(server.completions()) == 2
    finally:
        server.stop()


class TestReasoningModels:
    """Thinking comes back in a field (vLLM, DeepSeek) or as <think> tags (Ollama, llama.cpp): kept apart."""

    @pytest.mark.parametrize("style", ["field", "tags"])
    def test_the_thinking_is_split_off_the_answer(self, make_openai_server, style):
        plain = make_openai_server(token=OPENAI_TOKEN)
        server = make_openai_server(token=OPENAI_TOKEN, reasoning=style)
        expected = backend_for(plain).complete(HELLO, seed=4).text
        backend = backend_for(server)

        async def run():
            try:
                return await backend.acomplete(HELLO, seed=4)
            finally:
                await backend.aclose()

        for completion in (backend.complete(HELLO, seed=4), asyncio.run(run())):
            assert completion.text == expected and "<think>" not in completion.text
            assert completion.reasoning == "The user asks: Name the capital of France.. I will answer plainly and briefly."

    @pytest.mark.parametrize("style", ["field", "tags"])
    def test_a_budget_spent_on_thinking_asks_for_more_tokens(self, make_openai_server, style):
        server = make_openai_server(token=OPENAI_TOKEN, reasoning=style)
        with pytest.raises(BackendError) as info:
            backend_for(server).complete(HELLO, max_tokens=5)
        assert info.value.reason == "reasoning_budget" and info.value.retryable and "--max-tokens" in str(info.value)
        check = check_endpoint(server.base_url, "stand-in-small", api_key=OPENAI_TOKEN)  # max_tokens=1: all thinking
        assert check.ok and "; a reasoning model: give it room to think with --max-tokens (credential: --api-key)" in check.line()

    def test_responses_keep_the_thinking_in_provenance(self, make_openai_server):
        from hubtools.generate.responses import generate_responses
        from hubtools.records import EXTRA, load_extra
        from tests.fixtures.build import sft

        server = make_openai_server(token=OPENAI_TOKEN, reasoning="tags")
        result = generate_responses(sft([("Name the capital of France.", "Paris.")]), [backend_for(server)], n=1)
        record = result.dataset[0]
        assert "<think>" not in record["messages"][-1]["content"]
        assert load_extra(record[EXTRA])["reasoning"].startswith("The user asks: Name the capital of France.")
