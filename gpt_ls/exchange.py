"""One exchange with the model, end to end, independent of LSP.

request → messages (prompts) → fitted to the window (budget) → streamed from the model (client)
→ each delta handed to the caller → recorded (history). The language server and the CLI both
run exchanges through ``Exchange.run``: same messages, same fitting, same errors.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from gpt_ls import budget, fitting, prompts
from gpt_ls.actions.catalog import Action
from gpt_ls.errors import GptLsError, ReplyCapped, ReplyTooLong, StreamInterrupted, StreamTooLong
from gpt_ls.history.memory import MemoryConversations
from gpt_ls.history.store import HistoryStore
from gpt_ls.models import ModelInfo, adapt_messages, model_info, request_options
from gpt_ls.setting_values import RANGES
from gpt_ls.settings import Settings
from gpt_ls.text import valid_unicode
from gpt_ls.tokens import encoding_notice

if TYPE_CHECKING:
    from gpt_ls.api.http import ClientCache

log = logging.getLogger(__name__)

#: How often a streaming reply is saved to history while it arrives.
SAVE_INTERVAL = 1.0
#: Reasoning models spend hidden tokens before answering: leave them room.
REASONING_MIN_REPLY = 4096
DEFAULT_MIN_REPLY = 256


@dataclass
class Usage:
    """Tokens one exchange used; ``exact`` when the API reported them."""

    prompt_tokens: int
    completion_tokens: int
    exact: bool = True

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class ExchangeRequest:
    """What to ask: an action applied to a selection, with the settings in force."""

    action: Action
    context: prompts.SelectionContext
    settings: Settings
    workspace: str = ""
    range: dict[str, Any] | None = None
    new_conversation: bool = False
    system_extra: str = ""
    #: A whole conversation as messages (a chat document): sent as it is, fitted by dropping its oldest turns.
    chat: list[dict[str, str]] | None = None


@dataclass
class Reply:
    """What came back, whatever happened."""

    text: str
    status: str  # "complete", "cancelled" or "error"
    model: str
    error: GptLsError | None = None
    usage: Usage | None = None
    duration_ms: int = 0
    conversation_id: int | None = None
    notices: list[str] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)

    def usage_line(self, prices: dict[str, dict[str, float]] | None = None) -> str:
        """A one-line summary: model and tokens (and cost when prices are known)."""
        if self.usage is None:
            return self.model
        u = self.usage
        text = budget.format_usage(u.prompt_tokens, u.completion_tokens, u.total_tokens,
                                   budget.estimate_cost(self.model, u.prompt_tokens, u.completion_tokens, prices or {}))
        return f"{self.model} · {text}" + ("" if self.usage.exact else " (counted)")


def without_lone_surrogates(req: ExchangeRequest) -> ExchangeRequest:
    """The request with every text made storable and sendable (SQLite and HTTP refuse lone surrogates)."""
    ctx = req.context
    texts = {f.name: valid_unicode(v) for f in fields(ctx) if isinstance(v := getattr(ctx, f.name), str)}
    chat = None if req.chat is None else [{k: valid_unicode(v) for k, v in m.items()} for m in req.chat]
    return replace(req, context=replace(ctx, **texts), chat=chat, system_extra=valid_unicode(req.system_extra))


@dataclass
class _Received:
    """What a stream delivered so far (kept when it stops early)."""

    parts: list[str] = field(default_factory=list)
    chars: int = 0
    usage: Usage | None = None
    finish: str | None = None
    started: float = field(default_factory=time.monotonic)


def _continues(req: ExchangeRequest) -> bool:
    """Whether the request continues the workspace's current conversation (else one starts)."""
    return req.chat is None and req.action.continues(req.settings) and not req.new_conversation


def _recorded(recording: asyncio.Future[tuple[int | None, int | None]] | None) -> int | None:
    """The reply's history row, once it has been written (else None)."""
    if recording is None or not recording.done() or recording.cancelled() or recording.exception():
        return None
    return recording.result()[1]


class Exchange:
    """Runs exchanges; owns the client cache and the history store."""

    def __init__(self, clients: ClientCache | None = None) -> None:
        # The openai SDK takes about a second to import: load it on first use (the
        # server warms it up in the background after initialize), not at start-up.
        self._clients = clients
        self._store: HistoryStore | None = None
        self._opening = threading.Lock()
        self._noticed: set[str] = set()
        self._sdk_ready = False
        self.store_notice: str | None = None
        #: The conversations of this session when the ``history`` setting is off.
        self.memory = MemoryConversations()

    @property
    def clients(self) -> ClientCache:
        """The openai client cache (importing the SDK on first use)."""
        if self._clients is None:
            from gpt_ls.api.http import ClientCache

            self._clients = ClientCache()
        return self._clients

    def store(self) -> HistoryStore:
        """The history store, opened on first use (by whichever thread needs it first)."""
        with self._opening:
            if self._store is None:
                self._store = HistoryStore.open()
                self.store_notice = self._store.notice
        return self._store

    def close(self) -> None:
        """Close the history store."""
        if self._store is not None:
            self._store.close()
            self._store = None

    async def aclose(self) -> None:
        """Close the HTTP clients and the history store."""
        if self._clients is not None:
            await self._clients.aclose()
        self.close()

    def _notice_once(self, key: str, text: str | None, notices: list[str]) -> None:
        if text and key not in self._noticed:
            self._noticed.add(key)
            notices.append(text)

    def _history_failed(self, exc: Exception, notices: list[str]) -> None:
        log.warning("history unavailable: %s", exc)
        self._notice_once("history", f"History is unavailable ({exc}); this exchange is not saved.", notices)

    def model_info(self, settings: Settings) -> ModelInfo:
        """The model table entry for the configured model (with setting overrides)."""
        return model_info(settings)

    def _conversation(self, req: ExchangeRequest) -> tuple[int | None, list[dict[str, str]], bool]:
        """The conversation to continue and its turns; or (None, [], True) when a new one is due.

        A new conversation is only created once the request is about to be sent, so a
        request refused before sending leaves no empty conversation behind.
        """
        if not req.settings.history:  # kept in memory for this session only
            return None, self.memory.turns(req.workspace) if _continues(req) else [], False
        if not _continues(req):  # a new one: the store opens alongside the request (_record_start)
            return None, [], True
        store = self.store()
        current = store.current_conversation(req.workspace)
        return (current.id, store.turns(current.id), False) if current is not None else (None, [], True)

    def _new_conversation(self, req: ExchangeRequest) -> int:
        """A new conversation, then the retention settings: the limit counts it, and never removes it."""
        store, settings = self.store(), req.settings
        if req.chat is not None:
            conv_id = store.new_conversation(req.workspace, req.context.file_name, model=settings.model)
        else:
            title = " ".join(req.context.selection.split())[:80] or req.action.title
            conv_id = store.new_conversation(req.workspace, title, model=settings.model, system=req.action.system)
        if removed := store.prune(req.workspace, settings.history_retention_days, settings.history_max_conversations):
            log.info("history retention removed %d conversations", removed)
        return conv_id

    def _record_start(
        self, req: ExchangeRequest, conv_id: int | None, new: bool, messages: list[dict[str, str]]
    ) -> tuple[int | None, int | None]:
        """Save the question (with the exact messages sent) and an empty reply to fill in."""
        if new:
            conv_id = self._new_conversation(req)
        if conv_id is None:
            return None, None
        store, ctx = self.store(), req.context
        store.add_message(conv_id, "user", ctx.selection, action=req.action.id, uri=ctx.uri, range=req.range,
                          model=req.settings.model, request=messages)
        assistant_id = store.add_message(conv_id, "assistant", "", action=req.action.id, uri=ctx.uri,
                                         model=req.settings.model, status="partial")
        return conv_id, assistant_id

    def _chat_render(self, req: ExchangeRequest) -> tuple[budget.Render, list[dict[str, str]]]:
        """A chat document: its system message, earlier turns (droppable), the last user turn."""
        chat = list(req.chat or [])
        system = [m for m in chat if m["role"] == "system"][:1]
        turns = [m for m in chat if m["role"] != "system"]
        last = turns.pop() if turns and turns[-1]["role"] == "user" else {"role": "user", "content": ""}
        head = [{"role": "system", "content": (system[0]["content"] if system else req.action.system)
                 + (f"\n\n{req.system_extra}" if req.system_extra else "")}]
        return (lambda b, a, h: [*head, *h, last]), turns

    async def run(
        self,
        req: ExchangeRequest,
        on_text: Callable[[str], None],
        on_progress: Callable[[int], None] | None = None,
    ) -> Reply:
        """Run one exchange; never raises for API or setting problems (see ``Reply``)."""
        req = without_lone_surrogates(req)
        settings = req.settings
        started = time.monotonic()
        notices: list[str] = []
        outcome = Reply(text="", status="error", model=settings.model, notices=notices)
        info = self.model_info(settings)
        self._notice_once("model:" + info.name, info.notice, notices)
        try:  # Reading history runs in a thread: another process may hold the database for a while.
            reads = settings.history and _continues(req)
            conv_id, turns, new_conversation = (await asyncio.to_thread(self._conversation, req) if reads
                                                else self._conversation(req))
        except Exception as exc:  # history must never block an answer
            conv_id, turns, new_conversation = None, [], False
            self._history_failed(exc, notices)
        if self.store_notice:
            self._notice_once("store", self.store_notice, notices)
        ctx = req.context

        def action_render(b: str, a: str, h: list[dict[str, str]]) -> list[dict[str, str]]:
            return prompts.render(req.action, ctx, b, a, h, req.system_extra)

        render: budget.Render = action_render
        if req.chat is not None:
            render, turns = self._chat_render(req)
        if not self._sdk_ready:  # the SDK (about 1 s; or wait for the server's warm-up), off the loop
            await asyncio.to_thread(importlib.import_module, "gpt_ls.api.failures")
            await asyncio.to_thread(importlib.import_module("gpt_ls.api.http").warm_up)
            self._sdk_ready = True
        try:
            fitted = await fitting.fit_request(
                lambda b, a, h: adapt_messages(info, render(b, a, h)), ctx.before, ctx.after, turns, info,
                settings.max_tokens, REASONING_MIN_REPLY if info.reasoning else DEFAULT_MIN_REPLY)
        except GptLsError as exc:
            outcome.error = exc
            return outcome
        # Counting with an estimate (tokenizer data missing or damaged): say so, once.
        self._notice_once("encoding:" + info.encoding, encoding_notice(info.encoding), notices)
        outcome.messages = fitted.messages
        await asyncio.sleep(0)  # fitting took its milliseconds; the SDK's request takes more: requests between
        if fitted.dropped_turns:
            log.info("dropped %d earlier messages to fit the context window", fitted.dropped_turns)
        # Recorded in a thread, alongside the request: the model need not wait for the disk.
        recording: asyncio.Future[tuple[int | None, int | None]] | None = None
        if conv_id is not None or new_conversation:
            recording = asyncio.ensure_future(
                asyncio.to_thread(self._record_start, req, conv_id, new_conversation, fitted.messages))
        assistant_id: int | None = None
        store: HistoryStore | None = None
        got = _Received()
        from gpt_ls.api.failures import describe_error
        from gpt_ls.api.http import model_param

        params: dict[str, Any] = {
            "model": model_param(settings), "messages": fitted.messages, "stream": True,
            "stream_options": {"include_usage": True},
            **request_options(info, settings.temperature, fitted.reply_budget),
        }
        receiving = self._receive(settings, params, got, recording, on_text, on_progress)
        try:
            try:
                # The whole request, the stream included, within maxStreamSeconds: an endless
                # (or endlessly slow) stream stops there with the text so far.
                await asyncio.wait_for(receiving, settings.max_stream_seconds)
            except asyncio.TimeoutError:
                if time.monotonic() - got.started < settings.max_stream_seconds:
                    raise  # a timeout of the request itself, not the cap
                raise StreamTooLong.at(settings.max_stream_seconds, RANGES["max_stream_seconds"][1]) from None
            if got.finish is None:
                raise StreamInterrupted(
                    "The reply stream ended before the reply was complete (no finish reason); "
                    "the text received so far is kept. Try again."
                )
            outcome.status = "complete"
            if got.finish == "length":
                notices.append(
                    "The reply was cut at the token limit "
                    f"({fitted.reply_budget} tokens): raise maxTokens for longer replies."
                )
        except asyncio.CancelledError:
            outcome.status = "cancelled"
        except GptLsError as exc:
            outcome.error = exc
        except Exception as exc:
            outcome.error = describe_error(exc, settings, during_stream=bool(got.parts))
            log.info("request failed: %s", outcome.error)
        if isinstance(outcome.error, ReplyCapped):
            log.info("reply stopped: %s", outcome.error)
        outcome.text, usage = "".join(got.parts), got.usage
        if usage is None:
            # No usage from the API (cancelled, cut off, no include_usage): counted, and marked so.
            usage = Usage(*await asyncio.shield(fitting.counted_usage(fitted.messages, outcome.text, info)), False)
            self._notice_once("encoding:" + info.encoding, encoding_notice(info.encoding), notices)
        outcome.usage = usage
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        if not settings.history and req.chat is None:  # the session's conversation, in memory
            self.memory.remember(req.workspace, ctx.selection, outcome.text, outcome.status == "complete",
                                 new=req.new_conversation or not req.action.continues(settings))
        if recording is not None:
            try:
                outcome.conversation_id, assistant_id = await asyncio.shield(recording)
                store = self.store()
                self._notice_once("store", self.store_notice, notices)
            except Exception as exc:  # history must never lose the answer
                self._history_failed(exc, notices)
        if store is not None and assistant_id is not None:
            try:
                # Shielded: a second cancel must not stop the reply from being saved.
                await asyncio.shield(asyncio.to_thread(
                    store.update_message, assistant_id, content=outcome.text, status=outcome.status,
                    prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                    duration_ms=outcome.duration_ms,
                ))
            except Exception as exc:
                log.warning("could not save the reply to history: %s", exc)
        return outcome

    async def _receive(
        self,
        settings: Settings,
        params: dict[str, Any],
        got: _Received,
        recording: asyncio.Future[tuple[int | None, int | None]] | None,
        on_text: Callable[[str], None],
        on_progress: Callable[[int], None] | None,
    ) -> None:
        """Stream the reply into ``got``, handing on each delta; stop at ``maxReplyChars``."""
        from gpt_ls.api.chat import stream_chat

        client = await self.clients.get(settings)
        stream = await stream_chat(client, params)
        last_save = time.monotonic()
        async with stream:
            async for chunk in stream:
                if chunk.usage is not None:
                    got.usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.finish_reason:
                    got.finish = choice.finish_reason
                delta = choice.delta.content if choice.delta is not None else None
                if not delta:
                    continue
                room = settings.max_reply_chars - got.chars
                if len(delta) > room:
                    delta = delta[:room]
                if delta:
                    got.parts.append(delta)
                    got.chars += len(delta)
                    on_text(delta)
                    if on_progress is not None:
                        on_progress(len(got.parts))
                if got.chars >= settings.max_reply_chars:
                    raise ReplyTooLong.at(settings.max_reply_chars, RANGES["max_reply_chars"][1])
                await asyncio.sleep(0)  # a burst of chunks is parsed one per step: requests go between
                row = _recorded(recording)
                if time.monotonic() - last_save >= SAVE_INTERVAL and row is not None:
                    last_save = time.monotonic()
                    await asyncio.to_thread(
                        self.store().update_message, row, content="".join(got.parts), status="partial")
