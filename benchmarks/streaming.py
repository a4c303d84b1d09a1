"""Figures 2 and 4: code actions on a 10,000-line document while a reply streams into it, and the streaming.

A 2,000-token reply at 200 tokens/s; counted: applyEdit calls, edits per second, last token
to last edit, and whether the document ends up exactly the original with the reply inserted.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.fake_server import RemoteFake
from benchmarks.results import Results, percentile
from benchmarks.session import (
    LONG_URI,
    WARM_URI,
    ask,
    explain_slow,
    idle_count,
    open_documents,
    reply_tokens,
    run_and_wait,
    session_env,
    start_session,
    stop_session,
    with_eol,
)
from tests.support.fakeopenai import Reply


def mismatch_note(got: str, expected: str) -> str:
    """Where a document differs from what it should be; both texts are kept for a diff."""
    at = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), min(len(got), len(expected)))
    keep = Path(tempfile.mkdtemp(prefix="gpt-ls-bench-mismatch-"))
    (keep / "got.txt").write_text(got, encoding="utf-8")
    (keep / "expected.txt").write_text(expected, encoding="utf-8")
    return (f"differs at offset {at}: got {got[at:at + 30]!r}, expected {expected[at:at + 30]!r} "
            f"(lengths {len(got)}, {len(expected)}; both in {keep})")


def token_delay(rate: float) -> float:
    """The fake server's pause between tokens for ``rate`` tokens/s (sleeps overshoot)."""
    samples = []
    for _ in range(20):
        t0 = time.monotonic()
        time.sleep(1 / rate)
        samples.append(time.monotonic() - t0 - 1 / rate)
    return max(0.0, 1 / rate - statistics.median(samples) - 0.0002)


async def figures(res: Results, api: RemoteFake, tokens: int, rate: float) -> None:
    """Code actions on the long document, idle and while a reply streams into it; the stream itself."""
    print(f"2./4. code actions on a 10,000-line document while {tokens} tokens stream at {rate:g}/s", flush=True)
    with session_env(api) as (env, log):
        session = await start_session(env, log)
        try:
            editor = session.editor
            uri, text = LONG_URI, open_documents(editor)
            # Warm up (the SDK, the client, the tokenizer) on another document first.
            await run_and_wait(session, WARM_URI, "Warm up?")

            mark = session.timing_lines()
            idle = [await session.code_action(uri) for _ in range(300)]
            idle_timings = session.timings(mark)
            idle_server = [t.wall for t in idle_timings]

            pieces = reply_tokens(tokens, 7)
            reply = "".join(pieces)
            api.script(Reply(chunks=pieces, delay=token_delay(rate)))
            api.clear_stamps()
            done = asyncio.Event()
            before = idle_count(session)
            mark = session.timing_lines()
            t_edits = len(session.applied)
            poller = asyncio.create_task(session.code_actions_until(uri, done))
            await ask(session, uri, "What does this module do?")
            await editor.wait_idle(before, timeout=tokens / rate * 3 + 30)
            done.set()
            busy = await poller
            busy_timings = session.timings(mark)
            busy_server = [t.wall for t in busy_timings]
            edits = [t for t, u, _ in session.applied[t_edits:] if u == uri]
            # The reply goes below the question; gpt-ls ends it with a line ending if it has none.
            expected = text.replace("\n", "\n" + with_eol(reply), 1)
            got = editor.docs[uri].text
            identical = got == expected
            mismatch = "" if identical else mismatch_note(got, expected)
            sent = api.stamps()
        finally:
            await stop_session(session)

    res.add("code action", "server time p50, idle (10,000-line document)", statistics.median(idle_server), "ms")
    res.add("code action", "server time p99, idle", percentile(idle_server, 99), "ms", limit=2,
            note=explain_slow(idle_timings, 2))
    res.add("code action", "server time p50, while streaming", statistics.median(busy_server), "ms")
    res.add("code action", f"server time p99, while streaming (n={len(busy_server)})", percentile(busy_server, 99),
            "ms", limit=2, note=explain_slow(busy_timings, 2))
    res.add("code action", "server CPU time p99, while streaming", percentile([t.cpu for t in busy_timings], 99),
            "ms")
    res.add("code action", "client round trip p50, idle", statistics.median(idle), "ms")
    res.add("code action", "client round trip p99, idle", percentile(idle, 99), "ms")
    res.add("code action", "client round trip p50, while streaming", statistics.median(busy), "ms")
    res.add("code action", "client round trip p99, while streaming", percentile(busy, 99), "ms",
            note=f"max {max(busy):.1f} ms")

    span = edits[-1] - edits[0] if len(edits) > 1 else 0.0
    res.add("streaming", f"{tokens} tokens sent by the fake server over", sent[-1] - sent[0], "s",
            note=f"{(len(sent) - 1) / (sent[-1] - sent[0]):.0f} tokens/s")
    res.add("streaming", "applyEdit calls", len(edits), "edits")
    res.add("streaming", "edits per second", (len(edits) - 1) / span if span else 0.0, "edits/s", limit=10)
    res.add("streaming", "last token → last edit", (edits[-1] - sent[-1]) * 1000, "ms", limit=100)
    res.check("streaming", "document text identical to the reply", identical, mismatch)
