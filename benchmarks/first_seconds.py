"""Issue 16: the first seconds and the memory of a session, gpt-ls against a bare pygls server.

Each round starts a server, waits until 1 s after spawning it, opens the 10,000-line
document and asks for code actions 300 times, one after another. In gpt-ls's rounds three
actions run in between with the default settings: Ask (at the first request: run directly,
no menu listed before it), Explain and Draft email, each streaming 200 tokens. Rounds
alternate between the servers, so a burst of load hits both alike; figures are medians
over the rounds of each round's percentile.

Measured: the code-action client round trip (p99 over all 300, and over the first 50,
the first 1-1.5 s), against the target p99 <= 1.5 x bare pygls + 0.5 ms; gpt-ls's peak
RSS through the session (VmHWM at its end), against 100 MB; and how much later than the
openai SDK's own time to first token the first action's text arrives.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import loop_trace
from benchmarks.fake_server import RemoteFake
from benchmarks.first_text import proc_status, sdk_ttft
from benchmarks.results import Results, percentile
from benchmarks.session import (
    LONG_URI,
    TIMED_SERVER,
    Session,
    long_document,
    reply_tokens,
    run_and_wait,
    session_env,
    start_session,
    stop_session,
    warm_editor,
)
from tests.support import lsp_editor
from tests.support.fakeopenai import Reply

BARE_ACTIONS = [sys.executable, str(Path(__file__).resolve().parent / "bare_actions.py")]
REQUESTS = 300
FIRST = 50
#: (command, the line it runs on, at which code-action request it starts)
ACTIONS = [("gpt-ls.ask", 5_000, 0), ("gpt-ls.explain", 2_000, 100), ("gpt-ls.draftEmail", 8_000, 200)]
FIRST_DELAY = 0.2


@dataclass
class Round:
    """One server's round: code-action round trips (ms), and for gpt-ls its memory and first text."""

    trips: list[float]
    peak_rss: float = 0.0
    max_rss: float = 0.0
    first_text: float | None = None


async def start(cmd: list[str], env: dict[str, str], log: Path) -> Session:
    if cmd is BARE_ACTIONS:
        lsp_editor.SERVER = cmd
        session = Session(await lsp_editor.start_editor(env, lsp_editor.EditorConfig(keep_shown=False)), log)
        warm_editor(session.editor)  # as start_session does
        return session
    return await start_session(env, log)  # gpt-ls through benchmarks/timed_server.py


async def one_round(cmd: list[str], api: RemoteFake, with_actions: bool) -> Round:
    """Start, wait until 1 s after spawning, open 10,000 lines, 300 code actions (and 3 actions)."""
    with session_env(api) as (env, log):
        spawned = time.monotonic()
        session = await start(cmd, env, log)
        try:
            await asyncio.sleep(max(0.0, spawned + 1.0 - time.monotonic()))
            editor = session.editor
            text = long_document(10_000)
            editor.open(LONG_URI, text, "python")
            lines = text.split("\n")
            if with_actions:
                api.script(*[Reply(chunks=reply_tokens(200, i), delay=0.01, first_delay=FIRST_DELAY)
                             for i in range(len(ACTIONS))])
            out = Round([])
            sent_first = 0.0
            runs = []
            for i in range(REQUESTS):
                for command, line, at in ACTIONS if with_actions else []:
                    if i == at:
                        if at == 0:
                            sent_first = time.monotonic()
                        runs.append(asyncio.create_task(
                            editor.run(command, LONG_URI, editor.range_of(LONG_URI, lines[line]))))
                session.slowest.append((await session.code_action(LONG_URI), time.monotonic()))
                out.trips.append(session.slowest[-1][0])
                if with_actions:
                    out.max_rss = max(out.max_rss, proc_status(session.pid)["VmRSS"])
                await asyncio.sleep(0.005)
            if with_actions:
                await asyncio.gather(*runs)
                await session.wait(lambda: bool(editor.statuses) and editor.statuses[-1]["running"] == 0, 60)
                await editor.settle()
                status = proc_status(session.pid)
                out.peak_rss, out.max_rss = status["VmHWM"], max(out.max_rss, status["VmRSS"])
                first = session.first_edit(LONG_URI, sent_first)
                out.first_text = None if first is None else (first - sent_first) * 1000
            return out
        finally:
            await stop_session(session)
            if "GPT_LS_TRACE_FILE" in env:  # diagnosis: what each loop ran while the slowest waited
                slow = [(ms, end - ms / 1000) for ms, end in session.slowest]
                server = loop_trace.read(env["GPT_LS_TRACE_FILE"])
                print(loop_trace.explain(slow, server, loop_trace.records), flush=True)
                loop_trace.keep(slow, server, "gpt-ls" if with_actions else "bare")
                loop_trace.records.clear()


async def direct_first_action(api: RemoteFake, wait: float) -> float:
    """ms from ``gpt-ls.ask`` run ``wait`` s after spawning (no menu listed) to its first text."""
    with session_env(api) as (env, log):
        spawned = time.monotonic()
        session = await start_session(env, log)
        try:
            await asyncio.sleep(max(0.0, spawned + wait - time.monotonic()))
            uri = "file:///bench/direct.md"
            session.editor.open(uri, "What is the capital of France?\n")
            api.script(Reply(text="Paris is the capital.", first_delay=FIRST_DELAY))
            t0 = await run_and_wait(session, uri, "What is the capital of France?")
            first = session.first_edit(uri, t0)
            assert first is not None, "no edit carried the reply"
            return (first - t0) * 1000
        finally:
            await stop_session(session)


async def figures(res: Results, api: RemoteFake, rounds: int) -> None:
    """Code actions from 1 s after start against bare pygls; memory; the first action run directly."""
    print(f"9. the first seconds: {rounds} rounds of {REQUESTS} code actions, gpt-ls and bare pygls", flush=True)
    if os.environ.get("GPT_LS_BENCH_TRACE"):
        loop_trace.install()  # the measuring process's own loop, beside the server's
    bare: list[Round] = []
    ours: list[Round] = []
    for _ in range(rounds):  # interleaved: a burst of load hits both alike
        bare.append(await one_round(BARE_ACTIONS, api, with_actions=False))
        ours.append(await one_round(TIMED_SERVER, api, with_actions=True))

    def med(values: list[float]) -> float:
        return statistics.median(values)

    for label, part in ((f"all {REQUESTS}", slice(None)), (f"first {FIRST}", slice(0, FIRST))):
        base = med([percentile(r.trips[part], 99) for r in bare])
        got = med([percentile(r.trips[part], 99) for r in ours])
        each = ", ".join(f"{percentile(r.trips[part], 99):.2f}" for r in ours)
        res.add("first seconds", f"bare pygls: code action round trip p99, {label} (median of {rounds})", base,
                "ms", note="each: " + ", ".join(f"{percentile(r.trips[part], 99):.2f}" for r in bare))
        res.add("first seconds", f"gpt-ls: code action round trip p99, {label}, 3 actions running", got, "ms",
                limit=round(1.5 * base + 0.5, 2), note=f"each: {each}; max {max(max(r.trips[part]) for r in ours):.1f}")
    res.add("first seconds", "gpt-ls: peak RSS through the session (VmHWM; Ask, Explain, Email)",
            max(r.peak_rss for r in ours), "MB", limit=100, note="highest of the rounds; VmRSS max "
            f"{max(r.max_rss for r in ours):.1f} MB")
    sdk, _ = await sdk_ttft(api, FIRST_DELAY, 5)
    firsts = [r.first_text for r in ours if r.first_text is not None]
    if firsts:
        res.add("first seconds", "first action 1 s after start, run directly, 10,000 lines: first text added",
                med(firsts) - med(sdk), "ms", limit=50,
                note=f"each: {', '.join(f'{f:.0f}' for f in firsts)} ms; SDK alone {med(sdk):.0f} ms")
    for wait in (1.0, 3.0):
        direct = [await direct_first_action(api, wait) for _ in range(rounds)]
        res.add("first seconds", f"first action {wait:g} s after start, run directly, small file: first text added",
                med(direct) - med(sdk), "ms", limit=50,
                note=f"each: {', '.join(f'{f:.0f}' for f in direct)} ms; SDK alone {med(sdk):.0f} ms")
