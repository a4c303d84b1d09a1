"""Every fault against the exchange, each way of delivering a reply end to end, and the terminal.

Each fault is real: a real HTTP server on 127.0.0.1 answering with an error status, a
stall, a cut, bytes that are not SSE, a proxy process that refuses or is killed while
it relays the reply. What a fault means (its sentence, the text kept, the retries) is a
property of the error, not of the action, so:

* every fault runs once through the exchange in process (the real SDK over real HTTP,
  ``describe_error``, history): the one sentence, the partial text, the status, the
  number of requests (the fast lane);
* each delivery path (streamed into the document, replacing the selection, hover, a
  Markdown document for a client without ``applyEdit``) takes one fault of each outcome
  (refused before any text, cut after some, retried then whole) through a real server
  process behind the simulated editor: one message, progress ended, the partial reply
  kept where that path puts it and in history, nothing duplicated, the process alive;
* ``gpt-ls chat`` takes every API fault in one process, ``gpt-ls ask`` the ones it alone
  can (settings, proxies).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from gpt_ls.actions.catalog import ASK
from gpt_ls.exchange import Exchange, ExchangeRequest
from gpt_ls.prompts import SelectionContext
from gpt_ls.settings import Settings, data_dir
from gpt_ls.trust import TrustList
from tests.reliability import figures
from tests.reliability.harness import KEY, QUICK, alive, cli, close_editor, open_editor, stored
from tests.support.fakeopenai import Behaviour, Cut, Error, FakeOpenAI, Raw, Reply, Stall
from tests.support.lsp_editor import Editor, EditorConfig, server_env
from tests.support.netkit import Pproxy, RefusingProxy, dead_port

SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


def sse_chunk(text: str | None = None, finish: str | None = None) -> bytes:
    """One ``chat.completion.chunk`` event."""
    delta = {} if text is None else {"content": text}
    obj = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4.1-mini",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


BIG = "".join(f"{i} 数据 token 🙂 word\n" for i in range(20_000))  # about 100,000 tokens
HTML = ("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
        "</center><hr><center>nginx</center></body></html>")


@dataclass
class Fault:
    """A fault, and what the user must see afterwards."""

    name: str
    script: list[Behaviour] = field(default_factory=list)
    message: str | None = None  # a fragment of the one message (None: success, no message)
    text: str = ""  # the reply text that reaches the user (partial or whole)
    kind: str = ""  # the unfinished marker's reason
    requests: int = 1  # requests the API receives (retries included)
    settings: dict[str, Any] = field(default_factory=dict)  # "DEAD" is replaced by a refusing port
    proxy: str | None = None  # "vanish": a proxy killed mid-stream

    @property
    def status(self) -> str:
        return "complete" if self.message is None else "error"


def faults() -> list[Fault]:
    """The faults of issue 9, each against real local servers."""
    ok = "The answer, once: 答案 🙂."
    return [
        Fault("401", [Error(401, f"Incorrect API key provided: {KEY}", code="invalid_api_key")],
              "API key rejected (401)"),
        Fault("403", [Error(403, "Country, region, or territory not supported")], "Access denied (403)"),
        Fault("404", [Error(404, "The model does not exist", code="model_not_found")], "not found (404)"),
        Fault("429 with Retry-After", [Error(429, "slow down", headers={"Retry-After": "1"})] * 2,
              "the server asks to wait 1 s", requests=2),
        Fault("429 without Retry-After", [Error(429, "slow down")] * 2, "Rate limit reached (429)", requests=2),
        Fault("429 then a reply (retried once, not duplicated)",
              [Error(429, "slow down", headers={"Retry-After": "1"}), Reply(text=ok)], None, ok, requests=2),
        Fault("500", [Error(500)] * 2, "server error (500, after 1 retry)", requests=2),
        Fault("503", [Error(503, "Service Unavailable")] * 2, "server error (503, after 1 retry)", requests=2),
        Fault("503 then a reply (retried once, not duplicated)",
              [Error(503, "busy"), Reply(text=ok, chunk_size=3)], None, ok, requests=2),
        Fault("connection refused", [], "Connection refused", requests=0, settings={"baseUrl": "DEAD"}),
        Fault("proxy refuses", [], "Cannot reach the proxy", requests=0, settings={"proxy": "DEAD"}),
        Fault("proxy answers 502 itself", [], "(502", requests=0, proxy="refusing"),
        Fault("proxy disappears mid-stream", [Stall(text="Through the proxy, then gone. ", seconds=20)],
              "cut mid-reply", "Through the proxy, then gone. ", "interrupted", proxy="vanish",
              settings={"readTimeout": 10.0}),
        Fault("accepts and never answers", [Stall(before_headers=True, seconds=20)] * 2,
              "No answer from", requests=2),
        Fault("stall mid-stream", [Stall(text="Half an answer 一半", chunk_size=4, seconds=20)],
              "stalled for 1 s", "Half an answer 一半", "interrupted"),
        Fault("stream cut after 5 chunks", [Cut(text="one two three four five ", chunk_size=5)],
              "cut mid-reply", "one two three four five ", "interrupted"),
        Fault("clean but early end (no finish reason, no [DONE])",
              [Reply(text="It ends early", finish_reason=None, done=False)],
              "ended before the reply was complete", "It ends early", "interrupted"),
        Fault("malformed SSE data line",
              [Raw(SSE_HEAD + sse_chunk("Before the bad line. ") + b"data: {not json at all\n\n")],
              "sent a reply gpt-ls cannot read", "Before the bad line. ", "server"),
        Fault("unknown SSE lines are skipped",
              [Raw(SSE_HEAD + b": keep-alive comment\n\nbogus line\nid: 7\n"
                   + sse_chunk("Fine despite noise.") + sse_chunk(finish="stop") + b"data: [DONE]\n\n")],
              None, "Fine despite noise."),
        Fault("an empty event (ping)", [Raw(SSE_HEAD + sse_chunk("Pong. ") + b"event: ping\ndata: {}\n\n"
                                            + sse_chunk(finish="stop") + b"data: [DONE]\n\n")], None, "Pong. "),
        Fault("error event mid-stream",
              [Raw(SSE_HEAD + sse_chunk("Partial before the error. ")
                   + b'data: {"error": {"message": "The server is overloaded", "type": "server_error"}}\n\n')],
              "reported an error during the reply: The server is overloaded", "Partial before the error. ",
              "server"),
        Fault("non-JSON 200 body",
              [Raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n\r\nthis is not JSON")],
              "ended before the reply was complete"),
        Fault("non-JSON error body", [Error(500, body="Internal Server Error", content_type="text/plain")] * 2,
              "server error (500, after 1 retry): Internal Server Error", requests=2),
        Fault("HTML error page from a proxy", [Error(502, body=HTML, content_type="text/html")] * 2,
              "server error (502, after 1 retry)", requests=2),
        Fault("empty stream", [Raw(SSE_HEAD)], "ended before the reply was complete"),
        Fault("only [DONE]", [Raw(SSE_HEAD + b"data: [DONE]\n\n")], "ended before the reply was complete"),
        Fault("100,000-token reply", [Reply(text=BIG, chunk_size=4000)], None, BIG),
    ]


def dead_url(key: str) -> str:
    """A URL on a port that refuses connections (an endpoint for baseUrl, else a proxy)."""
    return f"http://127.0.0.1:{dead_port()}" + ("/v1" if key == "baseUrl" else "")


QUESTION = "问题 question 😀?"


# -- every fault through the exchange, in process ------------------------------------


async def exchange_fault(fault: Fault, n: int, db: Path) -> list[str]:
    """One fault through the exchange (real SDK, real HTTP, history); what went wrong."""
    problems: list[str] = []
    with FakeOpenAI() as api:
        values: dict[str, Any] = {"baseUrl": api.url, "proxy": "", **QUICK}
        for key, value in fault.settings.items():
            values[key] = dead_url(key) if value == "DEAD" else value
        proxy = Pproxy("http").start() if fault.proxy == "vanish" else None
        refusing = RefusingProxy().__enter__() if fault.proxy == "refusing" else None
        if proxy is not None or refusing is not None:
            values["proxy"] = (proxy or refusing).url  # type: ignore[union-attr]
        settings = Settings(base_url=values["baseUrl"], api_key=KEY, proxy=values["proxy"],
                            max_retries=values["maxRetries"], read_timeout=values["readTimeout"],
                            connect_timeout=values["connectTimeout"])
        api.script(*fault.script)
        received: list[str] = []

        def on_text(piece: str) -> None:
            received.append(piece)
            if proxy is not None and fault.text in "".join(received):
                proxy.stop()  # the proxy disappears once the reply is under way

        workspace = f"/faults/{n}"
        exchange = Exchange()
        try:
            req = ExchangeRequest(ASK, SelectionContext(f"file://{workspace}/q.md", "markdown", QUESTION), settings,
                                  workspace=workspace)
            outcome = await asyncio.wait_for(exchange.run(req, on_text), 30)
        except asyncio.TimeoutError:
            figures.add("hangs")
            return [f"{fault.name}: hang"]
        finally:
            await exchange.aclose()
            api.release_stalls()
            if proxy is not None:
                proxy.stop()
            if refusing is not None:
                refusing.__exit__()
        requests = len(api.chat_requests())
    message = str(outcome.error) if outcome.error is not None else None
    if fault.message is None and message is not None:
        problems.append(f"error {message!r}, expected none")
    if fault.message is not None and (message is None or fault.message not in message):
        problems.append(f"error {message!r}, expected one with {fault.message!r}")
    if message is not None and (KEY in message or "Traceback" in message):
        problems.append(f"the sentence shows the key or a traceback: {message!r}")
    if (outcome.text, outcome.status, "".join(received)) != (fault.text, fault.status, fault.text):
        problems.append(f"{outcome.status!r} {outcome.text[:80]!r}, streamed {''.join(received)[:80]!r}")
    if requests != fault.requests:
        problems.append(f"{requests} requests, expected {fault.requests}")
    replies = [m for m in stored(db) if m.role == "assistant" and m.workspace == workspace]
    if [(m.content, m.status) for m in replies] != [(fault.text, fault.status)]:
        problems.append(f"history {[(m.status, m.content[:40]) for m in replies]!r}")
    return [f"{fault.name}: {p}" for p in problems]


@pytest.mark.fast
async def test_every_fault_through_the_exchange(isolated: Path) -> None:
    """Each fault once, all at the same time (each with its own fake API): the fast lane's fault matrix."""
    db = isolated / "gpt-ls" / "data" / "history.db"
    chosen = faults()
    results = await asyncio.gather(*(exchange_fault(fault, n, db) for n, fault in enumerate(chosen)))
    for found in results:
        figures.add("faults tried")
        figures.add("faults survived", 0 if found else 1)
    assert [p for found in results for p in found] == []


# -- each delivery path end to end ---------------------------------------------------


@dataclass
class Delivery:
    """A way the reply reaches the user: the command, the editor, the document it runs on."""

    command: str
    config: EditorConfig
    language: str = "markdown"
    action: str | None = None  # for gpt-ls.run


PY_SELECTION = "total = sum_of(items)"
PATHS = {
    "stream": Delivery("gpt-ls.ask", EditorConfig()),
    "stream-neovim": Delivery("gpt-ls.ask", EditorConfig(capabilities="neovim", echo_delay=0.15,
                                                      position_encodings=["utf-16"])),
    "replace": Delivery("gpt-ls.run", EditorConfig(), "python", "improveCode"),
    "hover": Delivery("gpt-ls.explain", EditorConfig()),
    "document": Delivery("gpt-ls.ask", EditorConfig(apply_edit=False)),
}
#: One fault of each outcome: refused before any text, cut after some, retried then whole.
OUTCOMES = ("401", "stream cut after 5 chunks", "503 then a reply (retried once, not duplicated)")


def expected_document(path: str, original: str, selection: str, fault: Fault) -> str:
    """The document after the fault: the reply lands in it only when streamed or replacing whole."""
    if path.startswith("stream") and fault.text:
        reply = fault.text + (f"\n[gpt-ls: reply unfinished ({fault.kind})]" if fault.message else "")
        return original.replace(selection + "\n", selection + "\n" + reply.rstrip("\n") + "\n")
    if path == "replace" and fault.message is None:
        return original.replace(selection, fault.text)
    return original


def expected_messages(path: str, fault: Fault) -> int:
    """The fault's one sentence, and for a cut code reply the notice that it is shown instead."""
    if fault.message is None:
        return 0
    return 2 if path == "replace" and fault.text else 1


async def deliver_fault(editor: Editor, api: FakeOpenAI, db: Path, path: str, n: int, fault: Fault) -> list[str]:
    """One fault through one delivery path; the list of what went wrong (empty: survived)."""
    how = PATHS[path]
    problems: list[str] = []
    uri = f"file:///faults/{path}/{n}." + ("py" if how.language == "python" else "md")
    selection = PY_SELECTION if how.language == "python" else QUESTION
    original = f"# {fault.name}\n{selection}\nlast line\n"
    editor.open(uri, original, how.language)
    requests_before = len(api.chat_requests())
    messages_before = len(editor.message_texts())
    shown_before = len(editor.client.shown_documents)
    api.script(*fault.script)
    idle = editor.idle_count
    args = [how.action] if how.action else []
    try:
        result = await asyncio.wait_for(editor.run(how.command, *args, uri, editor.range_of(uri, selection)), 60)
        await editor.wait_idle(idle, timeout=60)
    except asyncio.TimeoutError:
        figures.add("hangs")
        return [f"{path} {fault.name}: hang"]
    if not alive(editor):
        figures.add("crashes")
        return [f"{path} {fault.name}: the server exited"]
    messages = editor.message_texts()[messages_before:]
    if any("internal error" in m for m in messages):
        figures.add("crashes")
    if len(messages) != expected_messages(path, fault) or (fault.message and fault.message not in messages[0]):
        problems.append(f"messages {messages!r}, expected {fault.message!r} first")
    if any(KEY in m or "Traceback" in m for m in messages):
        problems.append(f"a message shows the key or a traceback: {messages!r}")
    if len(api.chat_requests()) - requests_before != fault.requests:
        problems.append(f"{len(api.chat_requests()) - requests_before} requests, expected {fault.requests}")
    if not all(r and isinstance(r[-1], types.WorkDoneProgressEnd) for r in editor.progress()):
        problems.append("a progress did not end")
    text = editor.docs[uri].text
    if text != expected_document(path, original, selection, fault):
        problems.append(f"document {text[:300]!r}")
    shown = editor.client.shown_documents[shown_before:]
    # A reply that is not in the document is in a Markdown document the editor shows.
    elsewhere = fault.text and (path == "document" or (path == "replace" and fault.message))
    if len(shown) != (1 if elsewhere else 0):
        problems.append(f"{len(shown)} documents shown")
    elif elsewhere and fault.text not in Path(shown[0].uri.removeprefix("file://")).read_text("utf-8"):
        problems.append("the shown document lacks the reply")
    if path == "hover" and (result.get("text"), result.get("status")) != (fault.text, fault.status):
        problems.append(f"explain result {result.get('status')!r} {result.get('text', '')[:80]!r}")
    last = [m for m in stored(db) if m.role == "assistant"][-1]
    if (last.content, last.status) != (fault.text, fault.status):
        problems.append(f"history has {last.status!r} {last.content[:80]!r}, expected {fault.status!r}")
    editor.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    return [f"{path} {fault.name}: {p}" for p in problems]


@pytest.mark.parametrize("path", list(PATHS))
async def test_one_fault_of_each_outcome_per_delivery_path(path: str, api: FakeOpenAI, tmp_path: Path) -> None:
    """One server process takes the faults in a row, then answers normally again."""
    config = dataclasses.replace(PATHS[path].config, initialization_options={**QUICK, "baseUrl": api.url, "proxy": ""})
    editor = await open_editor(api.url, tmp_path, config)
    db = tmp_path / "data" / "history.db"
    by_name = {f.name: f for f in faults()}
    chosen = [by_name[name] for name in OUTCOMES]
    ok = "Fine." if PATHS[path].language == "markdown" else "total = sum(items)"
    problems: list[str] = []
    try:
        for n, fault in enumerate([*chosen, Fault("after the faults", [Reply(text=ok)], None, ok)]):
            found = await deliver_fault(editor, api, db, path, n, fault)
            figures.add("faults tried")
            figures.add("faults survived", 0 if found else 1)
            problems += found
    finally:
        api.release_stalls()
        await close_editor(editor)
    assert problems == [], "\n".join(problems)

# -- the terminal ---------------------------------------------------------------


def cli_env(tmp: Path, api_url: str, settings: dict[str, Any]) -> tuple[dict[str, str], Path]:
    """The environment and the workspace (with its .gpt-ls.toml) for a CLI process."""
    env = {**server_env(api_url, str(tmp)), "PYTHONPATH": os.pathsep.join(
        p for p in [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")] if p)}
    ws = tmp / "workspace"
    ws.mkdir(parents=True, exist_ok=True)
    lines = [f"{k} = {json.dumps(v)}" for k, v in {**QUICK, **settings}.items()]
    (ws / ".gpt-ls.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    TrustList(data_dir(env)).trust(ws / ".gpt-ls.toml")  # baseUrl and proxy are restricted
    return env, ws


async def ask_process(fault: Fault, tmp: Path) -> list[str]:
    """``gpt-ls ask`` against its own fake API with one fault."""
    problems: list[str] = []
    with FakeOpenAI() as api:
        settings = {"baseUrl": api.url, "proxy": ""}
        for key, value in fault.settings.items():
            settings[key] = dead_url(key) if value == "DEAD" else value
        proxy = Pproxy("http").start() if fault.proxy == "vanish" else None
        if proxy is not None:
            settings["proxy"] = proxy.url
        refusing = RefusingProxy().__enter__() if fault.proxy == "refusing" else None
        if refusing is not None:
            settings["proxy"] = refusing.url
        env, ws = cli_env(tmp, api.url, settings)
        api.script(*fault.script)
        proc = await asyncio.create_subprocess_exec(
            *cli("ask", QUESTION), cwd=ws, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            if proxy is not None:
                assert proc.stdout is not None
                seen = b""
                while fault.text.encode() not in seen:
                    seen += await asyncio.wait_for(proc.stdout.read(100), 20)
                proxy.stop()
                rest, err = await asyncio.wait_for(proc.communicate(), 60)
                out = seen + rest
            else:
                out, err = await asyncio.wait_for(proc.communicate(), 60)
        except asyncio.TimeoutError:
            proc.kill()
            figures.add("hangs")
            return [f"ask {fault.name}: hang"]
        finally:
            api.release_stalls()
            if proxy is not None:
                proxy.stop()
            if refusing is not None:
                refusing.__exit__()
        requests = len(api.chat_requests())
    stdout, stderr = out.decode(), err.decode()
    expected_out = fault.text + "\n" if fault.text else ""
    if stdout != expected_out:
        problems.append(f"stdout {stdout[:200]!r}")
    lines = [line for line in stderr.splitlines() if line.strip()]
    if fault.message is None:
        if proc.returncode != 0 or lines:
            problems.append(f"exit {proc.returncode}, stderr {stderr[-500:]!r}")
    elif proc.returncode != 1 or len(lines) != 1 or fault.message not in lines[0] or KEY in stderr:
        problems.append(f"exit {proc.returncode}, stderr {stderr[-500:]!r}")
    if "Traceback" in stderr:
        figures.add("crashes")
    if requests != fault.requests:
        problems.append(f"{requests} requests, expected {fault.requests}")
    last = [m for m in stored(tmp / "data" / "history.db") if m.role == "assistant"]
    if not last or (last[-1].content, last[-1].status) != (fault.text, fault.status):
        problems.append(f"history {[(m.status, m.content[:40]) for m in last]!r}")
    return [f"ask {fault.name}: {p}" for p in problems]


#: Faults ``gpt-ls ask`` takes: those ``chat`` cannot (settings, proxies); the exchange and
#: ``chat`` take every other one. ``GPT_LS_FULL_FAULTS=1`` runs every fault.
ASK_QUICK = {"connection refused", "proxy refuses", "proxy answers 502 itself", "proxy disappears mid-stream"}


async def test_faults_through_gpt_ls_ask(tmp_path: Path) -> None:
    """One ``gpt-ls ask`` process per fault, three at a time, each with its own API and store."""
    limit = asyncio.Semaphore(3)
    chosen = [f for f in faults() if os.environ.get("GPT_LS_FULL_FAULTS") or f.name in ASK_QUICK]
    assert len(chosen) >= len(ASK_QUICK)

    async def one(n: int, fault: Fault) -> list[str]:
        async with limit:
            found = await ask_process(fault, tmp_path / f"ask{n}")
        figures.add("faults tried")
        figures.add("faults survived", 0 if found else 1)
        return found

    results = await asyncio.gather(*(one(n, f) for n, f in enumerate(chosen)))
    assert [p for found in results for p in found] == []


async def test_every_fault_in_one_gpt_ls_chat_session(api: FakeOpenAI, tmp_path: Path) -> None:
    """One ``gpt-ls chat`` process takes every API fault in turn and keeps going."""
    chosen = [f for f in faults() if not f.settings and not f.proxy]
    for fault in chosen:
        api.script(*fault.script)
    api.script(Reply(text="Still here."))
    env, ws = cli_env(tmp_path, api.url, {"baseUrl": api.url, "proxy": ""})
    lines = [f"turn {n}: {QUESTION}" for n in range(len(chosen) + 1)]
    proc = await asyncio.create_subprocess_exec(
        *cli("chat"), cwd=ws, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(("\n".join(lines) + "\n").encode()), 120)
    finally:
        api.release_stalls()
    stdout, stderr = out.decode(), err.decode()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    # One line on stderr per failed turn, in order, each naming its fault.
    errors = [line for line in stderr.splitlines() if line.startswith("gpt-ls: ")]
    expected = [f.message for f in chosen if f.message]
    assert len(errors) == len(expected), errors
    assert [e for e, line in zip(expected, errors, strict=True) if e not in line] == []
    # A turn that printed nothing adds no empty line.
    expected_out = "".join((f.text + "\n") for f in chosen if f.text) + "Still here.\n"
    assert stdout == expected_out
    assert len(api.chat_requests()) == sum(f.requests for f in chosen) + 1
    replies = [(m.content, m.status) for m in stored(tmp_path / "data" / "history.db") if m.role == "assistant"]
    assert replies == [(f.text, f.status) for f in chosen] + [("Still here.", "complete")]
    figures.add("faults tried", len(chosen))
    figures.add("faults survived", len(chosen))
