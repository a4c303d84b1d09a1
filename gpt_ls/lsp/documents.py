"""Open documents as the server keeps them: pygls's ``TextDocument`` with its text in pieces.

pygls keeps a document's text as one string, and every ``didChange`` would build a new
copy of it (``gpt_ls/pieces.py`` says what that costs while a reply streams). Here the
text is a ``gpt_ls.pieces.Text``; ``source`` (what pygls and the rest of gpt-ls read) is
the joined string, built once per version and only when someone asks for it.
"""

from __future__ import annotations

from urllib.parse import unquote

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

from gpt_ls.pieces import Text


class PiecedDocument(TextDocument):
    """A ``TextDocument`` whose text is a ``Text`` (``content``); never read from disk."""

    content: Text

    @property  # type: ignore[override]
    def _source(self) -> str:
        return str(self.content)

    @_source.setter
    def _source(self, value: str | None) -> None:
        # pygls reads the file when the text is None; an open document always has its text.
        self.content = Text(value or "", cut_now=True)


def put_document(workspace: Workspace, item: types.TextDocumentItem) -> None:
    """``Workspace.put_text_document``, keeping the document as a ``PiecedDocument``."""
    workspace.put_text_document(item)
    key = unquote(item.uri)  # as pygls keys documents
    doc = workspace.text_documents[key]
    workspace.text_documents[key] = PiecedDocument(
        doc.uri, item.text, doc.version, doc.language_id, position_codec=doc.position_codec)


def content_of(doc: TextDocument) -> Text:
    """The document's text as a ``Text`` (a notebook cell is a plain ``TextDocument``)."""
    return doc.content if isinstance(doc, PiecedDocument) else Text(doc.source)


def set_content(doc: TextDocument, text: Text) -> None:
    """Give the document its new text."""
    if isinstance(doc, PiecedDocument):
        doc.content = text
    else:
        doc._source = str(text)
