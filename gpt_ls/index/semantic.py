"""Optional semantic ranking: chunk vectors kept current, and fused with BM25 at search time.

Off unless the user sets ``embeddingModel`` (a restricted setting: a workspace cannot turn
it on). Then :meth:`SemanticRanker.refresh` embeds the chunks that have no vector yet
(by content hash: an unchanged chunk is never sent again), and :meth:`SemanticRanker.search`
embeds the question, takes the nearest chunks and fuses them with BM25's ranking
(``fusion.py``). Any failure (401, 429, a timeout, an unknown model, a strange answer)
is said once, as one :class:`~gpt_ls.errors.EmbeddingsFailed` sentence, and search goes on
with BM25 alone: semantic ranking never makes an Ask fail.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gpt_ls.errors import (
    AuthError,
    BadRequest,
    ConfigError,
    KeyCommandFailed,
    ModelNotFound,
    NoApiKey,
    QuotaExhausted,
)
from gpt_ls.index import embed
from gpt_ls.index.fusion import DEFAULT_METHOD, Method, fuse
from gpt_ls.index.store import Chunk, Hit
from gpt_ls.index.terms import query_terms
from gpt_ls.index.vectors import VectorStore
from gpt_ls.settings import Settings

log = logging.getLogger(__name__)

#: Candidates taken from each side before fusing.
DEPTH = 50
#: How long semantic ranking rests after a failure that may heal by itself (429, timeout, 5xx) …
RETRY_AFTER_S = 60.0
#: … and after one that needs the user (a rejected key, an unknown model).
RETRY_AFTER_USER_S = 600.0

#: Failures that waiting will not heal.
NEEDS_USER = frozenset({"index", *(cls.kind for cls in (AuthError, ModelNotFound, NoApiKey, ConfigError, BadRequest,
                                                        QuotaExhausted, KeyCommandFailed))})

Progress = Callable[[int, int], None]


class ChunkTextLike(Protocol):
    """What the index's ``chunk_texts`` yields: a chunk's id, the hash of its text, the text."""

    @property
    def id(self) -> int: ...
    @property
    def hash(self) -> str: ...
    @property
    def text(self) -> str: ...


class Source(Protocol):
    """What the workspace index (``gpt_ls.index.store.WorkspaceIndex``) offers this module."""

    @property
    def path(self) -> Path: ...  # the index database, where the vectors are kept too
    def chunk_texts(self) -> Iterable[ChunkTextLike]: ...
    def chunk_ids_by_hash(self, hashes: Iterable[str]) -> Mapping[str, list[int]]: ...
    def chunks(self, ids: Iterable[int]) -> Mapping[int, Chunk]: ...
    def search(self, query: str, limit: int = 20) -> list[Hit]: ...


@dataclass(frozen=True)
class EmbedReport:
    """What one refresh did; ``notice`` is set only the first time a failure is met."""

    embedded: int = 0
    cached: int = 0
    requests: int = 0
    pruned: int = 0
    left: int = 0
    failure: str | None = None
    notice: str | None = None

    def summary(self) -> str:
        parts = [f"{self.embedded} chunks embedded in {self.requests} requests", f"{self.cached} unchanged"]
        if self.pruned:
            parts.append(f"{self.pruned} old vectors dropped")
        if self.left:
            parts.append(f"{self.left} left for the next update")
        text = "Semantic ranking: " + ", ".join(parts)
        return f"{text}. {self.failure}" if self.failure else text + "."


@dataclass(frozen=True)
class Ranked:
    """Search results; ``semantic`` says whether vectors took part, ``notice`` a failure said once."""

    hits: list[Hit]
    semantic: bool
    notice: str | None = None


def _key(chunk: Chunk) -> tuple[str, int, int]:
    return (chunk.path, chunk.start_line, chunk.end_line)


class SemanticRanker:
    """Semantic ranking for one workspace index; remembers failures so each is said once."""

    def __init__(self, index: Source, clients: Any = None, env: Mapping[str, str] | None = None,
                 method: Method = DEFAULT_METHOD, clock: Callable[[], float] = time.monotonic) -> None:
        self._index = index
        self._clients = clients  # api.http.ClientCache, shared with chat; made on first use if None
        self._env = env
        self._method = method
        self._clock = clock
        self._store: VectorStore | None = None
        self._paused: tuple[str, float] | None = None  # (model, until)
        self._said: set[str] = set()
        self._refreshing = asyncio.Lock()

    def _vectors(self) -> VectorStore:
        if self._store is None:
            self._store = VectorStore(self._index.path)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def active(self, settings: Settings) -> bool:
        """Whether semantic ranking applies now: asked for, and not resting after a failure."""
        model = settings.embedding_model
        if not model:
            return False
        if self._paused and self._paused[0] == model and self._clock() < self._paused[1]:
            return False
        return True

    async def _client(self, settings: Settings) -> Any:
        if self._clients is None:
            from gpt_ls.api.http import ClientCache

            self._clients = ClientCache(self._env)
        return await self._clients.get(settings)

    def _failed(self, exc: BaseException, settings: Settings) -> tuple[str, str | None]:
        """Pause, and the failure's sentence (plus the same as a notice, the first time only)."""
        err = embed.failure(exc, settings, self._env)
        wait = RETRY_AFTER_USER_S if err.cause_kind in NEEDS_USER else RETRY_AFTER_S
        self._paused = (settings.embedding_model or "", self._clock() + wait)
        log.warning("%s", err.message)
        if err.message in self._said:
            return err.message, None
        self._said.add(err.message)
        return err.message, err.message

    def _plan(self, store: VectorStore, model: str) -> tuple[list[str], dict[str, str], int, int, int]:
        """(hashes to embed now, their texts, how many wait for a later refresh, vectors dropped, unchanged).

        Only the texts of chunks without a vector are kept in memory, at most ``MAX_PER_REFRESH``.
        """
        have = store.hashes(model)
        todo: dict[str, str] = {}
        live: set[str] = set()
        waiting: set[str] = set()
        for item in self._index.chunk_texts():
            live.add(item.hash)
            if item.hash in have or item.hash in todo:
                continue
            if len(todo) < embed.MAX_PER_REFRESH:
                todo[item.hash] = embed.clip(item.text)
            else:
                waiting.add(item.hash)
        pruned = store.prune(model, live)
        return list(todo), todo, len(waiting), pruned, len(live) - len(todo) - len(waiting)

    async def refresh(self, settings: Settings, *, cancel: threading.Event | None = None,
                      progress: Progress | None = None) -> EmbedReport:
        """Embed every chunk that has no vector for ``embeddingModel`` yet (bounded), drop stale ones."""
        model = settings.embedding_model
        if not model or not self.active(settings):
            return EmbedReport()
        async with self._refreshing:
            todo: list[str] = []
            done = requests = left = pruned = cached = 0
            try:
                store = await asyncio.to_thread(self._vectors)
                todo, texts, left, pruned, cached = await asyncio.to_thread(self._plan, store, model)
                client = await self._client(settings) if todo else None
                for part in embed.batches([texts[h] for h in todo], max_inputs=embed.inputs_per_batch(settings)):
                    if cancel is not None and cancel.is_set():
                        break
                    vectors = await embed.embed(client, model, [texts[todo[i]] for i in part])
                    requests += 1
                    pairs = [(todo[i], v) for i, v in zip(part, vectors, strict=True)]
                    await asyncio.to_thread(store.put, model, pairs)
                    done += len(part)
                    if progress is not None:
                        progress(done, len(todo))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure: one sentence, BM25 goes on
                message, notice = self._failed(exc, settings)
                return EmbedReport(done, cached, requests, pruned, left + len(todo) - done, message, notice)
            return EmbedReport(done, cached, requests, pruned, left + len(todo) - done)

    async def search(self, query: str, limit: int, settings: Settings) -> Ranked:
        """BM25's hits, fused with the nearest vectors when semantic ranking is on.

        BM25 runs in a thread while the question is embedded and its nearest vectors found, so
        the words' side costs no time of its own. A query with no searchable word is refused
        before anything is sent.
        """
        query_terms(query)  # QueryUnsearchable, as the index's search would say
        words_job = asyncio.ensure_future(asyncio.to_thread(self._index.search, query, max(limit, DEPTH)))
        try:
            model = settings.embedding_model
            if not model or not self.active(settings):
                return Ranked((await words_job)[:limit], False)
            try:
                client = await self._client(settings)
                (qvec,) = await embed.embed(client, model, [query])
                near = await asyncio.to_thread(self._nearest, model, qvec, max(limit, DEPTH))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the network, the endpoint's answer or the vectors' table
                _, notice = self._failed(exc, settings)
                return Ranked((await words_job)[:limit], False, notice)
            return Ranked(self._fused(await words_job, near, limit), True)
        finally:
            if not words_job.done():
                words_job.cancel()  # its thread ends by itself
            elif not words_job.cancelled():
                words_job.exception()  # seen (it was raised above, or is None)

    def _nearest(self, model: str, qvec: list[float], depth: int) -> list[Hit]:
        """The chunks nearest the question, as hits scored by cosine similarity."""
        store = self._vectors()
        nearest = store.nearest(model, qvec, depth)
        ids = self._index.chunk_ids_by_hash([h for h, _ in nearest])
        chunks = self._index.chunks([i for h, _ in nearest for i in ids.get(h, [])])
        hits: list[Hit] = []
        for h, score in nearest:
            hits.extend(Hit(chunks[i], score) for i in ids.get(h, []) if i in chunks)
        return hits[:depth]

    def _fused(self, words: list[Hit], near: list[Hit], limit: int) -> list[Hit]:
        by_key: dict[tuple[str, int, int], Chunk] = {}
        for hit in [*words, *near]:
            by_key.setdefault(_key(hit.chunk), hit.chunk)
        fused = fuse([(_key(h.chunk), h.score) for h in words], [(_key(h.chunk), h.score) for h in near],
                     self._method)
        return [Hit(by_key[key], score) for key, score in fused[:limit]]
