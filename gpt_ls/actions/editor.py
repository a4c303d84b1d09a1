"""The editor port: everything the actions need from the editor, and nothing about LSP.

The actions read documents, write edits, show messages and documents, ask a choice and
report progress only through :class:`EditorPort`. ``gpt_ls.lsp.editor.LspEditor``
implements it over the LSP connection; tests use an in-memory editor
(``tests/support/memory_editor.py``). What the client can do is resolved once, at
``initialize``, into :class:`ClientFeatures`: no use site probes capabilities or the
client's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol
from urllib.parse import unquote, urlparse

from gpt_ls.pieces import Text
from gpt_ls.text import Encoding, Pos

MessageKind = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class DocumentSnapshot:
    """An open document as the server has it now."""

    uri: str
    #: The text, in pieces (``text`` joins it, once per version, when asked).
    content: Text
    version: int | None
    language_id: str = "plaintext"
    #: The file system path, or "" when the URI is not a file.
    path: str = ""

    @property
    def text(self) -> str:
        """The whole text as one string."""
        return str(self.content)

    @property
    def file_name(self) -> str:
        """The last part of the path (of the URI when there is no path)."""
        if self.path:
            return Path(self.path).name
        return PurePosixPath(unquote(urlparse(self.uri).path)).name or self.uri


@dataclass(frozen=True)
class ClientFeatures:
    """What the client supports, resolved once at ``initialize``."""

    #: Takes ``workspace/applyEdit`` at all.
    apply_edit: bool = False
    #: Edits carry the document version (stale edits are refused, not misplaced).
    versioned_edits: bool = False
    show_document: bool = False
    show_message_request: bool = False
    work_done_progress: bool = False
    configuration: bool = False
    #: Asks for ``textDocument/inlineCompletion`` (ghost text), and takes its registration later.
    inline_completion: bool = False
    inline_completion_registration: bool = False


class Progress(Protocol):
    """One work-done progress, begun with :meth:`EditorPort.begin_progress`."""

    def report(self, message: str) -> None:
        """Say how far the work is (dropped until the editor has shown the progress)."""

    async def end(self, message: str) -> None:
        """End the progress (always called, once)."""


class EditorPort(Protocol):
    """The editor, as the actions see it."""

    @property
    def encoding(self) -> Encoding:
        """The negotiated position encoding."""

    @property
    def features(self) -> ClientFeatures:
        """The client's capabilities, resolved once."""

    @property
    def workspace_root(self) -> Path | None:
        """The workspace folder, if the editor opened one."""

    def document(self, uri: str) -> DocumentSnapshot | None:
        """An open document, or None (never read from disk)."""

    def documents(self) -> list[DocumentSnapshot]:
        """Every open document."""

    async def apply_edit(self, uri: str, start: Pos, end: Pos, text: str, version: int | None = None) -> bool:
        """Replace ``start``-``end`` (an insertion when equal); True if the editor applied it."""

    def show_message(self, text: str, kind: MessageKind = "error") -> None:
        """One message to the user (secrets masked)."""

    def save_markdown(self, name: str, text: str, folder: str = "documents") -> Path:
        """Write a Markdown file the editor can open (raises OSError)."""

    def show_document(self, path: Path, focus: bool = True) -> None:
        """Open a saved file in the editor (or show its text as a message when it cannot)."""

    async def ask_choice(self, prompt: str, choices: list[str]) -> str | None:
        """The user's pick among ``choices`` (None: dismissed)."""

    def begin_progress(self, title: str, on_cancel: Callable[[], object]) -> Progress:
        """Start a cancellable progress (without waiting for the editor)."""

    def notify_status(self, running: int, tokens: int, message: str) -> None:
        """The status notification that status bars show."""


def show_markdown(port: EditorPort, name: str, text: str) -> str:
    """Open ``text`` in the editor as a Markdown document; its URI."""
    path = port.save_markdown(name, text)
    port.show_document(path)
    return path.as_uri()
