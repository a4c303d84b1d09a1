"""When a completion request really goes to the model: debounce, supersede, reuse, rate, back-off.

One ``Scheduler`` per server. Per document at most one request is in flight: a newer one
cancels the older (the superseded caller gets ``None``, its HTTP request is closed). While
the user types through a suggestion, the rest of it is returned with no request. At most
``per_minute`` requests go out in any 60 s; after a 429 nothing goes out until the
back-off ends. The clock and the sleep are injected, so the tests need no real time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Fetch = Callable[[], Awaitable[str]]
#: The window of the per-minute limit, in seconds.
RATE_WINDOW = 60.0


@dataclass(frozen=True)
class Ask:
    """One completion request: where, what surrounds the cursor, how it was triggered."""

    uri: str
    before: str
    after: str
    invoked: bool = False
    debounce: float = 0.2
    per_minute: int = 30


@dataclass
class _Shown:
    """The last suggestion for a document, and the text around the cursor when it was asked."""

    before: str
    after: str
    text: str


@dataclass
class Counters:
    """What the scheduler did, for tests and benchmarks."""

    asked: int = 0
    sent: int = 0
    reused: int = 0
    superseded: int = 0
    limited: int = 0
    backed_off: int = 0
    debounced: list[float] = field(default_factory=list)


class Scheduler:
    """Decides, per request, between a reused suggestion, nothing, and one model request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self._clock, self._sleep = clock, sleep
        self._inflight: dict[str, asyncio.Task[str | None]] = {}
        self._shown: dict[str, _Shown] = {}
        self._sent: deque[float] = deque()
        self.backoff_until = 0.0
        self.counters = Counters()

    def reuse(self, ask: Ask) -> str | None:
        """The rest of the last suggestion when the user typed a start of it (no request), else None."""
        shown = self._shown.get(ask.uri)
        if shown is None or ask.after != shown.after or not ask.before.startswith(shown.before):
            return None
        typed = ask.before[len(shown.before):]
        if ask.invoked and not typed:
            return None  # asked again at the same spot: the user wants a new suggestion
        if shown.text.startswith(typed) and len(shown.text) > len(typed):
            return shown.text[len(typed):]
        return None

    def back_off(self, seconds: float) -> None:
        """No request until ``seconds`` from now (a 429 and its Retry-After)."""
        self.backoff_until = max(self.backoff_until, self._clock() + seconds)

    @property
    def backing_off(self) -> bool:
        return self._clock() < self.backoff_until

    def _rate_ok(self, per_minute: int) -> bool:
        now = self._clock()
        while self._sent and now - self._sent[0] >= RATE_WINDOW:
            self._sent.popleft()
        return len(self._sent) < per_minute

    def forget(self, uri: str) -> None:
        """A document closed: cancel its request and drop its suggestion."""
        self._shown.pop(uri, None)
        task = self._inflight.pop(uri, None)
        if task is not None:
            task.cancel()

    async def suggest(self, ask: Ask, fetch: Fetch) -> str | None:
        """The suggestion for ``ask``: reused, fetched once, or None (superseded, limited, backing off).

        Cancelling the caller (``$/cancelRequest``) cancels the model request too.
        """
        self.counters.asked += 1
        reused = self.reuse(ask)
        if reused is not None:
            self.counters.reused += 1
            self._cancel(ask.uri)
            return reused
        self._cancel(ask.uri)
        task = asyncio.ensure_future(self._run(ask, fetch))
        self._inflight[ask.uri] = task
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                task.cancel()
                raise  # the caller itself was cancelled
            self.counters.superseded += 1
            return None
        finally:
            if self._inflight.get(ask.uri) is task:
                del self._inflight[ask.uri]

    def _cancel(self, uri: str) -> None:
        task = self._inflight.pop(uri, None)
        if task is not None and not task.done():
            task.cancel()

    async def _run(self, ask: Ask, fetch: Fetch) -> str | None:
        if not ask.invoked and ask.debounce > 0:
            self.counters.debounced.append(ask.debounce)
            await self._sleep(ask.debounce)
        if self.backing_off:
            self.counters.backed_off += 1
            return None
        if not self._rate_ok(ask.per_minute):
            self.counters.limited += 1
            return None
        self._sent.append(self._clock())
        self.counters.sent += 1
        text = await fetch()
        self._shown[ask.uri] = _Shown(ask.before, ask.after, text)
        return text
