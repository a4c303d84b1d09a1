"""The network peer, in process (fast): LSP framing read strictly, the token gate, where gpt-ls may listen.

The same attacks run against the real server over real sockets in test_tcp_peer.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from pathlib import Path

import pytest

from gpt_ls.errors import ListenRefused, ProtocolViolation
from gpt_ls.lsp import framing
from gpt_ls.lsp.framing import MAX_MESSAGE_BYTES, read_frame
from gpt_ls.lsp.gate import MAX_BEFORE_INITIALIZE, NOT_INITIALIZED, Gate, token_matches
from gpt_ls.lsp.listen import choose_token, parse_tcp, prepare_socket, write_token


class Bytes:
    """A ByteReader over fixed bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def readline(self, limit: int) -> bytes:
        end = self.data.find(b"\n")
        cut = min(limit, len(self.data) if end < 0 else end + 1)
        line, self.data = self.data[:cut], self.data[cut:]
        return line

    async def readexactly(self, n: int) -> bytes:
        part, self.data = self.data[:n], self.data[n:]
        return part


def frames(data: bytes) -> list[bytes]:
    async def all_of() -> list[bytes]:
        reader, found = Bytes(data), []
        while (body := await read_frame(reader)) is not None:
            found.append(body)
        return found

    return asyncio.run(all_of())


BODY = b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}'


def test_lsp_frames_are_read() -> None:
    both = (b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
            + b"content-length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}")
    assert frames(both) == [BODY, b"{}"]


@pytest.mark.parametrize("method", [b"GET", b"POST", b"PUT", b"HEAD", b"OPTIONS", b"CONNECT", b"DELETE", b"PATCH"])
def test_http_requests_are_not_lsp(method: bytes) -> None:
    request = (method + b" / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
    with pytest.raises(ProtocolViolation, match=r"the client sent HTTP .* not LSP: closing the connection"):
        frames(request)


def test_three_http_posts_with_a_json_body_are_refused_at_the_first_line() -> None:
    post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
    reader = Bytes(post * 3)
    with pytest.raises(ProtocolViolation, match="HTTP"):
        asyncio.run(read_frame(reader))
    # Only the request line was read: nothing of the body reached a parser.
    assert reader.data == (post * 3)[len(b"POST / HTTP/1.1\r\n"):]


@pytest.mark.parametrize(("headers", "why"), [
    (b"Host: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}", "unexpected header line 'Host: 127.0.0.1'"),
    (b"X-Anything: 1\r\nContent-Length: 2\r\n\r\n{}", "unexpected header line"),
    (b"Content-Length: -2\r\n\r\n{}", "Content-Length '-2' is not a byte count"),
    (b"Content-Length: 2x\r\n\r\n{}", "Content-Length '2x' is not a byte count"),
    (b"Content-Length: \r\n\r\n{}", "Content-Length '' is not a byte count"),
    (b"Content-Length: %d\r\n\r\n" % (MAX_MESSAGE_BYTES + 1), "larger than gpt-ls accepts"),
    (b"Content-Length: 99999999999999999999\r\n\r\n", "is not a byte count"),
    (b"Content-Type: application/vscode-jsonrpc\r\n\r\n{}", "has no Content-Length"),
    (b"\r\n{}", "has no Content-Length"),
    (b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", "two Content-Length"),
    (b"Content-Length: 2\n\n{}", "does not end with CRLF"),
    (b"Content-Length: 10\r\n\r\n{}", "the stream ended inside a message"),
    (b"Content-Length: 2\r\n", "the stream ended inside a message header"),
    (b"Content-Type: " + b"x" * 2000 + b"\r\n", "longer than 1024 bytes"),
    (b"Content-Type: x\r\n" * 9 + b"Content-Length: 2\r\n\r\n{}", "more than 8 header lines"),
])
def test_bad_headers_close_the_connection(headers: bytes, why: str) -> None:
    with pytest.raises(ProtocolViolation, match="closing the connection") as raised:
        frames(headers)
    assert why in str(raised.value)


def test_the_largest_message_is_64_mib_and_it_is_read() -> None:
    assert MAX_MESSAGE_BYTES == 64 * 1024 * 1024
    assert framing.content_length(str(MAX_MESSAGE_BYTES)) == MAX_MESSAGE_BYTES
    big = b'"' + b"x" * (8 * 1024 * 1024) + b'"'  # an 8 MB document fits with room to spare
    assert frames(b"Content-Length: %d\r\n\r\n%s" % (len(big), big)) == [big]


def initialize(token: object = None, msg_id: object = 1) -> dict[str, object]:
    options = {"model": "gpt-4o-mini"} if token is None else {"model": "gpt-4o-mini", "tcpToken": token}
    return {"jsonrpc": "2.0", "id": msg_id, "method": "initialize",
            "params": {"capabilities": {}, "initializationOptions": options}}


TOKEN = "A-secret-token-of-this-start-0123456789"


def test_the_right_token_opens_and_is_taken_out_of_the_options() -> None:
    gate, message = Gate(TOKEN), initialize(TOKEN)
    verdict = gate.check(message)
    assert (verdict.passes, verdict.close, verdict.reply) == (True, False, None)
    assert gate.open
    assert message["params"] == {"capabilities": {}, "initializationOptions": {"model": "gpt-4o-mini"}}
    assert gate.check({"jsonrpc": "2.0", "method": "initialized", "params": {}}).passes


@pytest.mark.parametrize(("token", "how"), [(None, "missing"), ("wrong-token", "wrong"), (TOKEN[:-1], "wrong"),
                                            (TOKEN + "x", "wrong"), (12345, "wrong"), ("", "wrong")])
def test_a_missing_or_wrong_token_is_answered_and_closes(token: object, how: str) -> None:
    gate = Gate(TOKEN)
    verdict = gate.check(initialize(token, msg_id=7))
    assert verdict.close and not verdict.passes and not gate.open
    assert verdict.reply is not None
    assert verdict.reply["id"] == 7
    assert f"initializationOptions.tcpToken is {how}" in json.dumps(verdict.reply)
    assert TOKEN not in json.dumps(verdict.reply)


def test_before_initialize_requests_get_only_an_error_and_then_the_door_closes() -> None:
    gate = Gate(TOKEN)
    request = {"jsonrpc": "2.0", "id": 3, "method": "workspace/executeCommand",
               "params": {"command": "gpt-ls.ask", "arguments": []}}
    verdict = gate.check(request)
    assert not verdict.passes and not verdict.close
    assert verdict.reply is not None and verdict.reply["error"]["code"] == NOT_INITIALIZED
    notification = gate.check({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration",
                               "params": {"settings": {"apiKeyCommand": "touch /tmp/pwned"}}})
    assert (notification.passes, notification.reply, notification.close) == (False, None, False)
    for _ in range(MAX_BEFORE_INITIALIZE - 2):
        assert not gate.check(request).close
    assert gate.check(request).close
    assert not gate.open


def test_non_messages_and_exit_before_initialize_close() -> None:
    assert Gate(TOKEN).check([1, 2, 3]).close
    assert Gate(TOKEN).check(None).close
    assert Gate(TOKEN).check({"jsonrpc": "2.0", "method": "exit"}).close


def test_a_socket_gate_asks_no_token_but_still_wants_initialize_first() -> None:
    gate = Gate(None)
    assert gate.check({"jsonrpc": "2.0", "id": 1, "method": "shutdown"}).reply is not None
    assert gate.check(initialize()).passes


def test_tokens_are_compared_in_constant_time_and_only_as_strings() -> None:
    assert token_matches(TOKEN, TOKEN)
    assert not token_matches(TOKEN, None)
    assert not token_matches(TOKEN, "\ud800")  # a lone surrogate from JSON does not crash the check


@pytest.mark.parametrize(("value", "host"), [("127.0.0.1:2087", "127.0.0.1"), ("localhost:2087", "127.0.0.1"),
                                             (":2087", "127.0.0.1"), ("[::1]:2087", "::1"),
                                             ("127.0.0.2:2087", "127.0.0.2")])
def test_loopback_addresses_are_accepted(value: str, host: str) -> None:
    address = parse_tcp(value)
    assert (address.host, address.port, address.remote) == (host, 2087, False)


@pytest.mark.parametrize("value", ["0.0.0.0:2087", "[::]:2087", "192.168.1.5:2087", "example.com:2087",
                                   "10.0.0.1:2087"])
def test_other_addresses_need_allow_remote(value: str) -> None:
    with pytest.raises(ListenRefused, match=r"listens on loopback only .* add --allow-remote"):
        parse_tcp(value)
    assert parse_tcp(value, allow_remote=True).remote


def test_a_bad_address_is_a_sentence() -> None:
    with pytest.raises(ListenRefused, match="--tcp takes HOST:PORT"):
        parse_tcp("nonsense")


def test_the_token_is_random_or_the_users_and_written_owner_only(tmp_path: Path) -> None:
    first, second = choose_token({}), choose_token({})
    assert first != second and len(first) >= 40
    assert choose_token({"GPT_LS_TCP_TOKEN": "x" * 16}) == "x" * 16
    with pytest.raises(ListenRefused, match="shorter than 16"):
        choose_token({"GPT_LS_TCP_TOKEN": "short"})
    path = write_token(tmp_path / "new" / "2087.token", first)
    assert path.read_text() == first + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    link = tmp_path / "link.token"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ListenRefused, match="symbolic link"):
        write_token(link, first)
    assert not (tmp_path / "elsewhere").exists()


def test_the_socket_goes_into_a_private_directory_and_replaces_only_a_stale_socket(tmp_path: Path) -> None:
    path = prepare_socket(tmp_path / "run" / "gpt-ls.sock")
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    os.chmod(open_dir, 0o755)
    with pytest.raises(ListenRefused, match="open to other users"):
        prepare_socket(open_dir / "gpt-ls.sock")
    path.write_text("not a socket")
    with pytest.raises(ListenRefused, match="not a gpt-ls socket"):
        prepare_socket(path)
    path.unlink()
    path.symlink_to(tmp_path / "target")
    with pytest.raises(ListenRefused, match="not a gpt-ls socket"):
        prepare_socket(path)
    path.unlink()
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(path))
        live.listen()
        with pytest.raises(ListenRefused, match="a server is listening there already"):
            prepare_socket(path)
    assert path.exists()  # stale now: nobody listens
    assert prepare_socket(path) == path and not path.exists()


def test_an_internal_error_answer_carries_one_sentence_and_no_traceback() -> None:
    import sys

    from pygls.exceptions import JsonRpcInternalError

    from gpt_ls.lsp.protocol import INTERNAL_ERROR
    from gpt_ls.lsp.server import create_server

    server = create_server()
    sent: list[bytes] = []

    class Writer:
        def write(self, data: bytes) -> None:
            sent.append(data)

        def close(self) -> None: ...

    server.protocol.set_writer(Writer())
    try:
        raise RuntimeError("detail from /home/someone/secret.txt")
    except RuntimeError:
        error = JsonRpcInternalError.of(sys.exc_info())
    assert "traceback" in error.data  # what pygls would have sent
    server.protocol._send_response(5, error=error.to_response_error())
    wire = b"".join(sent).decode()
    body = json.loads(wire[wire.index("{"):])
    assert body["error"] == {"code": -32603, "message": INTERNAL_ERROR}
    assert "secret.txt" not in wire and "Traceback" not in wire and "File " not in wire


def test_on_stderr_a_failure_is_one_line_without_its_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from gpt_ls.logs import setup_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        setup_logging(0, None)
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("pygls.protocol").exception("a message could not be handled")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "a message could not be handled (the traceback is written only to a --log-file)" in err
    assert "Traceback" not in err and "RuntimeError" not in err
