"""The completion scheduler on a fake clock: debounce, supersede, cancel, reuse, rate limit, back-off."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from gpt_ls.completions.scheduler import Ask, Scheduler


@dataclass
class FakeClock:
    """Time moves only when the test says so; sleeps end when it passes their deadline."""

    now: float = 1000.0
    sleepers: list[tuple[float, asyncio.Future[None]]] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + seconds, future))
        await future

    async def advance(self, seconds: float) -> None:
        for _ in range(5):  # tasks just started reach their sleep before time moves
            await asyncio.sleep(0)
        self.now += seconds
        for deadline, future in list(self.sleepers):
            if deadline <= self.now + 1e-9 and not future.done():  # float sums: 0.199 + 0.001
                future.set_result(None)
        self.sleepers = [(d, f) for d, f in self.sleepers if not f.done()]
        for _ in range(5):  # let the woken tasks run to their next await
            await asyncio.sleep(0)


class Model:
    """A fetch that counts calls and can be held open."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.calls = 0
        self.cancelled = 0
        self.gate: asyncio.Event | None = None

    async def fetch(self) -> str:
        self.calls += 1
        try:
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return self.replies.pop(0) if self.replies else ""


def ask(before: str, after: str = "\n", invoked: bool = False, uri: str = "file:///a.py", **kw: float) -> Ask:
    return Ask(uri, before, after, invoked, **kw)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_automatic_requests_wait_for_the_debounce_and_invoked_ones_do_not(clock: FakeClock) -> None:
    s, model = Scheduler(clock, clock.sleep), Model("urn 1", "urn 2")
    task = asyncio.ensure_future(s.suggest(ask("ret", debounce=0.2), model.fetch))
    await settle()
    assert model.calls == 0
    await clock.advance(0.199)
    assert model.calls == 0
    await clock.advance(0.001)
    assert await task == "urn 1" and model.calls == 1
    assert await s.suggest(ask("x = ", invoked=True, debounce=0.2), model.fetch) == "urn 2"


async def test_typing_during_the_debounce_sends_one_request(clock: FakeClock) -> None:
    s, model = Scheduler(clock, clock.sleep), Model("rn a")
    first = asyncio.ensure_future(s.suggest(ask("r"), model.fetch))
    await clock.advance(0.1)
    second = asyncio.ensure_future(s.suggest(ask("re"), model.fetch))
    await clock.advance(0.1)
    third = asyncio.ensure_future(s.suggest(ask("ret"), model.fetch))
    await clock.advance(0.2)
    assert [await first, await second, await third] == [None, None, "rn a"]
    assert model.calls == 1 and s.counters.superseded == 2


async def test_a_newer_request_cancels_the_one_in_flight(clock: FakeClock) -> None:
    s, model = Scheduler(clock, clock.sleep), Model("old", "new")
    model.gate = asyncio.Event()
    first = asyncio.ensure_future(s.suggest(ask("a", invoked=True), model.fetch))
    await settle()
    assert model.calls == 1
    second = asyncio.ensure_future(s.suggest(ask("ab", invoked=True), model.fetch))
    await settle()
    assert await first is None and model.cancelled == 1  # its HTTP request is closed, not left to finish
    model.gate.set()
    assert await second == "old"  # the first reply was never consumed
    assert model.calls == 2


async def test_other_documents_are_not_superseded(clock: FakeClock) -> None:
    s, model = Scheduler(clock, clock.sleep), Model("one", "two")
    model.gate = asyncio.Event()
    a = asyncio.ensure_future(s.suggest(ask("a", invoked=True, uri="file:///a"), model.fetch))
    b = asyncio.ensure_future(s.suggest(ask("b", invoked=True, uri="file:///b"), model.fetch))
    await settle()
    model.gate.set()
    assert sorted([await a, await b]) == ["one", "two"]


async def test_cancelling_the_caller_cancels_the_model_request(clock: FakeClock) -> None:
    s, model = Scheduler(clock, clock.sleep), Model("x")
    model.gate = asyncio.Event()
    task = asyncio.ensure_future(s.suggest(ask("a", invoked=True), model.fetch))
    await settle()
    task.cancel()  # what pygls does on $/cancelRequest
    with pytest.raises(asyncio.CancelledError):
        await task
    await settle()
    assert model.cancelled == 1 and s.counters.superseded == 0


async def test_typing_through_a_suggestion_reuses_it_without_a_request(clock: FakeClock) -> None:
    s, model = Scheduler(clock, clock.sleep), Model("urn a + b", "urn a - b")
    assert await s.suggest(ask("ret", invoked=True), model.fetch) == "urn a + b"
    assert await s.suggest(ask("retu"), model.fetch) == "rn a + b"
    assert await s.suggest(ask("return a +"), model.fetch) == " b"
    assert model.calls == 1 and s.counters.reused == 2
    # Typed past its end, or something else, or the text after the cursor changed: a new request.
    task = asyncio.ensure_future(s.suggest(ask("return a + b"), model.fetch))
    await clock.advance(0.2)
    assert await task == "urn a - b"
    assert s.reuse(ask("retx")) is None
    assert s.reuse(ask("retu", after="\nmore\n")) is None


async def test_invoking_again_at_the_same_spot_asks_again(clock: FakeClock) -> None:
    s, model = Scheduler(clock, clock.sleep), Model("one", "two")
    assert await s.suggest(ask("x = ", invoked=True), model.fetch) == "one"
    assert await s.suggest(ask("x = ", invoked=True), model.fetch) == "two"
    assert await s.suggest(ask("x = t", invoked=True), model.fetch) == "wo"  # after typing: reused
    assert model.calls == 2


async def test_at_most_n_requests_a_minute(clock: FakeClock) -> None:
    s, model = Scheduler(clock, clock.sleep), Model("1", "2", "3")
    for text in ("a", "b"):
        assert await s.suggest(ask(text, invoked=True, per_minute=2), model.fetch) is not None
    assert await s.suggest(ask("c", invoked=True, per_minute=2), model.fetch) is None
    assert s.counters.limited == 1 and model.calls == 2
    await clock.advance(60)
    assert await s.suggest(ask("d", invoked=True, per_minute=2), model.fetch) == "3"


async def test_a_back_off_sends_nothing_until_it_ends(clock: FakeClock) -> None:
    s, model = Scheduler(clock, clock.sleep), Model("later")
    s.back_off(30)
    assert await s.suggest(ask("a", invoked=True), model.fetch) is None
    await clock.advance(29.9)
    assert await s.suggest(ask("b", invoked=True), model.fetch) is None
    await clock.advance(0.1)
    assert await s.suggest(ask("c", invoked=True), model.fetch) == "later"
    assert model.calls == 1 and s.counters.backed_off == 2


async def test_forget_cancels_and_drops_the_document(clock: FakeClock) -> None:
    s, model = Scheduler(clock, clock.sleep), Model("x", "y")
    assert await s.suggest(ask("a", invoked=True), model.fetch) == "x"
    model.gate = asyncio.Event()
    task = asyncio.ensure_future(s.suggest(ask("b", invoked=True), model.fetch))
    await settle()
    s.forget("file:///a.py")
    assert await task is None and model.cancelled == 1
    assert s.reuse(ask("a")) is None


async def test_close_cancels_every_request_in_flight(clock: FakeClock) -> None:
    s, model = Scheduler(clock, clock.sleep), Model("x", "y")
    model.gate = asyncio.Event()
    tasks = [asyncio.ensure_future(s.suggest(ask("a", invoked=True, uri=u), model.fetch))
             for u in ("file:///a", "file:///b")]
    await settle()
    await s.close()
    assert [await t for t in tasks] == [None, None] and model.cancelled == 2
