"""The single client slot of ``--tcp`` / ``--socket``: a connection that never initializes cannot hold it.

The listener of gpt_ls/lsp/transport.py in this process, on a real loopback socket, with the
real server behind it; the peers are asyncio streams.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gpt_ls.lsp import transport
from gpt_ls.lsp.server import create_server

TOKEN = "slot-token-0123456789abcdef"


def initialize(token: str | None) -> bytes:
    options = {"tcpToken": token} if token is not None else {}
    return transport.frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "processId": None, "rootUri": None, "capabilities": {}, "initializationOptions": options}})


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """One message, or None when the server closed the connection."""
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return None
    length = int(head.split(b"\r\n")[0].split(b":")[1])
    return dict(json.loads(await reader.readexactly(length)))


async def closed(reader: asyncio.StreamReader) -> bool:
    """True when the server closes the connection without sending anything (within 5 s)."""
    try:
        return await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionResetError:  # closed with our bytes unread
        return True


@pytest.fixture
async def listener() -> Any:
    client = transport._OneClient(create_server(), TOKEN)
    server = await asyncio.start_server(client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", port)

    yield client, connect
    server.close()
    await server.wait_closed()


async def test_an_idle_connection_does_not_keep_the_editor_out(listener: Any) -> None:
    client, connect = listener
    _idle_reader, idle = await connect()  # connects and never sends anything
    reader, editor = await connect()
    editor.write(initialize(TOKEN))
    answer = await read_message(reader)
    assert answer is not None and answer["result"]["serverInfo"]["name"] == "gpt-ls"
    assert client.serving
    assert await closed(_idle_reader)  # nobody else gets in once the editor is served
    late_reader, late = await connect()
    late.write(initialize(TOKEN))
    assert await closed(late_reader)  # one client at a time, even with the token
    for writer in (idle, editor, late):
        writer.close()
    await asyncio.wait_for(client.finished.wait(), 5)


async def test_too_many_waiting_connections_close_the_oldest(listener: Any) -> None:
    client, connect = listener
    waiting = [await connect() for _ in range(transport.MAX_WAITING + 1)]
    assert await closed(waiting[0][0])
    for reader, _ in waiting[1:]:
        with pytest.raises(TimeoutError):  # still waiting for its initialize
            await asyncio.wait_for(reader.read(1), 0.05)
    reader, editor = await connect()  # the editor still gets in
    editor.write(initialize(TOKEN))
    answer = await read_message(reader)
    assert answer is not None and "result" in answer and client.serving
    for _, writer in [*waiting, (reader, editor)]:
        writer.close()


async def test_a_wrong_token_closes_only_that_connection(listener: Any) -> None:
    client, connect = listener
    reader, editor = await connect()  # waiting meanwhile
    bad_reader, bad = await connect()
    bad.write(initialize("guessed-0123456789"))
    refused = await read_message(bad_reader)
    assert refused is not None and "tcpToken is wrong" in refused["error"]["message"]
    assert await closed(bad_reader)
    editor.write(initialize(TOKEN))
    answer = await read_message(reader)
    assert answer is not None and "result" in answer and client.serving
    for writer in (bad, editor):
        writer.close()


async def test_a_connection_that_never_initializes_is_closed_in_time(listener: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "INITIALIZE_WITHIN", 0.2)
    client, connect = listener
    reader, writer = await connect()
    assert await closed(reader)
    assert client.waiting == [] and not client.serving
    writer.close()
