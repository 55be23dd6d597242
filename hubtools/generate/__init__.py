"""Generation: backends (InferenceClient / OpenAI-compatible / local transformers), a resumable
runner, ingest, instructions and responses (judging, ranking and the gold cross-check are in
:mod:`hubtools.judge`).

Import the submodules you need; nothing heavy (torch, transformers) loads until a local model
backend is created.
"""

from .backends import Backend, Completion, InferenceClientBackend, TransformersBackend, Usage, make_backend
from .credentials import Credential, choose_credential, resolve_credential
from .endpoint_guard import EndpointGuard
from .preflight import EndpointCheck, check_endpoint
from .runner import Pricing, Result, RunOutcome, Runner, RunStats, Task

__all__ = [
    "Backend",
    "Completion",
    "Credential",
    "EndpointCheck",
    "EndpointGuard",
    "InferenceClientBackend",
    "Pricing",
    "Result",
    "RunOutcome",
    "RunStats",
    "Runner",
    "Task",
    "TransformersBackend",
    "Usage",
    "check_endpoint",
    "choose_credential",
    "make_backend",
    "resolve_credential",
]
