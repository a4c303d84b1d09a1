"""Bad input: hypothesis drives one long-running server through a real LSP connection.

Sequences of open / change / close, code actions and commands with random ranges (past
the end, inverted, inside surrogate pairs), random Unicode (CJK, emoji, RTL, NUL, lone
surrogates, which JSON can carry as ``\\ud800``), CRLF / CR / mixed line endings and huge
lines; and malformed JSON-RPC written raw to the server's stdin. After every sequence
the server must be alive, answer within seconds, have shown no internal error, and hold
exactly the text the editor holds (checked through the request it sends the model).
Settings are fuzzed too: random TOML files and random settings payloads.

``GPT_LS_FUZZ_EXAMPLES=N`` runs N sequences per test instead of the quick default.

A failure prints ``@reproduce_failure(...)`` (the profile in tests/conftest.py sets
``print_blob``): put that line above the failing test to replay its example. The server
is shared by a module's examples, so run the test alone (``-m slow tests/…::test_x``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types

from gpt_ls.settings import load_settings
from gpt_ls.text import LineIndex, valid_unicode
from tests.reliability import figures
from tests.reliability.harness import alive, close_editor, open_editor
from tests.support.fakeopenai import FakeOpenAI
from tests.support.lsp_editor import Editor, EditorConfig

T = TypeVar("T")
EXAMPLES = figures.fuzz_examples(40)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

PIECES = ["a", "Z", " ", "\n", "\r\n", "\r", "\t", "中", "文", "😀", "👍🏽", "\u200f", "ש", "ل", "\x00",
          "\ud800", "\udfff", "é", "e\u0301", "\u2028", "\ufeff", "\x0b", "\\", '"', "}"]
text_st = st.one_of(
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), max_size=40).map("".join),
    st.sampled_from(["x" * 30_000 + "中😀\r\n" + "y" * 10, "问" * 5000 + "\n"]),  # huge lines
)
COMMANDS = ["gpt-ls.ask", "gpt-ls.explain", "gpt-ls.draftEmail", "gpt-ls.continue", "gpt-ls.cancel",
            "gpt-ls.newConversation", "gpt-ls.showHistory", "gpt-ls.openConversation", "gpt-ls.nope"]
JUNK = st.one_of(st.none(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False), st.text(max_size=5),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


class Hang(Exception):
    """The server did not answer in time."""


class Driver:
    """One server behind the simulated editor, on an event loop in its own thread."""

    def __init__(self, api: FakeOpenAI, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-lsp", daemon=True)
        self.thread.start()
        options = {"maxRetries": 0, "readTimeout": 5.0, "contextLines": 3}
        self.editor: Editor = self.call(open_editor(api.url, tmp, EditorConfig(initialization_options=options)))
        self.api = api
        self.raw_id = 0

    def call(self, coro: Awaitable[T], timeout: float = 30) -> T:
        future = asyncio.run_coroutine_threadsafe(_wrap(coro), self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            figures.add("hangs")
            raise Hang(f"no answer within {timeout} s") from None

    def close(self) -> None:
        try:
            self.call(close_editor(self.editor))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


async def _wrap(coro: Awaitable[T]) -> T:
    return await coro


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Driver]:
    with FakeOpenAI() as api:
        d = Driver(api, tmp_path_factory.mktemp("fuzz"))
        try:
            yield d
        finally:
            api.release_stalls()
            d.close()


# -- steps ------------------------------------------------------------------------


@dataclass
class Step:
    kind: str
    doc: int
    a: tuple[int, int] = (0, 0)
    b: tuple[int, int] = (0, 0)
    clamp: bool = True
    text: str = ""
    command: str = ""
    junk: Any = None


pos_st = st.tuples(st.integers(0, 60), st.integers(0, 400))
step_st = st.one_of(
    st.builds(Step, st.just("open"), st.integers(0, 2), text=text_st),
    st.builds(Step, st.just("change"), st.integers(0, 2), pos_st, pos_st, st.booleans(), text_st),
    st.builds(Step, st.just("replace"), st.integers(0, 2), text=text_st),
    st.builds(Step, st.just("close"), st.integers(0, 2)),
    st.builds(Step, st.just("codeAction"), st.integers(0, 2), pos_st, pos_st, st.booleans()),
    st.builds(Step, st.just("hover"), st.integers(0, 2), pos_st),
    st.builds(Step, st.just("command"), st.integers(0, 2), pos_st, pos_st, st.booleans(),
              command=st.sampled_from(COMMANDS)),
    st.builds(Step, st.just("badCommand"), st.integers(0, 2), command=st.sampled_from(COMMANDS),
              junk=st.lists(JUNK, max_size=3)),
)


def uri_of(n: int) -> str:
    return f"file:///fuzz/doc{n}.txt"


def position(text: str, p: tuple[int, int], clamp: bool) -> types.Position:
    """A position: clamped into the text (but maybe inside a surrogate pair), or raw."""
    line, char = p
    if clamp:
        index = LineIndex(text)
        line %= index.line_count
        char %= len(index.line_text(line).encode("utf-16-le", "surrogatepass")) // 2 + 1
    return types.Position(line, char)


async def run_step(editor: Editor, step: Step) -> None:
    """Do one step the way an editor would; errors from the server are fine, hangs are not."""
    uri = uri_of(step.doc)
    doc = editor.docs.get(uri)
    if step.kind == "open" and doc is None:
        editor.open(uri, step.text)
    elif step.kind in ("change", "replace") and doc is not None:
        if step.kind == "replace":
            doc.text, doc.version = step.text, doc.version + 1
            editor.client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=doc.version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=step.text)]))
        else:
            rng = types.Range(position(doc.text, step.a, step.clamp), position(doc.text, step.b, step.clamp))
            if (rng.end.line, rng.end.character) < (rng.start.line, rng.start.character):
                rng = types.Range(rng.end, rng.start)  # editors send ordered ranges in didChange
            editor._apply(doc, rng, step.text)
            editor._send_change(doc, rng, step.text)
    elif step.kind == "close" and doc is not None:
        del editor.docs[uri]
        editor.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    elif step.kind == "codeAction":
        text = doc.text if doc else ""
        rng = types.Range(position(text, step.a, step.clamp), position(text, step.b, step.clamp))
        actions = await editor.code_actions(uri, rng)
        assert len(actions) >= 4
    elif step.kind == "hover":
        await editor.client.text_document_hover_async(types.HoverParams(
            types.TextDocumentIdentifier(uri), position(doc.text if doc else "", step.a, False)))
    elif step.kind == "command":
        text = doc.text if doc else ""
        rng = types.Range(position(text, step.a, step.clamp), position(text, step.b, step.clamp))
        args: list[Any] = [uri, rng] if step.command.split(".")[1] in ("ask", "explain", "draftEmail", "continue") \
            else ([1] if step.command.endswith("openConversation") else [])
        await _ignore_errors(editor.run(step.command, *args))
    elif step.kind == "badCommand":
        await _ignore_errors(editor.run(step.command, *step.junk))


async def _ignore_errors(call: Awaitable[Any]) -> None:
    """A JSON-RPC error is a fine answer to a bad request."""
    try:
        await call
    except Exception as exc:
        assert "Traceback" not in str(exc)


async def settle(editor: Editor, timeout: float = 30) -> None:
    """Until no exchange runs any more and every edit has echoed."""
    async def idle() -> None:
        await asyncio.sleep(0.05)
        while not editor.statuses or editor.statuses[-1]["running"] != 0:
            await asyncio.sleep(0.05)
        await editor.settle()

    if any(s["running"] for s in editor.statuses[-1:]):
        await asyncio.wait_for(idle(), timeout)
    else:
        await editor.settle()


async def server_text(driver: Driver, uri: str) -> str | None:
    """The document as the server holds it: the selection it sends for Explain over the whole text."""
    editor = driver.editor
    text = editor.docs[uri].text
    if not text.strip():
        return None
    index = LineIndex(text)
    end = index.position(len(text), "utf-16")
    before = len(driver.api.chat_requests())
    await _ignore_errors(editor.run("gpt-ls.explain", uri, types.Range(types.Position(0, 0),
                                                                        types.Position(end.line, end.character))))
    requests = driver.api.chat_requests()
    if len(requests) == before:
        return None  # refused before sending (e.g. a text that cannot be encoded): checked by messages
    user = requests[-1].messages[-1]["content"]
    return str(user)


def check_server(driver: Driver, messages_before: int) -> None:
    """Alive, answering, no internal error shown."""
    editor = driver.editor
    if not alive(editor):
        figures.add("crashes")
        raise AssertionError("the server exited")
    rng = types.Range(types.Position(0, 0), types.Position(0, 0))
    driver.call(editor.code_actions(uri_of(0), rng), timeout=10)
    shown = editor.message_texts()[messages_before:]
    internal = [m for m in shown if "internal error" in m.lower() or "Traceback" in m]
    if internal:
        figures.add("crashes")
    assert internal == [], internal


@FUZZ
@given(first=text_st, steps=st.lists(step_st, min_size=1, max_size=20))
def test_random_lsp_sequences(driver: Driver, first: str, steps: list[Step]) -> None:
    editor = driver.editor
    messages_before = len(editor.message_texts())
    for step in [Step("open", 0, text=first), *steps]:
        driver.call(run_step(editor, step))
        figures.add("fuzz steps")
    driver.call(settle(editor))
    check_server(driver, messages_before)
    for uri in list(editor.docs):
        if not uri.startswith("file:///fuzz/"):
            continue
        user = driver.call(server_text(driver, uri))
        # What the model gets is the editor's text; a lone surrogate (which UTF-8 cannot carry) as U+FFFD.
        text = editor.docs[uri].text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        assert user is None or user.endswith("Selection:\n" + text), (text[-200:], user[-300:])
    driver.call(settle(editor))
    check_server(driver, messages_before)
    figures.add("sequences fuzzed")


# -- malformed JSON-RPC -------------------------------------------------------------

RAW = [
    b"{not json",
    b"[1, 2, 3]",
    b"42",
    b'"a string"',
    b"null",
    b"{}",
    b'{"id": "ID", "method": "textDocument/hover"}',
    b'{"jsonrpc": "1.0", "id": "ID", "method": "shutdown"}',
    b'{"jsonrpc": "2.0", "id": "ID", "method": "no/such/method", "params": {}}',
    b'{"jsonrpc": "2.0", "method": "no/such/notification", "params": [1]}',
    b'{"jsonrpc": "2.0", "method": "$/unknownNotification"}',
    b'{"jsonrpc": "2.0", "id": "ID", "method": "textDocument/codeAction", "params": {"textDocument": 5}}',
    b'{"jsonrpc": "2.0", "id": "ID", "method": "textDocument/hover", "params": null}',
    b'{"jsonrpc": "2.0", "id": "ID", "method": "textDocument/hover", "params": "x"}',
    b'{"jsonrpc": "2.0", "id": "ID", "method": "workspace/executeCommand", "params": {"command": "gpt-ls.ask",'
    b' "arguments": "not a list"}}',
    b'{"jsonrpc": "2.0", "id": "ID", "method": "workspace/executeCommand", "params": {"command": 7}}',
    b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": 5}}}',
    b'{"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri":'
    b' "file:///never/opened", "version": 2}, "contentChanges": [{"text": "x"}]}}',
    b'{"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri":'
    b' "file:///fuzz/doc0.txt", "version": "two"}, "contentChanges": [{"range": 1, "text": 2}]}}',
    b'{"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {}}',
    b'{"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": [1, 2]}}',
    b'{"jsonrpc": "2.0", "method": "window/workDoneProgress/cancel", "params": {"token": {"a": 1}}}',
    b'{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": "nobody"}}',
    b'{"jsonrpc": "2.0", "id": "ID", "result": {"unexpected": "response"}}',
    b'{"jsonrpc": "2.0", "id": "ID", "method": "textDocument/codeAction", "params": {"textDocument":'
    b' {"uri": "file:///fuzz/doc0.txt"}, "range": {"start": {"line": -1, "character": -5}, "end": {"line":'
    b' 99999999999, "character": 0}}, "context": {"diagnostics": []}}}',
    b'{"jsonrpc": "2.0", "id": "ID", "method": "workspace/executeCommand", "params": {"command": "gpt-ls.ask",'
    b' "arguments": ["file:///fuzz/doc0.txt", {"start": {"line": 0, "character": 1e308}, "end": 3}]}}',
    b'{"jsonrpc": "2.0", "id": "ID", "method": "workspace/executeCommand", "params": {"command":'
    b' "gpt-ls.explain", "arguments": ["file:///fuzz/doc0.txt", {"start": {"line": 0, "character": 0},'
    b' "end": {"line": 0, "character": 2}}, "extra"]}}',
]


async def send_raw(driver: Driver, body: bytes, timeout: float = 10) -> str:
    """Write one framed message to the server's stdin; wait for the answer when it has an id."""
    editor = driver.editor
    driver.raw_id += 1
    raw_id = f"raw-{driver.raw_id}"
    has_id = b'"ID"' in body and b'"result"' not in body and b'"jsonrpc": "2.0"' in body
    body = body.replace(b'"ID"', json.dumps(raw_id).encode())
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    if has_id:
        editor.client.protocol._request_futures[raw_id] = future
    stdin = editor.client._server.stdin
    stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    await stdin.drain()
    figures.add("malformed JSON-RPC messages")
    if not has_id:
        return "no answer expected"
    try:
        await asyncio.wait_for(future, timeout)
        return "result"
    except asyncio.TimeoutError:
        figures.add("hangs")
        return "hang"
    except Exception as exc:
        return f"error: {exc}"


def test_malformed_json_rpc_is_answered_or_ignored(driver: Driver) -> None:
    editor = driver.editor
    driver.call(run_step(editor, Step("open", 0, text="hello 你好 😀\r\nworld\n")))
    messages_before = len(editor.message_texts())
    outcomes = {body.decode()[:80]: driver.call(send_raw(driver, body)) for body in RAW}
    hangs = [k for k, v in outcomes.items() if v == "hang"]
    assert hangs == []
    check_server(driver, messages_before)


@FUZZ
@given(body=st.one_of(
    st.binary(max_size=60),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                 max_leaves=8).map(lambda v: json.dumps({"jsonrpc": "2.0", "method": "textDocument/didOpen",
                                                        "params": v}).encode()),
))
def test_random_bytes_and_params_never_break_the_server(driver: Driver, body: bytes) -> None:
    messages_before = len(driver.editor.message_texts())
    driver.call(send_raw(driver, body))
    check_server(driver, messages_before)


# -- settings ------------------------------------------------------------------------

SETTING_NAMES = ["model", "baseUrl", "apiKey", "apiKeyCommand", "proxy", "connectTimeout", "readTimeout",
                 "maxRetries", "temperature", "maxTokens", "contextLines", "contextWindow", "explainOutput",
                 "history", "headers", "prices", "historyRetentionDays", "askContinuesConversation", "actions",
                 "nonsense", "", "gpt-ls"]
value_st = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
    | st.sampled_from(["http://127.0.0.1:1", "socks5://u:p@h:1", "ftp://x", "://", "gpt-4o", "-1", "nan"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
payload_st = st.dictionaries(st.sampled_from(SETTING_NAMES), value_st, max_size=6)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, float) and v != v:
        return "nan"
    return json.dumps(v) if v is not None else '""'


@settings(max_examples=EXAMPLES * 8, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=payload_st, junk=st.sampled_from(["", "\n[", "\nmodel = ", "\x00", "\n[actions.x]\nprompt = 3",
                                                  "\ufeff", "\nmodel = 'a'\nmodel = 'b'"]))
def test_random_toml_and_settings_never_crash_loading(tmp_path: Path, payload: dict[str, Any], junk: str) -> None:
    """Random ``.gpt-ls.toml`` + editor payloads: settings always load, problems are sentences."""
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    text = "\n".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in payload.items()) + junk
    (ws / ".gpt-ls.toml").write_text(text, encoding="utf-8", errors="surrogatepass")
    loaded = load_settings(payload, ws, env={"GPT_LS_CONFIG_DIR": str(tmp_path / "nothing")})
    assert all(isinstance(p, str) and p and "Traceback" not in p for p in loaded.problems)
    repr(loaded.settings)
    figures.add("config payloads fuzzed")


@FUZZ
@given(payload=st.one_of(payload_st, value_st))
def test_random_settings_payloads_over_lsp(driver: Driver, payload: Any) -> None:
    """``workspace/didChangeConfiguration`` with anything: then an action still runs or says why."""
    editor = driver.editor
    messages_before = len(editor.message_texts())
    editor_call = editor.client.workspace_did_change_configuration
    driver.call(_notify(lambda: editor_call(types.DidChangeConfigurationParams(settings={"gpt-ls": payload}))))
    driver.call(run_step(editor, Step("open", 0, text="question 问题\n")))
    driver.call(_ignore_errors(editor.run("gpt-ls.explain", uri_of(0), types.Range(
        types.Position(0, 0), types.Position(0, 5)))), timeout=60)
    check_server(driver, messages_before)
    # Back to working settings for the next example.
    good = {"model": "gpt-4.1-mini", "baseUrl": driver.api.url, "apiKey": None, "apiKeyCommand": None,
            "proxy": "", "maxRetries": 0, "readTimeout": 5.0, "connectTimeout": 5.0, "history": True}
    driver.call(_notify(lambda: editor_call(types.DidChangeConfigurationParams(
        settings={"gpt-ls": {**{k: None for k in SETTING_NAMES if k not in ("", "gpt-ls")}, **good}}))))
    figures.add("config payloads fuzzed")


async def _notify(send: Any) -> None:
    send()
    await asyncio.sleep(0)


def test_lone_surrogates_become_replacement_characters() -> None:
    """What the engine sends and stores: valid pairs stay, lone halves become U+FFFD."""
    assert valid_unicode("a\ud800b😀\udfff中\ud83d\ude00") == "a\ufffdb😀\ufffd中😀"
    assert valid_unicode("plain ascii") == "plain ascii"
