"""The LSP wiring: handlers read params, call one function, return an lsprotocol type.

The work itself lives elsewhere: ``engine`` runs an exchange, ``stream`` writes it into
the document, ``prompts`` builds the messages. What is here is the glue that needs the
connection: document sync, progress, edits, hovers and messages.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.workspace import TextDocument

from gpt_ls import __version__, prompts
from gpt_ls.actions import BUILTIN_ACTIONS, Action, action_by_command
from gpt_ls.engine import Engine, Outcome, Request
from gpt_ls.errors import GptLsError, InvalidRequest
from gpt_ls.logs import add_secret, mask
from gpt_ls.settings import Loaded, Settings, cache_dir, load_settings
from gpt_ls.stream import DocumentSink, InsertionTracker, apply_or_false
from gpt_ls.text import Change, Encoding, LineIndex, Pos, apply_change, eol_of

log = logging.getLogger(__name__)
#: Opt-in (debug level): how long each request spent in the server, for benchmarks/run.py.
timing = logging.getLogger("gpt_ls.timing")

STATUS_NOTIFICATION = "gpt-ls/status"
#: How long to wait for the editor to answer one ``workspace/applyEdit``.
APPLY_TIMEOUT = 10.0
PROGRESS_INTERVAL = 0.5


def gc_count() -> int:
    """Garbage collections so far, all generations (for the timing log)."""
    return sum(int(g["collections"]) for g in gc.get_stats())


class GptProtocol(LanguageServerProtocol):
    """pygls's protocol, with document changes applied by LSP's own line rules."""

    def handle_message(self, message: Any) -> None:
        """Dispatch; with ``gpt_ls.timing`` at debug, log each request's time in the server.

        For a synchronous handler (code actions, hover) this spans the handler, the
        serialization and the write of the response.
        """
        if not timing.isEnabledFor(logging.DEBUG) or getattr(message, "id", None) is None:
            super().handle_message(message)
            return
        t0, c0, g0 = time.perf_counter(), time.thread_time(), gc_count()
        super().handle_message(message)
        wall, cpu = (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000
        # Wall time, this thread's CPU time (the gap is waiting: GIL, preemption), collections.
        timing.debug("%s %.4f %.4f %d", getattr(message, "method", "response"), wall, cpu, gc_count() - g0)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        """Apply each change, tell the trackers where it happened, then the user handler."""
        server = self._server
        assert isinstance(server, GptLanguageServer)
        server.apply_did_change(params)
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None


@dataclass
class HoverNote:
    """An explanation shown as hover over a tracked range."""

    start: int
    end: int
    markdown: str

    def on_change(self, change: Change) -> None:
        """Keep the range over the same text as the document changes."""
        delta = len(change.text) - (change.end - change.start)
        if change.end <= self.start:
            self.start += delta
            self.end += delta
        elif change.start < self.end:
            self.end = max(self.start, self.end + delta)


@dataclass
class Running:
    """One exchange in flight."""

    id: int
    action: Action
    task: asyncio.Task[Outcome] | None = None
    tokens: int = 0
    progress_token: str | None = None
    last_report: float = 0.0
    trackers: list[InsertionTracker] = field(default_factory=list)


class LspEditorPort:
    """The ``EditorPort`` for the stream sink: documents and edits over LSP."""

    def __init__(self, server: GptLanguageServer) -> None:
        self.server = server

    @property
    def encoding(self) -> Encoding:
        return self.server.encoding

    @property
    def versioned(self) -> bool:
        """Send versioned ``documentChanges``: stale edits are then refused, not misplaced."""
        caps = self.server.client_capabilities.workspace
        edit = caps.workspace_edit if caps else None
        # Neovim checks versions of documentChanges without advertising them.
        return bool(edit and edit.document_changes) or self.server.client_name == "Neovim"

    def document(self, uri: str) -> tuple[str, int | None] | None:
        doc = self.server.open_document(uri)
        return (doc.source, doc.version) if doc is not None else None

    async def apply_insert(self, uri: str, version: int | None, at: Pos, text: str) -> bool:
        position = types.Position(at.line, at.character)
        edit = types.TextEdit(range=types.Range(position, position), new_text=text)
        if self.versioned:
            workspace_edit = types.WorkspaceEdit(document_changes=[
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                    edits=[edit],
                )
            ])
        else:
            workspace_edit = types.WorkspaceEdit(changes={uri: [edit]})
        params = types.ApplyWorkspaceEditParams(edit=workspace_edit, label="gpt-ls")

        async def call() -> bool:
            result = await self.server.workspace_apply_edit_async(params)
            if not result.applied:
                log.info("edit not applied: %s", result.failure_reason)
            return bool(result.applied)

        return await apply_or_false(call(), APPLY_TIMEOUT)


class GptLanguageServer(LanguageServer):
    """The gpt-ls server: state shared by the handlers."""

    def __init__(self) -> None:
        super().__init__("gpt-ls", __version__, protocol_cls=GptProtocol)
        self.engine = Engine()
        self.editor_settings: dict[str, Any] = {}
        self.loaded: Loaded = load_settings()
        self.trackers: dict[str, list[InsertionTracker]] = {}
        self.hovers: dict[str, list[HoverNote]] = {}
        self.running: dict[int, Running] = {}
        self._next_id = 0
        self._shown_problems: set[str] = set()
        self.port = LspEditorPort(self)
        self.client_info: types.ClientInfo | None = None
        self._warm: asyncio.Future[None] | None = None
        self._tokenizer_warm: asyncio.Future[None] | None = None

    @property
    def client_name(self) -> str:
        return self.client_info.name if self.client_info is not None else ""

    # -- settings -------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    @property
    def workspace_root(self) -> Path | None:
        try:
            root = self.workspace.root_path
        except Exception:
            return None
        return Path(root) if root else None

    def reload_settings(self) -> None:
        """Merge every settings layer again and report new problems once."""
        self.loaded = load_settings(self.editor_settings, self.workspace_root)
        add_secret(self.loaded.settings.api_key)
        for problem in self.loaded.problems:
            if problem not in self._shown_problems:
                self._shown_problems.add(problem)
                self.show(f"gpt-ls settings: {problem}", types.MessageType.Warning)

    def set_editor_settings(self, raw: Any) -> None:
        """Take settings from the editor: a flat object, or one under a ``gpt-ls`` key."""
        if isinstance(raw, dict) and isinstance(raw.get("gpt-ls"), dict):
            raw = raw["gpt-ls"]
        if raw is None:
            return
        if not isinstance(raw, dict):
            self.show("gpt-ls settings: expected an object of settings; ignored", types.MessageType.Warning)
            return
        add_secret(raw.get("apiKey") if isinstance(raw.get("apiKey"), str) else None)
        self.editor_settings = {**self.editor_settings, **raw}
        self.reload_settings()

    async def pull_configuration(self) -> None:
        """Ask the client for the ``gpt-ls`` section, when it offers workspace/configuration."""
        caps = self.client_capabilities.workspace
        if not (caps and caps.configuration):
            return
        try:
            result = await asyncio.wait_for(
                self.workspace_configuration_async(
                    types.ConfigurationParams(items=[types.ConfigurationItem(section="gpt-ls")])
                ),
                5,
            )
        except Exception as exc:
            log.info("workspace/configuration failed: %s", exc)
            return
        if result and isinstance(result[0], dict):
            self.set_editor_settings(result[0])

    def warm_up(self) -> None:
        """Load the SDK and its TLS context off the critical path, so the first action does not wait."""

        def load() -> None:
            try:
                client = importlib.import_module("gpt_ls.client")
                client._ssl_context()
            except Exception as exc:  # the first action reports it properly
                log.warning("could not load the openai SDK: %s", exc)

        self._warm = asyncio.get_running_loop().run_in_executor(None, load)

    # -- documents ------------------------------------------------------------
    @property
    def encoding(self) -> Encoding:
        kind = str(getattr(self.workspace, "position_encoding", None) or "utf-16")
        kind = kind.rsplit(".", 1)[-1].lower().replace("_", "-")
        return {"utf8": "utf-8", "utf32": "utf-32"}.get(kind.replace("-", ""), "utf-16")  # type: ignore[return-value]

    def open_document(self, uri: str) -> TextDocument | None:
        """The document if the client has it open (never read from disk)."""
        try:
            docs = self.workspace.text_documents
        except Exception:
            return None
        doc: TextDocument | None = docs.get(uri)
        return doc

    def apply_did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        """Apply content changes with LSP line rules and let trackers follow them."""
        uri = params.text_document.uri
        doc = self.open_document(uri)
        if doc is None:
            log.warning("didChange for a document that is not open: %s", uri)
            return
        encoding = self.encoding
        text = doc.source
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                start = Pos(change.range.start.line, change.range.start.character)
                end = Pos(change.range.end.line, change.range.end.character)
                new, applied = apply_change(text, start, end, change.text, encoding)
            else:
                new, applied = apply_change(text, None, None, change.text, encoding)
            for tracker in self.trackers.get(uri, []):
                tracker.on_change(applied, text, new)
            for note in self.hovers.get(uri, []):
                note.on_change(applied)
            text = new
        doc._source = text  # pygls keeps the text here; we applied the changes ourselves
        doc.version = params.text_document.version

    def document_for(self, uri: str) -> TextDocument:
        """An open document, or a clear error for the editor."""
        doc = self.open_document(uri)
        if doc is None:
            raise InvalidRequest(f"gpt-ls does not have {uri} open: open the file in the editor first.")
        return doc

    # -- messages and progress ------------------------------------------------
    def show(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        """One ``window/showMessage``, with secrets masked."""
        self.window_show_message(types.ShowMessageParams(type=kind, message=mask(message)))

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Unexpected errors: logged in full, shown briefly, never as a traceback."""
        if source.__name__ == "FeatureRequestError":
            log.info("request failed: %s", error)  # the client got it as a JSON-RPC error
            return
        log.error("internal error: %s", error)
        self.show(f"gpt-ls internal error: {error}. The server keeps running; see its log.")

    def notify_status(self, message: str) -> None:
        """The ``gpt-ls/status`` notification that status bars show."""
        tokens = sum(r.tokens for r in self.running.values())
        self.protocol.notify(
            STATUS_NOTIFICATION, {"running": len(self.running), "tokens": tokens, "message": message}
        )

    def _supports(self, *path: str) -> bool:
        node: Any = self.client_capabilities
        for name in path:
            node = getattr(node, name, None)
            if node is None:
                return False
        return bool(node)

    async def begin_progress(self, run: Running, title: str) -> None:
        """Work-done progress, cancellable, when the client supports it."""
        if not self._supports("window", "work_done_progress"):
            return
        token = str(uuid.uuid4())
        try:
            await asyncio.wait_for(self.work_done_progress.create_async(token), 5)
        except Exception as exc:
            log.info("progress not available: %s", exc)
            return
        run.progress_token = token
        self.work_done_progress.begin(
            token, types.WorkDoneProgressBegin(title=title, cancellable=True, message="waiting for the model")
        )
        future = self.work_done_progress.tokens.get(token)
        if future is not None:
            future.add_done_callback(lambda f: self.cancel(run.id) if f.cancelled() else None)

    def on_tokens(self, run: Running, count: int) -> None:
        """Report tokens received, at most every PROGRESS_INTERVAL seconds."""
        run.tokens = count
        now = time.monotonic()
        if now - run.last_report < PROGRESS_INTERVAL:
            return
        run.last_report = now
        message = f"{count} tokens"
        if run.progress_token:
            self.work_done_progress.report(run.progress_token, types.WorkDoneProgressReport(message=message))
        self.notify_status(message)

    def end_progress(self, run: Running, message: str) -> None:
        """Always end the progress."""
        if run.progress_token:
            self.work_done_progress.end(run.progress_token, types.WorkDoneProgressEnd(message=message))

    def cancel(self, run_id: int | None = None) -> int:
        """Cancel one exchange (or all); return how many were cancelled."""
        targets = [r for r in self.running.values() if run_id is None or r.id == run_id]
        for run in targets:
            if run.task is not None and not run.task.done():
                run.task.cancel()
        return len(targets)

    # -- actions --------------------------------------------------------------
    def selection_request(self, action: Action, uri: str, rng: types.Range) -> tuple[Request, int, int]:
        """Read the selection (or the current line when it is empty) and build the request."""
        doc = self.document_for(uri)
        text = doc.source
        index = LineIndex(text)
        if rng.start.line >= index.line_count or rng.start.line < 0 or rng.end.line < 0:
            raise InvalidRequest(
                f"The selection (line {rng.start.line + 1}) is outside the document "
                f"({index.line_count} lines): select the text again."
            )
        start = index.offset(rng.start.line, rng.start.character, self.encoding)
        end = index.offset(rng.end.line, rng.end.character, self.encoding)
        if end < start:
            start, end = end, start
        if start == end:  # no selection: the current line
            line = index.position(start, "utf-32").line
            start, end = index.starts[line], index.ends[line]
        selection = text[start:end]
        if not selection.strip():
            raise InvalidRequest(f"{action.title}: the selection is empty. Select some text first.")
        settings = self.settings
        before, after = prompts.excerpt(text, start, end, settings.context_lines)
        ctx = prompts.SelectionContext(uri, doc.language_id or "plaintext", selection, before, after)
        root = self.workspace_root
        from gpt_ls.history import workspace_key

        req = Request(
            action, ctx, settings, workspace=workspace_key(root),
            range={"start": {"line": rng.start.line, "character": rng.start.character},
                   "end": {"line": rng.end.line, "character": rng.end.character}},
        )
        return req, start, end

    def can_edit(self) -> bool:
        return self._supports("workspace", "apply_edit")

    async def run_action(self, action: Action, uri: str, rng: types.Range) -> dict[str, Any]:
        """Start an action as an owned task; streaming actions return at once."""
        try:
            req, start, end = self.selection_request(action, uri, rng)
        except GptLsError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None
        self._next_id += 1
        run = Running(self._next_id, action)
        self.running[run.id] = run
        run.task = asyncio.create_task(self._run(run, req, start, end), name=f"gpt-ls {action.id} {run.id}")
        if action.output == "hover" or not self.can_edit():
            outcome = await asyncio.shield(run.task)
            return {"id": run.id, "status": outcome.status, "text": outcome.text}
        return {"id": run.id, "status": "started"}

    async def _run(self, run: Running, req: Request, start: int, end: int) -> Outcome:
        title = f"gpt-ls: {run.action.title.removeprefix('GPT: ')}"
        sink: DocumentSink | None = None
        chunks: list[str] = []
        outcome: Outcome | None = None
        uri = req.context.uri
        try:
            await self.begin_progress(run, title)
            self.notify_status(f"{run.action.title}…")
            doc = self.document_for(uri)
            if req.action.output == "insert_below" and self.can_edit():
                sink = self._insert_below_sink(run, uri, doc.source, end)

            def on_text(delta: str) -> None:
                chunks.append(delta)
                if sink is not None:
                    sink.write(delta)

            outcome = await self.engine.run(req, on_text, lambda n: self.on_tokens(run, n))
            for notice in outcome.notices:
                self.show(notice, types.MessageType.Warning)
            await self._deliver(run, req, outcome, sink, start, end)
            return outcome
        except asyncio.CancelledError:
            outcome = Outcome(text="".join(chunks), status="cancelled", model=req.settings.model)
            if sink is not None:
                await sink.close()
            return outcome
        except GptLsError as exc:
            self.show(str(exc))
            outcome = Outcome(text="".join(chunks), status="error", model=req.settings.model, error=exc)
            return outcome
        except Exception as exc:
            log.exception("action %s failed", run.action.id)
            self.show(f"gpt-ls internal error while running {run.action.title}: {exc}. See the log.")
            outcome = Outcome(text="".join(chunks), status="error", model=req.settings.model)
            return outcome
        finally:
            for tracker in run.trackers:
                if tracker in self.trackers.get(uri, []):
                    self.trackers[uri].remove(tracker)
            self.running.pop(run.id, None)
            end_message = self._end_message(outcome)
            self.end_progress(run, end_message)
            self.notify_status(end_message)

    def _end_message(self, outcome: Outcome | None) -> str:
        if outcome is None:
            return "failed"
        if outcome.status == "complete":
            return outcome.usage_line(self.settings.prices)
        if outcome.status == "cancelled":
            return "cancelled"
        return f"failed: {outcome.error.kind if outcome.error else 'error'}"

    def _insert_below_sink(self, run: Running, uri: str, text: str, end: int) -> DocumentSink:
        """A sink at the start of the line after the selection (a new line at end of file)."""
        index = LineIndex(text)
        line = index.position(end, "utf-32").line
        # A selection ending at column 0 of a line ends before that line.
        if end == index.starts[line] and end > 0 and line > 0:
            line -= 1
        prefix, final_eol = "", True
        if line + 2 < index.line_count:
            at = index.starts[line + 1]
        elif line + 1 < index.line_count:
            # The selection ends on the last line, before the final line ending: insert
            # before that ending, since editors (Neovim) treat the position after it as
            # past the end and add whole lines there.
            at, prefix, final_eol = index.ends[line], "\n", False
        else:
            at, prefix = len(text), "\n" if text else ""  # the last line has no line ending
        tracker = InsertionTracker(at)
        self.trackers.setdefault(uri, []).append(tracker)
        run.trackers.append(tracker)
        sink = DocumentSink(self.port, uri, tracker, eol=eol_of(text), prefix=prefix, final_eol=final_eol)
        sink.start()
        return sink

    async def _deliver(
        self, run: Running, req: Request, outcome: Outcome, sink: DocumentSink | None, start: int, end: int
    ) -> None:
        """Put the reply where the action says; fall back so that nothing is lost."""
        uri = req.context.uri
        if outcome.error is not None:
            self.show(str(outcome.error))
        unfinished = outcome.status != "complete" and bool(outcome.text)
        marker = ""
        if unfinished:
            reason = "cancelled" if outcome.status == "cancelled" else (
                outcome.error.kind if outcome.error else "error")
            marker = f"\n[gpt-ls: reply unfinished ({reason})]"
        if sink is not None:
            report = await sink.close(marker if outcome.text else "")
            if report.complete_in_document:
                return
            self._fallback(run, req, outcome, report.reason or "the edit was not applied")
            return
        if not outcome.text:
            return
        if req.action.output == "hover":
            footer = f"\n\n---\n*{outcome.usage_line(req.settings.prices)}*"
            markdown = outcome.text + (marker if unfinished else "") + footer
            if req.settings.explain_output == "comment" and self.can_edit():
                await self._insert_comment(run, req, outcome.text + marker, start)
            else:
                notes = self.hovers.setdefault(uri, [])
                notes.append(HoverNote(start, end, markdown))
                del notes[:-20]
            return
        self._fallback(run, req, outcome, "this editor does not accept edits from the server")

    async def _insert_comment(self, run: Running, req: Request, text: str, start: int) -> None:
        doc = self.document_for(req.context.uri)
        index = LineIndex(doc.source)
        line = index.position(start, "utf-32").line
        line_text = index.line_text(line)
        indent = line_text[: len(line_text) - len(line_text.lstrip())]
        tracker = InsertionTracker(index.starts[line])
        self.trackers.setdefault(req.context.uri, []).append(tracker)
        run.trackers.append(tracker)
        eol = eol_of(doc.source)
        sink = DocumentSink(self.port, req.context.uri, tracker, eol=eol)
        sink.start()
        sink.write(prompts.as_comment(text, req.context.language, indent, eol))
        report = await sink.close()
        if not report.complete_in_document:
            self.show(f"gpt-ls could not insert the explanation ({report.reason}); hover shows it instead.",
                      types.MessageType.Warning)

    def _fallback(self, run: Running, req: Request, outcome: Outcome, reason: str) -> None:
        """Show the whole reply as a Markdown document (or a message): never lose it."""
        text = outcome.text
        path: Path | None = None
        try:
            folder = cache_dir() / "replies"
            folder.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = folder / f"{stamp}-{req.action.id}-{run.id}.md"
            path.write_text(f"# {req.action.title}\n\n{text}\n", encoding="utf-8")
        except OSError as exc:
            log.warning("could not write the reply file: %s", exc)
            path = None
        if path is not None and self._supports("window", "show_document"):
            self.show(
                f"gpt-ls could not put the whole reply into the document ({reason}); "
                f"it is shown in {path.name} and kept in history.",
                types.MessageType.Warning,
            )
            self.window_show_document(types.ShowDocumentParams(uri=path.as_uri(), take_focus=False))
            return
        where = f" (also saved to {path})" if path is not None else ""
        self.show(f"{req.action.title} ({reason}){where}:\n\n{text}", types.MessageType.Info)

    def write_markdown(self, name: str, text: str) -> Path:
        """A Markdown file under the cache dir, for ``window/showDocument``."""
        folder = cache_dir() / "documents"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_text(text, encoding="utf-8")
        return path

    def show_markdown(self, name: str, text: str) -> str:
        """Open ``text`` in the editor as a Markdown document (or show it as a message)."""
        path = self.write_markdown(name, text)
        if self._supports("window", "show_document"):
            self.window_show_document(types.ShowDocumentParams(uri=path.as_uri(), take_focus=True))
        else:
            self.show(text, types.MessageType.Info)
        return path.as_uri()

    def new_conversation(self) -> dict[str, Any]:
        """Start a fresh conversation in this workspace: Continue follows it from now on."""
        from gpt_ls.history import workspace_key

        if not self.settings.history:
            raise InvalidRequest("History is turned off (setting 'history'): there is no conversation to start.")
        conv_id = self.engine.store().new_conversation(
            workspace_key(self.workspace_root), "New conversation", model=self.settings.model)
        self.show("gpt-ls: new conversation started.", types.MessageType.Info)
        return {"conversation": conv_id}

    def history_overview(self, limit: int = 20) -> dict[str, Any]:
        """Recent conversations of this workspace, opened as one Markdown document."""
        from gpt_ls.history import workspace_key

        store = self.engine.store()
        workspace = workspace_key(self.workspace_root)
        conversations = store.list_conversations(workspace, limit=limit)
        lines = [f"# gpt-ls history: {workspace or '(no workspace)'}", ""]
        if not conversations:
            lines.append("No conversations yet.")
        for conv in conversations:
            lines.append(f"- **{conv.title or '(untitled)'}** · {conv.message_count} messages · "
                         f"{conv.updated} · id {conv.id}")
        lines += ["", "Open one with the command `gpt-ls.openConversation` and its id "
                  "(or `gpt-ls history show ID` in a terminal)."]
        uri = self.show_markdown("history.md", "\n".join(lines) + "\n")
        return {"uri": uri, "conversations": [{"id": c.id, "title": c.title, "updated": c.updated,
                                               "messages": c.message_count} for c in conversations]}

    def open_conversation(self, conversation_id: int) -> dict[str, Any]:
        """One conversation as a Markdown document."""
        from gpt_ls.history import to_markdown

        try:
            conv, messages = self.engine.store().get_conversation(conversation_id)
        except GptLsError as exc:
            raise InvalidRequest(str(exc)) from None
        uri = self.show_markdown(f"conversation-{conv.id}.md", to_markdown(conv, messages))
        return {"uri": uri, "id": conv.id}

    def hover_at(self, uri: str, position: types.Position) -> types.Hover | None:
        """The latest explanation whose range holds ``position``."""
        doc = self.open_document(uri)
        notes = self.hovers.get(uri)
        if doc is None or not notes:
            return None
        index = LineIndex(doc.source)
        offset = index.offset(position.line, position.character, self.encoding)
        for note in reversed(notes):
            if note.start <= offset <= note.end:
                a = index.position(note.start, self.encoding)
                b = index.position(note.end, self.encoding)
                return types.Hover(
                    contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=note.markdown),
                    range=types.Range(types.Position(a.line, a.character), types.Position(b.line, b.character)),
                )
        return None

    def warm_tokenizer(self) -> None:
        """Load the model's tokenizer in the background, once: an action is probably coming.

        Not at initialize: it adds 40-80 MB, which only servers that are used should pay.
        Loading it on the event loop at the first action would stall every request for
        up to a second (benchmarks/run.py measures both).
        """
        if self._tokenizer_warm is not None:
            return
        encoding = self.engine.model_info(self.settings).encoding

        def load() -> None:
            from gpt_ls import tokens

            tokens.preload([encoding])

        self._tokenizer_warm = asyncio.get_running_loop().run_in_executor(None, load)

    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        """The actions for a range: data only, no document reading, no network."""
        self.warm_tokenizer()
        only = params.context.only
        actions = []
        for action in BUILTIN_ACTIONS:
            if not action.code_action:
                continue
            if only and not any(action.kind == k or action.kind.startswith(k + ".") for k in only):
                continue
            actions.append(types.CodeAction(
                title=action.title,
                kind=action.kind,
                command=types.Command(
                    title=action.title, command=action.command,
                    arguments=[params.text_document.uri, params.range],
                ),
            ))
        return actions


server = GptLanguageServer()


@server.feature(types.INITIALIZE)
def initialize(ls: GptLanguageServer, params: types.InitializeParams) -> None:
    """Take settings from ``initializationOptions``."""
    ls.client_info = params.client_info
    ls.set_editor_settings(params.initialization_options)
    if params.initialization_options is None:
        ls.reload_settings()


@server.feature(types.INITIALIZED)
async def initialized(ls: GptLanguageServer, params: types.InitializedParams) -> None:
    """Pull the ``gpt-ls`` configuration section; load the SDK in the background."""
    ls.warm_up()
    await ls.pull_configuration()


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def did_change_configuration(ls: GptLanguageServer, params: types.DidChangeConfigurationParams) -> None:
    """New settings apply to the next request."""
    if isinstance(params.settings, dict) and params.settings:
        ls.set_editor_settings(params.settings)
    else:
        await ls.pull_configuration()


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: GptLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    """Forget hovers of a closed document."""
    ls.hovers.pop(params.text_document.uri, None)


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.RefactorRewrite]),
)
def code_action(ls: GptLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """List the GPT actions for the selection."""
    return ls.code_actions(params)


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: GptLanguageServer, params: types.HoverParams) -> types.Hover | None:
    """Show an explanation over the range it explains."""
    return ls.hover_at(params.text_document.uri, params.position)


def _action_command(action: Action) -> Callable[..., Any]:
    async def handler(ls: GptLanguageServer, uri: str, range: types.Range) -> dict[str, Any]:
        return await ls.run_action(action, uri, range)

    handler.__doc__ = f"Run {action.title}."
    return handler


for _action in BUILTIN_ACTIONS:
    server.command(_action.command)(_action_command(_action))


@server.command("gpt-ls.cancel")
def cancel_all(ls: GptLanguageServer) -> dict[str, int]:
    """Cancel every running request."""
    return {"cancelled": ls.cancel()}


def _plain_errors(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a user-facing error becomes a JSON-RPC error with its sentence."""
    try:
        return fn()
    except GptLsError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None


@server.command("gpt-ls.newConversation")
def new_conversation(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
    """Start a fresh conversation (arguments are ignored: the workspace decides)."""
    return _plain_errors(ls.new_conversation)  # type: ignore[no-any-return]


@server.command("gpt-ls.showHistory")
def show_history(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
    """Open the workspace's recent conversations as a Markdown document."""
    return _plain_errors(ls.history_overview)  # type: ignore[no-any-return]


@server.command("gpt-ls.openConversation")
def open_conversation(ls: GptLanguageServer, conversation_id: int) -> dict[str, Any]:
    """Open one conversation as a Markdown document."""
    return _plain_errors(lambda: ls.open_conversation(conversation_id))  # type: ignore[no-any-return]


@server.command("gpt-ls.check")
async def check(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
    """Test the connection with the current settings; show the report."""
    from gpt_ls.check import run_check

    report = await run_check(ls.loaded)
    kind = types.MessageType.Info if report.ok else types.MessageType.Error
    ls.show("\n".join(report.lines), kind)
    return {"ok": report.ok, "lines": [mask(line) for line in report.lines], "latencyMs": report.latency_ms}


@server.feature(types.SHUTDOWN)
async def shutdown(ls: GptLanguageServer, params: None = None) -> None:
    """Cancel running requests (their partial replies are saved) and close the store."""
    tasks = [r.task for r in ls.running.values() if r.task is not None]
    ls.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=5)
    ls.engine.close()


def action_for(command: str) -> Action | None:
    """Re-exported for tests: the action a command runs."""
    return action_by_command(command)
