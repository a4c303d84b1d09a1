""""Ask about the workspace" in the editor: retrieve, fit, label; then link the reply's citations.

Before the exchange, ``prepare`` makes sure the index is built (first use: with the run's
progress, cancellable with it), searches it for the question (open documents taking
precedence over their files), fits the chunks the window allows (``index.context``) and
puts them, labelled, into the system message. While the reply streams, ``Prepared.feed``
turns its ``path:start-end`` citations into links; at the end ``Prepared.finish`` gives the
text still held back and the Sources list. Nothing of the reply is ever dropped: history
keeps the reply as the model wrote it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gpt_ls import budget, prompts
from gpt_ls.actions.editor import EditorPort, Progress
from gpt_ls.errors import GptLsError
from gpt_ls.exchange import ExchangeRequest, Reply
from gpt_ls.index.citations import CitationStream, sources_section
from gpt_ls.index.context import CITE_INSTRUCTIONS, FittedContext, HitLike, Source, select_context
from gpt_ls.index.live import LiveIndex, OpenDocument, relative_path
from gpt_ls.models import ModelInfo, adapt_messages, model_info
from gpt_ls.tokens import count_messages

log = logging.getLogger(__name__)

#: Chunks asked of the index per question (the window decides how many go).
SEARCH_LIMIT = 40


@dataclass
class Prepared:
    """A workspace question's sources, and its reply on the way to the document."""

    sources: tuple[Source, ...]
    root: Path
    stream: CitationStream = field(init=False)
    shown: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stream = CitationStream(self.sources, self.root)

    def feed(self, delta: str) -> str:
        """The part of the reply that can go to the document now, its citations linked."""
        out = self.stream.feed(delta)
        self.shown.append(out)
        return out

    def flush(self) -> str:
        """Whatever is still held back (a cancelled reply)."""
        out = self.stream.flush()
        self.shown.append(out)
        return out

    def finish(self, reply: Reply) -> str:
        """The rest of the reply and, when one came, the Sources list."""
        out = self.flush()
        if reply.status == "complete" and reply.text.strip():
            section = sources_section(reply.text, self.sources, self.root)
            self.shown.append(section)
            out += section
        return out

    def shown_reply(self, reply: Reply) -> Reply:
        """The reply as the document shows it (for a fallback document)."""
        return dataclasses.replace(reply, text="".join(self.shown)) if reply.text else reply


def open_documents(port: EditorPort, root: Path) -> list[OpenDocument]:
    """The open documents inside the workspace, with their workspace-relative paths."""
    found = []
    for doc in port.documents():
        path = relative_path(root, doc.path)
        if path is not None:
            found.append(OpenDocument(path, doc.version, doc.text))
    return found


def already_sent(port: EditorPort, root: Path, req: ExchangeRequest) -> Callable[[HitLike], bool]:
    """Whether a hit lies inside the asking document's excerpt around the selection (sent already as the excerpt)."""
    doc = port.document(req.context.uri)
    path = relative_path(root, doc.path) if doc is not None else None
    if path is None or req.range is None:
        return lambda hit: False
    reach = req.settings.context_lines
    first = req.range["start"]["line"] + 1 - reach
    last = req.range["end"]["line"] + 1 + reach
    return lambda hit: hit.chunk.path == path and hit.chunk.start_line >= first and hit.chunk.end_line <= last


def _overhead(req: ExchangeRequest, info: ModelInfo, exact: bool) -> int:
    """Tokens of the request without its chunks (an upper bound unless ``exact``)."""
    ctx = req.context
    system_extra = f"{CITE_INSTRUCTIONS}\n\n{req.system_extra}"
    messages = adapt_messages(info, prompts.render(req.action, ctx, ctx.before, ctx.after, [], system_extra))
    return count_messages(messages, info) if exact else budget.bound_messages(messages, info)


def fit_hits(req: ExchangeRequest, hits: Sequence[HitLike]) -> FittedContext:
    """The hits that fit with this request: by size alone when that settles it, else counted."""
    info = model_info(req.settings)
    question = req.context.selection
    fitted = select_context(question, hits, None, req.settings, overhead=_overhead(req, info, False), info=info)
    if fitted.left_out or fitted.exact:
        fitted = select_context(question, hits, None, req.settings, overhead=_overhead(req, info, True), info=info)
    return fitted


async def ensure_index(live: LiveIndex, port: EditorPort, progress: Progress | None) -> None:
    cancel = threading.Event()
    task = live.ready(progress.report if progress is not None else (lambda _: None), cancel)
    if not task.done() and progress is not None:
        progress.report("indexing the workspace")
    try:
        summary = await asyncio.shield(task)
    except asyncio.CancelledError:
        cancel.set()  # the run was cancelled: so is the build (tried again next time)
        raise
    if summary and progress is not None:
        progress.report(summary)
    if notice := live.take_notice():
        port.show_message(f"gpt-ls: {notice}", "warning")


async def prepare(
    live: LiveIndex, port: EditorPort, req: ExchangeRequest, progress: Progress | None
) -> tuple[ExchangeRequest, Prepared]:
    """The request with its workspace chunks, and how its reply goes to the document."""
    hits: list[HitLike] = []
    try:
        await ensure_index(live, port, progress)
        hits = await live.search(req.context.selection, SEARCH_LIMIT, open_documents(port, live.root))
        sent = already_sent(port, live.root, req)
        hits = [hit for hit in hits if not sent(hit)]
        if notice := live.take_notice():  # semantic ranking failed: BM25 alone this time
            port.show_message(f"gpt-ls: {notice}", "warning")
    except GptLsError as exc:  # e.g. a question of stop words only: said, and asked without chunks
        port.show_message(f"{exc} The question goes without workspace excerpts.", "warning")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("workspace index unavailable: %s", exc, exc_info=True)
        port.show_message(f"gpt-ls: the workspace index is unavailable ({exc}); the question goes without "
                          "workspace excerpts.", "warning")
    fitted = await asyncio.to_thread(fit_hits, req, hits)
    if progress is not None and hits:
        progress.report(f"{len(fitted.sources)} excerpts, {fitted.tokens:,} tokens")
    extra = "\n\n".join(part for part in (fitted.system_text(), req.system_extra) if part)
    # A code reply (a user's action with ``code``) is code: no links, no Sources in it.
    linked = () if req.action.code else fitted.sources
    return dataclasses.replace(req, system_extra=extra), Prepared(linked, live.root)
