"""Shared test setup: corpus paths and the fixtures in tests/fixtures/."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures.hub", "tests.fixtures.openai", "tests.fixtures.browser"]

#: The shared corpus of real files, beside the project (never copied into it).
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level(logging.WARNING, logger="hubtools")


@pytest.fixture
def corpus() -> Path:
    assert CORPUS.is_dir(), f"the shared corpus is missing at {CORPUS}"
    return CORPUS
