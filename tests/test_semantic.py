"""Semantic ranking: vectors, fusion, batching, the cache by content hash, failures, proxies, the key.

The embeddings come from the fake OpenAI server over real HTTP (tests/support/fakeopenai.py,
fakeembed.py); the index is a small stand-in with the same methods as gpt_ls/index's.
"""

from __future__ import annotations

import logging
import random
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpt_ls.api.http import ClientCache
from gpt_ls.errors import QueryUnsearchable
from gpt_ls.index import embed, fusion, vectors
from gpt_ls.index.semantic import SemanticRanker
from gpt_ls.index.store import Chunk, Hit
from gpt_ls.settings import Settings
from tests.support import fakeembed
from tests.support.fakeopenai import Error, FakeOpenAI, Reply, Stall
from tests.support.netkit import KEY, Pproxy, api_fixture, settings_for

__all__ = ["api_fixture"]


@dataclass(frozen=True)
class Text:
    id: int
    hash: str
    text: str


class FakeIndex:
    """Chunks in memory (ids are list positions), BM25 stood in for by counting shared words."""

    def __init__(self, path: Path, chunks: list[Chunk]) -> None:
        self.path = path
        path.touch()
        self.chunk_list = chunks

    def chunk_texts(self) -> Iterator[Text]:
        for i, c in enumerate(self.chunk_list):
            yield Text(i, vectors.content_hash(c.text), c.text)

    def chunk_ids_by_hash(self, hashes: Iterable[str]) -> dict[str, list[int]]:
        wanted = set(hashes)
        out: dict[str, list[int]] = {}
        for t in self.chunk_texts():
            if t.hash in wanted:
                out.setdefault(t.hash, []).append(t.id)
        return out

    def chunks(self, ids: Iterable[int]) -> dict[int, Chunk]:
        return {i: self.chunk_list[i] for i in ids}

    def search(self, query: str, limit: int = 20) -> list[Hit]:
        q = set(fakeembed.words(query))
        scored = [(len(q & set(fakeembed.words(c.text))), c) for c in self.chunk_list]
        hits = [Hit(c, float(s)) for s, c in sorted(scored, key=lambda x: -x[0]) if s > 0]
        return hits[:limit]


def chunk(path: str, text: str, line: int = 1) -> Chunk:
    return Chunk(path, line, line + text.count("\n"), text)


CHUNKS = [chunk(f"src/m{i}.py", f"def function_{i}(value):\n    return value * {i}\n") for i in range(7)]


@pytest.fixture(name="index")
def index_fixture(tmp_path: Path) -> FakeIndex:
    return FakeIndex(tmp_path / "index.sqlite", list(CHUNKS))


def semantic(api: FakeOpenAI, **kw: object) -> Settings:
    return settings_for(api, embedding_model="text-embedding-3-small", **kw)


def test_vectors_round_trip_and_normalise() -> None:
    vec = vectors.normalise([3.0, 4.0])
    assert list(vec) == pytest.approx([0.6, 0.8])
    assert list(vectors.unpack(vectors.pack(vec))) == list(vec)
    with pytest.raises(ValueError):
        vectors.normalise([0.0, 0.0])
    with pytest.raises(ValueError):
        vectors.normalise([float("nan"), 1.0])


def test_sketch_shortlist_finds_what_exact_scoring_finds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(14)
    store = vectors.VectorStore(tmp_path / "v.sqlite")
    items = [(f"h{i}", [rng.gauss(0, 1) for _ in range(48)]) for i in range(600)]
    store.put("m", items)
    query = [v + rng.gauss(0, 0.3) for v in items[123][1]]
    exact = store.nearest("m", query, 5)
    monkeypatch.setattr(vectors, "EXACT_BELOW", 10)
    monkeypatch.setattr(vectors, "SHORTLIST", 60)
    assert store.nearest("m", query, 5)[0] == exact[0]
    assert exact[0][0] == "h123"
    assert store.count("m") == 600
    assert store.prune("m", {"h1", "h2"}) == 598
    assert store.missing("m", ["h1", "h3", "h3"]) == ["h3"]


def test_fusion_rrf_and_calibrated_sum() -> None:
    words = [("a", 9.0), ("b", 5.0), ("c", 1.0)]
    meaning = [("c", 0.9), ("d", 0.8), ("a", 0.1)]
    assert [k for k, _ in fusion.rrf([["a", "b", "c"], ["c", "d", "a"]])] == ["a", "c", "b", "d"]
    fused = fusion.calibrated_sum(words, meaning)
    assert fused == [("a", 0.5), ("c", 0.5), ("d", pytest.approx(0.4375)), ("b", 0.25)]
    assert fusion.fuse(words, [], "rrf")[0][0] == "a"
    assert [k for k, _ in fusion.fuse([], meaning, "sum")] == ["c", "d", "a"]


def test_batches_are_bounded_in_inputs_and_characters() -> None:
    texts = ["x" * 10] * 7 + ["y" * 50, "z"]
    parts = list(embed.batches(texts, max_inputs=3, max_chars=45))
    assert [list(p) for p in parts] == [[0, 1, 2], [3, 4, 5], [6], [7], [8]]
    assert embed.clip("  ") == "(empty)" and len(embed.clip("a" * 10**6)) == embed.MAX_INPUT_CHARS
    assert embed.inputs_per_batch(Settings()) == embed.MAX_BATCH_INPUTS
    assert embed.inputs_per_batch(Settings(max_reply_chars=20_000)) == 3  # a response stays under the line limit


async def test_refresh_batches_then_caches_by_content_hash(
        api: FakeOpenAI, index: FakeIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed, "MAX_BATCH_INPUTS", 3)
    ranker = SemanticRanker(index, ClientCache())
    report = await ranker.refresh(semantic(api))
    assert (report.embedded, report.requests, report.cached, report.failure) == (7, 3, 0, None)
    assert [len(r.body["input"]) for r in api.embedding_requests()] == [3, 3, 1]
    assert {r.body["model"] for r in api.embedding_requests()} == {"text-embedding-3-small"}

    again = await ranker.refresh(semantic(api))
    assert (again.embedded, again.requests, again.cached) == (0, 0, 7)
    assert len(api.embedding_requests()) == 3

    index.chunk_list[2] = chunk("src/m2.py", "def function_2(value):\n    return value ** 2\n")
    index.chunk_list.append(chunk("src/new.py", "CONSTANT = 1\n"))
    changed = await ranker.refresh(semantic(api))
    assert (changed.embedded, changed.cached, changed.pruned) == (2, 6, 1)
    assert api.embedded_texts()[7:] == [index.chunk_list[2].text, "CONSTANT = 1\n"]
    ranker.close()


async def test_fusion_lifts_the_chunk_that_means_the_question(api: FakeOpenAI, tmp_path: Path) -> None:
    target = chunk("src/retry.py", "def backoff(attempt):\n    return min(8, 0.5 * 2 ** attempt)\n")
    decoy = chunk("docs/faq.md", "How long to wait? See the wait page.\n")
    other = [chunk(f"src/x{i}.py", f"def helper_{i}():\n    pass\n") for i in range(4)]
    index = FakeIndex(tmp_path / "i.sqlite", [decoy, *other, target])
    question = "how long to wait between retries"

    def meaning(text: str) -> list[float]:  # the model knows backoff is about waiting between retries
        return [1.0, 0.1] if ("backoff" in text or "retries" in text) else [0.0, 1.0]

    api.embedder = meaning
    ranker = SemanticRanker(index, ClientCache())
    await ranker.refresh(semantic(api))
    words_only = await ranker.search(question, 3, settings_for(api))
    fused = await ranker.search(question, 3, semantic(api))
    assert not words_only.semantic and target not in [h.chunk for h in words_only.hits]
    assert fused.semantic and fused.notice is None
    assert [h.chunk for h in fused.hits][:2] == [decoy, target]  # found by both sides: the words' first stays
    ranker.close()


async def test_a_query_with_no_word_is_refused_before_anything_is_sent(api: FakeOpenAI, index: FakeIndex) -> None:
    ranker = SemanticRanker(index, ClientCache())
    await ranker.refresh(semantic(api))
    sent = len(api.embedding_requests())
    with pytest.raises(QueryUnsearchable, match="no words to search for"):
        await ranker.search("?? !!", 3, semantic(api))
    assert len(api.embedding_requests()) == sent
    assert (await ranker.search("function_3", 3, semantic(api))).semantic  # BM25 beside the embedding: both used
    ranker.close()


@pytest.mark.parametrize(("behaviour", "said"), [
    (Error(401, "Incorrect API key provided: sk-test-NETKIT-SECRET-0123456789abcdef"), "API key rejected (401)"),
    (Error(429, "Rate limit reached"), "Rate limit reached (429)"),
    (Error(404, "The model does not exist", code="model_not_found"), "check embeddingModel"),
    (Stall(seconds=5, before_headers=True), "within 0.3 s (readTimeout)"),
])
async def test_a_failure_says_one_sentence_and_falls_back_to_bm25(
        api: FakeOpenAI, index: FakeIndex, behaviour: object, said: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = semantic(api, read_timeout=0.3)
    ranker = SemanticRanker(index, ClientCache())
    api.script_embeddings(behaviour)  # type: ignore[arg-type]
    first = await ranker.search("function_3 value", 2, settings)
    assert first.hits[0].chunk.path == "src/m3.py" and not first.semantic
    assert first.notice is not None and said in first.notice and "words alone (BM25)" in first.notice
    requests = len(api.embedding_requests())
    second = await ranker.search("function_4 value", 2, settings)  # resting: no request, nothing said again
    assert second.notice is None and second.hits[0].chunk.path == "src/m4.py"
    assert len(api.embedding_requests()) == requests
    report = await ranker.refresh(settings)
    assert report.embedded == 0 and report.notice is None
    assert KEY not in caplog.text and KEY not in first.notice
    api.release_stalls()
    ranker.close()


async def test_refresh_failure_keeps_what_was_embedded(
        api: FakeOpenAI, index: FakeIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed, "MAX_BATCH_INPUTS", 4)
    now = [0.0]
    ranker = SemanticRanker(index, ClientCache(), clock=lambda: now[0])
    api.script_embeddings(Reply(), Error(500, "boom"))  # the second batch fails
    first = await ranker.refresh(semantic(api))
    assert (first.embedded, first.left, first.requests) == (4, 3, 1)
    assert first.failure and "server error (500" in first.failure and first.notice == first.failure
    assert not ranker.active(semantic(api))
    now[0] += 61  # after the rest, the rest only
    second = await ranker.refresh(semantic(api))
    assert (second.embedded, second.cached, second.failure, second.notice) == (3, 4, None, None)
    assert api.embedded_texts()[-3:] == [c.text for c in CHUNKS[4:]]
    ranker.close()


async def test_embeddings_go_through_the_proxy_with_the_key_unlogged(
        api: FakeOpenAI, index: FakeIndex, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Pproxy("http") as proxy:
        ranker = SemanticRanker(index, ClientCache(env={}))
        report = await ranker.refresh(semantic(api, proxy=proxy.url))
        assert report.embedded == 7
        assert proxy.relayed(api.port) >= 1
        ranked = await ranker.search("function_5", 1, semantic(api, proxy=proxy.url))
        assert ranked.semantic and ranked.hits[0].chunk.path == "src/m5.py"
        ranker.close()
    sent = [{k.lower(): v for k, v in r.headers.items()} for r in api.embedding_requests()]
    assert sent and all(h["authorization"] == f"Bearer {KEY}" for h in sent)
    assert KEY not in caplog.text


async def test_with_the_real_index_only_changed_chunks_are_embedded_again(api: FakeOpenAI, tmp_path: Path) -> None:
    from gpt_ls.index.store import WorkspaceIndex

    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "retry.py").write_text(
        "def backoff(attempt):\n    return min(8, 0.5 * 2 ** attempt)\n\n\n"
        "def jitter(delay):\n    return delay / 2\n", "utf-8")
    (root / "README.md").write_text("# 重试\n\n网络请求失败时等待一会儿再试。\n", "utf-8")
    env = {"GPT_LS_DATA_DIR": str(tmp_path / "data")}
    settings = semantic(api)
    with WorkspaceIndex.open(root, settings, env) as index:
        index.update()
        ranker = SemanticRanker(index, ClientCache())
        first = await ranker.refresh(settings)
        assert first.embedded == len(list(index.chunk_texts())) and first.failure is None
        sent = len(api.embedded_texts())
        assert (await ranker.refresh(settings)).embedded == 0 and len(api.embedded_texts()) == sent
        (root / "README.md").write_text("# 重试\n\n网络请求失败时等待两秒再试。\n", "utf-8")
        index.update()
        again = await ranker.refresh(settings)
        assert again.embedded == 1 and again.pruned == 1
        assert api.embedded_texts()[sent:] == ["# 重试\n\n网络请求失败时等待两秒再试。"]
        ranked = await ranker.search("backoff", 5, settings)
        assert ranked.semantic and ranked.hits[0].chunk.path == "src/retry.py"
        ranker.close()


async def test_a_read_only_index_database_leaves_bm25_with_one_sentence(api: FakeOpenAI, tmp_path: Path) -> None:
    index = FakeIndex(tmp_path / "index.sqlite", list(CHUNKS))
    index.path = tmp_path / "no-such-dir" / "index.sqlite"  # the vectors' table cannot be opened
    ranker = SemanticRanker(index, ClientCache())
    report = await ranker.refresh(semantic(api))
    assert report.embedded == 0 and report.notice is not None and "words alone (BM25)" in report.notice
    assert "cannot be kept in the index database" in report.notice
    ranked = await ranker.search("function_6", 1, semantic(api))
    assert not ranked.semantic and ranked.hits[0].chunk.path == "src/m6.py" and ranked.notice is None
    assert api.embedding_requests() == []


async def test_vectors_of_an_index_moved_aside_are_reused(api: FakeOpenAI, tmp_path: Path) -> None:
    old = FakeIndex(tmp_path / "idx #1?.sqlite", list(CHUNKS))
    ranker = SemanticRanker(old, ClientCache())
    assert (await ranker.refresh(semantic(api))).embedded == len(CHUNKS)
    ranker.close()
    centres = "SELECT model, dim, centre FROM vector_centres"
    with closing(sqlite3.connect(old.path)) as conn:
        centre = conn.execute(centres).fetchall()
    old.path.rename(tmp_path / "idx #1?.sqlite.old")  # what the index does with one it cannot use
    new = FakeIndex(tmp_path / "idx #1?.sqlite", [*CHUNKS[1:], chunk("src/z.py", "Z = 26\n")])
    vectors.VectorStore(new.path).close()  # takes the vectors over, and the centre their sketches were taken around
    with closing(sqlite3.connect(new.path)) as conn:
        assert centre and conn.execute(centres).fetchall() == centre
    ranker = SemanticRanker(new, ClientCache())
    report = await ranker.refresh(semantic(api))
    assert (report.embedded, report.cached, report.pruned) == (1, len(CHUNKS) - 1, 1)
    assert api.embedded_texts()[len(CHUNKS):] == ["Z = 26\n"]
    ranker.close()
