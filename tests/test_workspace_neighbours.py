"""Ask about the workspace from a file: its enclosing chunk and the imported module's relevant chunk go to the
API (in-process: the runner, a memory editor, the real index, the real exchange against the fake API)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from gpt_ls.actions.catalog import Catalog
from gpt_ls.actions.editor import DocumentSnapshot
from gpt_ls.actions.runner import ActionRunner
from gpt_ls.errors import WorkspaceIndexError
from gpt_ls.exchange import Exchange
from gpt_ls.index.live import LiveIndex
from gpt_ls.settings import Settings
from tests.support.fakeopenai import FakeOpenAI, Reply
from tests.support.memory_editor import FULL, MemoryEditor
from tests.test_index_walk import make

pytestmark = pytest.mark.timeout(20)


def body(name: str, lines: int, word: str) -> str:
    """A function of ``lines`` lines (over 400 characters: a chunk of its own)."""
    return f"def {name}(path):\n" + "".join(f"    step_{i} = {word}(path, {i})  # 步骤 {i}\n"
                                           for i in range(lines)) + "    return path\n\n\n"


PARSER = (body("load_defaults", 14, "defaults") + body("merge_layers", 14, "layer")
          + 'def parse_config_file(path):\n    """读取配置文件 😀: an empty file is an error."""\n'
          + "".join(f"    check_{i} = validate(path, {i})\n" for i in range(14)) + "    return json.load(path)\n\n\n"
          + body("dump_config", 14, "dump"))
MAIN = ("import os\nfrom 配置.解析 import parse_config_file\n\n\n" + body("setup", 14, "prepare")
        + "def run(path):\n    settings = parse_config_file(path)\n"
        + "".join(f"    item_{i} = settings.get('k{i}')\n" for i in range(12))
        + "    # why does this fail on an empty file? 为什么会失败 😀\n    return settings\n\n\n"
        + body("teardown", 14, "cleanup"))
QUESTION = "# why does this fail on an empty file? 为什么会失败 😀"


class FileEditor(MemoryEditor):
    """The memory editor with each document's real file path (the workspace-relative path matters here)."""

    def document(self, uri: str) -> DocumentSnapshot | None:
        doc = super().document(uri)
        return None if doc is None else dataclasses.replace(doc, path=unquote(urlparse(uri).path))


async def test_the_enclosing_chunk_and_the_imported_module_s_chunk_go_with_their_labels(
        api: FakeOpenAI, tmp_path: Path) -> None:
    root = make(tmp_path / "ws", {".git/HEAD": "ref\n", "src/配置/解析.py": PARSER, "src/应用/main.py": MAIN,
                                  "docs/notes.md": "# Empty files\n\nAn empty file fails to parse.\n",
                                  ".env": "SECRET=sk-not-this\n"})
    parser_lines = PARSER.splitlines()
    start = parser_lines.index("def parse_config_file(path):") + 1
    cited = f"src/配置/解析.py:{start}-{start + 16}"
    unsaved = MAIN.replace("    item_0 = ", "    unsaved = '未保存 😀'\n    item_0 = ")  # the editor's text wins
    question_line = unsaved.splitlines().index(f"    {QUESTION}") + 1
    run_line = unsaved.splitlines().index("def run(path):") + 1
    enclosing = f"src/应用/main.py:{run_line}-{question_line - 3}"
    api.script(Reply(text=f"An empty file raises in [{cited}], called from [{enclosing}].", chunk_size=5))
    settings = Settings(base_url=api.url, api_key="sk-test-key-0123456789", history=False, model="gpt-4",
                        context_lines=2)
    editor = FileEditor(FULL, workspace_root=root)
    exchange = Exchange()
    live = LiveIndex(root, lambda: settings)
    runner = ActionRunner(editor, lambda: settings, exchange, Catalog, lambda: live)
    editor.listeners.append(runner.on_change)
    uri = (root / "src/应用/main.py").as_uri()
    editor.open(uri, unsaved, "python")
    try:
        result = await runner.run_action("askWorkspace", uri, *editor.range_of(uri, QUESTION))
        task = runner.running[result["id"]].task
        assert task is not None
        await task
        await editor.settle()
    finally:
        await exchange.aclose()
        await live.close()
    system = api.chat_requests()[0].body["messages"][0]["content"]
    # The enclosing function (without the two lines around the question, sent as the excerpt) comes first,
    # with the unsaved line; then the imported function the run calls; then the functions around the run;
    # then the question's own hit (the rest of the run's chunk is not sent again).
    labels = re.findall(r"^\[([^\]\n]+)\]\n```", system, re.M)
    assert labels == [enclosing, cited, "src/应用/main.py:1-20",
                      f"src/应用/main.py:{question_line + 4}-{question_line + 19}", "src/配置/解析.py:56-71",
                      "docs/notes.md:1-3"]
    assert f"[{labels[0]}]\n```\ndef run(path):\n    settings = parse_config_file(path)\n    unsaved = '未保存 😀'\n" \
        in system
    assert f"[{cited}]\n```\ndef parse_config_file(path):\n" in system
    assert "def load_defaults(path):" not in system  # the imported module's relevant chunk, not its head
    assert system.count(QUESTION) == 0 and "sk-not-this" not in system
    assert "[docs/notes.md:1-3]" in system  # the question's own hit is still there
    link = f"{(root / 'src/配置/解析.py').as_uri()}#L{start}"
    own = f"{(root / 'src/应用/main.py').as_uri()}#L{run_line}"
    text = editor.text(uri)
    assert f"An empty file raises in [{cited}]({link}), called from [{enclosing}]({own})." in text
    assert f"**Sources**\n\n- [{cited}]({link})\n- [{enclosing}]({own})\n" in text  # in the order cited


class BrokenIndex:
    """An index whose search within one file fails (a damaged database, say)."""

    def update(self, paths: object = None, *, progress: object = None, cancel: object = None) -> None:
        return None

    def set_overlay(self, path: str, text: str | None) -> None:
        return None

    def search(self, query: str, limit: int = 20) -> list[object]:
        return []

    def search_file(self, query: str, path: str, limit: int = 2) -> list[object]:
        raise WorkspaceIndexError("Workspace index error: database disk image is malformed")

    def files(self) -> list[str]:
        return ["src/配置/解析.py", "src/应用/main.py"]

    def close(self) -> None:
        return None


async def test_secret_excluded_or_outside_files_send_nothing_of_their_own_and_a_failure_keeps_the_rest(
        tmp_path: Path) -> None:
    from gpt_ls.actions import requests, workspace

    root = tmp_path / "ws"
    settings = Settings(history=False, model="gpt-4", context_lines=2, index_exclude=["private/**"])
    editor = FileEditor(FULL, workspace_root=root)
    live = LiveIndex(root, lambda: settings, opener=lambda r, s: BrokenIndex())  # type: ignore[arg-type,return-value]
    runner = ActionRunner(editor, lambda: settings, exchange=None, index=lambda: live)  # type: ignore[arg-type]
    await workspace.ensure_index(live, editor, None)
    action = runner.action("askWorkspace")

    async def local(name: str) -> list[str]:
        uri = (tmp_path / name).as_uri()
        editor.open(uri, MAIN, "python")
        target = requests.select(editor, action, uri, *editor.range_of(uri, QUESTION))
        req = requests.build_request(editor, action, target, settings, {}, "")
        return [s.label for s in await workspace.local_sources(live, editor, req)]

    assert await local("ws/.env.production") == []
    assert await local("ws/private/notes.py") == []
    assert await local("elsewhere/main.py") == []
    # The neighbours' search fails: the asking file's own chunks still go.
    assert [label.split(":")[0] for label in await local("ws/src/应用/main.py")] == ["src/应用/main.py"] * 3
    await live.close()
