"""``hubtools endpoint check``: one tiny request that says whether endpoint, model and key work.

The answer is one line: what works, or what is wrong and what to change (unreachable URL,
rejected or missing key, unknown model with the ones the server does list, timeout,
rate limit, server error, not an OpenAI-compatible server), and which credential was sent, by
name (``--api-key``, ``HF_TOKEN``, ``none``...), never its value.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import BackendError
from ..redact import redact
from .backends import InferenceClientBackend
from .credentials import Credential, auth_hint, resolve_credential
from .endpoint_guard import EndpointGuard

__all__ = ["EndpointCheck", "check_endpoint"]


@dataclass
class EndpointCheck:
    """The result of a preflight: ``ok``, a one-line ``message``, and the ``fix`` when not ok."""

    ok: bool
    reason: str
    message: str
    fix: str | None = None
    endpoint: str | None = None
    model: str | None = None
    served_models: list[str] = field(default_factory=list)
    seconds: float | None = None
    #: which credential was sent, by name ("--api-key", "HF_TOKEN", "none"...), never its value
    credential: str = "none"

    def line(self) -> str:
        """The one line ``hubtools endpoint check`` prints (redacted of every known token)."""
        said = f"ok: {self.message}" if self.ok else f"error: {self.message}"
        said += f" (credential: {self.credential})"
        return redact(f"{said}. Fix: {self.fix}" if self.fix and not self.ok else said)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_endpoint(endpoint: str | None, model: str | None = None, *, token: str | None = None,
                   api_key: str | None = None, credential: Credential | None = None, provider: str | None = None,
                   timeout: float = 15.0, guard: EndpointGuard | None = None) -> EndpointCheck:
    """Send one tiny chat completion (``max_tokens=1``) and report what happened.

    Args:
        endpoint: an OpenAI-compatible base URL; ``None`` checks HF Inference Providers.
        model: the model to ask; with an endpoint and no model, the first one it lists.
        token: a Hugging Face token (``--token``), sent only to Hugging Face hosts.
        api_key: the endpoint's key (``--api-key``).
        credential: the credential chosen already (the app's); without it, the one
            :func:`~hubtools.generate.credentials.resolve_credential` picks.
        guard: the endpoint rule of a public app.

    Example:
        >>> check_endpoint("http://127.0.0.1:8000/v1", "my-model").line()  # doctest: +SKIP
        "ok: http://127.0.0.1:8000/v1 answered with model 'my-model' in 0.04 s (credential: none)"
    """
    chosen = Credential()
    try:
        chosen = credential if credential is not None else resolve_credential(endpoint, api_key=api_key, token=token)
        backend = InferenceClientBackend(model, endpoint=endpoint, token=chosen.value, provider=provider,
                                         timeout=timeout, credential_source=chosen.source, guard=guard)
    except BackendError as exc:
        return EndpointCheck(False, exc.reason, exc.message, exc.hint, endpoint, model,
                             credential=chosen.source)
    where = backend.where
    started = time.monotonic()
    try:
        backend.complete([{"role": "user", "content": "Reply with OK."}], max_tokens=1, temperature=0.0)
    except BackendError as exc:
        if exc.reason == "reasoning_budget":  # it answered: with its thinking, in one token's budget
            return _ok(where, endpoint, backend, started,
                       "; a reasoning model: give it room to think with --max-tokens")
        result = EndpointCheck(False, exc.reason, exc.message, exc.hint, endpoint, backend.model,
                               credential=backend.credential_source)
        if exc.reason == "auth" and chosen.value is None:
            result.message = f"{where}: the endpoint needs a key and none was sent ({exc.status})"
            result.fix = auth_hint(endpoint)
        elif exc.reason == "model_not_found":
            result.served_models = backend.list_models()
            if result.served_models:
                result.fix = f"use --model with one of: {', '.join(result.served_models)}"
        elif exc.reason == "timeout":
            result.message = f"{where}: no answer within {timeout:g} s"
        return result
    finally:
        backend.close()
    return _ok(where, endpoint, backend, started, "")


def _ok(where: str, endpoint: str | None, backend: InferenceClientBackend, started: float, note: str) -> EndpointCheck:
    seconds = time.monotonic() - started
    return EndpointCheck(True, "ok", f"{where} answered with model {backend.model!r} in {seconds:.2f} s{note}",
                         None, endpoint, backend.model, seconds=round(seconds, 3),
                         credential=backend.credential_source)
