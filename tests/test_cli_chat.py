"""``gpt-ls ask`` and ``gpt-ls chat`` as real processes against the local fake API.

A process costs about a second (Python and the SDK start): the tests that start several, or
wait for a signal, are in the slow lane.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.fakeopenai import Error, FakeOpenAI, Reply, Stall

KEY = "sk-cli-secret-0123456789"


def cli_env(api: FakeOpenAI, tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GPT_LS_"))}
    env.update({
        "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": api.url, "GPT_LS_DATA_DIR": str(tmp / "data"),
        "GPT_LS_CONFIG_DIR": str(tmp / "config"), "GPT_LS_CACHE_DIR": str(tmp / "cache"),
        "NO_PROXY": "127.0.0.1,localhost", "HOME": str(tmp),
    })
    env.update(extra)
    return env


def gpt_ls(args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None,
           timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpt_ls", *args], input=stdin, capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=timeout)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "项目 ws"
    (ws / ".git").mkdir(parents=True)
    return ws


def test_ask_streams_the_reply_to_stdout(api, tmp_path, workspace):
    api.script(Reply(text="你好！Hello 👋", chunk_size=2))
    result = gpt_ls(["ask", "Say", "hi"], cli_env(api, tmp_path), workspace)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "你好！Hello 👋\n"
    body = api.chat_requests()[0].body
    assert body["messages"] == [{"role": "system", "content": "You are a helpful assistant."},
                                {"role": "user", "content": "Say hi"}]
    assert body["stream"] is True


def test_ask_reads_stdin_and_prints_json(api, tmp_path, workspace):
    api.script(Reply(text="4", prompt_tokens=9, completion_tokens=1))
    result = gpt_ls(["ask", "--json", "--model", "gpt-4o", "--system", "Be terse."], cli_env(api, tmp_path),
                    workspace, stdin="2+2?\n")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["content"] == "4"
    assert doc["model"] == "gpt-4o"
    assert doc["status"] == "complete"
    assert doc["usage"] == {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10, "exact": True}
    assert api.chat_requests()[0].body["messages"][0] == {"role": "system", "content": "Be terse."}


@pytest.mark.slow
def test_ask_continue_resends_the_conversation(api, tmp_path, workspace):
    env = cli_env(api, tmp_path)
    api.script(Reply(text="Paris."), Reply(text="2.1 million."))
    assert gpt_ls(["ask", "Capital of France?"], env, workspace).returncode == 0
    result = gpt_ls(["ask", "-c", "Population?"], env, workspace)
    assert result.returncode == 0, result.stderr
    assert [m["content"] for m in api.chat_requests()[1].body["messages"][1:]] == [
        "Capital of France?", "Paris.", "Population?"]


@pytest.mark.slow
def test_errors_exit_non_zero_with_the_same_sentence(api, tmp_path, workspace):
    api.script(Error(401, "Incorrect API key provided", code="invalid_api_key"))
    result = gpt_ls(["ask", "hi"], cli_env(api, tmp_path), workspace)
    assert result.returncode == 1
    assert "401" in result.stderr
    assert KEY not in result.stderr + result.stdout
    no_key = gpt_ls(["ask", "hi"], cli_env(api, tmp_path, OPENAI_API_KEY=""), workspace)
    assert no_key.returncode == 1
    assert "No API key: set OPENAI_API_KEY" in no_key.stderr


def test_chat_over_a_pipe_with_commands(api, tmp_path, workspace):
    api.script(Reply(text="Hi there."), Reply(text="Nice to meet you, 李雷."), Reply(text="Fresh start."))
    script = "\n".join([
        "Hello",
        "My name is \\",
        "李雷.",
        "/tokens",
        "/history",
        "/model gpt-4o",
        "/new",
        "Again",
        "/exit",
    ]) + "\n"
    result = gpt_ls(["chat"], cli_env(api, tmp_path), workspace, stdin=script)
    assert result.returncode == 0, result.stderr
    assert "Hi there.\n" in result.stdout
    assert "Nice to meet you, 李雷.\n" in result.stdout
    assert "[user] Hello\n[assistant] Hi there.\n[user] My name is \n李雷." in result.stdout
    assert "(model: gpt-4o)" in result.stdout
    _first, second, third = api.chat_requests()
    assert [m["content"] for m in second.body["messages"][1:]] == ["Hello", "Hi there.", "My name is \n李雷."]
    assert third.body["model"] == "gpt-4o"
    assert [m["role"] for m in third.body["messages"]] == ["system", "user"]


@pytest.mark.slow
def test_ctrl_c_stops_the_reply_and_keeps_the_session(api, tmp_path, workspace):
    api.script(Stall(text="partial words ", seconds=20), Reply(text="second answer"))
    proc = subprocess.Popen([sys.executable, "-m", "gpt_ls", "chat"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(api, tmp_path), cwd=workspace)
    assert proc.stdin is not None
    proc.stdin.write("tell me\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 15
    while not api.chat_requests() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.stdin.write("next\n/exit\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=20)
    api.release_stalls()
    assert proc.returncode == 0, err
    assert "partial words" in out
    assert out.count("(stopped)") == 1
    assert "cancelled" not in err  # said once, as "(stopped)"
    assert "second answer" in out
    assert len(api.chat_requests()) == 2


@pytest.mark.slow
def test_history_usage_totals_with_prices(api, tmp_path, workspace):
    (workspace / ".gpt-ls.toml").write_text(
        '[prices."gpt-4.1-mini"]\ninput = 0.4\noutput = 1.6\n', encoding="utf-8")
    env = cli_env(api, tmp_path)
    api.script(Reply(text="a", prompt_tokens=1000, completion_tokens=500),
               Reply(text="b", prompt_tokens=3000, completion_tokens=1500))
    assert gpt_ls(["ask", "one"], env, workspace).returncode == 0
    assert gpt_ls(["ask", "two"], env, workspace).returncode == 0
    result = gpt_ls(["history", "usage"], env, workspace)
    assert result.returncode == 0, result.stderr
    # 4,000 × $0.40/M + 2,000 × $1.60/M = $0.0048
    assert result.stdout.splitlines() == [
        f"{workspace.resolve()}: 4,000 prompt + 2,000 completion = 6,000 tokens (~$0.0048)",
        "  gpt-4.1-mini: 4,000 prompt + 2,000 completion",
    ]


def test_project_instructions_join_terminal_conversations(api, tmp_path, workspace):
    (workspace / ".gpt-ls.md").write_text("Reply in 简体中文.\n", encoding="utf-8")
    result = gpt_ls(["ask", "hello"], cli_env(api, tmp_path), workspace)
    assert result.returncode == 0, result.stderr
    assert api.chat_requests()[0].body["messages"][0]["content"] == (
        "You are a helpful assistant.\n\nProject instructions (from .gpt-ls.md):\nReply in 简体中文.")


def history_off(tmp: Path) -> None:
    (tmp / "config").mkdir(parents=True, exist_ok=True)
    (tmp / "config" / "config.toml").write_text("history = false\n", encoding="utf-8")


def test_chat_with_history_off_remembers_the_session(api, tmp_path, workspace):
    history_off(tmp_path)
    api.script(Reply(text="Paris.", prompt_tokens=10, completion_tokens=2),
               Reply(text="2.1 million.", prompt_tokens=20, completion_tokens=4), Reply(text="Fresh."))
    script = "Capital of France?\nPopulation?\n/history\n/tokens\n/new\n/tokens\n/history\nAgain\n"
    result = gpt_ls(["chat"], cli_env(api, tmp_path), workspace, stdin=script)
    assert result.returncode == 0, result.stderr
    _first, second, third = api.chat_requests()
    assert [m["content"] for m in second.body["messages"][1:]] == ["Capital of France?", "Paris.", "Population?"]
    assert [m["role"] for m in third.body["messages"]] == ["system", "user"]
    assert ("[user] Capital of France?\n[assistant] Paris.\n[user] Population?\n[assistant] 2.1 million.\n"
            "(30 prompt + 6 completion = 36 tokens)\n(new conversation)\n"
            "(0 prompt + 0 completion = 0 tokens)\n(no conversation yet)\n") in result.stdout
    # Piped: plain text, and the usage line of each reply on stderr.
    assert "\x1b" not in result.stdout + result.stderr
    assert "[gpt-4.1-mini · 10 prompt + 2 completion = 12 tokens]" in result.stderr.splitlines()
    assert "Task was destroyed" not in result.stderr
    assert "never awaited" not in result.stderr
    assert not (tmp_path / "data" / "history.db").exists()


def test_ask_continue_with_history_off_says_it_cannot(api, workspace, monkeypatch, capsys):
    from gpt_ls.cli import main
    from gpt_ls.settings import config_dir

    config_dir().mkdir(parents=True)
    (config_dir() / "config.toml").write_text("history = false\n", encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", api.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.chdir(workspace)
    assert main(["ask", "-c", "Population?"]) == 0
    out = capsys.readouterr()
    assert out.out == "Echo: Population?\n"
    assert out.err.splitlines() == [
        "gpt-ls: history is off (setting 'history'), so --continue has no earlier conversation to continue "
        "across runs: this question starts a new one (gpt-ls chat remembers within a session)."]
    assert [m["role"] for m in api.chat_requests()[0].body["messages"]] == ["system", "user"]
