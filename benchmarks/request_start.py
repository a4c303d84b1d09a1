"""Issue 16: how long starting a streamed chat request holds the event loop in one step.

An editor request that arrives as an action starts waits for the longest such step. Three
ways are timed against the fake API server (its own process, over HTTP), each the same
body (a system and a user turn, the user's 240 lines of code with CJK and emoji):

* the SDK's ``chat.completions.create`` (it walks the body against its TypedDicts first);
* ``client.post`` with the same options, through a plain httpx transport;
* ``gpt_ls.api.chat.stream_chat`` through gpt-ls's own client (``make_client``: its proxy
  router, event hooks and bounded stream).

Each request streams its short reply to the end; the figure is the median, over the
requests after the first few, of the longest loop step from the call to the stream being
returned. Every callback of this process's loop is timed (``asyncio.Handle._run``).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
import openai

from benchmarks.fake_server import RemoteFake
from benchmarks.results import Results
from gpt_ls.api.chat import PATH, options, stream_chat
from gpt_ls.api.http import make_client
from gpt_ls.settings import Settings
from tests.support.fakeopenai import Reply

CODE = "\n".join(f"def f{i}(x):  # 你好 🙂 line {i}\n    return x + {i}" for i in range(120))
BODY: dict[str, Any] = {
    "model": "gpt-4", "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 500,
    "messages": [{"role": "system", "content": "You explain code briefly. " * 20},
                 {"role": "user", "content": CODE}],
}
WARM = 5


async def longest_steps(api: RemoteFake, start: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    """For each of ``n`` requests after the first WARM: the longest loop step (ms) until the stream is returned."""
    steps: list[float] = []
    run = asyncio.events.Handle._run

    def timed(handle: asyncio.Handle) -> None:
        t0 = time.perf_counter()
        run(handle)
        steps.append((time.perf_counter() - t0) * 1000)

    out = []
    asyncio.events.Handle._run = timed  # type: ignore[method-assign]
    try:
        for i in range(WARM + n):
            api.script(Reply(text="ok"))
            steps.clear()
            # In a task of its own, so that its first step is a step of the loop.
            stream = await asyncio.create_task(start())
            longest = max(steps, default=0.0)
            async with stream:
                async for _ in stream:
                    pass
            if i >= WARM:
                out.append(longest)
    finally:
        asyncio.events.Handle._run = run  # type: ignore[method-assign]
    return out


async def figures(res: Results, api: RemoteFake, n: int) -> None:
    print(f"15. the start of a streamed chat request: {n} requests each way", flush=True)
    settings = Settings(base_url=api.url, api_key="sk-bench", max_retries=0)
    ours = make_client(settings, "sk-bench", env={})
    plain = openai.AsyncOpenAI(base_url=api.url, api_key="sk-bench", max_retries=0,
                               http_client=openai.DefaultAsyncHttpxClient(transport=httpx2.AsyncHTTPTransport()))
    ways: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("the SDK's create()", lambda: plain.chat.completions.create(**BODY)),
        ("client.post", lambda: plain.post(PATH, body=BODY, options=options(), cast_to=object, stream=True,
                                           stream_cls=openai.AsyncStream[Any])),
        ("gpt-ls: stream_chat", lambda: stream_chat(ours, BODY)),
    ]
    try:
        for name, start in ways:
            got = await longest_steps(api, start, n)
            res.add("request start", f"longest loop step starting a streamed chat request, {name} (median)",
                    statistics.median(got), "ms", note=f"max {max(got):.2f} ms over {n}")
    finally:
        await ours.close()
        await plain.close()
