"""``hubtools endpoint check``: one tiny request that says whether endpoint, model and token work.

The answer is one line: what works, or what is wrong and what to change (unreachable URL,
rejected or missing token, unknown model with the ones the server does list, timeout,
rate limit, server error, not an OpenAI-compatible server).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import BackendError
from .backends import InferenceClientBackend

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

    def line(self) -> str:
        """The one line ``hubtools endpoint check`` prints."""
        if self.ok:
            return f"ok: {self.message}"
        return f"error: {self.message}. Fix: {self.fix}" if self.fix else f"error: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_endpoint(endpoint: str | None, model: str | None = None, *, token: str | None = None,
                   provider: str | None = None, timeout: float = 15.0) -> EndpointCheck:
    """Send one tiny chat completion (``max_tokens=1``) and report what happened.

    Args:
        endpoint: an OpenAI-compatible base URL; ``None`` checks HF Inference Providers.
        model: the model to ask; with an endpoint and no model, the first one it lists.
        token: the API key (``None``: ``HF_TOKEN`` or the saved login).

    Example:
        >>> check_endpoint("http://127.0.0.1:8000/v1", "my-model").line()  # doctest: +SKIP
        "ok: http://127.0.0.1:8000/v1 answered with model 'my-model' in 0.04 s"
    """
    from huggingface_hub import get_token

    try:
        backend = InferenceClientBackend(model, endpoint=endpoint, token=token, provider=provider, timeout=timeout)
    except BackendError as exc:
        return EndpointCheck(False, exc.reason, exc.message, exc.hint, endpoint, model)
    where = backend.where
    started = time.monotonic()
    try:
        backend.complete([{"role": "user", "content": "Reply with OK."}], max_tokens=1, temperature=0.0)
    except BackendError as exc:
        if exc.reason == "reasoning_budget":  # it answered: with its thinking, in one token's budget
            return _ok(where, endpoint, backend, started,
                       "; a reasoning model: give it room to think with --max-tokens")
        result = EndpointCheck(False, exc.reason, exc.message, exc.hint, endpoint, backend.model)
        if exc.reason == "auth" and not (token or get_token()):
            result.message = f"{where}: the endpoint needs a token and none was given ({exc.status})"
            result.fix = "set HF_TOKEN or pass --token"
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
                         None, endpoint, backend.model, seconds=round(seconds, 3))
