"""A local Hugging Face Hub for tests: `HubServer().start()`, then point `HF_ENDPOINT` at `server.url`."""

from .server import DEFAULT_TOKENS, HubServer

__all__ = ["DEFAULT_TOKENS", "HubServer"]
