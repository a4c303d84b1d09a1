"""Figures 11-13 (issue 15): completions as you type, through the real server process.

11. Added latency: ``textDocument/inlineCompletion`` sent → the model request arrives at the
    fake (Invoked: no debounce; Automatic: minus the debounce), and the model's last token →
    the editor has the item; each beside the openai SDK's own figures against the same fake.
12. Requests per minute while a real file (``textwrap.py`` from this Python's standard
    library) is typed at 5 characters/s with pauses, as VS Code asks (an Automatic request at
    every keystroke, the previous one cancelled with ``$/cancelRequest``), against a naive
    request per keystroke. The fake "model" answers the true rest of the line for 60 % of
    cursors, after 300 ms.
13. The server's memory with completions on, after the typing session.
The post-processing correctness figure is ``benchmarks/completion_cases.py``.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sysconfig
import time
from pathlib import Path

from lsprotocol import types

from benchmarks.fake_server import RemoteFake
from benchmarks.first_text import proc_status
from benchmarks.results import Results
from benchmarks.session import Session, session_env, start_session, stop_session
from tests.support.fakeopenai import Reply
from tests.support.lsp_editor import EditorConfig

DEBOUNCE_MS = 200
TYPED_FILE = Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py"


def config(**extra: object) -> EditorConfig:
    options = {"completions": True, "completionDebounceMs": DEBOUNCE_MS, **extra}
    return EditorConfig(initialization_options=options, inline_completion=True)


def params(uri: str, pos: types.Position, invoked: bool) -> types.InlineCompletionParams:
    kind = types.InlineCompletionTriggerKind.Invoked if invoked else types.InlineCompletionTriggerKind.Automatic
    return types.InlineCompletionParams(context=types.InlineCompletionContext(trigger_kind=kind),
                                        text_document=types.TextDocumentIdentifier(uri=uri), position=pos)


async def sdk_split(api: RemoteFake, runs: int, delay: float) -> tuple[float, float]:
    """The openai SDK directly (warm): ms from the call to the request's arrival, from the last token to the end."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=api.url, api_key="sk-test-key-0123456789", max_retries=0)
    arrive, tail = [], []
    for i in range(runs + 1):
        api.script(Reply(text="return a + b", chunk_size=4, first_delay=delay))
        api.clear_stamps()
        t0 = time.monotonic()
        stream = await client.chat.completions.create(
            model="gpt-4.1-nano", messages=[{"role": "user", "content": "x"}], stream=True, max_tokens=64)
        async for _ in stream:
            pass
        end = time.monotonic()
        if i:
            arrive.append((api.request_stamps()[0] - t0) * 1000)
            tail.append((end - api.stamps()[-1]) * 1000)
    await client.close()
    return statistics.median(arrive), statistics.median(tail)


async def latency(res: Results, session: Session, api: RemoteFake, runs: int) -> None:
    """Figure 11."""
    delay = 0.2
    editor = session.editor
    split: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for i in range(2 * runs + 2):
        invoked = i % 2 == 0
        uri = f"file:///bench/latency{i}.py"
        editor.open(uri, "def add(a, b):\n    ret\n", "python")
        api.script(Reply(text="urn a + b", chunk_size=4, first_delay=delay))
        api.clear_stamps()
        t0 = time.monotonic()
        result = await editor.client.text_document_inline_completion_async(params(uri, types.Position(1, 7), invoked))
        end = time.monotonic()
        assert isinstance(result, types.InlineCompletionList) and result.items, "no suggestion"
        if i >= 2:  # the first of each kind loads the SDK
            wait = 0 if invoked else DEBOUNCE_MS
            split[invoked].append(((api.request_stamps()[0] - t0) * 1000 - wait, (end - api.stamps()[-1]) * 1000))
    sdk_arrive, sdk_tail = await sdk_split(api, runs, delay)
    for invoked, name in ((True, "Invoked"), (False, f"Automatic, after the {DEBOUNCE_MS} ms debounce")):
        # Absolute figures include the editor's side of the pipe and the SDK's own work; what gpt-ls
        # adds is what they take beyond the openai SDK alone (same fake, same kind of request).
        arrive = statistics.median(p[0] for p in split[invoked])
        res.add("completions", f"{name}: request → model request arrives (median of {runs})", arrive, "ms",
                note=f"the openai SDK alone, call → arrival: {sdk_arrive:.2f} ms")
        res.add("completions", f"{name}: added before the model request", arrive - sdk_arrive, "ms", limit=5)
        tail = statistics.median(p[1] for p in split[invoked])
        res.add("completions", f"{name}: model's last token → editor has the item (median of {runs})", tail, "ms",
                limit=10, note=f"the openai SDK alone, last token → end of stream: {sdk_tail:.2f} ms")


async def typing(res: Results, session: Session, api: RemoteFake, seconds: float) -> None:
    """Figure 12: a real file typed at 5 characters/s with pauses, VS Code's way of asking."""
    source = TYPED_FILE.read_text(encoding="utf-8")
    start = source.index("class TextWrapper")
    editor, uri = session.editor, "file:///bench/textwrap.py"
    editor.open(uri, source[:start], "python")
    api.set_truth(source, delay=0.3)
    api.clear_stamps()
    rng = random.Random(15)
    pending: asyncio.Future[object] | None = None
    pending_id = ""
    keys = shown = 0
    offset = start
    began = time.monotonic()
    try:
        while time.monotonic() - began < seconds:
            ch = source[offset]
            editor.type(uri, offset, ch)
            offset += 1
            keys += 1
            if pending is not None and not pending.done():
                editor.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=pending_id))
            pending_id = f"type-{keys}"
            pos = _end_position(editor.docs[uri].text)
            pending = asyncio.ensure_future(editor.client.protocol.send_request_async(
                types.TEXT_DOCUMENT_INLINE_COMPLETION, params(uri, pos, invoked=False), msg_id=pending_id))
            pending.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: no warning
            pause = rng.uniform(0.1, 0.3)  # 5 characters/s on average
            if ch == "\n":
                pause += 1.0  # a look at what comes next
            elif rng.random() < 0.04:
                pause += 1.5  # thinking
            await asyncio.sleep(pause)
            if pending.done() and not pending.cancelled() and pending.exception() is None:
                shown += bool(getattr(pending.result(), "items", None))
    finally:
        api.set_truth("", 0)
    minutes = (time.monotonic() - began) / 60
    sent = len(api.request_stamps())
    res.add("completions", f"typing {TYPED_FILE.name}: keystrokes (= a naive server's requests) per minute",
            keys / minutes, "/min", note=f"{keys} keystrokes in {minutes * 60:.0f} s")
    res.add("completions", "typing: model requests per minute (debounce + cancellation + reuse)", sent / minutes,
            "/min", note=f"{sent} requests; suggestions shown {shown} times; completionMaxPerMinute caps it at 30 "
            "by default (set to 1000 here)")
    res.add("completions", "typing: requests against a naive request per keystroke", sent / max(1, keys), "×")


def _end_position(text: str) -> types.Position:
    """The end of an ASCII text (the typed file is ASCII: characters are UTF-16 units)."""
    return types.Position(text.count("\n"), len(text) - text.rfind("\n") - 1)


async def figures(res: Results, api: RemoteFake, quick: bool) -> None:
    """Figures 11-13 in one server session with completions on."""
    print("11.-13. completions as you type", flush=True)
    with session_env(api) as (env, log):
        session = await start_session(env, log, config(completionMaxPerMinute=1000))
        try:
            await latency(res, session, api, 3 if quick else 9)
            await typing(res, session, api, 20 if quick else 60)
            status = proc_status(session.pid)
            res.add("completions", "server RSS with completions on, after the typing session", status["VmRSS"],
                    "MB", limit=100, note=f"peak {status['VmHWM']:.1f} MB (no tokenizer loaded)")
        finally:
            await stop_session(session)
