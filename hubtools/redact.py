"""One way to keep secrets out of text: every token the process knows, masked everywhere.

Tokens reach hubtools from the environment (``HF_TOKEN``), from a visitor's typed API key, from a
"Sign in with Hugging Face" session and from the command line. Each is :func:`remember`-ed when it
arrives; :func:`redact` then masks all of them (and anything shaped like a Hub token, an OpenAI
key or a bearer header) in any text bound for a browser, a log, a card, a report or an error.

>>> remember("sk-test-1234567890")
>>> redact("the server said: bad key sk-test-1234567890")
'the server said: bad key ***'
"""

from __future__ import annotations

import logging
import re
import threading

from . import config

__all__ = ["MASK", "RedactingFilter", "redact", "remember"]

MASK = "***"
#: shapes of secrets masked even when nobody remembered them
_SHAPES = re.compile(
    r"\bhf_[A-Za-z0-9]{6,}\b"                      # Hugging Face user and OAuth tokens
    r"|\bhf_oauth_[A-Za-z0-9_-]{6,}"              # OAuth access tokens
    r"|\bsk-[A-Za-z0-9_-]{8,}"                     # OpenAI-style keys
    r"|(?i:\bbearer\s+)[A-Za-z0-9._~+/=-]{6,}"     # an Authorization header value
)
_MIN_LEN = 4  # shorter "tokens" would mask ordinary words

_lock = threading.Lock()
_known: set[str] = set()


def remember(*tokens: str | None) -> None:
    """Add ``tokens`` (``None`` and blanks ignored) to the secrets :func:`redact` masks from now on."""
    fresh = {t.strip() for t in tokens if isinstance(t, str) and len(t.strip()) >= _MIN_LEN}
    if fresh:
        with _lock:
            _known.update(fresh)


def redact(text: object, *tokens: str | None) -> str:
    """``text`` with every remembered token, every token in ``tokens`` and every secret-shaped string masked."""
    out = "" if text is None else str(text)
    remember(*tokens)
    with _lock:
        known = sorted(_known, key=len, reverse=True)  # the longest first: one token may contain another
    for token in known:
        if token in out:
            out = out.replace(token, MASK)
    return _SHAPES.sub(lambda m: ("Bearer " + MASK) if m.group(0).lower().startswith("bearer") else MASK, out)


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in each record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


remember(config.HF_TOKEN)
