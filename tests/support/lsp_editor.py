"""A scriptable LSP client that behaves like a real editor, for end-to-end tests.

It runs the real ``gpt-ls`` process over stdio, keeps its own copy of each open
document, applies ``workspace/applyEdit`` to it (refusing stale versions like VS Code
and Neovim do), and sends the matching ``didChange`` either before answering (VS
Code) or ``echo_delay`` seconds after (Neovim's 150 ms debounce). With
``whole_document`` every didChange carries the whole text (full sync, buffer reloads),
debounced like Neovim: one didChange per ``echo_delay`` for every change made meanwhile.
Tests type into documents while replies stream and compare the final text literally;
``Doc.shown`` keeps every text the editor showed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

from gpt_ls.pieces import Text
from gpt_ls.text import Encoding, LineIndex, Pos

SERVER = [sys.executable, "-m", "gpt_ls"]


@dataclass
class Doc:
    uri: str
    #: The text in pieces, as a real editor keeps a buffer (Neovim: an array of lines):
    #: an edit into 10,000 lines costs the simulation microseconds, not a 2 MB copy.
    content: Text
    version: int = 1
    language: str = "plaintext"
    #: Every text the editor showed, in order (the opened text first).
    shown: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """What the editor shows."""
        return str(self.content)

    @text.setter
    def text(self, value: str) -> None:
        self.content = Text(value, cut_now=True)


@dataclass
class EditorConfig:
    """How the simulated editor behaves."""

    capabilities: str = "visual-studio-code"
    echo_delay: float | None = None  # None: didChange before the applyEdit answer
    apply_edit: bool = True
    position_encodings: list[str] | None = None
    initialization_options: dict[str, Any] | None = None
    configuration: dict[str, Any] | None = None
    #: Answers ``window/showMessageRequest`` (from the first message on, initialize included).
    choose: Callable[[types.ShowMessageRequestParams], str | None] | None = None
    #: Send every change as a whole-document change (``TextDocumentContentChangeWholeDocument``).
    whole_document: bool = False
    #: Advertise ``textDocument.inlineCompletion`` (with dynamic registration), as
    #: vscode-languageclient 11 does (the recorded VS Code 1.65 capabilities predate it).
    inline_completion: bool = False
    #: Keep every text shown in ``Doc.shown`` (the benchmarks do not: a real editor keeps no
    #: copy of each version, and 2 MB per streamed edit would be the simulation's own cost).
    keep_shown: bool = True


@dataclass
class Editor:
    client: LanguageClient
    config: EditorConfig
    docs: dict[str, Doc] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    edits: list[types.ApplyWorkspaceEditParams] = field(default_factory=list)
    negotiated: Encoding = "utf-16"
    #: Items of ``workspace/configuration`` requests the editor answered.
    configuration_pulls: int = 0
    _echoes: list[asyncio.Task[None]] = field(default_factory=list)
    _debouncing: set[str] = field(default_factory=set)
    #: Each didChange sent: "whole" (the whole document) or "ranged".
    did_changes: list[str] = field(default_factory=list)
    #: What the server answered at initialize.
    capabilities: types.ServerCapabilities | None = None
    #: ``client/registerCapability`` and ``client/unregisterCapability`` received: ("register", method), …
    registrations: list[tuple[str, str]] = field(default_factory=list)

    # -- documents ------------------------------------------------------------
    def open(self, uri: str, text: str, language: str = "plaintext") -> Doc:
        doc = Doc(uri, Text(text, cut_now=True), 1, language, [text])
        self.docs[uri] = doc
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)))
        return doc

    @property
    def encoding(self) -> Encoding:
        """The position encoding the server chose at initialize (UTF-16 unless negotiated)."""
        return self.negotiated

    def range_of(self, uri: str, needle: str) -> types.Range:
        """The LSP range (UTF-16) of the first occurrence of ``needle``."""
        text = self.docs[uri].text
        start = text.index(needle)
        index = LineIndex(text)
        a = index.position(start, self.encoding)
        b = index.position(start + len(needle), self.encoding)
        return types.Range(types.Position(a.line, a.character), types.Position(b.line, b.character))

    def _apply(self, doc: Doc, rng: types.Range, new_text: str) -> None:
        start = Pos(rng.start.line, rng.start.character)
        end = Pos(rng.end.line, rng.end.character)
        doc.content, _ = doc.content.apply(start, end, new_text, self.encoding)
        doc.version += 1
        if self.config.keep_shown:
            doc.shown.append(doc.text)

    def _did_change(self, doc: Doc, version: int, rng: types.Range, text: str) -> None:
        self.did_changes.append("ranged")
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=doc.uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=rng, text=text)]))

    def type(self, uri: str, offset: int, text: str) -> None:
        """The user inserts ``text`` at a string offset; didChange as the editor would."""
        doc = self.docs[uri]
        p = doc.content.position(offset, self.encoding)
        rng = types.Range(types.Position(p.line, p.character), types.Position(p.line, p.character))
        self._apply(doc, rng, text)
        self._send_change(doc, rng, text)

    def _did_change_whole(self, doc: Doc) -> None:
        self.did_changes.append("whole")
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=doc.text)]))

    def _send_change(self, doc: Doc, rng: types.Range, text: str) -> None:
        version = doc.version
        if self.config.whole_document:
            self._send_whole(doc)
            return
        if self.config.echo_delay is None:
            self._did_change(doc, version, rng, text)
            return

        async def later() -> None:
            await asyncio.sleep(self.config.echo_delay or 0)
            self._did_change(doc, version, rng, text)

        self._echoes.append(asyncio.get_running_loop().create_task(later()))

    def _send_whole(self, doc: Doc) -> None:
        """A whole-document didChange now, or once per ``echo_delay`` (Neovim-like debounce)."""
        if self.config.echo_delay is None:
            self._did_change_whole(doc)
            return
        if doc.uri in self._debouncing:
            return  # the didChange already scheduled will carry this change too

        async def later() -> None:
            await asyncio.sleep(self.config.echo_delay or 0)
            self._debouncing.discard(doc.uri)
            self._did_change_whole(doc)

        self._debouncing.add(doc.uri)
        self._echoes.append(asyncio.get_running_loop().create_task(later()))

    def on_apply_edit(self, params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        self.edits.append(params)
        edit = params.edit
        changes: list[tuple[str, int | None, list[Any]]] = []
        for dc in edit.document_changes or []:
            assert isinstance(dc, types.TextDocumentEdit)
            changes.append((dc.text_document.uri, dc.text_document.version, list(dc.edits)))
        for uri, edits in (edit.changes or {}).items():
            changes.append((uri, None, list(edits)))
        for uri, version, _edits in changes:
            doc = self.docs.get(uri)
            if doc is None:
                return types.ApplyWorkspaceEditResult(applied=False, failure_reason="not open")
            if version is not None and version != doc.version:
                if self.config.capabilities == "neovim":
                    # Neovim prints "Buffer … newer than edits" and still answers applied.
                    return types.ApplyWorkspaceEditResult(applied=True)
                return types.ApplyWorkspaceEditResult(
                    applied=False, failure_reason=f"version {version} != {doc.version}")
        for uri, _version, edits in changes:
            doc = self.docs[uri]
            for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
                self._apply(doc, e.range, e.new_text)
                self._send_change(doc, e.range, e.new_text)
        return types.ApplyWorkspaceEditResult(applied=True)

    # -- commands -------------------------------------------------------------
    async def code_actions(self, uri: str, rng: types.Range) -> list[types.CodeAction]:
        result = await self.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), range=rng,
            context=types.CodeActionContext(diagnostics=[])))
        return [a for a in result or [] if isinstance(a, types.CodeAction)]

    async def run(self, command: str, *arguments: Any) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=command, arguments=list(arguments)))

    @property
    def idle_count(self) -> int:
        """How many status notifications so far said that nothing runs (for ``wait_idle``)."""
        return len([s for s in self.statuses if s["running"] == 0])

    async def action(self, command: str, uri: str, needle: str) -> Any:
        """Run an action on the first occurrence of ``needle`` and wait until it ends."""
        before = self.idle_count
        result = await self.run(command, uri, self.range_of(uri, needle))
        await self.wait_idle(before)
        return result

    async def wait_idle(self, idle_seen: int, timeout: float = 30) -> None:
        """Wait for the status notification that says nothing runs any more."""
        async def poll() -> None:
            while self.idle_count <= idle_seen:
                await asyncio.sleep(0.02)
            await self.settle()

        await asyncio.wait_for(poll(), timeout)

    async def wait_until(self, condition: Callable[[], bool], failure: str, timeout: float = 10) -> None:
        """Poll ``condition`` until it holds; after ``timeout`` seconds fail with ``failure``."""
        for _ in range(int(timeout / 0.05)):
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(failure)

    async def settle(self) -> None:
        """Let pending didChange echoes go out."""
        while self._echoes:
            echoes, self._echoes = self._echoes, []
            await asyncio.gather(*echoes)
        await asyncio.sleep(0.05)

    async def hover(self, uri: str, needle: str, delta: int = 0) -> types.Hover | None:
        text = self.docs[uri].text
        p = LineIndex(text).position(text.index(needle) + delta, self.encoding)
        return await self.client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(p.line, p.character)))

    def position(self, uri: str, needle: str, delta: int = 0) -> types.Position:
        """The position (in the negotiated encoding) just after ``needle`` (plus ``delta`` characters)."""
        text = self.docs[uri].text
        p = LineIndex(text).position(text.index(needle) + len(needle) + delta, self.encoding)
        return types.Position(p.line, p.character)

    async def inline(self, uri: str, position: types.Position,
                     invoked: bool = True) -> list[types.InlineCompletionItem]:
        """``textDocument/inlineCompletion`` at ``position``: its items."""
        kind = types.InlineCompletionTriggerKind.Invoked if invoked else types.InlineCompletionTriggerKind.Automatic
        result = await self.client.text_document_inline_completion_async(types.InlineCompletionParams(
            context=types.InlineCompletionContext(trigger_kind=kind),
            text_document=types.TextDocumentIdentifier(uri=uri), position=position))
        return list(result.items) if isinstance(result, types.InlineCompletionList) else list(result or [])

    async def complete(self, uri: str, position: types.Position,
                       invoked: bool = True) -> types.CompletionList | list[types.CompletionItem] | None:
        """``textDocument/completion`` at ``position``, as an editor typing (or asking) would send it."""
        kinds = types.CompletionTriggerKind
        kind = kinds.Invoked if invoked else kinds.TriggerForIncompleteCompletions
        return await self.client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position,
            context=types.CompletionContext(trigger_kind=kind)))

    def progress(self) -> list[list[Any]]:
        return [list(v) for v in self.client.progress_reports.values()]

    def message_texts(self) -> list[str]:
        return [m.message for m in self.client.messages]


async def start_editor(
    env: dict[str, str], config: EditorConfig, root_uri: str | None = None, args: tuple[str, ...] = (),
    tcp: tuple[str, int] | None = None,
) -> Editor:
    """Start gpt-ls (with ``args``) and ``env``, and initialize it like the configured editor would.

    With ``tcp``, connect to a gpt-ls already listening there instead (``env`` and ``args`` are unused).
    """
    client = make_test_lsp_client()
    converter = client.protocol._converter

    def code_action_hook(obj: Any, _: type) -> Any:
        # lsprotocol 2025 takes any item with a "command" key for a Command.
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, types.Command)
        return converter.structure(obj, types.CodeAction)

    converter.register_structure_hook(types.Command | types.CodeAction, code_action_hook)
    editor = Editor(client, config)

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        return editor.on_apply_edit(params)

    @client.feature("gpt-ls/status")
    def status(params: Any) -> None:
        editor.statuses.append({"running": params.running, "tokens": params.tokens, "message": params.message})

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams) -> None:
        editor.registrations.extend(("register", r.method) for r in params.registrations)

    @client.feature(types.CLIENT_UNREGISTER_CAPABILITY)
    def unregister(params: types.UnregistrationParams) -> None:
        editor.registrations.extend(("unregister", r.method) for r in params.unregisterations)

    if config.choose is not None:
        choose = config.choose

        @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
        def message_request(params: types.ShowMessageRequestParams) -> types.MessageActionItem | None:
            title = choose(params)
            return types.MessageActionItem(title=title) if title is not None else None

    if config.configuration is not None:
        client.set_configuration(config.configuration, section="gpt-ls")
    answer = client.get_configuration

    def counted_answer(*args: Any, **kwargs: Any) -> Any:
        editor.configuration_pulls += 1
        return answer(*args, **kwargs)

    client.get_configuration = counted_answer  # type: ignore[method-assign]

    if tcp is not None:
        await client.start_tcp(*tcp)
    else:
        await client.start_io(*SERVER, *args, env=env)
    caps = client_capabilities(config.capabilities)
    if not config.apply_edit and caps.workspace is not None:
        caps.workspace.apply_edit = False
    if config.inline_completion and caps.text_document is not None:
        caps.text_document.inline_completion = types.InlineCompletionClientCapabilities(dynamic_registration=True)
    if config.position_encodings is not None and caps.general is not None:
        caps.general.position_encodings = config.position_encodings
    info = types.ClientInfo(name="Neovim", version="0.11.4") if config.capabilities == "neovim" else None
    result = await client.initialize_session(types.InitializeParams(
        capabilities=caps, root_uri=root_uri, initialization_options=config.initialization_options,
        client_info=info))
    editor.capabilities = result.capabilities
    kind = result.capabilities.position_encoding or "utf-16"
    chosen = str(getattr(kind, "value", kind))
    editor.negotiated = {"utf-8": "utf-8", "utf-32": "utf-32"}.get(chosen, "utf-16")  # type: ignore[assignment]
    return editor


def server_env(api_url: str, tmp: str, **extra: str) -> dict[str, str]:
    """A clean environment for the server: only what it needs, all inside ``tmp``."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": tmp,
        "OPENAI_API_KEY": "sk-test-key-0123456789",
        "OPENAI_BASE_URL": api_url,
        "GPT_LS_DATA_DIR": os.path.join(tmp, "data"),
        "GPT_LS_CONFIG_DIR": os.path.join(tmp, "config"),
        "GPT_LS_CACHE_DIR": os.path.join(tmp, "cache"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env.update(extra)
    return env
