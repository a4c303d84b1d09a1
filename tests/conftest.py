"""Shared fixtures: the fake OpenAI server, and the tests dir on ``sys.path``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from fakeopenai import FakeOpenAI  # noqa: E402


@pytest.fixture
def api() -> Iterator[FakeOpenAI]:
    """A real OpenAI-compatible HTTP server on 127.0.0.1."""
    with FakeOpenAI() as server:
        yield server
