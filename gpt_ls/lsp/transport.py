"""The server's connections: stdio, one TCP client, one Unix-socket client.

These replace pygls's ``start_io`` / ``start_tcp``, which read leniently (see
``lsp/framing.py``) and, over TCP, hand every new connection the shared protocol: a second
client took over the first one's session. Here:

* every message is read by ``framing.read_frame``: a bad header, HTTP, or a message over
  ``MAX_MESSAGE_BYTES`` closes the connection with a log line (stdio: the server exits);
* a TCP or socket connection passes ``lsp/gate.py`` first (``initialize`` with the token);
* one client at a time: while a connection is being served, another is closed at once,
  with a log line. When the served client's session ends, the server ends. Connections
  that have not yet sent a valid ``initialize`` do not hold the slot: up to ``MAX_WAITING``
  wait side by side (a new one closes the oldest), each for ``INITIALIZE_WITHIN`` seconds,
  and the first to pass the gate is served; so one idle connection cannot lock the
  editor out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, BinaryIO

from pygls.exceptions import JsonRpcException
from pygls.io_ import StdoutWriter
from pygls.server import JsonRPCServer

from gpt_ls.errors import ProtocolViolation
from gpt_ls.lsp.framing import read_frame
from gpt_ls.lsp.gate import Gate

log = logging.getLogger(__name__)

#: Seconds a new connection has to send a valid ``initialize``; then it is closed.
INITIALIZE_WITHIN = 5.0
#: Seconds a ``shutdown`` may take before the next message (``exit``) is read anyway.
SHUTDOWN_WAIT = 10.0
#: Connections that may wait for their ``initialize`` at once; one more closes the oldest.
MAX_WAITING = 8


class StreamBytes:
    """``framing.ByteReader`` over an asyncio stream (TCP, Unix socket)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    async def readline(self, limit: int) -> bytes:
        try:
            return await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except asyncio.LimitOverrunError:
            raise ProtocolViolation("a header line has no end: closing the connection.") from None

    async def readexactly(self, n: int) -> bytes:
        try:
            return await self._reader.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            return exc.partial


class StdinBytes:
    """``framing.ByteReader`` over a blocking binary stream, read by one daemon thread.

    A daemon thread (not pygls's pool) so that a server that stops reading (a bad header)
    can exit while the thread still waits on stdin. The thread reads whatever has arrived
    (``read1``: one read of the pipe) into a buffer that ``readline`` and ``readexactly``
    serve without waiting: a message the client wrote at once costs one trip through the
    thread and the event loop, not one per header line (each trip lets every other ready
    task of the loop run a step first, so a code action waited behind each of them).
    """

    #: Bytes asked of the pipe at once (a pipe holds 64 KiB).
    CHUNK = 1 << 16

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._ended = False
        self._jobs: queue.Queue[tuple[Callable[[], bytes], asyncio.Future[bytes]]] = queue.Queue()
        threading.Thread(target=self._work, name="gpt-ls-stdin", daemon=True).start()

    def _work(self) -> None:
        while True:
            job, future = self._jobs.get()
            loop = future.get_loop()
            try:
                data = job()
            except BaseException as exc:  # handed to the waiting coroutine
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, data, None)

    async def _fill(self, wanted: int) -> None:
        """Read what has arrived (at least a byte, blocking in the thread); at the end, mark it."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        read1 = getattr(self._stream, "read1", self._stream.read)
        self._jobs.put((lambda: read1(max(wanted, self.CHUNK)), future))
        data = await future
        if data:
            self._buffer += data
        else:
            self._ended = True

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def readline(self, limit: int) -> bytes:
        while True:
            end = self._buffer.find(b"\n", 0, limit)
            if end >= 0:
                return self._take(end + 1)
            if len(self._buffer) >= limit or self._ended:
                return self._take(limit)
            await self._fill(1)

    async def readexactly(self, n: int) -> bytes:
        while len(self._buffer) < n and not self._ended:
            await self._fill(n - len(self._buffer))
        return self._take(n)


def _settle(future: asyncio.Future[bytes], data: bytes | None, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(data or b"")


def frame(message: dict[str, Any]) -> bytes:
    """One message with its header."""
    body = json.dumps(message).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def quiet_cancellations(loop: asyncio.AbstractEventLoop) -> None:
    """At the end of a session, handlers still waiting on the client are cancelled; pygls's
    callbacks then raise CancelledError, which asyncio would print as an error: log it quietly."""
    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), asyncio.CancelledError):
            log.debug("cancelled at the end of the session: %s", context.get("message"))
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)


def dispatch(server: JsonRPCServer, body: bytes) -> Any:
    """Hand one message to pygls (as its own reader does) and return it; one it cannot handle is logged (None)."""
    try:
        message = json.loads(body, object_hook=server.protocol.structure_message)
        server.protocol.handle_message(message)
    except Exception as exc:
        log.exception("a message could not be handled")
        server._report_server_error(exc, JsonRpcException)
        return None
    return message


async def shutdown_answered(server: JsonRPCServer, message: Any, within: float = SHUTDOWN_WAIT) -> None:
    """After a ``shutdown`` request pygls took on: wait (a while at most) until it is answered.

    A client may write ``shutdown`` and ``exit`` at once. Read from one buffer, the ``exit``
    would come before the shutdown (which closes the running actions, saving their partial
    replies) has answered: pygls would then cancel the exit and the server would never end.
    """
    msg_id = getattr(message, "id", None)
    if getattr(message, "method", None) != "shutdown" or msg_id is None:
        return
    pending = server.protocol._request_futures.get(msg_id)
    if pending is None:  # refused (a malformed shutdown), or already answered
        return
    # pygls sends the answer in the first of the future's callbacks; ours comes after it.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(pending)), within)


async def run_session(server: JsonRPCServer, reader: Any, gate: Gate | None = None,
                      send_raw: Callable[[dict[str, Any]], None] | None = None,
                      on_open: Callable[[], None] | None = None) -> None:
    """Read and dispatch messages until the stream ends; ProtocolViolation when it must close."""
    quiet_cancellations(asyncio.get_running_loop())
    started = time.monotonic()
    stop = server._stop_event
    while stop is None or not stop.is_set():
        if gate is None or gate.open:
            body = await read_frame(reader)
        else:
            left = INITIALIZE_WITHIN - (time.monotonic() - started)
            try:
                body = await asyncio.wait_for(read_frame(reader), max(left, 0.01))
            except TimeoutError:
                raise ProtocolViolation(f"no valid initialize within {INITIALIZE_WITHIN:g} s: "
                                        "closing the connection.") from None
        if body is None:
            return
        if gate is not None and not gate.open:
            body = _through_gate(gate, body, send_raw, on_open)
            if body is None:
                continue
        await shutdown_answered(server, dispatch(server, body))
        await asyncio.sleep(0)  # what the message started runs a step before the next message


def _through_gate(gate: Gate, body: bytes, send_raw: Callable[[dict[str, Any]], None] | None,
                  on_open: Callable[[], None] | None) -> bytes | None:
    """The message to dispatch (the token taken out), or None; ProtocolViolation to close."""
    try:
        message = json.loads(body)
    except ValueError:
        message = None
    verdict = gate.check(message)
    if verdict.reply is not None and send_raw is not None:
        send_raw(verdict.reply)
    if verdict.close:
        raise ProtocolViolation(f"{verdict.why}: closing the connection.")
    if not verdict.passes:
        log.info("%s", verdict.why)
        return None
    if on_open is not None:
        on_open()
    return json.dumps(message).encode("utf-8")


#: Signals that end the server as a client's closing would.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


async def ending_cleanly(server: JsonRPCServer, session: Coroutine[Any, Any, None]) -> None:
    """Run ``session``; however it ends (the client gone, SIGTERM/SIGHUP), close the actions
    before asyncio.run cancels the rest: running replies end "cancelled" and are saved."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, main.cancel)  # type: ignore[union-attr]
    try:
        await session
    except asyncio.CancelledError:
        log.info("stopped by a signal")
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        close = getattr(server, "close_actions", None)  # GptLanguageServer's
        if close is not None:
            await close()


def serve_stdio(server: JsonRPCServer) -> int:
    """Serve over stdin/stdout; a broken frame ends the server with a line on stderr (status 1)."""
    server._stop_event = threading.Event()
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))
    try:
        # A reader of its own on fd 0, not sys.stdin: the interpreter closes sys.stdin at exit,
        # a fatal error while the daemon thread still waits in it (SIGTERM, the client's exit).
        stdin = open(sys.stdin.fileno(), "rb", closefd=False)
        asyncio.run(ending_cleanly(server, run_session(server, StdinBytes(stdin))))
    except ProtocolViolation as exc:
        log.error("stdio: %s", exc)
        sys.stderr.write(f"gpt-ls: {exc} The server exits.\n")  # stdout is the wire
        return 1
    except BrokenPipeError:
        log.error("the client closed the connection; the server exits.")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()  # type: ignore[no-untyped-call]
    return 0


class _OneClient:
    """The single connection a listening server serves; once it is served, the others are closed at once."""

    def __init__(self, server: JsonRPCServer, token: str | None) -> None:
        self.server, self.token = server, token
        self.serving = False
        #: Connections still before their ``initialize``, oldest first.
        self.waiting: list[asyncio.StreamWriter] = []
        self.finished = asyncio.Event()

    def _wait_in_line(self, writer: asyncio.StreamWriter) -> None:
        if len(self.waiting) >= MAX_WAITING:
            oldest = self.waiting.pop(0)
            log.warning("closed the oldest of %d connections still waiting to initialize.", MAX_WAITING)
            oldest.close()
        self.waiting.append(writer)

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or "a local process"
        if self.serving:
            log.warning("refused a connection from %s: a client is connected already (one at a time).", peer)
            writer.close()
            return
        if not _same_user(writer):
            log.warning("refused a connection from another user on the socket.")
            writer.close()
            return
        self._wait_in_line(writer)
        served = False

        def on_open() -> None:
            nonlocal served
            if self.serving:
                raise ProtocolViolation("another client was served first")
            self.serving = served = True
            for other in self.waiting:  # nobody else gets in now
                if other is not writer:
                    other.close()
            self.waiting.clear()
            self.server.protocol.set_writer(writer)  # type: ignore[arg-type]
            log.info("serving the client at %s", peer)

        try:
            await run_session(self.server, StreamBytes(reader), Gate(self.token),
                              lambda m: writer.write(frame(m)), on_open)
        except ProtocolViolation as exc:
            log.warning("closed the connection from %s: %s", peer, exc)
        except ConnectionError as exc:
            log.info("the connection from %s broke: %s", peer, exc)
        finally:
            writer.close()
            if writer in self.waiting:
                self.waiting.remove(writer)
            if served:
                self.finished.set()


def _same_user(writer: asyncio.StreamWriter) -> bool:
    """On a Unix socket (Linux), the peer runs as this user; TCP peers are checked by the token."""
    sock = writer.get_extra_info("socket")
    if sock is None or sock.family != getattr(socket, "AF_UNIX", None) or not hasattr(socket, "SO_PEERCRED"):
        return True
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return bool(uid == os.getuid())


def _listen(server: JsonRPCServer, start: Callable[[_OneClient], Any], token: str | None,
            on_bound: Callable[[asyncio.Server], None]) -> int:
    server._stop_event = threading.Event()

    async def main() -> None:
        quiet_cancellations(asyncio.get_running_loop())
        client = _OneClient(server, token)
        listening: asyncio.Server = await start(client)
        server._server = listening
        on_bound(listening)
        async with listening:
            await client.finished.wait()

    try:
        asyncio.run(ending_cleanly(server, main()))
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()  # type: ignore[no-untyped-call]
    return 0


def serve_tcp(server: JsonRPCServer, host: str, port: int, token: str,
              on_bound: Callable[[str, int], None]) -> int:
    """Serve one client over TCP, which must present ``token``; ``on_bound(host, port)`` once listening."""
    return _listen(server, lambda client: asyncio.start_server(client, host, port), token,
                   lambda s: on_bound(*s.sockets[0].getsockname()[:2]))


def serve_socket(server: JsonRPCServer, path: Path, on_bound: Callable[[], None]) -> int:
    """Serve one client on a Unix socket created 0600 (``listen.prepare_socket`` checked the path)."""

    async def start(client: _OneClient) -> asyncio.Server:
        old = os.umask(0o177)  # 0600 from its creation, not after a chmod
        try:
            return await asyncio.start_unix_server(client, str(path))
        finally:
            os.umask(old)

    def bound(_listening: asyncio.Server) -> None:
        os.chmod(path, 0o600)
        on_bound()

    try:
        return _listen(server, start, None, bound)
    finally:
        path.unlink(missing_ok=True)
