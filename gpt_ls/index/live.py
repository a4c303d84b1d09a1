"""The workspace index as the server keeps it: opened and built on first use, kept current, read off the loop.

Every call into the index runs on one thread of its own (SQLite connections belong to
the thread that made them, and the event loop never waits for the disk). A whole-workspace
build or update runs in a child process when a worker is given (``builder``), so the
editor's requests stay as fast as when idle; a few saved files are updated on the thread.
Open documents take precedence over their files: before each search, every open document
whose version changed since it was last given to the index becomes its overlay (nothing is
re-chunked on a keystroke), and a closed one stops being one. A damaged or outdated index
is the index's to rebuild (its notice is shown once); a read-only one is searched as it is;
anything else that goes wrong is one message and a question without workspace context.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from gpt_ls.errors import GptLsError
from gpt_ls.settings import Settings

if TYPE_CHECKING:  # the server imports this module at start-up: the tokenizer's modules load later
    from gpt_ls.index.context import HitLike

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Progress reports from a build, at most this often (seconds).
PROGRESS_INTERVAL = 0.25
#: When the editor does not report changed files, a question looks for changes (an incremental
#: update: sizes and times) if the last look is older than this (seconds).
RECHECK_SECONDS = 60.0


class IndexLike(Protocol):
    """What the server needs of ``gpt_ls.index``'s ``WorkspaceIndex``."""

    def update(self, paths: Iterable[str] | None = None, *, progress: Any = None, cancel: Any = None) -> Any: ...
    def set_overlay(self, path: str, text: str | None) -> None: ...
    def search(self, query: str, limit: int = 20) -> Sequence[HitLike]: ...
    def files(self) -> list[str]: ...
    def close(self) -> None: ...


Opener = Callable[[Path, Settings], IndexLike]
#: Semantic ranking for an opened index (``embeddingModel``), or None when there is none.
RankerFactory = Callable[[IndexLike], Any]
#: A cold build in another process: (root, settings, on_progress(text), cancel) -> the summary line.
Builder = Callable[[Path, Settings, Callable[[str], None], threading.Event], Awaitable[str]]


@dataclass(frozen=True)
class OpenDocument:
    """An open document of the workspace: its workspace-relative POSIX path, version and text."""

    path: str
    version: int | None
    text: str


def open_index(root: Path, settings: Settings) -> IndexLike:
    """The workspace's index (``gpt_ls.index``'s ``WorkspaceIndex``; imported on first use)."""
    from gpt_ls.index.store import WorkspaceIndex  # SQLite and the chunkers: on first use

    return WorkspaceIndex.open(root, settings)


def relative_path(root: Path, path: str) -> str | None:
    """``path`` relative to ``root`` as POSIX, or None when it is outside (no symlink is resolved)."""
    try:
        return Path(path).relative_to(root).as_posix() if path else None
    except ValueError:
        return None


def progress_text(args: tuple[Any, ...]) -> str:
    """A progress callback's arguments ``(done, total, path)`` as one short line."""
    if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], int) and args[1]:
        return f"{args[0]:,}/{args[1]:,} files"
    return " ".join(str(a) for a in args)[:120]


def summary_of(report: Any) -> str:
    """An ``IndexReport``'s one-line summary (``""`` when it has none)."""
    summary = getattr(report, "summary", "")
    return str(summary() if callable(summary) else summary or "")


def semantic_ranker(clients: Callable[[], Any]) -> RankerFactory:
    """Semantic ranking (``embeddingModel``) through the chat's client cache: made for an index on first use
    (the module is imported then, off the event loop); None when this gpt-ls has no semantic ranking."""

    def make(index: IndexLike) -> Any:
        try:
            semantic = importlib.import_module("gpt_ls.index.semantic")
        except ImportError:
            return None
        return semantic.SemanticRanker(index, clients())

    return make


class LiveIndex:
    """One workspace's index in the server (see the module docstring)."""

    def __init__(
        self, root: Path, settings: Callable[[], Settings], opener: Opener = open_index,
        builder: Builder | None = None, ranker: RankerFactory | None = None,
    ) -> None:
        self.root = root
        self.settings = settings
        self.opener = opener
        self.builder = builder
        self.ranker_factory = ranker
        #: ``gpt_ls.index.semantic.SemanticRanker`` for the open index (made when first needed).
        self._ranker: Any = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="gpt-ls-index")
        self._index: IndexLike | None = None
        self._ready: asyncio.Task[str] | None = None
        self._cancel = threading.Event()
        self._built_at = 0.0
        #: The editor reports changed files (watched files): no need to look for changes at each question.
        self.watched = False
        self._overlays: dict[str, int | None] = {}
        self._files: list[str] | None = None
        self._pending: set[str] = set()
        self._updating: asyncio.Task[None] | None = None
        self.notice: str | None = None

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    # -- building ----------------------------------------------------------------
    def ready(self, report: Callable[[str], None], cancel: threading.Event) -> asyncio.Task[str]:
        """The index opened and current (built on first use); one task shared by every caller.

        The result is the build's summary line. A cancelled build is tried again next time.
        """
        previous = self._ready
        stale = (previous is not None and previous.done() and not self.watched
                 and time.monotonic() - self._built_at > RECHECK_SECONDS)
        task: asyncio.Task[str]
        if previous is None or stale or (previous.done() and (previous.cancelled() or previous.exception())):
            task = asyncio.ensure_future(self._build(report, cancel))
        elif not previous.done() and self._cancel.is_set():  # being cancelled: build again after it
            task = asyncio.ensure_future(self._after(previous, report, cancel))
        else:
            return previous
        self._ready, self._cancel = task, cancel
        return task

    async def _after(self, previous: asyncio.Task[str], report: Callable[[str], None], cancel: threading.Event) -> str:
        await asyncio.wait([previous])
        return await self._build(report, cancel)

    async def _build(self, report: Callable[[str], None], cancel: threading.Event) -> str:
        loop = asyncio.get_running_loop()
        last = [0.0]

        def progress(*args: Any) -> None:  # called on the index's thread
            now = loop.time()
            if now - last[0] >= PROGRESS_INTERVAL:
                last[0] = now
                loop.call_soon_threadsafe(report, progress_text(args))

        if self._index is None:
            self._index = await self._call(self.opener, self.root, self.settings())
        index = self._index
        notice = getattr(index, "notice", None)  # e.g. a damaged index moved aside, rebuilt now
        if notice:
            index.notice = None  # type: ignore[attr-defined]  # told once
        try:
            if self.builder is not None:  # in a child process: the event loop keeps its GIL
                summary = await self.builder(self.root, self.settings(), report, cancel)
                await self._call(lambda: getattr(index, "apply_overlays", lambda: None)())
            else:
                summary = summary_of(await self._call(index.update, None, progress=progress, cancel=cancel))
        except GptLsError as exc:  # e.g. a read-only disk: search what the index holds, if anything
            if cancel.is_set() or not await self._call(lambda: bool(getattr(index, "built", False))):
                raise
            summary, notice = "", f"{exc} Searching the index as it is."
        if cancel.is_set():
            raise asyncio.CancelledError
        self._files = await self._call(index.files)
        self._built_at = time.monotonic()
        embedded = await self._embed(report, cancel)
        self.notice = " ".join(n for n in (notice, embedded) if n) or None
        return summary

    async def _embed(self, report: Callable[[str], None], cancel: threading.Event) -> str | None:
        """New chunks embedded when ``embeddingModel`` is set; a failure's sentence (said once)."""
        settings = self.settings()
        ranker = await self._ranker_for(settings)
        if ranker is None:
            return None
        try:
            result = await ranker.refresh(settings, cancel=cancel,
                                          progress=lambda done, total: report(f"embedding {done:,}/{total:,} chunks"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the chunks stay searchable by BM25
            log.warning("embedding the workspace failed", exc_info=True)
            return f"Embedding the workspace's chunks failed ({exc}); search is BM25 alone meanwhile."
        return getattr(result, "notice", None)

    async def _ranker_for(self, settings: Settings) -> Any:
        """The semantic ranker when ``embeddingModel`` is set (made on first use, off the loop: it may load the SDK)."""
        if not settings.embedding_model or self.ranker_factory is None or self._index is None:
            return None
        if self._ranker is None:
            self._ranker = await asyncio.to_thread(self.ranker_factory, self._index)
            if self._ranker is None:
                self.ranker_factory = None  # none to be had: BM25 from now on
        return self._ranker

    def take_notice(self) -> str | None:
        """What the last build has to tell the user (once)."""
        notice, self.notice = self.notice, None
        return notice

    def changed(self, paths: Iterable[str]) -> None:
        """Files saved or changed on disk (workspace-relative): indexed again soon, together, once it is open."""
        if self._index is None:
            return
        self._pending.update(paths)
        if self._pending and (self._updating is None or self._updating.done()):
            self._updating = asyncio.ensure_future(self._update_pending())

    async def _update_pending(self) -> None:
        while self._pending and self._index is not None:
            wanted, self._pending = sorted(self._pending), set()
            index = self._index
            try:
                await self._call(index.update, wanted)
                self._files = await self._call(index.files)
            except Exception as exc:  # the next search tries again; a save never fails for it
                log.warning("could not update the workspace index: %s", exc)

    # -- reading -------------------------------------------------------------------
    async def _sync_overlays(self, documents: Sequence[OpenDocument]) -> None:
        """Open documents whose version changed become overlays; closed ones stop being."""
        index = self._index
        if index is None:
            return
        now = {d.path: d for d in documents}
        changed = [d for d in documents if self._overlays.get(d.path, -1) != d.version or d.version is None]
        gone = [p for p in self._overlays if p not in now]

        def apply() -> None:
            for doc in changed:
                index.set_overlay(doc.path, doc.text)
            for path in gone:
                index.set_overlay(path, None)

        if changed or gone:
            await self._call(apply)
            for path in gone:
                del self._overlays[path]
            self._overlays.update({d.path: d.version for d in changed})

    async def search(self, query: str, limit: int, documents: Sequence[OpenDocument] = ()) -> list[HitLike]:
        """The best chunks for ``query`` (the index must be ready), open documents taking precedence."""
        if self._index is None:
            return []
        if self._updating is not None and not self._updating.done():  # saved files first
            await asyncio.shield(self._updating)
        await self._sync_overlays(documents)
        index, settings = self._index, self.settings()
        if (ranker := await self._ranker_for(settings)) is not None:  # BM25 fused with vectors
            try:
                ranked = await ranker.search(query, limit, settings)
            except (asyncio.CancelledError, GptLsError):
                raise
            except Exception as exc:  # a bug there must not cost the question its excerpts
                log.warning("semantic ranking failed", exc_info=True)
                self.notice = f"Semantic ranking failed ({type(exc).__name__}); this search is BM25 alone."
            else:
                self.notice = ranked.notice or self.notice
                return list(ranked.hits)
        return list(await self._call(index.search, query, limit))

    async def file_hits(self, queries: Sequence[tuple[str, str]], limit: int) -> dict[str, list[HitLike]]:
        """For each (path, query): the chunks of that indexed file that best match, else its first ones
        (after ``search``, so overlays count); {} when the index cannot search one file."""
        index = self._index
        find = getattr(index, "search_file", None)
        if index is None or find is None or not queries:
            return {}
        return await self._call(lambda: {path: list(find(query, path, limit)) for path, query in queries})

    def known_files(self) -> list[str] | None:
        """The indexed files as of the last build or update (None: not built in this session)."""
        return self._files

    async def close(self) -> None:
        """Close the index and its thread (a build still running is cancelled)."""
        for task in (self._ready, self._updating):
            if task is not None and not task.done():
                task.cancel()
        index, self._index = self._index, None
        if index is not None:
            try:
                await self._call(index.close)
            except Exception as exc:
                log.info("closing the workspace index: %s", exc)
        self._executor.shutdown(wait=False)
