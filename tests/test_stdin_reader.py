"""The stdio reader: messages read whole from a real pipe, however the client's writes are cut."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gpt_ls.errors import ProtocolViolation
from gpt_ls.lsp.framing import read_frame
from gpt_ls.lsp.transport import StdinBytes
from tests.support.lsp_editor import server_env

BODIES = [b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}',
          '{"text": "第一行 🙂"}'.encode(), b"{}", b"x" * 200_000]


def framed(body: bytes, content_type: bool = False) -> bytes:
    extra = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" if content_type else b""
    return b"Content-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def read_all(pieces: list[bytes], pause: float = 0.0) -> tuple[list[bytes], int]:
    """Write ``pieces`` into a pipe (``pause`` s apart) and read frames from it until it ends; also how many reads."""
    read_fd, write_fd = os.pipe()

    def writer() -> None:
        with os.fdopen(write_fd, "wb", buffering=0) as out:
            for piece in pieces:
                out.write(piece)
                time.sleep(pause)

    async def reader() -> tuple[list[bytes], int]:
        with os.fdopen(read_fd, "rb") as stream:
            source = StdinBytes(stream)
            calls = [0]
            fill = source._fill

            async def counted(wanted: int) -> None:
                calls[0] += 1
                await fill(wanted)

            source._fill = counted  # type: ignore[method-assign]
            found = []
            while (body := await read_frame(source)) is not None:
                found.append(body)
            return found, calls[0]

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        return asyncio.run(reader())
    finally:
        thread.join()


def test_messages_come_through_whole_and_in_order() -> None:
    data = b"".join(framed(b, content_type=i % 2 == 1) for i, b in enumerate(BODIES))
    found, _ = read_all([data])
    assert found == BODIES


def test_a_message_written_at_once_is_read_in_one_trip_through_the_thread() -> None:
    found, reads = read_all([framed(BODIES[0]), framed(BODIES[1])], pause=0.05)
    assert found == BODIES[:2]
    assert reads == 3  # one per message, and one that finds the end of the stream


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_writes_cut_anywhere_still_make_the_same_messages(size: int) -> None:
    data = b"".join(framed(b) for b in BODIES[:3])
    found, _ = read_all([data[i : i + size] for i in range(0, len(data), size)], pause=0.0005 if size > 1 else 0)
    assert found == BODIES[:3]


def test_the_stream_ending_inside_a_message_is_a_protocol_violation() -> None:
    with pytest.raises(ProtocolViolation, match="ended inside a message"):
        read_all([framed(BODIES[0])[:-5]])


def test_shutdown_and_exit_written_at_once_answer_the_shutdown_and_end_cleanly(tmp_path: Path) -> None:
    env = server_env("http://127.0.0.1:9/v1", str(tmp_path))  # never asked: no action runs
    proc = subprocess.Popen([sys.executable, "-m", "gpt_ls", "--stdio"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    messages = [{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}},
                {"jsonrpc": "2.0", "method": "initialized", "params": {}},
                {"jsonrpc": "2.0", "id": 2, "method": "shutdown"}, {"jsonrpc": "2.0", "method": "exit"}]
    out, _ = proc.communicate(b"".join(framed(json.dumps(m).encode()) for m in messages), timeout=30)
    assert proc.returncode == 0  # exit came after the shutdown had finished
    assert b'"id": 2, "jsonrpc": "2.0", "result": null' in out
