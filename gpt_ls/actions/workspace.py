""""Ask about the workspace" in the editor: retrieve, fit, label; then link the reply's citations.

Before the exchange, ``prepare`` makes sure the index is built (first use: with the run's
progress, cancellable with it), searches it for the question (open documents taking
precedence over their files), adds the chunks around the selection in its own file and
the best ones of the files it imports and of its test (``index.neighbours``: at most 30 %
of the chunk budget, first in the block), fits the chunks the window allows
(``index.context``) and puts them, labelled, into the system message. While the reply streams, ``Prepared.feed``
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
from gpt_ls.files import read_workspace_file
from gpt_ls.index import neighbours
from gpt_ls.index.citations import CitationStream, sources_section
from gpt_ls.index.context import (
    CITE_INSTRUCTIONS,
    FittedContext,
    HitLike,
    Source,
    chunk_budget,
    select_context,
)
from gpt_ls.index.live import LiveIndex, OpenDocument, relative_path
from gpt_ls.models import ModelInfo, adapt_messages, model_info
from gpt_ls.secret_files import is_secret
from gpt_ls.tokens import count_messages

log = logging.getLogger(__name__)

#: Chunks asked of the index per question (the window decides how many go).
SEARCH_LIMIT = 40
#: Characters of the excerpt on each side of the selection that name the imports it uses.
FOCUS_CHARS = 16 * 1024
#: A package's ``__init__.py`` larger than this is not looked through.
READ_LIMIT = 256 * 1024


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


def sent_lines(req: ExchangeRequest) -> tuple[int, int] | None:
    """The lines (1-based, inclusive) of the asking document sent already: the selection and its excerpt."""
    if req.range is None:
        return None
    reach = req.settings.context_lines
    return req.range["start"]["line"] + 1 - reach, req.range["end"]["line"] + 1 + reach


def asking_path(port: EditorPort, root: Path, req: ExchangeRequest) -> str | None:
    """The asking document's workspace-relative path (None: outside the workspace, or not a file)."""
    doc = port.document(req.context.uri)
    return relative_path(root, doc.path) if doc is not None else None


def already_sent(port: EditorPort, root: Path, req: ExchangeRequest) -> tuple[str, int, int] | None:
    """(path, first, last): the asking document's lines sent already (the selection and the excerpt around it);
    a hit loses them, and goes when nothing else is left."""
    path, lines = asking_path(port, root, req), sent_lines(req)
    return (path, *lines) if path is not None and lines is not None else None


def package_reader(root: Path, documents: Sequence[OpenDocument]) -> Callable[[str], str | None]:
    """A workspace file's text for ``index.imports`` (a package's ``__init__.py``): the editor's when it is
    open, else the file's, confined to the workspace and bounded (None when it cannot be read)."""
    open_texts = {d.path: d.text for d in documents}

    def read(rel: str) -> str | None:
        if rel in open_texts:
            return open_texts[rel][:READ_LIMIT]
        try:
            return read_workspace_file(root, rel, READ_LIMIT)
        except GptLsError:
            return None

    return read


async def local_sources(live: LiveIndex, port: EditorPort, req: ExchangeRequest) -> list[Source]:
    """The chunks around the selection in its own file and the best of its neighbours', by priority
    (``index.neighbours``). None for a document outside the workspace, a secret or excluded one (``indexExclude``).
    """
    path, ctx = asking_path(port, live.root, req), req.context
    if path is None or req.range is None or is_secret(path, req.settings.index_exclude):
        return []
    first, last = req.range["start"]["line"], req.range["end"]["line"]
    nearby = f"{ctx.before[-FOCUS_CHARS:]}\n{ctx.after[:FOCUS_CHARS]}"
    own, queries = await asyncio.to_thread(neighbours.plan, path, ctx.document, first, last, ctx.selection,
                                           live.known_files() or [], sent_lines(req), nearby,
                                           package_reader(live.root, open_documents(port, live.root)))
    try:
        found = await live.file_hits(queries, neighbours.PER_NEIGHBOUR)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the selection's own chunks still go
        log.warning("the neighbours of %s are not sent: %s", path, exc)
        found = {}
    return neighbours.ordered(own, *neighbours.neighbour_sources(found))


def _overhead(req: ExchangeRequest, info: ModelInfo, exact: bool) -> int:
    """Tokens of the request without its chunks (an upper bound unless ``exact``)."""
    ctx = req.context
    system_extra = f"{CITE_INSTRUCTIONS}\n\n{req.system_extra}"
    messages = adapt_messages(info, prompts.render(req.action, ctx, ctx.before, ctx.after, [], system_extra))
    return count_messages(messages, info) if exact else budget.bound_messages(messages, info)


def fit_hits(req: ExchangeRequest, hits: Sequence[HitLike], local: Sequence[Source] = (),
             sent: tuple[str, int, int] | None = None) -> FittedContext:
    """The hits (and ``local``: the selection's file and neighbours; ``sent``: the asking document's lines
    sent as its excerpt) that fit with this request: by size alone when that settles it, else counted."""
    info = model_info(req.settings)
    question = req.context.selection

    def fit(exact: bool) -> FittedContext:
        overhead = _overhead(req, info, exact)
        if local or sent:
            room = chunk_budget(info, req.settings.max_tokens, overhead)
            return neighbours.fitted(local, hits, room, info, sent)
        return select_context(question, hits, None, req.settings, overhead=overhead, info=info)

    fitted = fit(False)
    return fit(True) if fitted.left_out or fitted.exact else fitted


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
    local: list[Source] = []
    try:  # the selection's file and neighbours: also when the question itself found nothing
        local = await local_sources(live, port, req)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the question still goes, with its hits
        log.warning("the selection's file and neighbours are not sent: %s", exc, exc_info=True)
    fitted = await asyncio.to_thread(fit_hits, req, hits, local, already_sent(port, live.root, req))
    if progress is not None and (hits or local):
        progress.report(f"{len(fitted.sources)} excerpts, {fitted.tokens:,} tokens")
    extra = "\n\n".join(part for part in (fitted.system_text(), req.system_extra) if part)
    # A code reply (a user's action with ``code``) is code: no links, no Sources in it.
    linked = () if req.action.code else fitted.sources
    return dataclasses.replace(req, system_extra=extra), Prepared(linked, live.root)
