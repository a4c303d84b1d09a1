"""Diagnosis aid (off by default): what an event loop ran, callback by callback, with wall and CPU time.

``GPT_LS_BENCH_TRACE=1 python -m benchmarks.run --only first-seconds`` installs it in every
timed gpt-ls server (``timed_server.py``) and in the measuring process; the first-seconds
part then prints, for its slowest code actions, what each loop ran while they waited.
Unlike asyncio's debug mode (``GPT_LS_BENCH_SLOW``) it adds only two clock reads per
callback, and it keeps only callbacks of at least ``MIN_MS``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Callbacks shorter than this (ms) are not kept.
MIN_MS = 0.3
#: (start, end, CPU ms, what): monotonic seconds, as the benchmark's own stamps.
Record = tuple[float, float, float, str]
records: list[Record] = []


def describe(callback: Callable[..., Any]) -> str:
    """A task's coroutine (and where it stands now), or the callback's qualified name."""
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = f" @{frame.f_code.co_name}:{frame.f_lineno}" if frame is not None else ""
        return f"task {getattr(coro, '__qualname__', coro)}{where}"
    return getattr(callback, "__qualname__", type(callback).__name__)


def install() -> None:
    """Time every callback of every asyncio loop in this process (``Handle._run``)."""
    run = asyncio.events.Handle._run

    def timed(handle: asyncio.Handle) -> None:
        t0, c0 = time.monotonic(), time.thread_time()
        callback = handle._callback  # type: ignore[attr-defined]
        run(handle)
        t1 = time.monotonic()
        if (t1 - t0) * 1000 >= MIN_MS:
            where = "" if threading.current_thread() is threading.main_thread() else "[another thread's loop] "
            records.append((t0, t1, (time.thread_time() - c0) * 1000, where + describe(callback)))

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]
    started: list[tuple[float, float]] = []

    def collection(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[:] = [(time.monotonic(), time.thread_time())]
        elif started:
            (t0, c0), t1 = started.pop(), time.monotonic()
            if (t1 - t0) * 1000 >= MIN_MS:
                records.append((t0, t1, (time.thread_time() - c0) * 1000,
                                f"gc generation {info['generation']} ({info['collected']} collected, "
                                f"{threading.current_thread().name})"))

    gc.callbacks.append(collection)


def install_dispatch() -> None:
    """Also time each message gpt-ls's reader hands to pygls, by method (``transport.dispatch``)."""
    from gpt_ls.lsp import transport

    dispatch = transport.dispatch

    def timed(server: Any, body: bytes) -> Any:
        t0, c0 = time.monotonic(), time.thread_time()
        message = dispatch(server, body)
        t1 = time.monotonic()
        if (t1 - t0) * 1000 >= MIN_MS:
            start = body.find(b'"method"')
            name = body[start:start + 100].split(b'"')[3].decode() if start >= 0 else "response"
            records.append((t0, t1, (time.thread_time() - c0) * 1000, f"dispatch {name} ({len(body)} bytes)"))
        return message

    transport.dispatch = timed  # type: ignore[assignment]


def write(path: str | Path) -> None:
    Path(path).write_text(json.dumps(records), encoding="utf-8")


def read(path: str | Path) -> list[Record]:
    try:
        return [tuple(r) for r in json.loads(Path(path).read_text(encoding="utf-8"))]  # type: ignore[misc]
    except (OSError, ValueError):
        return []


def keep(requests: list[tuple[float, float]], server: list[Record], name: str) -> None:
    """With ``GPT_LS_BENCH_TRACE`` naming a folder: the round's requests and both loops' records, as JSON."""
    folder = Path(os.environ.get("GPT_LS_BENCH_TRACE", ""))
    if folder.is_dir():
        path = folder / f"trace-{name}-{time.time():.0f}.json"
        path.write_text(json.dumps({"requests": requests, "server": server, "client": records}), encoding="utf-8")
        print(f"  trace: {path}", flush=True)


def during(found: list[Record], start: float, end: float) -> list[Record]:
    """The callbacks that overlap [start, end]."""
    return [r for r in found if r[1] > start and r[0] < end]


def explain(slow: list[tuple[float, float]], server: list[Record], client: list[Record], top: int = 8) -> str:
    """For the ``top`` slowest (ms, sent at) requests: what each loop ran meanwhile."""
    lines = []
    for ms, sent in sorted(slow, reverse=True)[:top]:
        lines.append(f"  request of {ms:.2f} ms sent at +{sent:.3f}")
        for side, found in (("server", server), ("client", client)):
            for t0, t1, cpu, what in during(found, sent, sent + ms / 1000):
                lines.append(f"    {side} {(t0 - sent) * 1000:+7.2f} ms  {(t1 - t0) * 1000:6.2f} ms wall "
                             f"{cpu:6.2f} ms CPU  {what}")
    return "\n".join(lines)
