"""``gpt-ls chat`` on a real pseudo-terminal: readline editing, input history, Markdown, the waiting sign.

Keys are typed into the pty as a terminal sends them; what the model received is read
back from the fake OpenAI server.
"""

from __future__ import annotations

import os
import re
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.fakeopenai import FakeOpenAI, Reply
from tests.test_cli_chat import cli_env

pytestmark = pytest.mark.timeout(60)

LEFT, UP, BACKSPACE, ENTER, CTRL_D = "\x1b[D", "\x1b[A", "\x7f", "\r", "\x04"
PROMPT = "> "


class Terminal:
    """``gpt-ls chat`` with a pty as its terminal (stdin, stdout and stderr)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.master, slave = os.openpty()
        env = {**env, "TERM": "xterm", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "COLUMNS": "80", "LINES": "24"}
        self.proc = subprocess.Popen([sys.executable, "-m", "gpt_ls", "chat"], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, cwd=cwd, start_new_session=True)
        os.close(slave)
        self.output = b""

    def read_until(self, needle: str, timeout: float = 20, since: int | None = None) -> str:
        """Everything shown so far, once ``needle`` has been shown after ``since`` (default: what was read)."""
        start = len(self.output) if since is None else since
        deadline = time.monotonic() + timeout
        while needle.encode() not in self.output[start:]:
            left = deadline - time.monotonic()
            assert left > 0, f"{needle!r} never shown; the terminal shows {self.output.decode(errors='replace')!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:  # the process ended
                    break
        return self.output.decode("utf-8", errors="replace")

    def type(self, keys: str) -> None:
        for key in re.findall(r"\x1b\[.|.", keys, flags=re.S):  # one key at a time, as typed
            os.write(self.master, key.encode())
            time.sleep(0.01)

    def close(self) -> str:
        # Wait until readline reads keys again: typed earlier, they could be lost.
        self.read_until("\n" + PROMPT, since=self.output.rfind(b"tokens]"))
        self.type(CTRL_D)
        try:
            assert self.proc.wait(timeout=20) == 0
            while select.select([self.master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                self.output += chunk
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            os.close(self.master)
        return self.output.decode("utf-8", errors="replace")


def test_line_editing_markdown_and_the_waiting_sign(api: FakeOpenAI, tmp_path: Path) -> None:
    api.script(Reply(text="# Title\n\nSome **bold** and `code`.\n\n```python\nx = 1\n```\n- item", chunk_size=3,
                     prompt_tokens=11, completion_tokens=7))
    term = Terminal(cli_env(api, tmp_path), tmp_path)
    term.read_until(PROMPT)
    # "你好世界" then Backspace (one whole character), then "helo", Left, "l": "你好世 hello".
    term.type("你好世界" + BACKSPACE + " helo" + LEFT + "l" + ENTER)
    term.read_until("tokens]")
    shown = term.close()
    assert api.chat_requests()[0].body["messages"][-1] == {"role": "user", "content": "你好世 hello"}
    assert "\x1b[2m… waiting for gpt-4.1-mini\x1b[0m\r\x1b[K" in shown  # the sign, erased before the reply
    assert "\x1b[1;4mTitle\x1b[0m\r\n" in shown
    assert "Some \x1b[1mbold\x1b[0m and \x1b[36mcode\x1b[0m." in shown
    assert "\x1b[33mx = 1\x1b[0m\r\n" in shown
    assert "• item" in shown
    assert "\x1b[2m[gpt-4.1-mini · 11 prompt + 7 completion = 18 tokens]\x1b[0m" in shown
    assert "Task was destroyed" not in shown


@pytest.mark.slow  # two chat processes
def test_input_history_persists_owner_only(api: FakeOpenAI, tmp_path: Path) -> None:
    env = cli_env(api, tmp_path)
    api.script(Reply(text="one"), Reply(text="two"))
    first = Terminal(env, tmp_path)
    first.read_until(PROMPT)
    first.type("first question" + ENTER)
    first.read_until("tokens]")
    first.close()
    path = tmp_path / "data" / "chat_history"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "first question" in path.read_text(encoding="utf-8")
    second = Terminal(env, tmp_path)
    second.read_until(PROMPT)
    second.type(UP + " again" + ENTER)
    second.read_until("tokens]")
    second.close()
    assert api.chat_requests()[1].body["messages"][-1]["content"] == "first question again"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_input_history_is_bounded(tmp_path: Path) -> None:
    from gpt_ls.cli.lineedit import LineEditor

    editor = LineEditor(tmp_path / "h" / "chat_history", length=3)
    assert editor.readline is not None
    editor.readline.clear_history()
    for n in range(10):
        editor.readline.add_history(f"line {n}")
    editor.save()
    assert (tmp_path / "h" / "chat_history").read_text(encoding="utf-8").split() == [
        "line", "7", "line", "8", "line", "9"]
    assert stat.S_IMODE((tmp_path / "h").stat().st_mode) == 0o700
