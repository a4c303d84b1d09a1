"""Shared fixtures: the fake OpenAI server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fakeopenai import FakeOpenAI


@pytest.fixture
def api() -> Iterator[FakeOpenAI]:
    """A real OpenAI-compatible HTTP server on 127.0.0.1."""
    with FakeOpenAI() as server:
        yield server
