"""Running an action in the editor: from a command's arguments to the reply in place.

``Runner`` reads the selection and its context from the open document, starts the
exchange (``engine``) as an owned task with progress, and delivers the reply the way
the action declares: streamed below the selection (``stream``), replacing it, as a
comment above it, as hover text, or as a Markdown document. When the reply cannot go
where it should, it opens as a document instead: a reply is never lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from gpt_ls import prompts
from gpt_ls.actions import SEND, Action
from gpt_ls.engine import Outcome, Request
from gpt_ls.errors import GptLsError, InvalidRequest
from gpt_ls.history.store import workspace_key
from gpt_ls.settings import Settings
from gpt_ls.stream import DocumentSink, InsertionTracker, apply_or_false, normalize_eol
from gpt_ls.text import Change, Encoding, LineIndex, Pos, eol_of

if TYPE_CHECKING:
    from gpt_ls.server import GptLanguageServer

log = logging.getLogger(__name__)

#: How long to wait for the editor to answer one ``workspace/applyEdit``.
APPLY_TIMEOUT = 10.0
#: Other open documents sent by "Ask about the workspace", at most.
WORKSPACE_DOCUMENTS = 20


@dataclass
class HoverNote:
    """A reply shown as hover over a tracked range."""

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
    finished: bool = False
    last_report: float = 0.0
    trackers: list[InsertionTracker] = field(default_factory=list)


@dataclass
class Target:
    """Where a request came from: the document, the selection's offsets, its text."""

    uri: str
    start: int
    end: int
    selection: str
    #: The document's text when the selection was read, and its line index: the request is
    #: built from this one snapshot, even if the user edits while choosing an ``{input}``.
    text: str = ""
    index: LineIndex | None = None
    #: Follows the selection through edits while the reply is written (for "replace").
    anchor: HoverNote | None = None


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
        return await self.apply_replace(uri, version, at, at, text)

    async def apply_replace(self, uri: str, version: int | None, start: Pos, end: Pos, text: str) -> bool:
        """Replace a range (an insertion when ``start == end``); True if the editor applied it."""
        rng = types.Range(types.Position(start.line, start.character), types.Position(end.line, end.character))
        edit = types.TextEdit(range=rng, new_text=text)
        if self.versioned:
            workspace_edit = types.WorkspaceEdit(document_changes=[
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                    edits=[edit],
                )
            ])
        else:
            workspace_edit = types.WorkspaceEdit(changes={uri: [edit]})
        params = types.ApplyWorkspaceEditParams(edit=workspace_edit)

        async def call() -> bool:
            result = await self.server.workspace_apply_edit_async(params)
            if not result.applied:
                log.info("edit not applied: %s", result.failure_reason)
            return bool(result.applied)

        return await apply_or_false(call(), APPLY_TIMEOUT)


def diagnostics_text(diagnostics: Any) -> str:
    """Diagnostics passed by the editor (LSP JSON), one line each."""
    lines = []
    for d in diagnostics if isinstance(diagnostics, list) else []:
        if not isinstance(d, dict):
            continue
        line = d.get("range", {}).get("start", {}).get("line")
        where = f"line {line + 1}: " if isinstance(line, int) else ""
        source = f" ({d['source']})" if isinstance(d.get("source"), str) else ""
        lines.append(f"{where}{d.get('message', '')}{source}")
    return "\n".join(lines)


class Runner:
    """Runs actions for one language server."""

    def __init__(self, ls: GptLanguageServer) -> None:
        self.ls = ls
        self.port = LspEditorPort(ls)
        self.trackers: dict[str, list[InsertionTracker]] = {}
        self.hovers: dict[str, list[HoverNote]] = {}
        self.anchors: dict[str, list[HoverNote]] = {}
        self.running: dict[int, Running] = {}
        self._next_id = 0

    # -- following the document -------------------------------------------------
    def on_change(self, uri: str, change: Change, old: str, new: str) -> None:
        """Every tracked insertion point and hover range follows each change."""
        for tracker in self.trackers.get(uri, []):
            tracker.on_change(change, old, new)
        for note in (*self.hovers.get(uri, []), *self.anchors.get(uri, [])):
            note.on_change(change)

    def forget(self, uri: str) -> None:
        """A closed document has no hovers."""
        self.hovers.pop(uri, None)

    # -- building requests ------------------------------------------------------
    def target(self, action: Action, uri: str, rng: types.Range) -> Target:
        """The selection (or the current line when it is empty), checked."""
        doc = self.ls.document_for(uri)
        text = doc.source
        index = LineIndex(text)
        if rng.start.line >= index.line_count or rng.start.line < 0 or rng.end.line < 0:
            raise InvalidRequest(
                f"The selection (line {rng.start.line + 1}) is outside the document "
                f"({index.line_count} lines): select the text again."
            )
        encoding = self.ls.encoding
        start = index.offset(rng.start.line, rng.start.character, encoding)
        end = index.offset(rng.end.line, rng.end.character, encoding)
        if end < start:
            start, end = end, start
        if start == end:  # no selection: the current line
            line = index.position(start, "utf-32").line
            start, end = index.starts[line], index.ends[line]
        selection = text[start:end]
        if not selection.strip():
            raise InvalidRequest(f"{action.title}: the selection is empty. Select some text first.")
        return Target(uri, start, end, selection, text, index)

    def instructions(self) -> str:
        """The workspace's project instructions (``.gpt-ls.md``), joined to every system message."""
        return prompts.project_instructions(self.ls.workspace_root, self.ls.settings.instructions_file)

    def _settings_for(self, action: Action) -> Settings:
        """The settings with the action's own model parameters, for this action only."""
        s = self.ls.settings
        changes: dict[str, Any] = {}
        if action.model:
            changes["model"] = action.model
        if action.temperature is not None:
            changes["temperature"] = action.temperature
        if action.max_tokens is not None:
            changes["max_tokens"] = action.max_tokens
        return dataclasses.replace(s, **changes) if changes else s

    def _other_documents(self, uri: str) -> str:
        parts = []
        for other in list(self.ls.workspace.text_documents.values())[:WORKSPACE_DOCUMENTS]:
            if other.uri != uri:
                parts.append(f"\n\n--- open file: {other.filename} ---\n{other.source}")
        return "".join(parts)

    def build_request(self, action: Action, target: Target, extra: dict[str, Any], choice: str) -> Request:
        """The engine request: context as the action declares, settings, instructions."""
        doc = self.ls.document_for(target.uri)
        text = target.text
        index = target.index or LineIndex(text)
        settings = self._settings_for(action)
        if action.context == "excerpt":
            before, after = prompts.excerpt(text, target.start, target.end, settings.context_lines, index)
        elif action.context in ("document", "workspace"):
            before, after = text[: target.start], text[target.end :]
            if action.context == "workspace":
                after += self._other_documents(target.uri)
        else:
            before, after = "", ""
        ctx = prompts.SelectionContext(
            target.uri, doc.language_id or "plaintext", target.selection, before, after,
            document=text,
            diagnostics=diagnostics_text(extra.get("diagnostics")),
            input=choice,
            target_language=settings.translate_to or prompts.default_target_language(target.selection),
            persona=settings.persona,
            scope=action.context,
        )
        a = index.position(target.start, self.ls.encoding)
        b = index.position(target.end, self.ls.encoding)
        return Request(
            action, ctx, settings, workspace=workspace_key(self.ls.workspace_root),
            range={"start": {"line": a.line, "character": a.character},
                   "end": {"line": b.line, "character": b.character}},
            system_extra=self.instructions(),
        )

    async def ask_input(self, action: Action) -> str | None:
        """The user's answer for ``{input}``: one of the action's choices (None: dismissed)."""
        if not action.input_choices:
            return ""
        if not self.ls.supports("window", "show_message"):
            return action.input_choices[0]
        result = await self.ls.window_show_message_request_async(types.ShowMessageRequestParams(
            type=types.MessageType.Info,
            message=action.input_prompt or f"{action.title}: choose",
            actions=[types.MessageActionItem(title=c) for c in action.input_choices],
        ))
        return result.title if result is not None else None

    # -- running ----------------------------------------------------------------
    async def run_action(
        self, action: Action, uri: str, rng: types.Range, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Start an action as an owned task; actions that stream or edit return at once."""
        target = self.target(action, uri, rng)
        choice = await self.ask_input(action)
        if choice is None:
            return {"status": "dismissed"}
        req = self.build_request(action, target, extra or {}, choice)
        return await self._start(req, target)

    async def send_chat(self, uri: str) -> dict[str, Any]:
        """A chat document: send its sections, stream the reply into a new section."""
        doc = self.ls.document_for(uri)
        messages = prompts.parse_chat(doc.source)
        if not messages or messages[-1]["role"] != "user":
            raise InvalidRequest(
                f"{Path(doc.path).name}: write your message under a '## user' heading at the end, then send.")
        ctx = prompts.SelectionContext(uri, "markdown", messages[-1]["content"])
        req = Request(SEND, ctx, self.ls.settings, workspace=workspace_key(self.ls.workspace_root),
                      system_extra=self.instructions(), chat=messages)
        end = len(doc.source)
        return await self._start(req, Target(uri, end, end, ""))

    async def _start(self, req: Request, target: Target) -> dict[str, Any]:
        if req.action.output == "replace":
            target.anchor = HoverNote(target.start, target.end, "")
            self.anchors.setdefault(target.uri, []).append(target.anchor)
        self._next_id += 1
        run = Running(self._next_id, req.action)
        self.running[run.id] = run
        run.task = asyncio.create_task(self._run(run, req, target), name=f"gpt-ls {req.action.id} {run.id}")
        if req.action.output == "hover" or not self.ls.can_edit():
            outcome = await asyncio.shield(run.task)
            hover = {"output": "hover"} if req.action.output == "hover" else {}
            return {"id": run.id, "status": outcome.status, "text": outcome.text, **hover}
        return {"id": run.id, "status": "started"}

    def cancel(self, run_id: int | None = None) -> int:
        """Cancel one exchange (or all); return how many were cancelled."""
        targets = [r for r in self.running.values() if run_id is None or r.id == run_id]
        for run in targets:
            if run.task is not None and not run.task.done():
                run.task.cancel()
        return len(targets)

    async def shutdown(self) -> None:
        """Cancel running exchanges and wait (briefly) for their partial replies to be saved."""
        tasks = [r.task for r in self.running.values() if r.task is not None]
        self.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    def _streams(self, req: Request) -> bool:
        """Whether the reply streams into the document as it arrives."""
        return self.ls.can_edit() and (
            req.action.id == SEND.id or (req.action.output == "insert_below" and not req.action.code))

    async def _run(self, run: Running, req: Request, target: Target) -> Outcome:
        sink: DocumentSink | None = None
        chunks: list[str] = []
        outcome: Outcome | None = None
        uri = req.context.uri
        # Progress is created alongside the request: a slow editor does not delay the model.
        progress = asyncio.create_task(self.ls.begin_progress(run, f"gpt-ls: {run.action.title.removeprefix('GPT: ')}"))
        try:
            self.ls.notify_status(f"{run.action.title}…")
            if self._streams(req):
                sink = self._chat_sink(run, uri) if req.chat is not None else self._below_sink(run, uri, target.end)

            def on_text(delta: str) -> None:
                chunks.append(delta)
                if sink is not None:
                    sink.write(delta)

            outcome = await self.ls.engine.run(req, on_text, lambda n: self.ls.on_tokens(run, n))
            for notice in outcome.notices:
                self.ls.show(notice, types.MessageType.Warning)
            await self._deliver(run, req, outcome, sink, target)
            return outcome
        except asyncio.CancelledError:
            outcome = Outcome(text="".join(chunks), status="cancelled", model=req.settings.model)
            if sink is not None:
                await sink.close()
            return outcome
        except GptLsError as exc:
            self.ls.show(str(exc))
            outcome = Outcome(text="".join(chunks), status="error", model=req.settings.model, error=exc)
            return outcome
        except Exception as exc:
            log.exception("action %s failed", run.action.id)
            self.ls.show(f"gpt-ls internal error while running {run.action.title}: {exc}. See the log.")
            outcome = Outcome(text="".join(chunks), status="error", model=req.settings.model)
            return outcome
        finally:
            for tracker in run.trackers:
                if tracker in self.trackers.get(uri, []):
                    self.trackers[uri].remove(tracker)
            if target.anchor is not None and target.anchor in self.anchors.get(uri, []):
                self.anchors[uri].remove(target.anchor)
            self.running.pop(run.id, None)
            end_message = self._end_message(req, outcome)
            if not progress.done():
                # Give a prompt editor the chance to show progress at all, then move on.
                await asyncio.wait([progress], timeout=1.0)
            run.finished = True
            self.ls.end_progress(run, end_message)
            self.ls.notify_status(end_message)

    @staticmethod
    def _end_message(req: Request, outcome: Outcome | None) -> str:
        if outcome is None:
            return "failed"
        if outcome.status == "complete":
            return outcome.usage_line(req.settings.prices)
        if outcome.status == "cancelled":
            return "cancelled"
        return f"failed: {outcome.error.kind if outcome.error else 'error'}"

    def _sink(self, run: Running, uri: str, at: int, eol: str, **kw: Any) -> DocumentSink:
        tracker = InsertionTracker(at)
        self.trackers.setdefault(uri, []).append(tracker)
        run.trackers.append(tracker)
        sink = DocumentSink(self.port, uri, tracker, eol=eol, **kw)
        sink.start()
        return sink

    def _below_sink(self, run: Running, uri: str, end: int) -> DocumentSink:
        """A sink at the start of the line after the selection (a new line at end of file)."""
        text = self.ls.document_for(uri).source
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
        return self._sink(run, uri, at, eol_of(text), prefix=prefix, final_eol=final_eol)

    def _chat_sink(self, run: Running, uri: str) -> DocumentSink:
        """A sink that opens a new ``## assistant`` section at the end of a chat document."""
        text = self.ls.document_for(uri).source
        eol = eol_of(text)
        body = text.rstrip("\r\n")
        # Insert before the final line ending (see _below_sink), after the last text.
        return self._sink(run, uri, len(body), eol, prefix="\n\n## assistant\n\n", final_eol=False)

    async def _deliver(
        self, run: Running, req: Request, outcome: Outcome, sink: DocumentSink | None, target: Target
    ) -> None:
        """Put the reply where the action says; fall back so that nothing is lost."""
        if outcome.error is not None:
            self.ls.show(str(outcome.error))
        unfinished = outcome.status != "complete" and bool(outcome.text)
        marker = ""
        if unfinished:
            reason = "cancelled" if outcome.status == "cancelled" else (
                outcome.error.kind if outcome.error else "error")
            marker = f"\n[gpt-ls: reply unfinished ({reason})]"
        if sink is not None:
            suffix = marker if outcome.text else ""
            if req.chat is not None:
                suffix += "\n\n## user\n"
            report = await sink.close(suffix)
            if not report.complete_in_document:
                self.fallback(run, req, outcome, report.reason or "the edit was not applied")
            return
        if not outcome.text:
            return
        action = req.action
        output = action.output
        if action.id == "explain" and req.settings.explain_output == "comment":
            output = "comment_above"
        if output in ("insert_below", "replace", "comment_above") and not self.ls.can_edit():
            output = "hover" if output == "comment_above" else "document"
        if output == "hover":
            footer = f"\n\n---\n*{outcome.usage_line(req.settings.prices)}*"
            notes = self.hovers.setdefault(req.context.uri, [])
            notes.append(HoverNote(target.start, target.end, outcome.text + marker + footer))
            del notes[:-20]
        elif output == "document":
            path = self.ls.write_markdown(f"reply-{run.id}-{action.id}.md", f"# {action.title}\n\n{outcome.text}\n")
            self.ls.show_document(path)
        elif output == "comment_above":
            await self._insert_comment(run, req, outcome.text + marker, target)
        elif unfinished:
            # An unfinished code reply never replaces anything: show it instead.
            self.fallback(run, req, outcome, "the reply did not finish")
        elif output == "replace":
            await self._replace(run, req, outcome, target)
        else:  # insert_below, code
            text = self.ls.document_for(target.uri).source
            indent = _indent_of(text, target.start)
            sink = self._below_sink(run, target.uri, target.end)
            sink.write(prompts.match_indentation(prompts.strip_fences(outcome.text), indent))
            report = await sink.close()
            if not report.complete_in_document:
                self.fallback(run, req, outcome, report.reason or "the edit was not applied")

    async def _insert_comment(self, run: Running, req: Request, text: str, target: Target) -> None:
        source = self.ls.document_for(target.uri).source
        index = LineIndex(source)
        line = index.position(target.start, "utf-32").line
        eol = eol_of(source)
        sink = self._sink(run, target.uri, index.starts[line], eol)
        sink.write(prompts.as_comment(text, req.context.language, _indent_of(source, target.start), eol))
        report = await sink.close()
        if not report.complete_in_document:
            self.fallback(run, req, Outcome(text=text, status="complete", model=req.settings.model),
                          report.reason or "the edit was not applied")

    async def _replace(self, run: Running, req: Request, outcome: Outcome, target: Target) -> None:
        """Replace the selection, if it is still what it was; else show the reply."""
        doc = self.ls.document_for(target.uri)
        current = doc.source
        anchor = target.anchor
        start, end = (anchor.start, anchor.end) if anchor is not None else (target.start, target.end)
        if current[start:end] != target.selection:
            self.fallback(run, req, outcome, "the selection changed while the reply was written")
            return
        index = LineIndex(current)
        line_prefix = current[index.starts[index.position(start, "utf-32").line] : start]
        code = outcome.text
        if req.action.code:
            code = prompts.match_indentation(prompts.strip_fences(code), _indent_of(current, start))
            if line_prefix.strip():
                code = code.lstrip(" \t")  # the selection starts mid-line
            elif code.startswith(line_prefix):
                code = code[len(line_prefix) :]  # the line's indentation is already there
        a = index.position(start, self.ls.encoding)
        b = index.position(end, self.ls.encoding)
        version = doc.version if self.port.versioned else None
        if not await self.port.apply_replace(target.uri, version, a, b, normalize_eol(code, eol_of(current))):
            self.fallback(run, req, outcome, "the editor did not apply the edit")

    def fallback(self, run: Running, req: Request, outcome: Outcome, reason: str) -> None:
        """Show the whole reply as a Markdown document (or a message): never lose it."""
        text = outcome.text
        path: Path | None = None
        try:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = self.ls.write_markdown(f"{stamp}-{req.action.id}-{run.id}.md", f"# {req.action.title}\n\n{text}\n",
                                          folder="replies")
        except OSError as exc:
            log.warning("could not write the reply file: %s", exc)
            path = None
        if path is not None and self.ls.supports("window", "show_document"):
            self.ls.show(
                f"gpt-ls could not put the whole reply into the document ({reason}); "
                f"it is shown in {path.name} and kept in history.",
                types.MessageType.Warning,
            )
            self.ls.show_document(path, focus=False)
            return
        where = f" (also saved to {path})" if path is not None else ""
        self.ls.show(f"{req.action.title} ({reason}){where}:\n\n{text}", types.MessageType.Info)

    def hover_at(self, uri: str, position: types.Position) -> types.Hover | None:
        """The latest reply shown as hover whose range holds ``position``."""
        doc = self.ls.open_document(uri)
        notes = self.hovers.get(uri)
        if doc is None or not notes:
            return None
        encoding = self.ls.encoding
        index = LineIndex(doc.source)
        offset = index.offset(position.line, position.character, encoding)
        for note in reversed(notes):
            if note.start <= offset <= note.end:
                a = index.position(note.start, encoding)
                b = index.position(note.end, encoding)
                return types.Hover(
                    contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=note.markdown),
                    range=types.Range(types.Position(a.line, a.character), types.Position(b.line, b.character)),
                )
        return None


def _indent_of(text: str, offset: int) -> str:
    """The leading white space of the line that holds ``offset``."""
    index = LineIndex(text)
    line = index.line_text(index.position(offset, "utf-32").line)
    return line[: len(line) - len(line.lstrip())]
