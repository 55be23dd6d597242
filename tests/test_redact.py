"""One redaction helper masks every secret the process knows, wherever text is going."""

from __future__ import annotations

import logging

from hubtools.config import configure_logging
from hubtools.redact import MASK, redact, remember


def test_remembered_token_is_masked_anywhere_in_text():
    remember("visitor-key-98765")
    assert redact("error: key visitor-key-98765 refused") == f"error: key {MASK} refused"


def test_tokens_passed_in_are_masked_and_remembered():
    assert "typed-secret-5555" not in redact("x typed-secret-5555", "typed-secret-5555")
    assert redact("later typed-secret-5555") == f"later {MASK}"


def test_secret_shapes_are_masked_without_being_remembered():
    text = redact("hf_AbCdEfGh12345 sk-proj-abcdefghijkl Authorization: Bearer eyJhbGciOi.x.y")
    assert "hf_AbCdEfGh12345" not in text and "sk-proj-abcdefghijkl" not in text and "eyJhbGciOi" not in text
    assert text.count(MASK) == 3


def test_short_or_empty_values_are_not_remembered():
    remember(None, "", "ab")
    assert redact("ab cd") == "ab cd"


def test_log_handler_masks_secrets():
    remember("log-secret-424242")
    configure_logging(logging.WARNING)
    handlers = logging.getLogger("hubtools").handlers
    record = logging.LogRecord("hubtools.test", logging.WARNING, __file__, 1, "sent %s", ("log-secret-424242",), None)
    assert handlers and all(h.filter(record) for h in handlers)
    assert record.getMessage() == f"sent {MASK}"
