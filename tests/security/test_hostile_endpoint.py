"""A hostile or broken endpoint cannot grow gpt-ls without bound or pull the request elsewhere.

Each test runs the real exchange (the one the server and the CLI share) against the fake
OpenAI server over real HTTP on 127.0.0.1: an endless stream, an endless line, a redirect.
On gpt-ls 0.1 the first two ran until memory ran out (525 MB, 1.37 GB) and the redirect was
followed to the other host with the prompt and the headers.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import pytest

from gpt_ls.actions.catalog import ASK
from gpt_ls.api.http import line_limit
from gpt_ls.check import run_check
from gpt_ls.errors import LineTooLong, RedirectRefused, ReplyTooLong, StreamTooLong
from gpt_ls.exchange import Exchange, ExchangeRequest, Reply
from gpt_ls.models import model_info
from gpt_ls.prompts import SelectionContext
from gpt_ls.setting_values import RANGES
from gpt_ls.settings import Settings, load_settings
from gpt_ls.tokens import get_encoding
from tests.support.fakeopenai import Endless, FakeOpenAI, GiantLine, Raw, Redirect
from tests.support.fakeopenai import Reply as FakeReply

KEY = "sk-test-key-0123456789abcdef"
MB = 1024 * 1024


def settings(api: FakeOpenAI, **kw: object) -> Settings:
    return Settings(base_url=api.url, api_key=KEY, model="gpt-4o-mini", **kw)  # type: ignore[arg-type]


async def ask(ex: Exchange, s: Settings, seen: list[str] | None = None) -> Reply:
    req = ExchangeRequest(ASK, SelectionContext("file:///a.md", "markdown", "Count forever."), s, workspace="/w")
    return await asyncio.wait_for(ex.run(req, (seen.append if seen is not None else lambda _: None)), 60)


async def peak_while(ex: Exchange, s: Settings, api: FakeOpenAI, seen: list[str] | None = None) -> tuple[Reply, int]:
    """The reply to the next scripted behaviour, and the most memory allocated while it ran.

    A warm-up exchange runs first, so the SDK, the tokenizer and the history are loaded.
    """
    api.queue.appendleft(FakeReply(text="warm"))
    assert (await ask(ex, s)).status == "complete"
    # A reply the API reports no usage for is counted, which loads the tokenizer (tens of
    # MB, once per process): load it here, as the warm-up did before tokenizers became lazy.
    get_encoding(model_info(s).encoding)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        reply = await ask(ex, s, seen)
        return reply, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


async def test_an_endless_stream_stops_at_max_reply_chars_with_the_text_kept(api: FakeOpenAI) -> None:
    ex = Exchange()
    try:
        s = settings(api, max_reply_chars=200_000)
        api.script(Endless(piece="0123456789" * 100))
        seen: list[str] = []
        reply, peak = await peak_while(ex, s, api, seen)
        _, messages = ex.store().get_conversation(reply.conversation_id or 0)
    finally:
        await ex.aclose()
    assert isinstance(reply.error, ReplyTooLong) and reply.status == "error"
    assert str(reply.error) == (
        "The reply reached maxReplyChars (200,000 characters) and was stopped; the text received so "
        "far is kept. To allow longer replies, raise maxReplyChars (up to 20,000,000).")
    assert "".join(seen) == reply.text  # the editor got exactly the text kept
    assert reply.text == "0123456789" * 20_000
    stored = messages[-1]
    assert (stored.role, stored.status, stored.content) == ("assistant", "error", reply.text)
    # 0.1 grew to 525 MB; the reply itself is 0.2 MB (a few MB of Python objects along the way).
    assert peak < 16 * MB, f"{peak / MB:.1f} MB allocated"


async def test_a_slow_endless_stream_stops_at_max_stream_seconds(api: FakeOpenAI) -> None:
    ex = Exchange()
    api.script(Endless(piece="tick ", delay=0.02))
    try:
        reply = await ask(ex, settings(api, max_stream_seconds=1.0, history=False))
    finally:
        await ex.aclose()
    assert isinstance(reply.error, StreamTooLong) and reply.status == "error"
    assert str(reply.error) == (
        "The reply stream ran for maxStreamSeconds (1 s) and was stopped; the text received so far is "
        "kept. To allow longer replies, raise maxStreamSeconds (up to 86,400 s).")
    assert reply.text.startswith("tick tick ") and set(reply.text.split()) == {"tick"}
    assert 1.0 <= reply.duration_ms / 1000 < 5


async def test_a_giant_line_is_refused_with_bounded_memory_and_the_text_kept(api: FakeOpenAI) -> None:
    ex = Exchange()
    s = settings(api, max_reply_chars=1_000, history=False)
    limit = line_limit(s)
    assert limit == 6 * 1_000 + 64 * 1024
    try:
        api.script(GiantLine(size=64 * MB, before="kept "))
        reply, peak = await peak_while(ex, s, api)
    finally:
        await ex.aclose()
    assert isinstance(reply.error, LineTooLong) and reply.status == "error"
    assert str(reply.error) == (
        f"{api.url} sent a line longer than {limit:,} bytes (or an event that long), which no reply "
        "needs; the reply was stopped and the text received so far is kept. If the endpoint is "
        "right, raise maxReplyChars: this limit grows with it.")
    assert reply.text == "kept "
    # 0.1 held the whole line (a 1.2 GB line reached 1.37 GB); here a few times the limit at most.
    assert peak < 8 * MB, f"{peak / MB:.1f} MB allocated"


def test_the_caps_are_settings_with_sane_ranges(tmp_path: Path) -> None:
    assert (Settings().max_reply_chars, Settings().max_stream_seconds) == (1_000_000, 1200.0)
    assert RANGES["max_reply_chars"][:2] == (1_000, 20_000_000)
    assert RANGES["max_stream_seconds"][:2] == (10, 86_400)
    loaded = load_settings({"maxReplyChars": 10**12, "maxStreamSeconds": float("inf")}, None,
                           env={"GPT_LS_CONFIG_DIR": str(tmp_path)})
    assert (loaded.settings.max_reply_chars, loaded.settings.max_stream_seconds) == (1_000_000, 1200.0)
    assert loaded.problems == [
        "editor: setting 'maxReplyChars' must be from 1,000 to 20,000,000 characters (got 1000000000000); ignored",
        "editor: setting 'maxStreamSeconds' must be a non-negative number (got inf); ignored",
    ]


@pytest.mark.parametrize("status", [307, 308])
async def test_a_redirect_to_another_host_is_not_followed_and_names_its_target(
    api: FakeOpenAI, status: int
) -> None:
    with FakeOpenAI() as other:
        target = f"{other.url}/chat/completions"
        api.script(Redirect(location=target, status=status))
        ex = Exchange()
        s = settings(api, headers={"X-Team-Token": "team-secret-0042"}, organization="org-victim",
                     history=False)
        try:
            reply = await ask(ex, s)
        finally:
            await ex.aclose()
        assert other.requests == []  # the prompt, the key and the headers went nowhere else
    assert len(api.chat_requests()) == 1  # and a redirect is not retried
    assert isinstance(reply.error, RedirectRefused)
    assert str(reply.error) == (
        f"{api.url} answered {status} (a redirect) to {target}; gpt-ls does not follow redirects, so "
        "that the prompt, the key and the headers never go to another address. If the service has "
        "moved there, set baseUrl to the new address.")


async def test_check_reports_a_redirect_without_following_it(api: FakeOpenAI, tmp_path: Path) -> None:
    with FakeOpenAI() as other:
        api.script(Redirect(location=f"{other.url}/chat/completions", status=308))
        env = {"GPT_LS_CONFIG_DIR": str(tmp_path), "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": api.url}
        report = await run_check(load_settings({}, None, env=env), env=env)
        assert other.requests == []
    assert not report.ok and isinstance(report.error, RedirectRefused)
    assert report.lines[-1] == f"FAILED: {report.error}"
    assert f"answered 308 (a redirect) to {other.url}/chat/completions" in report.lines[-1]


@pytest.mark.parametrize(("action", "output"), [("ask", "document"), ("explain", "hover")])
async def test_in_the_editor_the_capped_reply_stays_marked_unfinished_with_the_cap_named(
    api: FakeOpenAI, action: str, output: str
) -> None:
    from gpt_ls.actions.catalog import Catalog
    from gpt_ls.actions.runner import ActionRunner
    from tests.support.memory_editor import FULL, MemoryEditor

    editor = MemoryEditor(FULL)
    ex = Exchange()
    s = settings(api, max_reply_chars=1_000, history=False)
    runner = ActionRunner(editor, lambda: s, ex, Catalog)
    editor.listeners.append(runner.on_change)
    uri = "file:///work/q.md"
    editor.open(uri, "Count forever.\n", "markdown")
    api.script(Endless(piece="1234 "))
    try:
        result = await runner.run_action(action, uri, *editor.range_of(uri, "Count forever."))
        run = runner.running.get(result.get("id", -1))
        if run is not None and run.task is not None:
            await asyncio.wait_for(run.task, 30)
        await editor.settle()
    finally:
        await ex.aclose()
    kept = "1234 " * 200
    message = ("The reply reached maxReplyChars (1,000 characters) and was stopped; the text received so far "
               "is kept. To allow longer replies, raise maxReplyChars (up to 20,000,000).")
    assert editor.messages == [("error", message)]
    if output == "document":
        assert editor.text(uri) == f"Count forever.\n{kept}\n[gpt-ls: reply unfinished (reply_cap)]\n"
    else:
        hover = runner.hover_at(uri, editor.range_of(uri, "forever")[0])
        assert hover is not None and hover.markdown.startswith(f"{kept}\n[gpt-ls: reply unfinished (reply_cap)]")


async def test_a_compressed_answer_is_refused_as_its_size_could_not_be_bounded(api: FakeOpenAI) -> None:
    import gzip

    body = gzip.compress(b'data: {"choices": [{"index": 0, "delta": {"content": "' + b"x" * MB + b'"}}]}\n\n')
    api.script(Raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n"
                   b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)))
    ex = Exchange()
    try:
        reply = await ask(ex, settings(api, history=False))
    finally:
        await ex.aclose()
    assert api.chat_requests()[0].headers["Accept-Encoding"] == "identity"
    assert (reply.status, reply.text) == ("error", "")
    assert str(reply.error) == (f"{api.url} sent a compressed answer (gzip) although gpt-ls asked for none; "
                                "is baseUrl an OpenAI-compatible API?")
