"""Figure 8: 20 Asks at once, half of them cancelled, while code actions are requested one after another.

Checked: every progress ends, every uncancelled document holds the exact reply, and every
cancelled one holds the partial reply with its "unfinished (cancelled)" marker.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

from lsprotocol import types

from benchmarks.fake_server import RemoteFake
from benchmarks.results import Results, percentile
from benchmarks.session import (
    LONG_URI,
    WARM_URI,
    ask,
    explain_slow,
    open_documents,
    reply_tokens,
    run_and_wait,
    session_env,
    start_session,
    stop_session,
    with_eol,
)
from tests.support.fakeopenai import Reply


async def figures(res: Results, api: RemoteFake, actions: int) -> None:
    """Many Asks at once, half cancelled, with code actions meanwhile; also the first action after start."""
    print(f"8. concurrency: {actions} actions at once, half cancelled", flush=True)
    with session_env(api) as (env, log):
        session = await start_session(env, log)
        try:
            editor = session.editor
            long_uri = LONG_URI
            open_documents(editor)
            cold_done = asyncio.Event()
            cold_poller = asyncio.create_task(session.code_actions_until(long_uri, cold_done))
            t_warm = await run_and_wait(session, WARM_URI, "Warm up?")
            cold_done.set()
            during_cold = await cold_poller
            first = session.first_edit(WARM_URI, t_warm)
            cold_direct = (first - t_warm) * 1000 if first is not None else None
            progress_before = set(editor.client.progress_reports)

            pieces = reply_tokens(300, 11)
            reply = "".join(pieces)
            uris = [f"file:///bench/c{i}.md" for i in range(actions)]
            originals = {}
            for i, uri in enumerate(uris):
                originals[uri] = f"Question {i} 问题 {i}?\nline two\n"
                editor.open(uri, originals[uri])
            api.script(*[Reply(chunks=pieces, delay=0.01) for _ in uris])  # ~3 s each
            mark = session.timing_lines()
            done = asyncio.Event()
            poller = asyncio.create_task(session.code_actions_until(long_uri, done))
            t0 = time.monotonic()
            await asyncio.gather(*[ask(session, uri, f"Question {i} 问题 {i}?") for i, uri in enumerate(uris)])

            def tokens() -> list[int | str]:
                return [t for t in editor.client.progress_reports if t not in progress_before]

            await session.wait(lambda: len(tokens()) == actions and all(editor.client.progress_reports[t]
                                                                        for t in tokens()), 30)
            started = (time.monotonic() - t0) * 1000
            await asyncio.sleep(1.0)
            t_cancel = time.monotonic()
            for token in tokens()[: actions // 2]:
                editor.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))

            def ended() -> int:
                return sum(1 for t in tokens() if any(isinstance(r, types.WorkDoneProgressEnd)
                                                      for r in editor.client.progress_reports[t]))

            try:
                await session.wait(lambda: ended() == actions, 60)
            except TimeoutError:
                pass
            await editor.settle()
            done.set()
            busy = await poller
            timings = session.timings(mark)
            server = [t.wall for t in timings]
            if os.environ.get("GPT_LS_BENCH_DEBUG"):
                for ms, at in sorted(session.slowest)[-5:]:
                    print(f"  slow code action: {ms:.1f} ms, sent {at - t0:.3f} s after the start "
                          f"(cancel at {t_cancel - t0:.3f} s)")
            complete = cancelled = 0
            for uri in uris:
                question, rest = originals[uri].split("\n", 1)
                got = editor.docs[uri].text
                if got == f"{question}\n{with_eol(reply)}{rest}":
                    complete += 1
                elif "[gpt-ls: reply unfinished (cancelled)]" in got and got.startswith(question + "\n"):
                    cancelled += 1
        finally:
            await stop_session(session)
    res.add("first text", "first action after start, run directly (no menu first; fake answers at once)",
            cold_direct, "ms")
    res.add("first text", "code action round trip, max, while that first action starts",
            max(during_cold), "ms", note=f"n={len(during_cold)}")
    res.add("concurrency", f"all {actions} progress begun after", started, "ms")
    res.check("concurrency", f"all {actions} progress ended", ended() == actions, f"{ended()} of {actions}")
    res.check("concurrency", f"{actions - actions // 2} uncancelled replies complete in their documents",
              complete == actions - actions // 2, f"{complete} complete, {cancelled} cancelled with marker")
    res.add("concurrency", f"code action server time p99 meanwhile (n={len(server)})", percentile(server, 99), "ms",
            limit=2, note=explain_slow(timings, 2))
    res.add("concurrency", "code action server CPU time p99 meanwhile", percentile([t.cpu for t in timings], 99),
            "ms")
    res.add("concurrency", "code action client round trip p99 meanwhile", percentile(busy, 99), "ms",
            note=f"p50 {statistics.median(busy):.2f} ms")
