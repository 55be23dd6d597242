"""How :class:`~hubtools.generate.backends.InferenceClientBackend` talks HTTP: the clients that send
exactly its credential, the aiohttp session (guarded in a public app), and the translation of client
exceptions into :class:`~hubtools.errors.BackendError` with a reason, a hint and no secret.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import ssl
import threading
import time
from typing import Any

from ..errors import BackendError
from ..redact import redact
from .credentials import auth_hint
from .endpoint_guard import EndpointGuard

def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _chain(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and the exceptions under it (causes and contexts), at most ten."""
    seen: list[BaseException] = []
    while exc is not None and len(seen) < 10:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _socket_error(exc: BaseException) -> OSError | None:
    """The socket error (refused, reset, DNS, TLS) in the chain under ``exc``, if any, timeouts aside.

    httpx_aiohttp 0.2 maps aiohttp's ``ClientConnectorError`` (connection refused, and a failed
    certificate check) to ``ConnectTimeout``, which AsyncInferenceClient turns into
    ``InferenceTimeoutError``: the cause chain still says what happened.
    """
    import httpx2

    seen, found = 0, None
    while exc is not None and seen < 10:
        if isinstance(exc, ssl.SSLError):
            return exc
        # httpx2.HTTPError (and so HfHubHTTPError) is an OSError too: an answer, not a socket error
        if found is None and isinstance(exc, OSError) and not isinstance(exc, (TimeoutError, httpx2.HTTPError)):
            found = exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return found


def _short_reason(response: Any) -> str:
    """What an error answer says, in a few redacted words (its ``error.message``/``detail``, else its first line)."""
    try:
        text = response.text
    except Exception:  # a streamed response whose body was not read
        return ""
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            error = data.get("error", data.get("detail", data.get("message")))
            if isinstance(error, dict):
                error = error.get("message") or error.get("type")
            text = str(error) if error is not None else ""
    except ValueError:
        pass
    reason = redact(" ".join(text.split()))
    return reason if len(reason) <= 120 else reason[:117] + "..."


def _translate(exc: BaseException, where: str, model: str, token: str | None,
               endpoint: str | None = None) -> BackendError:
    """Turn a client exception into a BackendError with a reason, a hint, and no secret."""
    from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError

    if isinstance(exc, BackendError):  # the endpoint guard refused a request (a redirect, say)
        return exc
    refused = next((e for e in _chain(exc) if isinstance(e, OSError) and str(e).startswith("refused:")), None)
    if refused is not None:
        return BackendError(f"{where}: {redact(str(refused))}", reason="refused",
                            hint="in a Space, use an https endpoint on a public address, or ask the Space's "
                                 "operator to allow it in HUBTOOLS_ALLOWED_ENDPOINTS")
    detail = redact(str(exc).split("\n")[0], token)[:200]
    socket_error = None if isinstance(exc, HfHubHTTPError) else _socket_error(exc)
    if isinstance(socket_error, ssl.SSLCertVerificationError) or (
            socket_error is not None and "CERTIFICATE_VERIFY_FAILED" in str(socket_error)):
        return BackendError(f"{where}: the server's TLS certificate is not trusted", reason="tls",
                            hint="point SSL_CERT_FILE at the CA bundle that signed it, or use the server's "
                                 "trusted address")
    if isinstance(socket_error, ssl.SSLError):
        return BackendError(f"{where}: the TLS handshake failed ({redact(str(socket_error), token)[:120]})",
                            reason="tls", hint="check that --endpoint uses the scheme the server speaks "
                                               "(http:// or https://)")
    if socket_error is not None:
        return BackendError(f"{where}: unreachable (connection refused or reset)", reason="unreachable",
                            retryable=True, hint="check that the server is running and --endpoint is right")
    if isinstance(exc, InferenceTimeoutError) or isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
        return BackendError(f"{where}: no answer in time", reason="timeout", retryable=True,
                            hint="the server is slow or overloaded: raise --timeout or lower --concurrency")
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        redact("", token)  # remember it: the reason below is redacted of it too
        body = _short_reason(exc.response)
        retry_after = _retry_after(exc.response.headers)
        if status in (401, 403):
            return BackendError(f"{where}: the key was rejected ({status})", reason="auth", status=status,
                                hint=auth_hint(endpoint))
        if status == 404:
            if "model" in body.lower():
                return BackendError(f"{where}: model {model!r} not found (404)", reason="model_not_found",
                                    status=404, hint="check --model: `hubtools endpoint check` lists the served models")
            return BackendError(f"{where}: nothing at this URL (404)", reason="model_not_found", status=404,
                                hint="check --endpoint: give the server's base URL, e.g. http://host:8000/v1")
        if status == 429:
            return BackendError(f"{where}: rate limited (429)", reason="rate_limited", status=429,
                                retry_after=retry_after, retryable=True,
                                hint="lower --concurrency or wait; the runner retries with backoff")
        if status >= 500:
            return BackendError(f"{where}: server error {status}", reason="server_error", status=status,
                                retry_after=retry_after, retryable=True,
                                hint="the server failed; the runner retries, check its logs if this persists")
        return BackendError(f"{where}: request refused ({status})" + (f": {body}" if body else ""),
                            reason="bad_request", status=status,
                            hint="check the sampling parameters (e.g. max_tokens) this server accepts")
    if isinstance(exc, (ValueError, KeyError, TypeError, IndexError, AttributeError)):
        return BackendError(f"{where}: the answer is not a chat completion ({type(exc).__name__}: {detail})",
                            reason="malformed", retryable=True,
                            hint="check that --endpoint is an OpenAI-compatible /v1 base URL")
    return BackendError(f"{where}: unreachable ({type(exc).__name__}: {detail})", reason="unreachable",
                        retryable=True, hint="check that the server is running and --endpoint is right")


#: Connections the async transport may open at once; the Runner's concurrency is the real bound.
MAX_CONNECTIONS = 1024


def _set_authorization(headers: dict[str, Any], credential: str | None) -> None:
    """Make ``headers`` carry ``credential`` as the bearer token, or no Authorization at all."""
    for key in [k for k in headers if k.lower() == "authorization"]:
        del headers[key]
    if credential:
        headers["authorization"] = f"Bearer {credential}"


def _aiohttp_session(guard: EndpointGuard | None) -> Any:
    """The httpx2 session over aiohttp the async client uses; with a ``guard``, every request (redirects
    too) is checked and connections go only to the addresses the guard accepts."""
    from huggingface_hub.utils import _http
    from httpx2 import Limits
    from httpx_aiohttp.httpx2 import AiohttpTransport, Httpx2AiohttpClient

    hooks: dict[str, list[Any]] = {"request": [_http.async_hf_request_event_hook],
                                   "response": [_http.async_hf_response_event_hook]}
    limits = Limits(max_connections=MAX_CONNECTIONS)
    if guard is None:
        return Httpx2AiohttpClient(event_hooks=hooks, follow_redirects=True, timeout=None, limits=limits)
    import aiohttp

    async def check(request: Any) -> None:
        await asyncio.to_thread(guard.check, str(request.url))

    hooks["request"].insert(0, check)
    transport = AiohttpTransport(limits=limits)  # trust_env: SSL_CERT_FILE still names the CA bundle
    transport.client = lambda: aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        ssl=transport.ssl_context, limit=MAX_CONNECTIONS, resolver=guard.resolver()))
    return Httpx2AiohttpClient(event_hooks=hooks, follow_redirects=True, timeout=None, transport=transport,
                               trust_env=False)


@functools.lru_cache(maxsize=1)
def _inference_client_classes() -> tuple[type, type]:
    """``InferenceClient`` and ``AsyncInferenceClient`` that send exactly hubtools' credential.

    Given no token, ``huggingface_hub`` fills one in by itself: its provider helper for a
    ``base_url`` (``HFInferenceTask._prepare_api_key``) takes ``api_key or get_token()``, i.e.
    ``HF_TOKEN`` or the saved login, and ``build_hf_headers`` puts it in the Authorization header,
    whatever host the URL names. ``_inner_post`` is where every request leaves; the subclasses set
    the Authorization header there to ``hubtools_credential`` and nothing else (a test with
    ``HF_TOKEN`` set and a catcher endpoint fails if a new huggingface_hub stops calling it).

    The async client's HTTP goes through aiohttp instead of httpcore: ``AsyncInferenceClient``
    builds the request and raises ``HfHubHTTPError`` exactly as it does on its own; only the
    connection pool underneath is swapped for ``httpx_aiohttp``'s transport (by httpx's
    maintainer). httpcore's pool walks every connection for every request
    (``_assign_requests_to_connections``, a readability poll per connection), which at 64
    requests in flight costs ~3 ms of event-loop CPU per request and capped throughput at 88% of
    C/L (bench/bench_generate.py); over aiohttp it is ~1 ms. ``_get_async_client`` is the one
    seam the client offers for its httpx2 session; ``tests/test_generate_backends.py`` fails if a
    new huggingface_hub stops calling it.
    """
    from huggingface_hub import AsyncInferenceClient, InferenceClient

    class CredentialedInferenceClient(InferenceClient):
        hubtools_credential: str | None = None

        def _inner_post(self, request_parameters, *, stream=False):  # type: ignore[override]
            _set_authorization(request_parameters.headers, self.hubtools_credential)
            return super()._inner_post(request_parameters, stream=stream)

    class AiohttpInferenceClient(AsyncInferenceClient):
        hubtools_credential: str | None = None
        hubtools_guard: EndpointGuard | None = None

        async def _inner_post(self, request_parameters, *, stream=False):  # type: ignore[override]
            _set_authorization(request_parameters.headers, self.hubtools_credential)
            return await super()._inner_post(request_parameters, stream=stream)

        async def _get_async_client(self):  # type: ignore[override]
            if self._async_client is None:
                session = _aiohttp_session(self.hubtools_guard)
                self._async_client = await self.exit_stack.enter_async_context(session)
            return self._async_client

    return CredentialedInferenceClient, AiohttpInferenceClient


def _run_sync(make: Any) -> Any:
    """``asyncio.run(make())``, in a thread of its own when this one already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
