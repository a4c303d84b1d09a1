"""The LSP edge of completions as you type: ``textDocument/inlineCompletion``, the
``textDocument/completion`` fallback, and advertising the inline provider only when enabled.

Statically at ``initialize`` when the initialization options enable completions; otherwise
registered (``client/registerCapability``) when the settings turn them on, and unregistered
when they turn them off, if the client registers it dynamically. A client with an active
inline provider gets no AI items in ``textDocument/completion`` (no double suggestions).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lsprotocol import types

from gpt_ls.actions.editor import ClientFeatures, DocumentSnapshot, MessageKind
from gpt_ls.prompts import is_chat_document
from gpt_ls.settings import Settings
from gpt_ls.text import Encoding, offset_at, position_at

if TYPE_CHECKING:  # loaded at the first completion request, off the start-up path
    from gpt_ls.completions.service import CompletionService

log = logging.getLogger(__name__)
REGISTRATION_ID = "gpt-ls-inline-completion"
#: Marks the fallback items as AI suggestions.
DETAIL = "gpt-ls"
LABEL_CHARS = 60


class Host(Protocol):
    """What the edge needs of ``GptLanguageServer`` (not imported: it imports this module)."""

    features: ClientFeatures
    protocol: Any

    @property
    def settings(self) -> Settings: ...
    @property
    def workspace_root(self) -> Path | None: ...
    @property
    def encoding(self) -> Encoding: ...
    @property
    def exchange(self) -> Any: ...
    def show(self, message: str, kind: MessageKind = "error") -> None: ...
    async def client_register_capability_async(self, params: types.RegistrationParams) -> None: ...
    async def client_unregister_capability_async(self, params: types.UnregistrationParams) -> None: ...


def exact_offset(text: str, line: int, character: int, encoding: Encoding) -> int | None:
    """The offset of a position that names a real spot: None past the end or inside a surrogate pair."""
    if line < 0 or character < 0:
        return None
    offset = offset_at(text, line, character, encoding)
    pos = position_at(text, offset, encoding)
    return offset if (pos.line, pos.character) == (line, character) else None


def word_start(text: str, offset: int) -> int:
    """Where the identifier-like word ending at ``offset`` starts (the editor filters by it)."""
    start = offset
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    return start


class CompletionEdge:
    """Inline completion and the completion fallback for one server."""

    def __init__(self, host: Host, documents: Callable[[], list[DocumentSnapshot]],
                 document: Callable[[str], DocumentSnapshot | None]) -> None:
        self.host, self._documents, self._document = host, documents, document
        self.static = False
        self.registered = False
        #: After ``initialized``: registrations may be sent.
        self.ready = False
        self._service: CompletionService | None = None
        self._sync: asyncio.Task[None] | None = None

    @property
    def service(self) -> CompletionService:
        if self._service is None:
            from gpt_ls.completions.service import CompletionService

            self._service = CompletionService(lambda: self.host.exchange.clients, self.host.show)
        return self._service

    @property
    def inline_active(self) -> bool:
        """The client asks for inline completions (so it gets no fallback items)."""
        return self.host.features.inline_completion and (self.static or self.registered)

    def advertise(self) -> None:
        """At initialize: the inline provider in the capabilities when the settings enable completions."""
        if self.host.settings.completions:
            self.host.protocol.fm.feature_options[types.TEXT_DOCUMENT_INLINE_COMPLETION] = \
                types.InlineCompletionOptions()
            self.static = True

    def settings_changed(self) -> None:
        """Any reload of the settings (the editor's, a workspace file, its trust): follow it."""
        if self.ready and not self.static:
            try:
                self._sync = asyncio.get_running_loop().create_task(self.sync_registration())
            except RuntimeError:  # no loop (a test building the server): nothing to tell a client
                pass

    async def sync_registration(self) -> None:
        """Register or unregister the inline provider to follow the ``completions`` setting."""
        self.ready = True
        if self.static or not self.host.features.inline_completion_registration:
            return
        wanted = self.host.settings.completions
        try:
            if wanted and not self.registered:
                self.registered = True
                await self.host.client_register_capability_async(types.RegistrationParams(registrations=[
                    types.Registration(id=REGISTRATION_ID, method=types.TEXT_DOCUMENT_INLINE_COMPLETION,
                                       register_options=types.InlineCompletionRegistrationOptions())]))
            elif not wanted and self.registered:
                self.registered = False
                await self.host.client_unregister_capability_async(types.UnregistrationParams(unregisterations=[
                    types.Unregistration(id=REGISTRATION_ID, method=types.TEXT_DOCUMENT_INLINE_COMPLETION)]))
        except Exception as exc:  # the client refused: completions still come through the fallback
            log.info("could not (un)register inline completion: %s", exc)
            if wanted:
                self.registered = False

    async def _suggest(self, uri: str, position: types.Position, invoked: bool,
                       selected: types.SelectedCompletionInfo | None = None) -> tuple[str, int, str] | None:
        """(text of the document, cursor offset, suggestion) or None.

        With ``selected`` (the editor's completion menu is open on an item), the suggestion is
        asked for the text with that item applied, and the offset is where that item ends.
        """
        doc = self._document(uri)
        if doc is None or is_chat_document(uri):  # a chat document's completions are its @-mentions
            return None
        encoding = self.host.encoding
        offset = exact_offset(doc.text, position.line, position.character, encoding)
        if offset is None:
            return None
        if selected is not None:
            start = exact_offset(doc.text, selected.range.start.line, selected.range.start.character, encoding)
            end = exact_offset(doc.text, selected.range.end.line, selected.range.end.character, encoding)
            if start is None or end is None or not start <= offset <= end or len(selected.text) > 10_000:
                return None
            doc = replace(doc, content=doc.content.replace(start, end, selected.text))
            offset = start + len(selected.text)
        settings = self.host.settings
        if not settings.completions:
            return None
        from gpt_ls.completions.service import Cursor

        text = await self.service.suggest(Cursor(doc, offset, invoked), settings, self.host.workspace_root,
                                          self._documents())
        return (doc.text, offset, text) if text else None

    async def inline(self, params: types.InlineCompletionParams) -> types.InlineCompletionList | None:
        """Ghost text at the cursor (extending the selected item when the editor's menu is open)."""
        invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        selected = params.context.selected_completion_info
        found = await self._suggest(params.text_document.uri, params.position, invoked, selected)
        if found is None:
            return types.InlineCompletionList(items=[])
        _, _, text = found
        if selected is not None:  # it must start with the selected item and replace its range
            item = types.InlineCompletionItem(insert_text=selected.text + text, range=selected.range)
        else:
            item = types.InlineCompletionItem(insert_text=text, range=types.Range(params.position, params.position))
        return types.InlineCompletionList(items=[item])

    async def complete(self, params: types.CompletionParams) -> types.CompletionList | None:
        """The fallback: one item whose edit inserts the suggestion; incomplete, so typing asks again."""
        if self.inline_active or not self.host.settings.completions:
            return None  # nothing to add (and an empty incomplete list would be asked again at every key)
        invoked = params.context is None or params.context.trigger_kind == types.CompletionTriggerKind.Invoked
        found = await self._suggest(params.text_document.uri, params.position, invoked)
        if found is None:
            return types.CompletionList(is_incomplete=True, items=[])
        text, offset, suggestion = found
        start = word_start(text, offset)
        word = text[start:offset]
        p = position_at(text, start, self.host.encoding)
        edit = types.TextEdit(range=types.Range(types.Position(p.line, p.character), params.position),
                              new_text=word + suggestion)
        first, _, rest = suggestion.partition("\n")
        label = (word + first).strip()[:LABEL_CHARS] + (" …" if rest or len((word + first).strip()) > LABEL_CHARS
                                                         else "")
        item = types.CompletionItem(
            label=label or suggestion.strip()[:LABEL_CHARS], kind=types.CompletionItemKind.Text, detail=DETAIL,
            label_details=types.CompletionItemLabelDetails(description="AI suggestion"),
            documentation=types.MarkupContent(kind=types.MarkupKind.PlainText, value=word + suggestion),
            filter_text=word + first, sort_text="0", preselect=True, text_edit=edit,
            insert_text_format=types.InsertTextFormat.PlainText)
        return types.CompletionList(is_incomplete=True, items=[item])

    def forget(self, uri: str) -> None:
        """A document closed."""
        if self._service is not None:
            self._service.scheduler.forget(uri)

    async def close(self) -> None:
        """At shutdown: requests in flight end before their HTTP client closes (no error to report)."""
        if self._service is not None:
            self._service.closing = True
            await self._service.scheduler.close()
