"""Which credential goes to which inference endpoint: one policy for the CLI, the library and the app.

A Hugging Face token opens the owner's account, so it goes only to Hugging Face hosts: the Hub
(``HF_ENDPOINT``), its inference router, the serverless inference API and Inference Endpoints
(``*.endpoints.huggingface.cloud``). Any other endpoint (vLLM, Ollama, a provider's API) gets only a
key given for it: ``--api-key`` (the app: the key the visitor typed), else ``HUBTOOLS_API_KEY``, and
``OPENAI_API_KEY`` only where the endpoint is ``api.openai.com``. Nothing is ever picked up on the
side: the backends never let ``huggingface_hub`` add ``HF_TOKEN`` or the saved login by itself.

>>> choose_credential("http://127.0.0.1:8000/v1", api_key=None, hf_token="hf_abcdefgh", environment=False).source
'none'
>>> choose_credential(None, hf_token="hf_abcdefgh", environment=False).source
'--token'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .. import config
from ..errors import BackendError

__all__ = ["NONE", "Credential", "auth_hint", "choose_credential", "is_hf_endpoint", "is_openai_endpoint",
           "resolve_credential"]

#: the hosts of Hugging Face's own inference routes (https only)
_HF_HOSTS = frozenset({"huggingface.co", "hf.co", "router.huggingface.co", "api-inference.huggingface.co"})
_HF_ENDPOINTS_SUFFIX = ".endpoints.huggingface.cloud"


@dataclass(frozen=True)
class Credential:
    """The key sent to one endpoint (``value``, never shown) and where it came from (``source``, shown)."""

    value: str | None = field(default=None, repr=False)
    #: "--api-key", "HUBTOOLS_API_KEY", "OPENAI_API_KEY", "--token", "HF_TOKEN", "saved login", "none"...
    source: str = "none"


NONE = Credential()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: no host of ours
        return parts.scheme.lower(), "", -1
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), None if port == default else port


def is_hf_endpoint(endpoint: str | None) -> bool:
    """True for Hugging Face's own hosts (``None`` means HF Inference Providers, through the router).

    >>> is_hf_endpoint("https://router.huggingface.co/v1")
    True
    >>> is_hf_endpoint("https://x.us-east-1.aws.endpoints.huggingface.cloud/v1")
    True
    >>> is_hf_endpoint("https://huggingface.co.example.com/v1"), is_hf_endpoint("http://router.huggingface.co/v1")
    (False, False)
    """
    if endpoint is None:
        return True
    origin = _origin(endpoint)
    configured = {_origin(u) for u in (config.HF_ENDPOINT, config.HF_INFERENCE_ENDPOINT) if u}
    if origin in configured:  # the Hub hubtools talks to (may be http in a test or behind a proxy)
        return True
    scheme, host, port = origin
    return scheme == "https" and port is None and (host in _HF_HOSTS or host.endswith(_HF_ENDPOINTS_SUFFIX))


def is_openai_endpoint(endpoint: str | None) -> bool:
    """True for ``https://api.openai.com/...``."""
    return endpoint is not None and _origin(endpoint) == ("https", "api.openai.com", None)


def choose_credential(endpoint: str | None, *, api_key: str | None = None, api_key_source: str = "--api-key",
                      hf_token: str | None = None, hf_token_source: str = "--token",
                      environment: bool = True) -> Credential:
    """The credential ``endpoint`` gets, by the policy above; :data:`NONE` when none may go there.

    Args:
        endpoint: the base URL; ``None`` for HF Inference Providers (Hugging Face's router).
        api_key: a key given for this endpoint (``--api-key``, a visitor's typed key): any endpoint gets it.
        hf_token: a Hugging Face token (``--token``, a visitor's sign-in): Hugging Face hosts only.
        environment: also consider the process's own keys (``HUBTOOLS_API_KEY``, ``OPENAI_API_KEY``,
            ``HF_TOKEN``, the saved login). The CLI does; the app never does for a visitor.
    """
    if api_key and api_key.strip():
        return Credential(api_key.strip(), api_key_source)
    if is_hf_endpoint(endpoint):
        if hf_token and hf_token.strip():
            return Credential(hf_token.strip(), hf_token_source)
        if environment:
            if config.HF_TOKEN:
                return Credential(config.HF_TOKEN, "HF_TOKEN")
            from huggingface_hub import get_token

            saved = get_token()
            if saved:
                return Credential(saved, "saved login (hf auth login)")
        return NONE
    if environment:
        if config.API_KEY:
            return Credential(config.API_KEY, "HUBTOOLS_API_KEY")
        if config.OPENAI_API_KEY and is_openai_endpoint(endpoint):
            return Credential(config.OPENAI_API_KEY, "OPENAI_API_KEY")
    return NONE


def auth_hint(endpoint: str | None) -> str:
    """What to do when ``endpoint`` refuses the key or wants one."""
    if is_hf_endpoint(endpoint):
        return "set HF_TOKEN or pass --token with a Hugging Face token that may use this endpoint"
    return "pass this endpoint's key with --api-key (or set HUBTOOLS_API_KEY)"


def resolve_credential(endpoint: str | None, *, api_key: str | None = None, token: str | None = None) -> Credential:
    """The credential the CLI (and the library's defaults) send: :func:`choose_credential` with the
    environment, after refusing a Hugging Face ``token`` named for an endpoint that is not Hugging Face's.

    Raises:
        BackendError: ``token`` was given for an endpoint that may not have it.
    """
    if token and not (api_key or "").strip() and not is_hf_endpoint(endpoint):
        raise BackendError(f"{endpoint}: --token is a Hugging Face token and goes only to Hugging Face hosts",
                           reason="auth", hint="pass this endpoint's key with --api-key (or set HUBTOOLS_API_KEY)")
    return choose_credential(endpoint, api_key=api_key, hf_token=token, environment=True)
