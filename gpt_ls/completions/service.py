"""A completion from a document and a cursor offset: privacy, prompt, scheduler, model, clean-up.

Independent of LSP: ``lsp/completion.py`` turns positions into offsets and the text into
items. Failures never reach the caller: a 429 backs off quietly with one message until a
request succeeds again; any other error is logged and shown once per kind per session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from gpt_ls import tokens
from gpt_ls.actions.editor import DocumentSnapshot, MessageKind
from gpt_ls.completions import postprocess, prompt
from gpt_ls.completions.scheduler import Ask, Scheduler
from gpt_ls.errors import GptLsError, RateLimited
from gpt_ls.models import model_info, request_options
from gpt_ls.secret_files import is_secret
from gpt_ls.settings import Settings

if TYPE_CHECKING:
    from gpt_ls.api.http import ClientCache
    from gpt_ls.completions.model import ModelCall

log = logging.getLogger(__name__)
#: Low temperature: a suggestion should be the likely text, not a creative one.
TEMPERATURE = 0.2


@dataclass(frozen=True)
class Cursor:
    """A document and a string offset in it."""

    doc: DocumentSnapshot
    offset: int
    invoked: bool = False


def relative_path(doc: DocumentSnapshot, root: Path | None) -> str:
    """The document's path from the workspace root (its file name outside the workspace)."""
    if doc.path and root is not None:
        try:
            return Path(doc.path).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return doc.file_name


class CompletionService:
    """Completions for one server: its scheduler, its messages, its clients."""

    def __init__(self, clients: Callable[[], ClientCache], notify: Callable[[str, MessageKind], None],
                 scheduler: Scheduler | None = None) -> None:
        self._clients, self._notify = clients, notify
        self.scheduler = scheduler or Scheduler()
        self._told: set[str] = set()
        self._told_backoff = False
        self.last_error: GptLsError | None = None

    def allowed(self, doc: DocumentSnapshot, settings: Settings, root: Path | None) -> bool:
        """Completions are on, and the file is not a secret or excluded (``indexExclude``)."""
        return settings.completions and not is_secret(relative_path(doc, root), settings.index_exclude)

    async def suggest(self, cursor: Cursor, settings: Settings, root: Path | None,
                      others: Sequence[DocumentSnapshot] = ()) -> str | None:
        """The text to insert at the cursor, or None; never raises (but for cancellation)."""
        doc = cursor.doc
        if not self.allowed(doc, settings, root):
            return None
        model = prompt.model_for(settings.completion_mode, settings.completion_model)
        info = model_info(replace(settings, model=model))
        encoding = tokens._loaded.get(info.encoding)  # exact only if already loaded: never load one here
        count = (lambda text: len(encoding.encode_ordinary(text))) if encoding is not None else None
        win = prompt.window(doc.text, cursor.offset, settings.completion_context_tokens, count)
        ask = Ask(doc.uri, doc.text[: cursor.offset], doc.text[cursor.offset:], cursor.invoked,
                  settings.completion_debounce_ms / 1000, settings.completion_max_per_minute)
        related = [(relative_path(o, root), o.text) for o in others
                   if o.uri != doc.uri and o.language_id == doc.language_id and self.allowed(o, settings, root)]

        async def fetch() -> str:
            from gpt_ls.completions.model import ModelCall

            call = ModelCall(settings.completion_mode, model, settings.completion_max_tokens,
                             prompt.stop_sequences(win.before, win.after, cursor.invoked),
                             request_options(info, TEMPERATURE, settings.completion_max_tokens))
            raw = await self._request(settings, call, win, doc, related, cursor.invoked)
            return postprocess.clean(raw, ask.before, ask.after, invoked=cursor.invoked,
                                     chat=settings.completion_mode != "fim")

        text = await self.scheduler.suggest(ask, fetch)
        return text or None

    async def _request(self, settings: Settings, call: ModelCall, win: prompt.Window, doc: DocumentSnapshot,
                       related: list[tuple[str, str]], invoked: bool) -> str:
        """One model request; "" on any failure (reported as the class says)."""
        try:
            from gpt_ls.completions import model

            client = await self._clients().get(settings)
            if call.mode == "fim":
                raw = await model.fim(client, call, win.before, win.after)
            else:
                excerpts = prompt.related_excerpts(related, settings.completion_context_tokens)
                messages = prompt.chat_messages(win, doc.file_name, doc.language_id, invoked, excerpts)
                raw = await model.chat(client, call, messages)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(exc, settings)
            return ""
        self._recovered()
        return raw

    def _failed(self, exc: Exception, settings: Settings) -> None:
        from gpt_ls.api.failures import describe_error
        from gpt_ls.completions.model import retry_after

        err = exc if isinstance(exc, GptLsError) else describe_error(exc, settings)
        self.last_error = err
        if isinstance(err, RateLimited):
            wait = retry_after(exc)
            self.scheduler.back_off(wait)
            log.info("completions: %s; pausing %.0f s", err, wait)
            if not self._told_backoff:
                self._told_backoff = True
                self._notify(f"gpt-ls completions paused for {wait:.0f} s: {err}", "warning")
            return
        log.warning("completions: %s", err)
        if err.kind not in self._told:
            self._told.add(err.kind)
            self._notify(f"gpt-ls completions: {err}", "warning")

    def _recovered(self) -> None:
        if self._told_backoff:
            log.info("completions: the endpoint answers again")
        self._told_backoff = False
