"""Every way the language server process ends is clean: exit code 0, no asyncio complaints on stderr.

A client that closes stdin, ``SIGTERM`` of ``gpt-ls --tcp`` and an empty stdin; a reply
streaming when the client goes away is still saved (as far as it came) in history.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.fakeopenai import FakeOpenAI, Stall
from tests.test_cli_serve import INITIALIZE, frame, read_message, start_tcp

pytestmark = pytest.mark.slow
COMPLAINTS = ("never awaited", "Task was destroyed", "Traceback", "Exception ignored")
URI = "file:///tmp/notes.txt"


def env_for(tmp: Path, api: FakeOpenAI | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GPT_LS_"))}
    env.update({"GPT_LS_DATA_DIR": str(tmp / "data"), "GPT_LS_CONFIG_DIR": str(tmp / "config"),
                "GPT_LS_CACHE_DIR": str(tmp / "cache"), "PYTHONWARNINGS": "default"})
    if api is not None:
        env.update({"OPENAI_API_KEY": "sk-exit-test-0123456789", "OPENAI_BASE_URL": api.url,
                    "NO_PROXY": "127.0.0.1"})
    return env


def assert_clean(stderr: bytes) -> None:
    text = stderr.decode("utf-8", "replace")
    assert not [c for c in COMPLAINTS if c in text], text


def test_empty_stdin(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gpt_ls"], input=b"", capture_output=True,
                          env=env_for(tmp_path), timeout=30)
    assert done.returncode == 0, done.stderr
    assert_clean(done.stderr)


def test_client_closes_stdin_while_a_reply_streams(tmp_path: Path, api: FakeOpenAI) -> None:
    api.script(Stall(text="partial words ", seconds=30))
    proc = subprocess.Popen([sys.executable, "-m", "gpt_ls"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env_for(tmp_path, api))
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(frame(INITIALIZE) + frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        proc.stdin.write(frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": URI, "languageId": "plaintext", "version": 1, "text": "What is 2+2?\n"}}}))
        rng = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 12}}
        proc.stdin.write(frame({"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand",
                                "params": {"command": "gpt-ls.ask", "arguments": [URI, rng]}}))
        proc.stdin.flush()
        assert read_message(proc.stdout)["id"] == 1
        deadline = time.monotonic() + 20
        while not api.chat_requests():
            assert time.monotonic() < deadline, "the request never reached the API"
            time.sleep(0.05)
        time.sleep(1.0)  # the partial text has arrived
        proc.stdin.close()
        proc.wait(timeout=30)
        assert proc.stderr is not None
        stderr = proc.stderr.read()
    finally:
        api.release_stalls()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert_clean(stderr)
    db = sqlite3.connect(tmp_path / "data" / "history.db")
    rows = db.execute("SELECT content, status FROM messages WHERE role = 'assistant'").fetchall()
    db.close()
    assert rows == [("partial words ", "cancelled")]


def test_sigterm_of_tcp(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    proc, port = start_tcp(token_file, env_for(tmp_path))
    try:
        assert proc.stderr is not None
        assert "serving LSP on" in proc.stderr.readline().decode()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            message = json.loads(json.dumps(INITIALIZE))
            message["params"]["initializationOptions"]["tcpToken"] = token_file.read_text().strip()
            conn.sendall(frame(message))
            assert read_message(conn.makefile("rb"))["id"] == 1
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert_clean(stderr)


def test_sigterm_of_stdio_with_the_client_still_connected(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "gpt_ls"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env_for(tmp_path))
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        proc.stdin.write(frame(INITIALIZE))
        proc.stdin.flush()
        assert read_message(proc.stdout)["id"] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0  # stdin is still open: the blocked read must not hold the exit
        stderr = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdin.close()
    assert_clean(stderr)
