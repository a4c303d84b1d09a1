"""``LspEditor``: the editor port over the LSP connection, and the client's features resolved once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from gpt_ls.actions.editor import ClientFeatures, DocumentSnapshot, MessageKind
from gpt_ls.files import private_dir, write_private
from gpt_ls.lsp.documents import content_of
from gpt_ls.secrets import mask
from gpt_ls.settings import cache_dir
from gpt_ls.text import Encoding, Pos

log = logging.getLogger(__name__)

STATUS_NOTIFICATION = "gpt-ls/status"
#: How long to wait for the editor to answer one ``workspace/applyEdit``.
APPLY_TIMEOUT = 10.0
#: How long to wait for the editor to create a progress token (Emacs 28 answers seconds later).
PROGRESS_CREATE_TIMEOUT = 60.0
#: How long the end of a run waits for the editor to have shown its progress at all.
PROGRESS_GRACE = 1.0

MESSAGE_TYPES = {"error": types.MessageType.Error, "warning": types.MessageType.Warning,
                 "info": types.MessageType.Info}


def _has(node: Any, *path: str) -> bool:
    for name in path:
        node = getattr(node, name, None)
        if node is None:
            return False
    return bool(node)


def resolve_features(caps: types.ClientCapabilities, client: types.ClientInfo | None) -> ClientFeatures:
    """What the client supports, read once from ``initialize``."""
    # Neovim checks the versions of documentChanges without advertising them.
    neovim = client is not None and client.name == "Neovim"
    return ClientFeatures(
        apply_edit=_has(caps, "workspace", "apply_edit"),
        versioned_edits=_has(caps, "workspace", "workspace_edit", "document_changes") or neovim,
        show_document=_has(caps, "window", "show_document"),
        show_message_request=_has(caps, "window", "show_message"),
        work_done_progress=_has(caps, "window", "work_done_progress"),
        configuration=_has(caps, "workspace", "configuration"),
        inline_completion=getattr(caps.text_document, "inline_completion", None) is not None,
        inline_completion_registration=_has(caps, "text_document", "inline_completion", "dynamic_registration"),
    )


def negotiated_encoding(server: LanguageServer) -> Encoding:
    """The position encoding agreed at initialize (UTF-16 unless negotiated)."""
    kind = str(getattr(server.workspace, "position_encoding", None) or "utf-16")
    kind = kind.rsplit(".", 1)[-1].lower().replace("_", "-")
    return {"utf8": "utf-8", "utf32": "utf-32"}.get(kind.replace("-", ""), "utf-16")  # type: ignore[return-value]


def open_document(server: LanguageServer, uri: str) -> TextDocument | None:
    """The document if the client has it open (never read from disk)."""
    try:
        docs = server.workspace.text_documents
    except Exception:
        return None
    # pygls keys documents by the decoded URI; clients send them percent-encoded.
    doc: TextDocument | None = docs.get(unquote(uri))
    return doc


def root_of(server: LanguageServer) -> Path | None:
    """The workspace folder the client opened, if any."""
    try:
        root = server.workspace.root_path
    except Exception:
        return None
    return Path(root) if root else None


def snapshot(uri: str, doc: TextDocument) -> DocumentSnapshot:
    return DocumentSnapshot(uri, content_of(doc), doc.version, doc.language_id or "plaintext", doc.path or "")


async def apply_or_false(call: Awaitable[bool], timeout: float) -> bool:
    """Await an edit request, treating a timeout or error as "not applied"."""
    try:
        return await asyncio.wait_for(call, timeout)
    except asyncio.TimeoutError:
        log.warning("the editor did not answer workspace/applyEdit within %ss", timeout)
        return False
    except Exception as exc:
        log.warning("workspace/applyEdit failed: %s", exc)
        return False


class LspProgress:
    """A work-done progress created in the background; reports wait until it is shown."""

    def __init__(self, server: LanguageServer, title: str, on_cancel: Callable[[], object], enabled: bool) -> None:
        self.server, self.title, self.on_cancel = server, title, on_cancel
        self.token: str | None = None
        self.finished = False
        self._creating: asyncio.Future[None] | None = None
        if enabled:
            self._creating = asyncio.ensure_future(self._create())

    async def _create(self) -> None:
        token = str(uuid.uuid4())  # tokens are never forgotten by pygls: a fresh one each time
        progress = self.server.work_done_progress
        created = asyncio.ensure_future(progress.create_async(token))
        try:
            # Shielded: a late answer must still find its request pending.
            await asyncio.wait_for(asyncio.shield(created), PROGRESS_CREATE_TIMEOUT)
        except Exception as exc:
            log.info("progress not available: %s", exc)
            return
        if self.finished:
            return  # the exchange ended before the editor answered
        self.token = token
        progress.begin(token, types.WorkDoneProgressBegin(title=self.title, cancellable=True,
                                                           message="waiting for the model"))
        future = progress.tokens.get(token)
        if future is not None:
            future.add_done_callback(lambda f: self.on_cancel() if f.cancelled() else None)

    def report(self, message: str) -> None:
        if self.token:
            self.server.work_done_progress.report(self.token, types.WorkDoneProgressReport(message=message))

    async def end(self, message: str) -> None:
        if self._creating is not None and not self._creating.done():
            # Give a prompt editor the chance to show progress at all, then move on.
            await asyncio.wait([self._creating], timeout=PROGRESS_GRACE)
        self.finished = True
        if self.token:
            self.server.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))


class LspEditor:
    """The ``EditorPort`` over one LSP connection."""

    def __init__(self, server: LanguageServer, features: Callable[[], ClientFeatures]) -> None:
        self.server = server
        self._features = features

    @property
    def encoding(self) -> Encoding:
        return negotiated_encoding(self.server)

    @property
    def features(self) -> ClientFeatures:
        return self._features()

    @property
    def workspace_root(self) -> Path | None:
        return root_of(self.server)

    def document(self, uri: str) -> DocumentSnapshot | None:
        doc = open_document(self.server, uri)
        return snapshot(uri, doc) if doc is not None else None

    def documents(self) -> list[DocumentSnapshot]:
        return [snapshot(d.uri, d) for d in self.server.workspace.text_documents.values()]

    async def apply_edit(self, uri: str, start: Pos, end: Pos, text: str, version: int | None = None) -> bool:
        rng = types.Range(types.Position(start.line, start.character), types.Position(end.line, end.character))
        edit = types.TextEdit(range=rng, new_text=text)
        if self.features.versioned_edits:
            identifier = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version)
            workspace_edit = types.WorkspaceEdit(document_changes=[
                types.TextDocumentEdit(text_document=identifier, edits=[edit])])
        else:
            workspace_edit = types.WorkspaceEdit(changes={uri: [edit]})
        # No label: Neovim prints it ("Workspace edit …") for every streamed edit.
        params = types.ApplyWorkspaceEditParams(edit=workspace_edit)

        async def call() -> bool:
            result = await self.server.workspace_apply_edit_async(params)
            if not result.applied:
                log.info("edit not applied: %s", result.failure_reason)
            return bool(result.applied)

        return await apply_or_false(call(), APPLY_TIMEOUT)

    def show_message(self, text: str, kind: MessageKind = "error") -> None:
        self.server.window_show_message(types.ShowMessageParams(type=MESSAGE_TYPES[kind], message=mask(text)))

    def save_markdown(self, name: str, text: str, folder: str = "documents") -> Path:
        """A Markdown file under the cache dir; owner-only, like history, never through a symlink."""
        return write_private(private_dir(cache_dir() / folder) / name, text)

    def show_document(self, path: Path, focus: bool = True) -> None:
        if self.features.show_document:
            self.server.window_show_document(types.ShowDocumentParams(uri=path.as_uri(), take_focus=focus))
        else:
            self.show_message(path.read_text(encoding="utf-8"), "info")

    async def ask_choice(self, prompt: str, choices: list[str]) -> str | None:
        result = await self.server.window_show_message_request_async(types.ShowMessageRequestParams(
            type=types.MessageType.Info, message=prompt, actions=[types.MessageActionItem(title=c) for c in choices]))
        return result.title if result is not None else None

    def begin_progress(self, title: str, on_cancel: Callable[[], object]) -> LspProgress:
        return LspProgress(self.server, title, on_cancel, self.features.work_done_progress)

    def notify_status(self, running: int, tokens: int, message: str) -> None:
        self.server.protocol.notify(STATUS_NOTIFICATION, {"running": running, "tokens": tokens, "message": message})
