"""The real gpt-ls process driven like an editor: what the streaming, first-text and concurrency parts share.

The server is ``timed_server.py`` (gpt-ls with only its request-timing log on), driven over
stdio by the simulated editor of ``tests.support``, against ``fake_server.RemoteFake``.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types

from benchmarks.fake_server import RemoteFake
from tests.support import lsp_editor

TIMED_SERVER = [sys.executable, str(Path(__file__).resolve().parent / "timed_server.py")]
LONG_URI = "file:///bench/long.py"
WARM_URI = "file:///bench/warm.md"

# Reply text made of "tokens": English words, Chinese words and an emoji now and then.
TOKEN_WORDS = [" the", " model", " answer", " editor", "语言", "服务器", "，", "。", " stream", " 🙂", "\n"]


@dataclass
class Timing:
    """One request in the server's timing log: wall and CPU ms, garbage collections during it."""

    wall: float
    cpu: float
    gcs: int


def explain_slow(timings: list[Timing], limit: float) -> str:
    """Why requests over ``limit`` ms were slow: CPU spent, or waiting (GIL, preemption), or GC."""
    slow = [t for t in timings if t.wall > limit]
    if not slow:
        return ""
    waiting = sum(1 for t in slow if t.wall - t.cpu > t.cpu)
    gcs = sum(1 for t in slow if t.gcs)
    return (f"{len(slow)} over {limit:g} ms: {waiting} mostly waiting (not on CPU), "
            f"{gcs} with a GC, max CPU {max(t.cpu for t in slow):.2f} ms")


@dataclass
class Session:
    """A gpt-ls process with the simulated editor, its edit log and its timing log."""

    editor: lsp_editor.Editor
    timing_log: Path
    applied: list[tuple[float, str, str]] = field(default_factory=list)  # (time, uri, text)
    slowest: list[tuple[float, float]] = field(default_factory=list)  # (ms, sent at)

    @property
    def pid(self) -> int:
        server = self.editor.client._server
        assert server is not None
        return server.pid

    def timings(self, since: int = 0) -> list[Timing]:
        """The timing log's code-action lines from line ``since`` on."""
        lines = self.timing_log.read_text().splitlines() if self.timing_log.exists() else []
        out = []
        for line in lines[since:]:
            if line.startswith("textDocument/codeAction "):
                _, wall, cpu, gcs = line.split()
                out.append(Timing(float(wall), float(cpu), int(gcs)))
        return out

    def timing_lines(self) -> int:
        return len(self.timing_log.read_text().splitlines()) if self.timing_log.exists() else 0

    def first_edit(self, uri: str, after: float) -> float | None:
        return next((t for t, u, text in self.applied if u == uri and t >= after and text.strip()), None)

    async def wait(self, predicate: Callable[[], bool], timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise TimeoutError("the server did not get there in time")
            await asyncio.sleep(0.005)

    async def code_action(self, uri: str) -> float:
        """One ``textDocument/codeAction`` round trip, in ms."""
        rng = types.Range(types.Position(5, 0), types.Position(6, 0))
        t0 = time.monotonic()
        actions = await self.editor.code_actions(uri, rng)
        took = (time.monotonic() - t0) * 1000
        assert actions, "no code actions listed"
        return took

    async def code_actions_until(self, uri: str, done: asyncio.Event, gap: float = 0.005) -> list[float]:
        """Round trips of code-action requests sent one after another until ``done``."""
        out = []
        while not done.is_set():
            t0 = time.monotonic()
            out.append(await self.code_action(uri))
            self.slowest.append((out[-1], t0))
            await asyncio.sleep(gap)
        return out


@contextmanager
def session_env(api: RemoteFake) -> Iterator[tuple[dict[str, str], Path]]:
    """The server's environment (its timing log in a temporary folder), and that log's path."""
    with tempfile.TemporaryDirectory(prefix="gpt-ls-bench-") as tmp:
        log = Path(tmp) / "timing.log"
        extra = {"PYTHONASYNCIODEBUG": "1"} if os.environ.get("GPT_LS_BENCH_SLOW") else {}
        if os.environ.get("GPT_LS_BENCH_TRACE"):  # benchmarks/loop_trace.py
            extra["GPT_LS_TRACE_FILE"] = str(Path(tmp) / "trace.json")
        if os.environ.get("GPT_LS_BENCH_PROFILE"):
            extra["GPT_LS_PROFILE"] = str(Path(tempfile.gettempdir()) / f"gpt-ls-profile-{time.time():.0f}.txt")
            print(f"  profile: {extra['GPT_LS_PROFILE']}", flush=True)
        yield lsp_editor.server_env(api.url, tmp, GPT_LS_TIMING_LOG=str(log), **extra), log
        if extra and log.exists():  # a diagnosis run: keep the timing log (and asyncio's slow callbacks)
            keep = Path(tempfile.gettempdir()) / f"gpt-ls-bench-slow-{time.time():.0f}.log"
            shutil.copy(log, keep)
            print(f"  slow callbacks: {keep}", flush=True)


def warm_editor(editor: lsp_editor.Editor) -> None:
    """Have the measuring editor build its (un)structuring code for what streaming sends it, before it measures.

    pygls generates that code on first use: 5-10 ms in the measuring process at the first
    ``workspace/applyEdit``, which only gpt-ls's rounds would otherwise pay (a real editor
    pays nothing like it). Run for every server alike.
    """
    zero = types.Range(types.Position(0, 0), types.Position(0, 0))
    doc = types.OptionalVersionedTextDocumentIdentifier(uri="file:///x", version=1)
    edit = types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(doc, [types.TextEdit(zero, "x")])])
    converter = editor.client.protocol._converter
    for message in (
        types.ApplyWorkspaceEditRequest(1, types.ApplyWorkspaceEditParams(edit)),
        types.ApplyWorkspaceEditResponse(1, types.ApplyWorkspaceEditResult(True)),
        types.WorkDoneProgressCreateRequest(1, types.WorkDoneProgressCreateParams("t")),
        types.WorkDoneProgressCreateResponse(1),
        types.ProgressNotification(types.ProgressParams("t", types.WorkDoneProgressBegin("x", cancellable=True))),
        types.ProgressNotification(types.ProgressParams("t", types.WorkDoneProgressReport(message="x"))),
        types.ProgressNotification(types.ProgressParams("t", types.WorkDoneProgressEnd(message="x"))),
        types.DidChangeTextDocumentNotification(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri="file:///x", version=2),
            [types.TextDocumentContentChangePartial(zero, "x")])),
        types.ExecuteCommandRequest(1, types.ExecuteCommandParams("x", [0])),
    ):
        converter.structure(converter.unstructure(message), type(message))


async def start_session(env: dict[str, str], log: Path, config: lsp_editor.EditorConfig | None = None) -> Session:
    """Start the timed server and initialize it; every applied edit is logged with its time."""
    lsp_editor.SERVER = TIMED_SERVER  # gpt-ls itself, with only its timing log turned on
    editor = await lsp_editor.start_editor(env, config or lsp_editor.EditorConfig(keep_shown=False))
    session = Session(editor, log)
    warm_editor(editor)
    original = editor.on_apply_edit

    def on_apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        now = time.monotonic()
        for dc in params.edit.document_changes or []:
            if isinstance(dc, types.TextDocumentEdit):
                text = "".join(e.new_text for e in dc.edits if not isinstance(e, types.SnippetTextEdit))
                session.applied.append((now, dc.text_document.uri, text))
        for uri, edits in (params.edit.changes or {}).items():
            session.applied.append((now, uri, "".join(e.new_text for e in edits)))
        return original(params)

    editor.on_apply_edit = on_apply_edit  # type: ignore[method-assign]
    return session


async def stop_session(session: Session) -> None:
    client = session.editor.client
    try:
        await asyncio.wait_for(client.shutdown_session(), 10)
    except Exception as exc:
        print(f"  note: shutdown: {exc}", flush=True)


def with_eol(reply: str) -> str:
    return reply if reply.endswith("\n") else reply + "\n"


def reply_tokens(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(TOKEN_WORDS) for _ in range(n)]


def long_document(lines: int) -> str:
    """A 10,000-line document with a question on its first line (mixed scripts)."""
    body = [f"def function_{i}(x):  # 第 {i} 行 🙂 return x * {i}" for i in range(1, lines)]
    return "\n".join(["What does this module do?", *body]) + "\n"


def open_documents(editor: lsp_editor.Editor) -> str:
    """Open the 10,000-line document and a small one to warm up with; return the long one's text."""
    text = long_document(10_000)
    editor.open(LONG_URI, text, "python")
    editor.open(WARM_URI, "Warm up?\n")
    return text


async def ask(session: Session, uri: str, line: str) -> float:
    """Send ``gpt-ls.ask`` on ``line``; return when it was sent."""
    t0 = time.monotonic()
    result = await session.editor.run("gpt-ls.ask", uri, session.editor.range_of(uri, line))
    assert result["status"] == "started", result
    return t0


def idle_count(session: Session) -> int:
    return len([s for s in session.editor.statuses if s["running"] == 0])


async def run_and_wait(session: Session, uri: str, line: str) -> float:
    before = idle_count(session)
    t0 = await ask(session, uri, line)
    await session.editor.wait_idle(before, timeout=120)
    return t0
