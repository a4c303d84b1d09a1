"""``gpt-ls index`` and ``gpt-ls search`` in the terminal, and the worker process the server uses for cold builds."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from gpt_ls.cli import main
from gpt_ls.index.store import WorkspaceIndex
from gpt_ls.index.worker import build
from gpt_ls.settings import Settings
from tests.test_index_walk import make


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = make(tmp_path / "ws", {
        ".git/HEAD": "ref: main\n", ".gitignore": "dist/\n", "dist/bundle.js": "function parseConfigFile() {}\n",
        "src/config.py": "import json\n\n\ndef parse_config_file(path):\n    \"\"\"Read the settings.\"\"\"\n"
                         "    return json.load(open(path))\n",
        "docs/读我.md": "# 配置\n\n配置文件在启动时解析。\n", ".env": "OPENAI_API_KEY=sk-secret\n",
    })
    monkeypatch.chdir(ws / "src")
    return ws


def test_search_builds_the_index_first_then_prints_ranked_chunks(
        root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "parseConfigFile"]) == 0
    out, err = capsys.readouterr()
    assert "no index yet" in err and "Indexed 3 files" in err and "1 secret" in err
    first = out.splitlines()[0]
    assert first.startswith("src/config.py:1-6  ")
    assert "        4  def parse_config_file(path):" in out
    assert "dist/" not in out and "sk-secret" not in out
    assert main(["search", "配置文件", "-n", "1"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("docs/读我.md:1-3  ") and "配置文件在启动时解析。" in out and err == ""


def test_index_status_rebuild_clear(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "--status"]) == 0
    assert "No index yet for" in capsys.readouterr().out
    assert main(["index"]) == 0
    assert capsys.readouterr().out.startswith("Indexed 3 files (3 chunks), 0 unchanged, 0 removed; skipped 1 ignored")
    assert main(["index"]) == 0
    assert capsys.readouterr().out.startswith("Indexed 0 files (0 chunks), 3 unchanged")
    assert main(["index", "--status"]) == 0
    out = capsys.readouterr().out
    assert f"Index of {root}: 3 files, 3 chunks" in out and "Last update: Indexed 0 files" in out
    assert main(["index", "--rebuild"]) == 0
    assert capsys.readouterr().out.startswith("Indexed 3 files")
    assert main(["index", "--clear"]) == 0
    assert capsys.readouterr().out == f"Cleared the index of {root}.\n"


def test_search_messages(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "how", "is", "the"]) == 1
    assert "only common words" in capsys.readouterr().err
    assert main(["search", "zyzzyva"]) == 0
    assert capsys.readouterr().out == "Nothing in the index matches 'zyzzyva'.\n"


def test_the_worker_builds_in_a_child_process_and_reapplies_overlays(root: Path) -> None:
    seen: list[tuple[int, int, str]] = []
    with WorkspaceIndex.open(root, Settings()) as index:
        index.set_overlay("src/config.py", "def unsaved_thing():\n    pass\n")
        report = asyncio.run(build(root, Settings(), rebuild=True, progress=lambda *a: seen.append(a), index=index))
        assert report.indexed == 3 and not report.cancelled
        assert seen[-1][:2] == (3, 3)
        assert index.search("unsaved_thing")[0].chunk.path == "src/config.py"
        cancel = threading.Event()
        cancel.set()
        assert asyncio.run(build(root, Settings(), rebuild=True, cancel=cancel)).cancelled


def test_progress_on_a_terminal_is_one_line_rewritten(root: Path) -> None:
    import io

    from gpt_ls.cli.index import TerminalProgress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Tty()
    progress = TerminalProgress(err)
    progress(0, 3, "")
    progress(1, 3, "src/a.py")  # within 0.1 s of the last: not shown
    progress(3, 3, "src/c.py")  # the last is always shown
    progress.end()
    assert err.getvalue() == ("\rindexing 0/3 " + "\rindexing 3/3 src/c.py" + "\r" + " " * 21 + "\r")
