"""Running actions in the editor: targets, owned tasks with progress, cancellation, shutdown.

``ActionRunner`` reads the selection (``requests``), runs the exchange as an owned task
with a cancellable progress, and hands the reply to ``delivery``. It talks to the editor
only through the ``EditorPort``; it never sees the LSP server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gpt_ls.actions import chat_context, requests, workspace
from gpt_ls.actions.catalog import Action, Catalog
from gpt_ls.actions.delivery import Delivery
from gpt_ls.actions.editor import EditorPort, Progress
from gpt_ls.actions.hovers import HoverReply, Hovers
from gpt_ls.actions.insertion import AnyText, InsertionTracker
from gpt_ls.errors import GptLsError, InvalidRequest
from gpt_ls.exchange import ExchangeRequest, Reply
from gpt_ls.index.live import LiveIndex
from gpt_ls.settings import Settings
from gpt_ls.text import Change, Pos

log = logging.getLogger(__name__)

#: Progress and status reports while tokens arrive, at most this often (seconds).
PROGRESS_INTERVAL = 0.5


class Exchanger(Protocol):
    """What the runner needs of ``exchange.Exchange`` (tests pass a scripted fake)."""

    async def run(
        self, req: ExchangeRequest, on_text: Callable[[str], None], on_progress: Callable[[int], None] | None = None
    ) -> Reply: ...


@dataclass
class Run:
    """One exchange in flight."""

    id: int
    action: Action
    task: asyncio.Task[Reply] | None = None
    tokens: int = 0
    last_report: float = 0.0
    progress: Progress | None = None
    chunks: list[str] = field(default_factory=list)


def end_message(req: ExchangeRequest, reply: Reply | None) -> str:
    """The last word of a run, for its progress and the status bar."""
    if reply is None:
        return "failed"
    if reply.status == "complete":
        return reply.usage_line(req.settings.prices)
    if reply.status == "cancelled":
        return "cancelled"
    return f"failed: {reply.error.kind if reply.error else 'error'}"


class ActionRunner:
    """Runs actions against one editor."""

    def __init__(
        self, port: EditorPort, settings: Callable[[], Settings], exchange: Exchanger,
        catalog: Callable[[], Catalog] = Catalog, index: Callable[[], LiveIndex | None] = lambda: None,
    ) -> None:
        self.port = port
        #: The workspace index "Ask about the workspace" searches (None: no workspace folder).
        self.index = index
        self.settings = settings
        self.exchange = exchange
        self.catalog = catalog
        self.trackers: dict[str, list[InsertionTracker]] = {}
        self.hovers = Hovers()
        self.running: dict[int, Run] = {}
        self._next_id = 0

    # -- following the document ----------------------------------------------------
    def on_change(self, uri: str, change: Change, old: AnyText, new: AnyText) -> None:
        """Every tracked insertion point and hover range follows each change."""
        for tracker in self.trackers.get(uri, []):
            tracker.on_change(change, old, new)
        self.hovers.on_change(uri, change)

    def forget(self, uri: str) -> None:
        """A closed document has no hovers."""
        self.hovers.forget(uri)

    def hover_at(self, uri: str, position: Pos) -> HoverReply | None:
        """The latest reply shown as hover whose range holds ``position``."""
        doc = self.port.document(uri)
        return self.hovers.at(uri, doc.text, position, self.port.encoding) if doc is not None else None

    # -- starting ----------------------------------------------------------------
    def action(self, action_id: Any, default: Action | None = None) -> Action:
        """The action in force with this id (the user may have overridden a built-in)."""
        catalog = self.catalog()
        found = catalog.get(action_id) if isinstance(action_id, str) else None
        if found is not None:
            return found
        if default is not None:
            return default
        known = ", ".join(a.id for a in catalog.actions)
        raise InvalidRequest(f"unknown action {action_id!r}; known: {known}")

    async def run_action(
        self, action_id: Any, uri: str, start: Pos, end: Pos, extra: dict[str, Any] | None = None,
        default: Action | None = None,
    ) -> dict[str, Any]:
        """Start the action with this id as an owned task; actions that stream or edit return at once."""
        action = self.action(action_id, default)
        target = requests.select(self.port, action, uri, start, end)
        choice = await self.ask_input(action)
        if choice is None:
            return {"status": "dismissed"}
        # Each step of the start takes a millisecond or two on a large document: the editor's
        # requests (code actions, the echoes of other replies) may go in between.
        await asyncio.sleep(0)
        req = requests.build_request(self.port, action, target, self.settings(), extra or {}, choice)
        await asyncio.sleep(0)
        return await self._start(req, target)

    async def send_chat(self, uri: str) -> dict[str, Any]:
        """A chat document: send its sections, stream the reply into a new section."""
        req, target = requests.chat_request(self.port, uri, self.settings())
        return await self._start(req, target)

    async def ask_input(self, action: Action) -> str | None:
        """The user's answer for ``{input}``: one of the action's choices (None: dismissed)."""
        if not action.input_choices:
            return ""
        if not self.port.features.show_message_request:
            return action.input_choices[0]
        return await self.port.ask_choice(action.input_prompt or f"{action.title}: choose", list(action.input_choices))

    async def _start(self, req: ExchangeRequest, target: requests.Target) -> dict[str, Any]:
        if req.action.output == "replace":
            target.anchor = self.hovers.anchor(target.uri, target.start, target.end)
        self._next_id += 1
        run = Run(self._next_id, req.action)
        self.running[run.id] = run
        delivery = Delivery(self.port, self.trackers, self.hovers, run.id, req, target)
        run.task = asyncio.create_task(self._run(run, req, delivery), name=f"gpt-ls {req.action.id} {run.id}")
        if req.action.output == "hover" or not self.port.features.apply_edit:
            reply = await asyncio.shield(run.task)
            return {"id": run.id, "status": reply.status, "text": reply.text, "output": delivery.output}
        return {"id": run.id, "status": "started", "output": delivery.output}

    # -- cancelling ----------------------------------------------------------------
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

    # -- one run -------------------------------------------------------------------
    def status(self, message: str) -> None:
        """The status notification: how many runs, how many tokens, what just happened."""
        tokens = sum(r.tokens for r in self.running.values())
        self.port.notify_status(len(self.running), tokens, message)

    def _on_tokens(self, run: Run, count: int) -> None:
        """Report tokens received, at most every PROGRESS_INTERVAL seconds."""
        run.tokens = count
        now = time.monotonic()
        if now - run.last_report < PROGRESS_INTERVAL:
            return
        run.last_report = now
        if run.progress is not None:
            run.progress.report(f"{count} tokens")
        self.status(f"{count} tokens")

    def _on_text(self, run: Run, delivery: Delivery, delta: str, prepared: workspace.Prepared | None) -> None:
        run.chunks.append(delta)
        delivery.write(prepared.feed(delta) if prepared is not None else delta)

    async def _run(self, run: Run, req: ExchangeRequest, delivery: Delivery) -> Reply:
        reply: Reply | None = None
        prepared: workspace.Prepared | None = None
        # Progress is created alongside the request: a slow editor does not delay the model.
        run.progress = self.port.begin_progress(
            f"gpt-ls: {run.action.title.removeprefix('GPT: ')}", lambda: self.cancel(run.id))
        try:
            self.status(f"{run.action.title}…")
            await asyncio.sleep(0)  # the start is a few ms of work: the editor's requests may go between
            if req.chat is not None or req.action.context == "workspace":  # mentions, or the index's chunks
                req, prepared = await chat_context.prepare_request(self.index(), self.port, req, run.progress)
            delivery.start()
            reply = await self.exchange.run(
                req, lambda delta: self._on_text(run, delivery, delta, prepared), lambda n: self._on_tokens(run, n))
            for notice in reply.notices:
                self.port.show_message(notice, "warning")
            if prepared is not None:  # the held-back text, then the Sources
                delivery.write(prepared.finish(reply))
            await delivery.finish(prepared.shown_reply(reply) if prepared is not None else reply)
            return reply
        except asyncio.CancelledError:
            reply = Reply(text="".join(run.chunks), status="cancelled", model=req.settings.model)
            if prepared is not None:
                delivery.write(prepared.flush())
            await delivery.cancelled()
            return reply
        except GptLsError as exc:
            self.port.show_message(str(exc))
            reply = Reply(text="".join(run.chunks), status="error", model=req.settings.model, error=exc)
            return reply
        except Exception as exc:
            log.exception("action %s failed", run.action.id)
            self.port.show_message(f"gpt-ls internal error while running {run.action.title}: {exc}. See the log.")
            reply = Reply(text="".join(run.chunks), status="error", model=req.settings.model)
            return reply
        finally:
            delivery.release()
            if delivery.target.anchor is not None:
                self.hovers.release(delivery.target.uri, delivery.target.anchor)
            self.running.pop(run.id, None)
            message = end_message(req, reply)
            await run.progress.end(message)
            self.status(message)
