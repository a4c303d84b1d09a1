"""Shared fixtures: every test isolated from the developer's machine, the fake OpenAI server, the lanes.

Lanes: plain ``pytest`` runs the fast lane (``-m "not slow"`` in pyproject.toml). Everything
under ``tests/e2e`` and ``tests/reliability`` is slow unless marked ``fast``, and so is every
real-editor test (``nvim``, ``emacs``, ``vim``); ``pytest -m slow`` runs the rest, and
``.ci/run`` runs both lanes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.fakeopenai import FakeOpenAI

# A failing example prints the blob that replays it (``@reproduce_failure``), in CI logs too.
settings.register_profile("gpt-ls", print_blob=True)
settings.load_profile("gpt-ls")

TESTS = Path(__file__).resolve().parent
SLOW_FOLDERS = ("e2e", "reliability")
REAL_EDITORS = ("nvim", "emacs", "vim")

#: Test knobs (not read by gpt-ls itself) that a developer's environment may set on purpose.
KNOBS = {"GPT_LS_FUZZ_EXAMPLES", "GPT_LS_FUZZ_SEED", "GPT_LS_KILL_ROUNDS", "GPT_LS_FULL_FAULTS",
         "GPT_LS_FIGURES_FILE"}


def leaks(name: str) -> bool:
    """Would this variable of the developer's change what gpt-ls (or the SDK) does in a test?"""
    upper = name.upper()
    if upper in KNOBS:
        return False
    return (upper.startswith(("OPENAI_", "AZURE_OPENAI_", "GPT_LS_", "XDG_"))
            or upper.endswith("_PROXY") or upper in ("SSL_CERT_FILE", "SSL_CERT_DIR"))


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every test gets its own config, data, cache and state dirs and none of the developer's keys or proxies.

    Subprocesses started with ``os.environ`` (or a copy of it) inherit the same isolation.
    Tiktoken's cache does not matter: gpt-ls ships its encodings and never asks tiktoken to download.
    """
    home = tmp_path / "isolated"
    for name in list(os.environ):
        if leaks(name):
            monkeypatch.delenv(name)
    for kind in ("config", "data", "cache"):
        monkeypatch.setenv(f"GPT_LS_{kind.upper()}_DIR", str(home / "gpt-ls" / kind))
    for kind in ("config", "data", "cache", "state"):
        monkeypatch.setenv(f"XDG_{kind.upper()}_HOME", str(home / "xdg" / kind))
    monkeypatch.setenv("HOME", str(home))
    home.mkdir()
    return home


@pytest.fixture
def api() -> Iterator[FakeOpenAI]:
    """A real OpenAI-compatible HTTP server on 127.0.0.1."""
    with FakeOpenAI() as server:
        yield server


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow lane: the end-to-end and reliability folders (unless ``fast``) and real editors."""
    for item in items:
        folder = Path(str(item.path)).relative_to(TESTS).parts[0]
        in_slow_folder = folder in SLOW_FOLDERS and item.get_closest_marker("fast") is None
        if in_slow_folder or any(item.get_closest_marker(name) for name in REAL_EDITORS):
            item.add_marker(pytest.mark.slow)
