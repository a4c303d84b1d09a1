"""Figures 3 and 6: the time gpt-ls adds before the first text of a reply, and the server's memory.

The baseline is the openai SDK asking the same fake directly (a warm client). The fake API
stamps when each request arrives and each token leaves, which shows where the time goes.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

from lsprotocol import types

from benchmarks.fake_server import RemoteFake
from benchmarks.results import Results
from benchmarks.session import run_and_wait, session_env, start_session, stop_session
from tests.support.fakeopenai import Reply


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) / 1024
    return out


async def sdk_ttft(api: RemoteFake, delay: float, runs: int) -> tuple[list[float], list[tuple[float, float]]]:
    """Time to the first content token when the openai SDK asks directly (warm client).

    Also, per request: ms until the request reached the server, and from the first
    token's sending to its arrival.
    """
    split: list[tuple[float, float]] = []
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=api.url, api_key="sk-test-key-0123456789", max_retries=0)
    out = []
    for i in range(runs + 1):
        api.script(Reply(text="Paris is the capital.", first_delay=delay))
        api.clear_stamps()
        t0 = time.monotonic()
        stream = await client.chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": "Capital of France?"}], stream=True,
            stream_options={"include_usage": True})
        first = None
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.monotonic() - t0
        if i:  # the first one opens the connection
            assert first is not None
            out.append(first * 1000)
            arrived, sent = api.request_stamps()[0], api.stamps()[0]
            split.append(((arrived - t0) * 1000, (t0 + first - sent) * 1000))
    await client.close()
    return out, split


async def figures(res: Results, api: RemoteFake, runs: int) -> None:
    """gpt-ls's time to first text against the SDK's time to first token; the server's memory."""
    print("3./6. overhead to first text, memory", flush=True)
    delay = 0.2
    with session_env(api) as (env, log):
        session = await start_session(env, log)
        try:
            editor = session.editor
            after_init = proc_status(session.pid)["VmRSS"]
            await asyncio.sleep(2.0)  # anything loaded in the background after initialize
            settled = proc_status(session.pid)["VmRSS"]
            res.add("memory", "RSS right after initialize", after_init, "MB", limit=100)
            res.add("memory", "RSS 2 s after initialize (idle)", settled, "MB", limit=100)

            ttfts: list[float] = []
            split: list[tuple[float, float]] = []
            cold = 0.0
            for i in range(runs + 1):
                uri = f"file:///bench/first{i}.md"
                editor.open(uri, f"Question number {i}?\n")
                if i == 0:  # as in an editor: the menu is listed, the user picks an action a second later
                    await session.code_action(uri)
                    await asyncio.sleep(1.0)
                api.script(Reply(text="Paris is the capital.", first_delay=delay))
                api.clear_stamps()
                t0 = await run_and_wait(session, uri, f"Question number {i}?")
                first = session.first_edit(uri, t0)
                assert first is not None, "no edit carried the reply"
                if i:
                    arrived, sent = api.request_stamps()[0], api.stamps()[0]
                    split.append(((arrived - t0) * 1000, (first - sent) * 1000))
                if i == 0:
                    cold = (first - t0) * 1000
                    status = proc_status(session.pid)
                    res.add("memory", "RSS after the first completed action (no tokenizer needed)", status["VmRSS"],
                            "MB")
                else:
                    ttfts.append((first - t0) * 1000)
            sdk, sdk_split = await sdk_ttft(api, delay, runs)
            server_ms, sdk_ms = statistics.median(ttfts), statistics.median(sdk)

            def where(parts: list[tuple[float, float]]) -> str:
                before = statistics.median(p[0] for p in parts)
                after = statistics.median(p[1] for p in parts)
                return f"request reaches the API after {before:.1f} ms; first token → text {after:.1f} ms"

            res.add("first text", f"openai SDK directly: time to first token (median of {runs})", sdk_ms, "ms",
                    note=f"fake server waits {delay * 1000:.0f} ms; {where(sdk_split)}")
            res.add("first text", f"gpt-ls: executeCommand → first applyEdit with text (median of {runs})",
                    server_ms, "ms", note=where(split))
            res.add("first text", "added by gpt-ls", server_ms - sdk_ms, "ms", limit=10)
            res.add("first text", "first action after start, picked from the menu 1 s after it was listed",
                    cold - sdk_ms, "ms added")

            peak = proc_status(session.pid)["VmHWM"]
            res.add("memory", "peak RSS after 8 small actions", peak, "MB")
            editor.client.workspace_did_change_configuration(
                types.DidChangeConfigurationParams(settings={"gpt-ls": {"model": "gpt-4"}}))
            await asyncio.sleep(0.2)
            uri = "file:///bench/cl100k.md"
            editor.open(uri, "A question for gpt-4?\n")
            api.script(Reply(text="An answer."))
            await run_and_wait(session, uri, "A question for gpt-4?")
            res.add("memory", "peak RSS after an action with gpt-4 (counted: cl100k_base loaded)",
                    proc_status(session.pid)["VmHWM"], "MB")
        finally:
            await stop_session(session)
