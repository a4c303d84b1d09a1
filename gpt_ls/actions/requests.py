"""From a command's selection to the exchange request: the target, its context, diagnostics and input."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt_ls import prompts
from gpt_ls.actions.catalog import SEND, Action
from gpt_ls.actions.editor import DocumentSnapshot, EditorPort
from gpt_ls.actions.hovers import TrackedRange
from gpt_ls.errors import InvalidRequest
from gpt_ls.exchange import ExchangeRequest
from gpt_ls.history.store import workspace_key
from gpt_ls.instructions import project_instructions
from gpt_ls.settings import Settings
from gpt_ls.text import Pos

#: Other open documents sent by "Ask about the workspace", at most.
WORKSPACE_DOCUMENTS = 20


@dataclass
class Target:
    """Where a request came from: the document snapshot, the selection's offsets, its text.

    The request is built from this one snapshot (``doc.content``), even if the user edits while
    choosing an ``{input}``.
    """

    doc: DocumentSnapshot
    start: int
    end: int
    selection: str
    #: Follows the selection through edits while the reply is written (for "replace").
    anchor: TrackedRange | None = None

    @property
    def uri(self) -> str:
        return self.doc.uri


def document_for(port: EditorPort, uri: str) -> DocumentSnapshot:
    """An open document, or a clear error for the editor."""
    doc = port.document(uri)
    if doc is None:
        raise InvalidRequest(f"gpt-ls does not have {uri} open: open the file in the editor first.")
    return doc


def select(port: EditorPort, action: Action, uri: str, start_pos: Pos, end_pos: Pos) -> Target:
    """The selection (or the current line when it is empty), checked."""
    doc = document_for(port, uri)
    index = doc.content  # never joined here: a 10,000-line document costs milliseconds to join
    if start_pos.line >= index.line_count or start_pos.line < 0 or end_pos.line < 0:
        raise InvalidRequest(
            f"The selection (line {start_pos.line + 1}) is outside the document "
            f"({index.line_count} lines): select the text again."
        )
    start = index.offset(start_pos.line, start_pos.character, port.encoding)
    end = index.offset(end_pos.line, end_pos.character, port.encoding)
    if end < start:
        start, end = end, start
    if start == end:  # no selection: the current line
        line = index.position(start, "utf-32").line
        start, end = index.line_start(line), index.line_end(line)
    selection = index[start:end]
    if not selection.strip():
        raise InvalidRequest(f"{action.title}: the selection is empty. Select some text first.")
    return Target(doc, start, end, selection)


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


def settings_for(action: Action, settings: Settings) -> Settings:
    """The settings with the action's own model parameters, for this action only."""
    changes: dict[str, Any] = {}
    if action.model:
        changes["model"] = action.model
    if action.temperature is not None:
        changes["temperature"] = action.temperature
    if action.max_tokens is not None:
        changes["max_tokens"] = action.max_tokens
    return dataclasses.replace(settings, **changes) if changes else settings


def other_documents(port: EditorPort, uri: str) -> str:
    """The other open documents, as reference text (at most WORKSPACE_DOCUMENTS are looked at)."""
    parts = []
    for other in port.documents()[:WORKSPACE_DOCUMENTS]:
        if other.uri != uri:
            parts.append(f"\n\n--- open file: {other.file_name} ---\n{other.text}")
    return "".join(parts)


def instructions(port: EditorPort, settings: Settings) -> str:
    """The workspace's project instructions, joined to every system message (read per request)."""
    return project_instructions(port.workspace_root, settings.instructions_file)


def build_request(
    port: EditorPort, action: Action, target: Target, settings: Settings, extra: dict[str, Any], choice: str
) -> ExchangeRequest:
    """The exchange request: context as the action declares, settings, instructions."""
    content = target.doc.content
    settings = settings_for(action, settings)
    indexed = action.context == "workspace" and port.workspace_root is not None  # chunks come from the index
    if action.context == "excerpt" or indexed:
        before, after = prompts.excerpt(content, target.start, target.end, settings.context_lines)
    elif action.context in ("document", "workspace"):
        before, after = content[: target.start], content[target.end :]
        if action.context == "workspace":
            after += other_documents(port, target.uri)
    else:
        before, after = "", ""
    ctx = prompts.SelectionContext(
        target.uri, target.doc.language_id or "plaintext", target.selection, before, after,
        # The whole text only where it is used: checking and copying megabytes costs milliseconds.
        document=str(content) if action.context == "workspace" or prompts.uses_document(action) else "",
        diagnostics=diagnostics_text(extra.get("diagnostics")),
        input=choice,
        target_language=settings.translate_to or prompts.default_target_language(target.selection),
        persona=settings.persona,
        scope="workspace-index" if indexed else action.context,
    )
    a = content.position(target.start, port.encoding)
    b = content.position(target.end, port.encoding)
    return ExchangeRequest(
        action, ctx, settings, workspace=workspace_key(port.workspace_root),
        range={"start": {"line": a.line, "character": a.character},
               "end": {"line": b.line, "character": b.character}},
        system_extra=instructions(port, settings),
    )


def chat_request(port: EditorPort, uri: str, settings: Settings) -> tuple[ExchangeRequest, Target]:
    """A chat document: its sections as messages; the reply goes at its end."""
    doc = document_for(port, uri)
    messages = prompts.parse_chat(doc.text)
    if not messages or messages[-1]["role"] != "user":
        name = Path(doc.path).name if doc.path else doc.file_name
        raise InvalidRequest(f"{name}: write your message under a '## user' heading at the end, then send.")
    ctx = prompts.SelectionContext(uri, "markdown", messages[-1]["content"])
    req = ExchangeRequest(SEND, ctx, settings, workspace=workspace_key(port.workspace_root),
                          system_extra=instructions(port, settings), chat=messages)
    end = len(doc.text)
    return req, Target(doc, end, end, "")
