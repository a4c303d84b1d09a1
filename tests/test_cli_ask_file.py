"""``gpt-ls ask --workspace --file PATH[:A-B]``: the selection's file and its neighbours from the terminal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpt_ls.cli import main
from gpt_ls.settings import config_dir
from tests.support.fakeopenai import FakeOpenAI, Reply
from tests.test_cli_chat import KEY
from tests.test_index_walk import make
from tests.test_workspace_neighbours import MAIN, PARSER

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def root(tmp_path: Path, api: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = make(tmp_path / "ws", {".git/HEAD": "ref\n", "src/配置/解析.py": PARSER, "src/应用/main.py": MAIN,
                                ".env": "SECRET=sk-not-this\n", "docs/notes.md": "# Empty files\n\nThey fail.\n"})
    (tmp_path / "outside.py").write_text("print('outside')\n", encoding="utf-8")
    (ws / "src" / "link 😀.py").symlink_to(tmp_path / "outside.py")
    config_dir().mkdir(parents=True)
    (config_dir() / "config.toml").write_text("history = false\n", encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", api.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.chdir(ws / "src")
    return ws


def test_file_sends_the_lines_chunks_and_the_imported_module_s(
        root: Path, api: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    lines = MAIN.splitlines()
    run = lines.index("def run(path):") + 1
    start = PARSER.splitlines().index("def parse_config_file(path):") + 1
    api.script(Reply(text=f"See src/配置/解析.py:{start}."))
    assert main(["ask", "-w", "--model", "gpt-4", "--file", f"应用/main.py:{run + 1}-{run + 2}", "Why 空?"]) == 0
    out = capsys.readouterr().out
    system = api.chat_requests()[0].body["messages"][0]["content"]
    labels = re.findall(r"^\[([^\]\n]+)\]\n```", system, re.M)
    assert labels[:2] == [f"src/应用/main.py:{run}-{run + 15}", f"src/配置/解析.py:{start}-{start + 16}"]
    assert f"[{labels[0]}]\n```\ndef run(path):\n    settings = parse_config_file(path)\n" in system
    assert out == f"See src/配置/解析.py:{start}.\n\nSources:\n  src/配置/解析.py:{start}-{start + 16}\n"


@pytest.mark.parametrize(("spec", "says"), [
    ("../../outside.py", "is not a file of the workspace"),
    ("link 😀.py:1", "outside the workspace"),
    ("../.env", ".env may hold secrets"),
    ("missing.py:3", "there is no file src/missing.py in the workspace"),
    ("应用/main.py:9000-9001", "lines 9000-9001 are not in src/应用/main.py (58 lines)"),
    ("应用/main.py:5-2", "lines 5-2 are not in src/应用/main.py"),
])
def test_file_refuses_what_is_outside_secret_missing_or_out_of_range(
        root: Path, api: FakeOpenAI, capsys: pytest.CaptureFixture[str], spec: str, says: str) -> None:
    assert main(["ask", "-w", "--file", spec, "Why?"]) == 2
    assert says in capsys.readouterr().err
    assert api.chat_requests() == []


def test_file_goes_with_workspace(root: Path, api: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "--file", "应用/main.py", "Why?"]) == 2
    assert "--file goes with --workspace (-w)" in capsys.readouterr().err and api.chat_requests() == []
