"""LLM backends behind one protocol: complete a list of messages, sync, async or batched.

* :class:`InferenceClientBackend`: ``huggingface_hub.InferenceClient`` (HF Inference Providers,
  TGI, and any OpenAI-compatible ``base_url``: vLLM, Ollama, llama.cpp server).
* :class:`TransformersBackend`: a local ``transformers`` causal LM by name or path, with its
  chat template.

Every failure becomes a :class:`~hubtools.errors.BackendError` that says whether trying
again can help (``retryable``) and how long the server asked to wait (``retry_after``). The
credential is sent exactly as given and nowhere else (``huggingface_hub`` never adds ``HF_TOKEN``
or the saved login by itself: see :mod:`hubtools.generate.credentials` for which key goes where),
and it never appears in a log, an error or a summary (:func:`hubtools.redact.redact`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..errors import BackendError
from ..redact import redact
from ._inference_http import _aiohttp_session, _inference_client_classes, _run_sync, _set_authorization, _translate
from .credentials import Credential, resolve_credential
from .endpoint_guard import EndpointGuard

__all__ = [
    "Backend",
    "Completion",
    "InferenceClientBackend",
    "TransformersBackend",
    "Usage",
    "make_backend",
    "split_reasoning",
    "wire_messages",
]

logger = logging.getLogger(__name__)

#: Sampling parameters every backend understands (others are passed through to servers).
SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "seed", "stop")


@dataclass
class Usage:
    """Tokens one completion cost, as the backend counted them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Completion:
    """One answer: its text, the model that wrote it, and what it cost."""

    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    #: True when the answer came from the on-disk cache, not the backend
    cached: bool = False
    #: a reasoning model's thinking, kept apart from ``text`` (``reasoning_content``/``reasoning``
    #: fields, or a leading ``<think>...</think>`` block)
    reasoning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Completion:
        return cls(text=data["text"], model=data["model"], usage=Usage(**data.get("usage") or {}),
                   finish_reason=data.get("finish_reason"), cached=bool(data.get("cached")),
                   reasoning=data.get("reasoning"))


@runtime_checkable
class Backend(Protocol):
    """What generators and judges need from a model."""

    model: str

    def complete(self, messages: list[dict[str, Any]], **params: Any) -> Completion: ...

    async def acomplete(self, messages: list[dict[str, Any]], **params: Any) -> Completion: ...

    def complete_batch(self, batch: list[list[dict[str, Any]]], **params: Any) -> list[Completion]: ...

    def describe(self) -> dict[str, Any]: ...


def wire_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Canonical messages as a chat API takes them: ``role`` and ``content`` (+ tool keys when set)."""
    out = []
    for m in messages:
        wire = {"role": m["role"], "content": m.get("content") or ""}
        for key in ("name", "tool_call_id"):
            if m.get(key):
                wire[key] = m[key]
        if m.get("tool_calls"):
            calls = m["tool_calls"]
            wire["tool_calls"] = json.loads(calls) if isinstance(calls, str) else calls
        out.append(wire)
    return out


#: a leading think block; a bare closing tag (the template opened it) must end its line
_THINK = re.compile(r"\A\s*(?:<think>(?P<open>.*?)</think>|(?P<bare>(?:(?!<think>).)*?)</think>(?=[ \t]*(?:\n|\Z)))\s*",
                    re.S)
_THINK_CUT = re.compile(r"\A\s*<think>(?P<cut>(?:(?!</think>).)*)\Z", re.S)


def split_reasoning(text: str) -> tuple[str, str | None]:
    """Split a leading ``<think>...</think>`` block (or thinking closed by a bare ``</think>``,
    when the chat template opened the tag) off an answer: ``(answer, thinking)``.

    >>> split_reasoning("<think>\\nIt is 4.\\n</think>\\n\\n2 + 2 = 4")
    ('2 + 2 = 4', 'It is 4.')
    >>> split_reasoning("Tags like <think> are HTML-ish.")
    ('Tags like <think> are HTML-ish.', None)
    """
    m = _THINK.match(text)
    if m:
        return text[m.end():], (m.group("open") if m.group("open") is not None else m.group("bare")).strip()
    cut = _THINK_CUT.match(text)
    if cut:  # cut off while thinking
        return "", cut.group("cut").strip()
    return text, None


def _completion(out: Any, model: str) -> Completion:
    choice = out.choices[0]
    text = choice.message.content
    reasoning = getattr(choice.message, "reasoning_content", None) or getattr(choice.message, "reasoning", None)
    if text is not None and reasoning is None:
        text, reasoning = split_reasoning(text)
    if not text and reasoning:
        raise BackendError(f"the model used its whole answer budget on reasoning ({choice.finish_reason})",
                           reason="reasoning_budget", retryable=True,
                           hint="raise --max-tokens: this model thinks before it answers")
    if text is None:
        raise ValueError("the first choice has no message content")
    usage = Usage(int(getattr(out.usage, "prompt_tokens", 0) or 0),
                  int(getattr(out.usage, "completion_tokens", 0) or 0)) if out.usage else Usage()
    return Completion(text=text, model=getattr(out, "model", None) or model, usage=usage,
                      finish_reason=choice.finish_reason, reasoning=reasoning or None)


class _BatchMixin:
    """``complete_batch`` over ``acomplete``, concurrently, for backends without a native batch."""

    batch_concurrency = 8

    def complete_batch(self, batch: list[list[dict[str, Any]]], **params: Any) -> list[Completion]:
        async def run() -> list[Completion]:
            gate = asyncio.Semaphore(self.batch_concurrency)

            async def one(messages):
                async with gate:
                    return await self.acomplete(messages, **params)  # type: ignore[attr-defined]

            try:
                return list(await asyncio.gather(*(one(m) for m in batch)))
            finally:
                await self.aclose()  # type: ignore[attr-defined]

        return asyncio.run(run())


class InferenceClientBackend(_BatchMixin):
    """A model behind ``huggingface_hub.InferenceClient``: an HF provider, TGI or an OpenAI-compatible URL.

    Args:
        model: the model id (sent in the request body; for HF Inference Providers, the model
            to route to). With an ``endpoint`` and no model, the first one the server lists.
        endpoint: an OpenAI-compatible base URL such as ``http://localhost:8000/v1``.
        token: the key sent as ``Authorization: Bearer``, exactly; ``None`` sends none (nothing is
            picked up from ``HF_TOKEN`` or the saved login: :func:`make_backend` chooses one by the
            policy in :mod:`hubtools.generate.credentials`).
        provider: an HF Inference Provider (``"auto"`` by default) when there is no endpoint.
        credential_source: what ``token`` is, for messages and :meth:`describe` (never its value).
        guard: in a public app, the endpoint rule every request must pass (:class:`EndpointGuard`);
            requests then go through the async client only, so each connection is checked.

    Raises:
        BackendError: no model nor endpoint; HF Inference Providers without a token; the guard refuses.

    Example:
        >>> backend = InferenceClientBackend("my-model", endpoint="http://127.0.0.1:8000/v1")  # doctest: +SKIP
        >>> backend.complete([{"role": "user", "content": "Hi"}], max_tokens=8).text  # doctest: +SKIP
    """

    kind = "inference_client"

    def __init__(self, model: str | None = None, *, endpoint: str | None = None, token: str | None = None,
                 provider: str | None = None, timeout: float = 120.0, credential_source: str | None = None,
                 guard: EndpointGuard | None = None):
        if not model and not endpoint:
            raise BackendError("a backend needs a model or an endpoint", reason="bad_request",
                               hint="pass --endpoint URL and/or --model NAME")
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self._token = token or None
        redact("", self._token)  # remembered: masked in every text from now on
        self.credential_source = credential_source or ("given" if self._token else "none")
        self.provider = provider
        self.timeout = timeout
        self.guard = guard
        if guard is not None and self.endpoint:
            guard.check(self.endpoint)
        if not self.endpoint and not self._token:
            raise BackendError(f"HF Inference ({provider or 'auto'}): needs a Hugging Face token and none was given",
                               reason="auth", hint="set HF_TOKEN or pass --token (in the app: sign in with "
                                                   "Hugging Face), or give an --endpoint")
        self.model = model or self._first_served_model()
        self._sync: Any = None
        self._async: tuple[Any, Any] | None = None  # (event loop, AsyncInferenceClient)

    @property
    def where(self) -> str:
        return self.endpoint or f"HF Inference ({self.provider or 'auto'})"

    def describe(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.model, "endpoint": self.endpoint,
                "provider": None if self.endpoint else (self.provider or "auto"), "credential": self.credential_source}

    def _client_kwargs(self) -> dict[str, Any]:
        if self.endpoint:
            return {"base_url": self.endpoint, "api_key": self._token, "timeout": self.timeout}
        return {"model": self.model, "provider": self.provider, "token": self._token, "timeout": self.timeout}

    def _payload_model(self) -> str | None:
        return self.model if self.endpoint else None

    def _new_async_client(self) -> Any:
        client = _inference_client_classes()[1](**self._client_kwargs())
        client.hubtools_credential, client.hubtools_guard = self._token, self.guard
        return client

    def list_models(self) -> list[str]:
        """The model ids the endpoint serves (``GET /models``); empty when it does not say."""
        if not self.endpoint:
            return []
        headers: dict[str, Any] = {}
        _set_authorization(headers, self._token)
        url, timeout = f"{self.endpoint}/models", min(self.timeout, 10.0)
        try:
            if self.guard is None:
                from huggingface_hub.utils import get_session

                response = get_session().get(url, timeout=timeout, headers=headers)
            else:
                async def fetch() -> Any:
                    async with _aiohttp_session(self.guard) as session:
                        answer = await session.get(url, timeout=timeout, headers=headers)
                        await answer.aread()
                        return answer

                response = _run_sync(fetch)
            if response.status_code != 200:
                return []
            return [m["id"] for m in response.json().get("data", []) if isinstance(m, dict) and "id" in m]
        except Exception as exc:  # listing models is a convenience: never fatal
            logger.debug("listing models at %s failed: %s", self.endpoint, type(exc).__name__)
            return []

    def _first_served_model(self) -> str:
        models = self.list_models()
        return models[0] if models else "tgi"

    def complete(self, messages: list[dict[str, Any]], **params: Any) -> Completion:
        """Complete ``messages`` with sampling ``params`` (temperature, top_p, max_tokens, seed, stop).

        Raises:
            BackendError: the call failed; ``retryable`` says whether to try again.
        """
        if self.guard is not None:  # through the guarded async client: every connection checked
            async def once() -> Completion:
                try:
                    return await self.acomplete(messages, **params)
                finally:
                    await self.aclose()

            return _run_sync(once)
        if self._sync is None:
            self._sync = _inference_client_classes()[0](**self._client_kwargs())
            self._sync.hubtools_credential = self._token
        try:
            out = self._sync.chat_completion(wire_messages(messages), model=self._payload_model(), **params)
            return _completion(out, self.model)
        except BackendError:
            raise
        except Exception as exc:
            raise _translate(exc, self.where, self.model, self._token, self.endpoint) from None

    async def acomplete(self, messages: list[dict[str, Any]], **params: Any) -> Completion:
        """The async variant of :meth:`complete` (one client per event loop, over aiohttp)."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            self._async = (loop, self._new_async_client())
        client = self._async[1]
        try:
            out = await client.chat_completion(wire_messages(messages), model=self._payload_model(), **params)
            return _completion(out, self.model)
        except BackendError as exc:
            if exc.reason == "refused":
                raise BackendError(redact(exc.message), reason="refused", hint=exc.hint) from None
            raise
        except Exception as exc:
            raise _translate(exc, self.where, self.model, self._token, self.endpoint) from None

    async def aclose(self) -> None:
        """Close the async client of the running loop."""
        if self._async is not None:
            client, self._async = self._async[1], None
            await client.close()

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None


class TransformersBackend(_BatchMixin):
    """A local causal LM through ``transformers``: generates on CPU (or ``device``) with its chat template.

    Args:
        model: a local folder (or a Hub id already in the cache) holding the model and tokenizer.
        device: a torch device, ``"cpu"`` by default.

    A tokenizer without a chat template gets a plain ``<|role|>`` template. Async calls run in
    a thread, one generation at a time (a model is not thread-safe).
    """

    kind = "transformers"

    def __init__(self, model: str | os.PathLike, *, device: str = "cpu"):
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - transformers is installed with the project
            raise BackendError("the transformers backend needs `transformers` and `torch`", reason="local",
                               hint="pip install transformers torch") from exc
        self.path = os.fspath(model)
        self.model = Path(self.path).name if Path(self.path).exists() else self.path
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.lm = AutoModelForCausalLM.from_pretrained(self.path).to(device)
        except (OSError, ValueError) as exc:
            raise BackendError(f"{self.path}: not a loadable transformers model ({exc.__class__.__name__})",
                               reason="model_not_found",
                               hint="give a folder with config.json, weights and tokenizer files") from None
        self.lm.eval()
        self.device = device
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.model, "path": self.path, "device": self.device}

    def render(self, messages: list[dict[str, Any]]) -> str:
        """The prompt text the model sees for ``messages`` (chat template + generation prompt)."""
        wire = wire_messages(messages)
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(wire, tokenize=False, add_generation_prompt=True)
        return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in wire) + "<|assistant|>\n"

    def complete_batch(self, batch: list[list[dict[str, Any]]], **params: Any) -> list[Completion]:
        """Generate for several conversations in one padded batch."""
        import torch

        if not batch:
            return []
        prompts = [self.render(m) for m in batch]
        max_new = int(params.get("max_tokens") or 128)
        temperature = float(params.get("temperature") or 0.0)
        kwargs: dict[str, Any] = {"max_new_tokens": max_new, "pad_token_id": self.tokenizer.pad_token_id,
                                  "do_sample": temperature > 0}
        if temperature > 0:
            kwargs.update(temperature=temperature, top_p=float(params.get("top_p") or 1.0))
        with self._lock, torch.no_grad():
            if params.get("seed") is not None:
                torch.manual_seed(int(params["seed"]))
            enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            out = self.lm.generate(**enc, **kwargs)
        width = enc["input_ids"].shape[1]
        results = []
        for i in range(len(batch)):
            new = out[i, width:]
            eos = self.tokenizer.eos_token_id
            finish = "stop" if eos is not None and (new == eos).any() else "length"
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            usage = Usage(int(enc["attention_mask"][i].sum()), int((new != self.tokenizer.pad_token_id).sum()))
            results.append(Completion(text=text, model=self.model, usage=usage, finish_reason=finish))
        return results

    def complete(self, messages: list[dict[str, Any]], **params: Any) -> Completion:
        return self.complete_batch([messages], **params)[0]

    async def acomplete(self, messages: list[dict[str, Any]], **params: Any) -> Completion:
        return await asyncio.to_thread(self.complete, messages, **params)

    async def aclose(self) -> None:
        return None

    def close(self) -> None:
        return None


def make_backend(model: str | None = None, *, endpoint: str | None = None, token: str | None = None,
                 api_key: str | None = None, credential: Credential | None = None, provider: str | None = None,
                 timeout: float = 120.0, guard: EndpointGuard | None = None) -> Backend | None:
    """The backend the CLI options name; ``None`` when there is neither a model nor an endpoint.

    An ``endpoint`` selects :class:`InferenceClientBackend` against that URL; a ``model`` that is
    an existing folder selects :class:`TransformersBackend`; any other model id goes to HF
    Inference Providers.

    Args:
        token: a Hugging Face token (``--token``): sent only to Hugging Face hosts.
        api_key: this endpoint's key (``--api-key``): sent to it, whatever it is.
        credential: the credential to send, chosen already (the app's); without it,
            :func:`~hubtools.generate.credentials.resolve_credential` chooses from ``api_key``,
            ``token`` and the environment (``HUBTOOLS_API_KEY``, ``OPENAI_API_KEY``, ``HF_TOKEN``).
        guard: the endpoint rule of a public app (see :class:`InferenceClientBackend`).

    Raises:
        BackendError: ``token`` given for an endpoint that is not Hugging Face's; see also
            :class:`InferenceClientBackend`.

    >>> make_backend() is None
    True
    """
    if not endpoint and not model:
        return None
    if not endpoint and Path(model).is_dir():
        return TransformersBackend(model)
    chosen = credential if credential is not None else resolve_credential(endpoint, api_key=api_key, token=token)
    return InferenceClientBackend(model, endpoint=endpoint, token=chosen.value, credential_source=chosen.source,
                                  provider=provider, timeout=timeout, guard=guard)
