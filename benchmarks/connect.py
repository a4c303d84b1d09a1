"""Connection figures: client reuse, request latency direct and through real proxies.

Run: ``.venv/bin/python -m benchmarks.connect [N]`` (N requests per case, default 30).
Everything is local: the fake OpenAI server and pproxy on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from gpt_ls.api.failures import describe_error
from gpt_ls.api.http import ClientCache, model_param
from gpt_ls.settings import Settings
from tests.support.fakeopenai import FakeOpenAI, Reply
from tests.support.netkit import Pproxy

KEY = "sk-bench-0000000000000000"


def ms(values: list[float]) -> str:
    values = sorted(values)
    p90 = values[int(len(values) * 0.9) - 1] if len(values) >= 10 else values[-1]
    return f"median {statistics.median(values):7.2f} ms   p90 {p90:7.2f} ms"


async def first_token_times(settings: Settings, n: int) -> tuple[list[float], list[float]]:
    """(time to first token, total time) per streamed request with one reused client."""
    cache = ClientCache(env={})
    client = await cache.get(settings)
    firsts, totals = [], []
    for i in range(n + 3):  # the first 3 warm up the connection and are not counted
        started = time.perf_counter()
        first = None
        stream = await client.chat.completions.create(
            model=model_param(settings), messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
        async with stream:
            async for chunk in stream:
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.perf_counter()
        end = time.perf_counter()
        if i < 3:
            continue
        firsts.append(((first or end) - started) * 1000)
        totals.append((end - started) * 1000)
    await cache.aclose()
    return firsts, totals


async def cache_figures(settings: Settings, n: int) -> None:
    cache = ClientCache(env={})
    await cache.get(settings)
    hits = []
    for _ in range(n * 10):
        t = time.perf_counter()
        await cache.get(settings)
        hits.append((time.perf_counter() - t) * 1000)
    builds = []
    for i in range(n):
        t = time.perf_counter()
        await cache.get(Settings(base_url=settings.base_url, api_key=KEY, read_timeout=10 + i))
        builds.append((time.perf_counter() - t) * 1000)
    await cache.aclose()
    print(f"ClientCache.get, unchanged settings: {ms(hits)}")
    print(f"ClientCache.get, new client        : {ms(builds)}")


def describe_figures(settings: Settings, n: int) -> None:
    exc = ConnectionRefusedError(111, "Connection refused")
    times = []
    for _ in range(n * 10):
        t = time.perf_counter()
        describe_error(exc, settings)
        times.append((time.perf_counter() - t) * 1000)
    print(f"describe_error                     : {ms(times)}")


async def main(n: int) -> None:
    with FakeOpenAI(api_key=KEY) as api:
        base = Settings(base_url=api.url, api_key=KEY)
        api.script(*[Reply(text="x" * 64, chunk_size=8) for _ in range(10 * n)])
        await cache_figures(base, n)
        describe_figures(base, n)
        cases = [("direct", base)]
        proxies = [Pproxy("http"), Pproxy("socks5"), Pproxy("socks5", auth="u:p")]
        for p in proxies:
            p.start()
            label = f"via {p.scheme} proxy" + (" (password)" if p.auth else "")
            cases.append((label, Settings(base_url=api.url, api_key=KEY, proxy=p.url)))
        try:
            for label, s in cases:
                firsts, totals = await first_token_times(s, n)
                print(f"{label:26s} first token: {ms(firsts)}   whole reply: {ms(totals)}")
        finally:
            for p in proxies:
                p.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 30))
