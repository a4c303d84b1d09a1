"""Serving one connection (stdio or TCP) and ending it cleanly, whichever way it ends.

pygls's ``start_io``/``start_tcp`` end by letting ``asyncio.run`` cancel whatever still
runs, so a reply streaming when the client closes stdin (or when ``SIGTERM`` arrives) is
cut without being saved, and the cancelled command handler is logged as an error. Here
the same pygls loop (``pygls.io_.run_async``) runs inside a task of ours that, however the
connection ends (stdin closed, the socket closed, ``SIGTERM``/``SIGHUP``, the client's
``exit``), first closes the actions: running replies are cancelled and saved as far as
they came, and the store and HTTP clients are closed. The exit code is 0, or the one of
the client's ``exit`` notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async

from gpt_ls.lsp.state import GptLanguageServer

log = logging.getLogger(__name__)

#: Signals that end the server as a client's closing would.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _loop_args(server: GptLanguageServer) -> dict[str, Any]:
    stop = threading.Event()
    server._stop_event = stop  # pygls's own shutdown() sets it
    return {"stop_event": stop, "protocol": server.protocol, "logger": log, "error_handler": server.report_server_error}


async def _stdio(server: GptLanguageServer) -> None:
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))
    # Read stdin on the event loop (not in a worker thread, as pygls does): a thread blocked
    # in read() would hold the process after SIGTERM until the client writes or closes.
    # Editors connect a pipe (or a socket); a file or /dev/null cannot block, and cannot be polled.
    loop = asyncio.get_running_loop()
    reader: Any = StdinAsyncReader(sys.stdin.buffer, server.thread_pool)
    transport: asyncio.BaseTransport | None = None
    mode = os.fstat(sys.stdin.fileno()).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    try:
        await run_async(reader=reader, **_loop_args(server))
        log.info("the client closed the connection")
    finally:
        if transport is not None:
            transport.close()


async def _tcp(server: GptLanguageServer, host: str, port: int) -> None:
    ended = asyncio.Event()
    stop = asyncio.Event()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.protocol.set_writer(writer)  # type: ignore[arg-type]  # pygls accepts a StreamWriter
        loop_task = asyncio.ensure_future(run_async(reader=reader, **_loop_args(server)))  # type: ignore[arg-type]
        stopping = asyncio.ensure_future(stop.wait())
        # asyncio logs a connection task that ends cancelled: end it ourselves when asked to stop.
        await asyncio.wait([loop_task, stopping], return_when=asyncio.FIRST_COMPLETED)
        for task in (loop_task, stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        ended.set()  # one connection: its end is the server's

    tcp = await asyncio.start_server(connection, host, port)
    log.info("serving on %s", ", ".join(str(s.getsockname()) for s in tcp.sockets))
    try:
        async with tcp:
            await ended.wait()
    finally:
        if not ended.is_set():  # stopped by a signal: replies saved while the client listens, then end
            await server.close_actions()
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.shield(asyncio.wait_for(ended.wait(), 5))


async def _serving(server: GptLanguageServer, connection: Callable[[], Awaitable[None]]) -> None:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, main.cancel)
    try:
        await connection()
    except asyncio.CancelledError:
        log.info("stopped by a signal")
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        # Before asyncio.run cancels the rest: running replies end as "cancelled" and are saved.
        await server.close_actions()


def run(server: GptLanguageServer, connection: Callable[[], Awaitable[None]]) -> int:
    """Serve until the connection ends; close everything; the exit code."""
    code = 0
    try:
        asyncio.run(_serving(server, connection))
    except SystemExit as exc:  # the client's exit notification (after its shutdown request)
        code = exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        pass
    finally:
        with contextlib.suppress(Exception):
            server.shutdown()  # type: ignore[no-untyped-call]  # pygls's synchronous clean-up (thread pool)
    return code


def serve_stdio(server: GptLanguageServer) -> int:
    """LSP over stdin/stdout."""
    return run(server, lambda: _stdio(server))


def serve_tcp(server: GptLanguageServer, host: str, port: int) -> int:
    """LSP over one TCP connection."""
    return run(server, lambda: _tcp(server, host, port))
