"""A local server speaking the OpenAI chat-completions wire protocol, with scripted answers."""

from .script import answer, count_tokens
from .server import Fault, LoggedRequest, OpenAIServer

__all__ = ["Fault", "LoggedRequest", "OpenAIServer", "answer", "count_tokens"]
