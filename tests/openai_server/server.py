"""A local stand-in for an OpenAI-compatible chat-completions server (vLLM, TGI, Ollama, ...).

It speaks the wire protocol the real clients use (``POST /v1/chat/completions``, ``GET
/v1/models``, ``GET /health``), including what ``huggingface_hub.InferenceClient`` sends to a
``base_url``. Answers come from :mod:`tests.openai_server.script` (deterministic), and a test
can add latency, require a Bearer token, and script faults: 429 with ``Retry-After``, 5xx,
malformed bodies, hangs.

>>> server = OpenAIServer(models=["tiny"]).start()
>>> server.base_url  # doctest: +SKIP
'http://127.0.0.1:43121/v1'
>>> server.stop()
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .script import answer, count_tokens

__all__ = ["Fault", "LoggedRequest", "OpenAIServer"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fault:
    """One scripted failure.

    ``kind`` is ``"status"`` (answer ``status`` with an OpenAI error body, and ``Retry-After``
    when ``retry_after`` is set), ``"malformed"`` (200 with a cut-short JSON body) or
    ``"hang"`` (wait ``seconds`` before answering normally).
    """

    kind: str = "status"
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0


@dataclass
class LoggedRequest:
    """What the server saw: never the token, only whether the request was authorised."""

    method: str
    path: str
    status: int = 0
    model: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    authorized: bool = True
    fault: str | None = None
    started: float = 0.0
    finished: float = 0.0


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    stand_in: OpenAIServer


class OpenAIServer:
    """A threaded HTTP server on 127.0.0.1 answering chat completions with scripted text.

    Args:
        models: model ids it serves (the first one answers requests that name none).
        token: when set, requests need ``Authorization: Bearer <token>`` (else 401).
        latency: seconds each completion takes.
        position_bias: ``"none"`` or ``"first"`` for the pairwise judge script.
        tls: a server-side ``ssl.SSLContext``: serve HTTPS with its certificate.
        reasoning: how a reasoning model's thinking comes back: ``"none"``; ``"field"`` (a
            ``reasoning_content`` beside ``content``, as vLLM and DeepSeek send it); ``"tags"``
            (``<think>...</think>`` before the answer in ``content``, as Ollama or llama.cpp pass
            Qwen3/R1 output on). The thinking counts against ``max_tokens`` first.
    """

    def __init__(self, *, models: list[str] | None = None, token: str | None = None,
                 latency: float = 0.0, position_bias: str = "none", host: str = "127.0.0.1",
                 port: int = 0, tls: Any = None, reasoning: str = "none"):
        self.models = list(models or ["stand-in"])
        self.token = token
        self.latency = latency
        self.position_bias = position_bias
        if reasoning not in ("none", "field", "tags"):
            raise ValueError(f"reasoning must be none, field or tags, not {reasoning!r}")
        self.reasoning = reasoning
        self.log: list[LoggedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()
        self._every: tuple[int, Fault] | None = None
        self._on_text: list[list[Any]] = []  # [substring, fault, remaining]
        self._count = 0
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.stand_in = self
        self.scheme = "http"
        if tls is not None:  # an ssl.SSLContext with the server's certificate: serve HTTPS
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
            self.scheme = "https"
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``.../v1``)."""
        return f"{self.url}/v1"

    def start(self) -> OpenAIServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="openai-stand-in",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        """Forget the log and the scripted faults, keep models, token and latency."""
        with self._lock:
            self.log.clear()
            self._queue.clear()
            self._every = None
            self._on_text.clear()
            self._count = 0
            self.max_in_flight = 0

    # ---- scripting ------------------------------------------------------------------------

    def queue_faults(self, *faults: Fault) -> None:
        """The next completion requests fail with these faults, in order."""
        with self._lock:
            self._queue.extend(faults)

    def fail_every(self, n: int, fault: Fault) -> None:
        """Every ``n``-th completion request (the n-th, 2n-th, ...) fails with ``fault``."""
        with self._lock:
            self._every = (n, fault)

    def fail_when(self, substring: str, fault: Fault, times: int = 1) -> None:
        """The first ``times`` requests whose messages contain ``substring`` fail with ``fault``."""
        with self._lock:
            self._on_text.append([substring, fault, times])

    def completions(self) -> list[LoggedRequest]:
        """Logged chat-completion requests, in arrival order."""
        with self._lock:
            return [r for r in self.log if r.path.endswith("/chat/completions")]

    def _next_fault(self, text: str) -> Fault | None:
        with self._lock:
            self._count += 1
            if self._queue:
                return self._queue.popleft()
            for rule in self._on_text:
                if rule[2] > 0 and rule[0] in text:
                    rule[2] -= 1
                    return rule[1]
            if self._every and self._count % self._every[0] == 0:
                return self._every[1]
        return None

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.in_flight -= 1
            entry.finished = time.monotonic()
            self.log.append(entry)


def _error(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out as two writes: without TCP_NODELAY the body waits ~40 ms for the
    # client's delayed ACK, which real inference servers do not add
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s " + format, self.address_string(), *args)

    @property
    def stand_in(self) -> OpenAIServer:
        return self.server.stand_in

    def _send(self, status: int, body: bytes | dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        # log before answering, so a client that reads the answer finds its request logged
        self._entry.status = status
        self.stand_in._leave(self._entry)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        token = self.stand_in.token
        return token is None or self.headers.get("Authorization") == f"Bearer {token}"

    def do_GET(self) -> None:
        entry = self._entry = LoggedRequest("GET", self.path, started=time.monotonic(),
                                            authorized=self._authorized())
        self.stand_in._enter()
        path = self.path.rstrip("/")
        if path in ("/health", "/v1/health"):
            self._send(200, {"status": "ok"})
        elif not entry.authorized:
            self._send(401, _error("invalid or missing API key", "authentication_error", "invalid_api_key"))
        elif path in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "stand-in"}
                for m in self.stand_in.models]})
        else:
            self._send(404, _error(f"no route GET {self.path}", "invalid_request_error"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        entry = self._entry = LoggedRequest("POST", self.path, started=time.monotonic(),
                                            authorized=self._authorized())
        self.stand_in._enter()
        self._complete(raw, entry)

    def _complete(self, raw: bytes, entry: LoggedRequest) -> None:
        stand_in = self.stand_in
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, _error(f"no route POST {self.path}", "invalid_request_error"))
            return
        if not entry.authorized:
            self._send(401, _error("invalid or missing API key", "authentication_error", "invalid_api_key"))
            return
        try:
            body = json.loads(raw)
            messages = body["messages"]
            assert isinstance(messages, list) and all(isinstance(m, dict) for m in messages)
        except (ValueError, KeyError, AssertionError):
            self._send(400, _error("the body must be JSON with a 'messages' list", "invalid_request_error"))
            return
        model = body.get("model") or stand_in.models[0]
        entry.model, entry.messages = model, messages
        entry.params = {k: v for k, v in body.items() if k not in ("messages", "model")}
        if model not in stand_in.models:
            self._send(404, _error(f"The model `{model}` does not exist", "invalid_request_error",
                                   "model_not_found"))
            return
        fault = stand_in._next_fault(json.dumps(messages))
        if stand_in.latency:
            time.sleep(stand_in.latency)
        if fault is not None:
            entry.fault = fault.kind if fault.kind != "status" else str(fault.status)
            if fault.kind == "hang":
                time.sleep(fault.seconds)
            elif fault.kind == "malformed":
                self._send(200, b'{"id": "chatcmpl-x", "object": "chat.completion", "choices": [{"ind')
                return
            else:
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                kind = "rate_limit_error" if fault.status == 429 else "server_error"
                self._send(fault.status, _error(f"scripted {fault.status}", kind), headers)
                return
        self._send(200, self._choices(model, messages, body))
        return

    def _choices(self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
        n = int(body.get("n") or 1)
        max_tokens = body.get("max_tokens")
        prompt_tokens = sum(count_tokens(str(m.get("content") or "")) for m in messages)
        choices, completion_tokens = [], 0
        for i in range(n):
            params = dict(body)
            if n > 1:
                params["seed"] = f"{body.get('seed')}/{i}"
            text = answer(messages, model, params, position_bias=self.stand_in.position_bias)
            finish = "stop"
            budget = None if max_tokens is None else int(max_tokens)
            thinking = None
            if self.stand_in.reasoning != "none":
                asked = str(messages[-1].get("content") or "")[:60]
                thinking = f"The user asks: {asked}. I will answer plainly and briefly."
                if budget is not None and count_tokens(thinking) >= budget:
                    thinking, text, finish = " ".join(thinking.split()[:max(1, budget)]), "", "length"
                elif budget is not None:
                    budget -= count_tokens(thinking)
            if budget is not None and count_tokens(text) > budget:
                text = " ".join(text.split()[: max(1, budget)])
                finish = "length"
            completion_tokens += count_tokens(text) + (count_tokens(thinking) if thinking else 0)
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if self.stand_in.reasoning == "field":
                message["reasoning_content"] = thinking
                message["content"] = text or None
            elif self.stand_in.reasoning == "tags":
                message["content"] = f"<think>\n{thinking}\n</think>\n\n{text}" if text else f"<think>\n{thinking}"
            choices.append({"index": i, "message": message, "finish_reason": finish, "logprobs": None})
        return {
            "id": f"chatcmpl-{len(self.stand_in.log)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "stand-in",
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }
