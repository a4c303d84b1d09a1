"""Fixtures that start gpt-ls as a real process behind a simulated editor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.support.fakeopenai import FakeOpenAI
from tests.support.lsp_editor import Editor, EditorConfig, server_env, start_editor

StartEditor = Callable[..., Any]


@pytest_asyncio.fixture
async def start(api: FakeOpenAI, tmp_path: Path) -> AsyncIterator[StartEditor]:
    """``await start(EditorConfig(...), **env)`` -> a connected ``Editor``."""
    editors: list[Editor] = []
    workspace = tmp_path / "workspace"
    workspace.mkdir()

    async def _start(config: EditorConfig | None = None, **env: str) -> Editor:
        editor = await start_editor(
            server_env(api.url, str(tmp_path), **env), config or EditorConfig(), workspace.as_uri()
        )
        editors.append(editor)
        return editor

    yield _start
    for editor in editors:
        try:
            await editor.client.shutdown_session()
        finally:
            await editor.client.stop()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "workspace"
