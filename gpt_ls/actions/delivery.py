"""Where a reply goes: streamed into the document, replacing the selection, as a comment
above it, as hover text, or as a Markdown document. When it cannot go where it should, it
opens as a document instead: a reply is never lost.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

from gpt_ls import prompts
from gpt_ls.actions.catalog import Output
from gpt_ls.actions.editor import EditorPort
from gpt_ls.actions.edits import DocumentSink, edit_interval, normalize_eol
from gpt_ls.actions.hovers import Hovers, TrackedRange
from gpt_ls.actions.insertion import InsertionTracker
from gpt_ls.actions.requests import Target, document_for
from gpt_ls.errors import GptLsError
from gpt_ls.exchange import ExchangeRequest, Reply
from gpt_ls.pieces import Text
from gpt_ls.text import Encoding, LineIndex, Pos, eol_of

log = logging.getLogger(__name__)

#: Outputs that edit the document; a client without ``workspace/applyEdit`` gets these instead.
WITHOUT_EDITS: dict[str, Output] = {"insert_below": "document", "replace": "document", "comment_above": "hover"}


class SinkPort:
    """The editor port as a ``DocumentSink`` needs it."""

    def __init__(self, port: EditorPort) -> None:
        self.port = port

    @property
    def encoding(self) -> Encoding:
        return self.port.encoding

    @property
    def versioned(self) -> bool:
        return self.port.features.versioned_edits

    def document(self, uri: str) -> tuple[Text, int | None] | None:
        doc = self.port.document(uri)
        return (doc.content, doc.version) if doc is not None else None

    async def apply_insert(self, uri: str, version: int | None, at: Pos, text: str) -> bool:
        return await self.port.apply_edit(uri, at, at, text, version)


def effective_output(port: EditorPort, req: ExchangeRequest) -> Output:
    """Where this request's reply goes, given the settings and what the client can do."""
    output = req.action.output_in(req.settings)
    if not port.features.apply_edit:
        return WITHOUT_EDITS.get(output, output)
    return output


def reply_file_name(action_id: str) -> str:
    """A unique name for a reply's Markdown file: the time and a short random part.

    Not the run id: run ids start at 1 in every session, and a file of an earlier
    session must never be overwritten.
    """
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{action_id}-{uuid.uuid4().hex[:8]}.md"


def indent_of(text: str, offset: int) -> str:
    """The leading white space of the line that holds ``offset``."""
    index = LineIndex(text)
    line = index.line_text(index.position(offset, "utf-32").line)
    return line[: len(line) - len(line.lstrip())]


class Delivery:
    """One reply's way into the editor (one per run)."""

    def __init__(
        self, port: EditorPort, trackers: dict[str, list[InsertionTracker]], hovers: Hovers,
        run_id: int, req: ExchangeRequest, target: Target,
    ) -> None:
        self.port, self.trackers, self.hovers = port, trackers, hovers
        self.run_id, self.req, self.target = run_id, req, target
        self.output = effective_output(port, req)
        self.streams = port.features.apply_edit and req.action.streams
        self.sink: DocumentSink | None = None
        self._own: list[InsertionTracker] = []

    # -- streaming -------------------------------------------------------------
    def start(self) -> None:
        """Open the stream into the document, for actions that stream."""
        if self.streams:
            self.sink = self._chat_sink() if self.req.chat is not None else self._below_sink()

    def write(self, delta: str) -> None:
        if self.sink is not None:
            self.sink.write(delta)

    async def cancelled(self) -> None:
        """The exchange was cancelled: flush what streamed (history keeps the rest)."""
        if self.sink is not None:
            await self.sink.close()

    def release(self) -> None:
        """Stop following the document."""
        for tracker in self._own:
            if tracker in self.trackers.get(self.target.uri, []):
                self.trackers[self.target.uri].remove(tracker)

    def _sink(self, at: int, eol: str, **kw: Any) -> DocumentSink:
        tracker = InsertionTracker(at)
        self.trackers.setdefault(self.target.uri, []).append(tracker)
        self._own.append(tracker)
        size = len(document_for(self.port, self.target.uri).content)
        sink = DocumentSink(SinkPort(self.port), self.target.uri, tracker, eol=eol, interval=edit_interval(size), **kw)
        sink.start()
        return sink

    def _below_sink(self) -> DocumentSink:
        """A sink at the start of the line after the selection (a new line at end of file)."""
        text = document_for(self.port, self.target.uri).content  # in pieces: never joined here
        end = self.target.end
        line = text.position(end, "utf-32").line
        # A selection ending at column 0 of a line ends before that line.
        if end == text.line_start(line) and end > 0 and line > 0:
            line -= 1
        prefix, final_eol, open_line = "", True, False
        if line + 2 < text.line_count:
            # Before an existing line: the first edit opens the reply's own line, so that
            # the text never sits glued onto that line while it streams.
            at, open_line = text.line_start(line + 1), True
        elif line + 1 < text.line_count:
            # The selection ends on the last line, before the final line ending: insert
            # before that ending, since editors (Neovim) treat the position after it as
            # past the end and add whole lines there.
            at, prefix, final_eol = text.line_end(line), "\n", False
        else:
            at, prefix = len(text), "\n" if len(text) else ""  # the last line has no line ending
        return self._sink(at, text.eol, prefix=prefix, final_eol=final_eol, open_line=open_line)

    def _chat_sink(self) -> DocumentSink:
        """A sink that opens a new ``## assistant`` section at the end of a chat document."""
        text = document_for(self.port, self.target.uri).text
        body = text.rstrip("\r\n")
        # Insert before the final line ending (see _below_sink), after the last text.
        return self._sink(len(body), eol_of(text), prefix="\n\n## assistant\n\n", final_eol=False)

    # -- the finished reply ------------------------------------------------------
    async def finish(self, reply: Reply) -> None:
        """Put the reply where the action says; fall back so that nothing is lost."""
        req, target = self.req, self.target
        if reply.error is not None:
            self.port.show_message(str(reply.error))
        unfinished = reply.status != "complete" and bool(reply.text)
        marker = ""
        if unfinished:
            reason = "cancelled" if reply.status == "cancelled" else (reply.error.kind if reply.error else "error")
            marker = f"\n[gpt-ls: reply unfinished ({reason})]"
        if self.sink is not None:
            suffix = (marker if reply.text else "") + ("\n\n## user\n" if req.chat is not None else "")
            await self._close(self.sink, reply, suffix)
        elif not reply.text:
            return
        elif self.output == "hover":
            footer = f"\n\n---\n*{reply.usage_line(req.settings.prices)}*"
            self.hovers.add(target.uri, TrackedRange(target.start, target.end, reply.text + marker + footer))
        elif self.output == "document":
            path = self.port.save_markdown(reply_file_name(req.action.id), f"# {req.action.title}\n\n{reply.text}\n")
            self.port.show_document(path)
        elif self.output == "comment_above":
            await self._comment(reply, reply.text + marker)
        elif unfinished:
            # An unfinished code reply never replaces anything: show it instead.
            self.fallback(reply.text, "the reply did not finish")
        elif self.output == "replace":
            await self._replace(reply)
        else:  # insert_below, code
            text = document_for(self.port, target.uri).text
            sink = self._below_sink()
            sink.write(prompts.match_indentation(prompts.strip_fences(reply.text), indent_of(text, target.start)))
            await self._close(sink, reply)

    async def _close(self, sink: DocumentSink, reply: Reply, suffix: str = "") -> None:
        report = await sink.close(suffix)
        if not report.complete_in_document:
            self.fallback(reply.text, report.reason or "the edit was not applied")

    async def _comment(self, reply: Reply, text: str) -> None:
        source = document_for(self.port, self.target.uri).text
        index = LineIndex(source)
        line = index.position(self.target.start, "utf-32").line
        eol = eol_of(source)
        sink = self._sink(index.line_start(line), eol)
        sink.write(prompts.as_comment(text, self.req.context.language, indent_of(source, self.target.start), eol))
        report = await sink.close()
        if not report.complete_in_document:
            self.fallback(text, report.reason or "the edit was not applied")

    async def _replace(self, reply: Reply) -> None:
        """Replace the selection, if it is still what it was; else show the reply."""
        doc = document_for(self.port, self.target.uri)
        current, anchor = doc.text, self.target.anchor
        start, end = (anchor.start, anchor.end) if anchor is not None else (self.target.start, self.target.end)
        if current[start:end] != self.target.selection:
            self.fallback(reply.text, "the selection changed while the reply was written")
            return
        index = LineIndex(current)
        line_prefix = current[index.line_start(index.position(start, "utf-32").line) : start]
        code = reply.text
        if self.req.action.code:
            code = prompts.match_indentation(prompts.strip_fences(code), indent_of(current, start))
            if line_prefix.strip():
                code = code.lstrip(" \t")  # the selection starts mid-line
            elif code.startswith(line_prefix):
                code = code[len(line_prefix) :]  # the line's indentation is already there
        a, b = index.position(start, self.port.encoding), index.position(end, self.port.encoding)
        version = doc.version if self.port.features.versioned_edits else None
        if not await self.port.apply_edit(self.target.uri, a, b, normalize_eol(code, eol_of(current)), version):
            self.fallback(reply.text, "the editor did not apply the edit")

    def fallback(self, text: str, reason: str) -> None:
        """Show the whole reply as a Markdown document (or a message): never lose it."""
        action = self.req.action
        path: Path | None = None
        try:
            path = self.port.save_markdown(
                reply_file_name(action.id), f"# {action.title}\n\n{text}\n", folder="replies")
        except (OSError, GptLsError) as exc:  # e.g. a symlink planted at the file: refused
            log.warning("could not write the reply file: %s", exc)
        if path is not None and self.port.features.show_document:
            self.port.show_message(
                f"gpt-ls could not put the whole reply into the document ({reason}); "
                f"it is shown in {path.name} and kept in history.", "warning")
            self.port.show_document(path, focus=False)
            return
        where = f" (also saved to {path})" if path is not None else ""
        self.port.show_message(f"{action.title} ({reason}){where}:\n\n{text}", "info")
