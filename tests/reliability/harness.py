"""What the reliability tests share: a traced editor, history as stored, and the checks.

The editor is the end-to-end suite's simulated editor (``tests.support.lsp_editor``) running the real
``gpt-ls`` process; here it can also record every byte the server writes to the
client (the LSP trace), pass extra command-line arguments (``--log-file``, ``-vv``), and
tell whether the process is still alive.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types

from tests.reliability import figures
from tests.support import lsp_editor
from tests.support.lsp_editor import Editor, EditorConfig, server_env

KEY = "sk-test-key-0123456789"  # what lsp_editor.server_env gives the server
#: Settings that keep faults quick: one retry, short timeouts.
QUICK = {"maxRetries": 1, "readTimeout": 1.0, "connectTimeout": 1.0}


class Trace:
    """Every byte the server sent to the client, in order."""

    def __init__(self) -> None:
        self.data = bytearray()

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


def _tee(reader: asyncio.StreamReader, trace: Trace) -> None:
    """Record what the client reads from the server's stdout."""
    readline, readexactly = reader.readline, reader.readexactly

    async def traced_readline() -> bytes:
        line = await readline()
        trace.data += line
        return line

    async def traced_readexactly(n: int) -> bytes:
        data = await readexactly(n)
        trace.data += data
        return data

    reader.readline = traced_readline  # type: ignore[method-assign]
    reader.readexactly = traced_readexactly  # type: ignore[method-assign]


async def open_editor(
    api_url: str,
    tmp: Path,
    config: EditorConfig | None = None,
    *,
    args: tuple[str, ...] = (),
    trace: Trace | None = None,
    stderr: Trace | None = None,
    root: Path | None = None,
    **env: str,
) -> Editor:
    """Start ``gpt-ls ARGS`` behind the simulated editor; data, config and cache in ``tmp``.

    ``trace`` records every byte the server writes to stdout, ``stderr`` what it writes there.
    """
    root = root if root is not None else tmp / "workspace"
    root.mkdir(parents=True, exist_ok=True)
    make_client = lsp_editor.make_test_lsp_client

    def traced_client() -> Any:
        client = make_client()
        start_io = client.start_io

        async def start(cmd: str, *argv: str, **kw: Any) -> None:
            await start_io(cmd, *argv, *args, **kw)
            if trace is not None:
                _tee(client._server.stdout, trace)
            if stderr is not None:
                _tee(client._server.stderr, stderr)

        client.start_io = start
        return client

    lsp_editor.make_test_lsp_client = traced_client
    try:
        return await lsp_editor.start_editor(server_env(api_url, str(tmp), **env), config or EditorConfig(),
                                             root.as_uri())
    finally:
        lsp_editor.make_test_lsp_client = make_client


def alive(editor: Editor) -> bool:
    """Is the server process still running?"""
    proc = editor.client._server
    return proc is not None and proc.returncode is None


def pid(editor: Editor) -> int:
    return int(editor.client._server.pid)


async def close_editor(editor: Editor) -> None:
    """Shut the server down politely (or stop it when it no longer answers)."""
    try:
        if alive(editor):
            await asyncio.wait_for(editor.client.shutdown_session(), 10)
    except Exception:
        pass
    finally:
        await editor.client.stop()


async def answers(editor: Editor, uri: str, timeout: float = 10) -> bool:
    """Does the server still answer a request? (A hang counts in the figures.)"""
    rng = types.Range(types.Position(0, 0), types.Position(0, 0))
    try:
        await asyncio.wait_for(editor.code_actions(uri, rng), timeout)
        return True
    except asyncio.TimeoutError:
        figures.add("hangs")
        return False


def progress_all_ended(editor: Editor) -> bool:
    """Every work-done progress the server began has ended."""
    return all(reports and isinstance(reports[-1], types.WorkDoneProgressEnd) for reports in editor.progress())


@dataclass
class Stored:
    """One message as the history database holds it."""

    id: int
    conversation_id: int
    role: str
    content: str
    status: str
    workspace: str
    request: str | None


def stored(db: Path) -> list[Stored]:
    """Every message in the history database, oldest first (read-only, no migrations)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT m.id, m.conversation_id, m.role, m.content, m.status, c.workspace, m.request_json "
            "FROM messages m JOIN conversations c ON c.id = m.conversation_id ORDER BY m.id"
        ).fetchall()
    finally:
        conn.close()
    return [Stored(*row) for row in rows]


def integrity(db: Path) -> str:
    """SQLite's own check of the whole file."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def cli(*args: str) -> list[str]:
    """The command line of ``gpt-ls ARGS`` as a real process."""
    return [sys.executable, "-m", "gpt_ls", *args]
