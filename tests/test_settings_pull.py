"""Settings the editor pushes are never overwritten by the answer of an older pull."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gpt_ls.actions.editor import ClientFeatures
from gpt_ls.lsp.server import create_server


@pytest.fixture(autouse=True)
def own_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATA", "CONFIG", "CACHE"):
        monkeypatch.setenv(f"GPT_LS_{name}_DIR", str(tmp_path / name.lower()))


def server_answering(answer: asyncio.Future[list[Any]]) -> Any:
    """A server whose editor answers ``workspace/configuration`` when ``answer`` is set."""
    server = create_server()
    server.features = ClientFeatures(configuration=True)

    async def configuration(params: Any) -> list[Any]:
        return await answer

    server.workspace_configuration_async = configuration  # type: ignore[method-assign]
    return server


async def test_a_pull_answered_across_a_push_leaves_the_pushed_settings() -> None:
    answer: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
    server = server_answering(answer)
    pull = asyncio.create_task(server.pull_configuration())
    await asyncio.sleep(0)  # the pull is on its way
    server.push_editor_settings({"gpt-ls": {"completions": True, "model": "gpt-4o"}})
    answer.set_result([{}])  # the editor's answer from before its push
    await pull
    assert server.editor_settings == {"completions": True, "model": "gpt-4o"}
    assert server.settings.completions is True


async def test_a_pull_with_no_push_meanwhile_applies() -> None:
    answer: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
    server = server_answering(answer)
    server.push_editor_settings({"gpt-ls": {"model": "gpt-4o"}})
    pull = asyncio.create_task(server.pull_configuration())
    await asyncio.sleep(0)
    answer.set_result([{"model": "gpt-4.1-mini", "completions": True}])
    await pull
    assert server.editor_settings == {"model": "gpt-4.1-mini", "completions": True}
