"""``gpt-ls`` serving LSP: stdio (nothing but LSP on stdout), ``--tcp``, ``--log-file``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO

from tests.support.netkit import free_port

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"processId": None, "rootUri": None, "capabilities": {},
                         "initializationOptions": {"apiKey": "sk-serve-secret-987654321"}}}


def frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def read_message(stream: IO[bytes]) -> dict:
    headers = b""
    while not headers.endswith(b"\r\n\r\n"):
        byte = stream.read(1)
        assert byte, f"stream closed after {headers!r}"
        headers += byte
    assert headers.startswith(b"Content-Length: "), headers
    length = int(headers.split(b"\r\n")[0].split(b": ")[1])
    return json.loads(stream.read(length))


def env_for(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GPT_LS_"))}
    env.update({"GPT_LS_DATA_DIR": str(tmp / "data"), "GPT_LS_CONFIG_DIR": str(tmp / "config"),
                "GPT_LS_CACHE_DIR": str(tmp / "cache")})
    return env


def start_tcp(token_file: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """``gpt-ls --tcp`` on a free loopback port, its token written to ``token_file``."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gpt_ls", "--tcp", f"127.0.0.1:{port}", "--token-file",
                             str(token_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    return proc, port


def test_stdio_speaks_only_lsp_and_logs_without_the_key(tmp_path):
    log = tmp_path / "logs" / "gpt-ls.log"
    proc = subprocess.Popen([sys.executable, "-m", "gpt_ls", "--stdio", "-vv", "--log-file", str(log)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env_for(tmp_path))
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(frame(INITIALIZE))
    proc.stdin.flush()
    response = read_message(proc.stdout)
    assert response["id"] == 1
    assert response["result"]["serverInfo"]["name"] == "gpt-ls"
    assert "gpt-ls.ask" in response["result"]["capabilities"]["executeCommandProvider"]["commands"]
    proc.stdin.write(frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
    proc.stdin.write(frame({"jsonrpc": "2.0", "method": "exit"}))
    proc.stdin.flush()
    assert read_message(proc.stdout)["id"] == 2
    assert proc.wait(timeout=15) == 0
    text = log.read_text(encoding="utf-8")
    assert "initialize" in text  # -vv logs the traffic …
    assert "sk-serve-secret-987654321" not in text  # … with the key masked
    assert "[REDACTED]" in text


def test_tcp_needs_the_token_of_this_start(tmp_path):
    token_file = tmp_path / "token"
    proc, port = start_tcp(token_file, env_for(tmp_path))
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        assert f"serving LSP on 127.0.0.1:{port} (one client); it must send the token in {token_file}" in line
        token = token_file.read_text().strip()
        assert token not in line
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        with conn:
            message = json.loads(json.dumps(INITIALIZE))
            message["params"]["initializationOptions"]["tcpToken"] = token
            conn.sendall(frame(message))
            response = read_message(conn.makefile("rb"))
        assert response["result"]["serverInfo"]["name"] == "gpt-ls"
    finally:
        proc.kill()
        proc.wait()


def test_bad_tcp_address_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "gpt_ls", "--tcp", "nonsense"], capture_output=True,
                            text=True, env=env_for(tmp_path), timeout=30)
    assert result.returncode == 2
    assert "--tcp takes HOST:PORT" in result.stderr


def test_an_unknown_command_lists_every_command(capsys):
    import pytest

    from gpt_ls.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["no-such-command"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "gpt-ls: error: argument COMMAND: invalid choice: 'no-such-command' "
        "(choose from 'serve', 'ask', 'chat', 'check', 'history', 'tokens', 'trust', 'untrust', 'index', 'search')")


def test_serving_options_alone_skip_the_terminal_commands():
    from gpt_ls.cli import wants_commands

    assert not wants_commands([])
    assert not wants_commands(["--stdio", "-vv", "--log-file", "chat", "--tcp", "127.0.0.1:9", "--token-file", "t"])
    assert wants_commands(["-v", "chat"])
    assert wants_commands(["--help"])
    assert wants_commands(["typo"])


def test_start_up_imports_run_without_collections_and_stay_frozen():
    import gc

    from gpt_ls.cli.serve import lasting_imports

    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        with lasting_imports():
            assert not gc.isenabled()  # no full collection over what the imports build
            kept = [[i] for i in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(kept)  # later collections never walk them again
    finally:
        gc.unfreeze()
