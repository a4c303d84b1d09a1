"""Semantic search speed and the sketch shortlist's recall at 100,000 chunks, without numpy.

    .venv/bin/python -m benchmarks.semantic_search [--chunks 100000] [--dims 384,1536] [--queries 60]

The index is the generated workspace of ``benchmarks/indexing.py`` grown to ``--chunks``
chunks (built once into ``$TMPDIR/gpt-ls-bench-semantic-v1``, kept for reruns). Every chunk
gets a seeded synthetic vector per dimension count, stored through ``VectorStore.put`` as
``SemanticRanker.refresh`` would. Two kinds of vectors:

* *clustered* (real-like): a shared mean direction (embeddings are anisotropic), one of
  1,000 topic centres, and two of 1,000 shared "sub-topic" vectors; a query is a topic
  centre plus fresh noise. Pairwise cosines 0.5–0.9, like e5's.
* *random*: uniform in a cube, isotropic: the worst case for a sign-bit sketch.

Timed, per dimension count (clustered): the whole ``SemanticRanker.search`` (BM25, the
nearest vectors, the chunks read back, fusion; 20 hits) for the mixed queries of
``benchmarks/indexing.py``, with the query's embedding request replaced by an in-process
stub that returns a precomputed vector at once: the request itself is the endpoint's time
(100–300 ms to OpenAI), and everything gpt-ls does with the answer is counted. Also
``VectorStore.nearest`` alone, the first search (which loads the sketches), the RSS the
sketches add, and the recall@10 of the shortlist: the share of the exact brute-force cosine
top 10 (every vector scored) that ``nearest`` returns.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import os
import random
import statistics
import tempfile
import time
from array import array
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks.indexing import corpus, grow, queries
from benchmarks.results import Results, percentile
from gpt_ls.index import vectors
from gpt_ls.index.semantic import SemanticRanker
from gpt_ls.index.store import WorkspaceIndex
from gpt_ls.settings import Settings

TARGET_MS = 30.0  # the search target (p99 at 100,000 chunks), with embeddings on too
RSS_TARGET_MB = 100.0  # the server's memory target; the sketches are what semantic search adds to it
CACHE = Path(tempfile.gettempdir()) / "gpt-ls-bench-semantic-v1"
CLUSTERS = POOL = 1_000


def rss_mb() -> float:
    """This process's resident memory now (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Clustered:
    """Seeded real-like vectors: mean + topic + two shared sub-topics."""

    def __init__(self, dim: int, seed: int = 14) -> None:
        self.rng = random.Random(seed)
        gauss = self.rng.gauss
        self.dim = dim
        self.mean = [gauss(0.0, 1.0) for _ in range(dim)]
        self.centres = [[gauss(0.0, 1.0) for _ in range(dim)] for _ in range(CLUSTERS)]
        self.pool = [[gauss(0.0, 1.0) for _ in range(dim)] for _ in range(POOL)]

    def vector(self) -> list[float]:
        r = self.rng.randrange
        c, a, b = self.centres[r(CLUSTERS)], self.pool[r(POOL)], self.pool[r(POOL)]
        return [m + 0.8 * x + 0.35 * (y + z) for m, x, y, z in zip(self.mean, c, a, b, strict=True)]

    def query(self) -> list[float]:
        c = self.centres[self.rng.randrange(CLUSTERS)]
        gauss = self.rng.gauss
        return [m + 0.8 * x + 0.5 * gauss(0.0, 1.0) for m, x in zip(self.mean, c, strict=True)]


class Uniform:
    """Seeded isotropic vectors (uniform in a cube)."""

    def __init__(self, dim: int, seed: int = 15) -> None:
        self.rng = random.Random(seed)
        self.dim = dim

    def vector(self) -> list[float]:
        return array("b", self.rng.randbytes(self.dim)).tolist()  # type: ignore[return-value]

    def query(self) -> list[float]:
        return self.vector()


def fill(store: vectors.VectorStore, model: str, hashes: Sequence[str], source: Clustered | Uniform) -> float:
    """Store a vector for every hash (skipped when a previous run did); seconds taken."""
    started = time.monotonic()
    if store.count(model) != len(hashes):
        for start in range(0, len(hashes), 2000):
            store.put(model, [(h, source.vector()) for h in hashes[start:start + 2000]])
    return time.monotonic() - started


def exact_top(store: vectors.VectorStore, model: str, qs: list[list[float]], k: int) -> list[list[str]]:
    """Brute force: every stored vector scored against every query; each query's best ``k``, best first."""
    unit = [vectors.normalise(q).tolist() for q in qs]
    best: list[list[tuple[float, str]]] = [[] for _ in qs]
    for h, blob in store._conn.execute("SELECT hash, vec FROM vectors WHERE model = ?", (model,)):
        v = vectors.unpack(blob).tolist()
        for i, q in enumerate(unit):
            s = vectors.dot(q, v)
            top = best[i]
            if len(top) < k:
                heapq.heappush(top, (s, h))
            elif s > top[0][0]:
                heapq.heapreplace(top, (s, h))
    return [[h for _, h in sorted(top, reverse=True)] for top in best]


def recall(res: Results, store: vectors.VectorStore, model: str, source: Clustered | Uniform, label: str) -> None:
    """The share of the exact top 10 (and top 50) that ``nearest`` returns; the shortlist's size swept."""
    qs = [source.query() for _ in range(20)]
    truth = exact_top(store, model, qs, 50)

    def share(limit: int, k: int) -> float:
        found = sum(len(set(t[:k]) & {h for h, _ in store.nearest(model, q, limit)[:k]})
                    for q, t in zip(qs, truth, strict=True))
        return 100.0 * found / (k * len(qs))

    res.add("semantic", f"{label}: recall@10 of the shortlist (exact top 10 among the 10 returned)", share(10, 10), "%",
            note=f"shortlist {max(vectors.SHORTLIST, vectors.PER_HIT * 10)}, 20 queries, {load()}")
    res.add("semantic", f"{label}: recall@50 as the search asks (top 50 of 50)", share(50, 50), "%",
            note=f"shortlist {max(vectors.SHORTLIST, vectors.PER_HIT * 50)}")
    saved = vectors.SHORTLIST
    try:
        sweep = []
        for size in (64, 128, 512):
            vectors.SHORTLIST = size
            sweep.append(f"{size}: {share(10, 10):.0f} %")
    finally:
        vectors.SHORTLIST = saved
    print(f"    {label}: recall@10 with other shortlist sizes: {', '.join(sweep)}")


def probe(db: str, model: str, dim: int) -> None:
    """In a fresh process (``--probe``): the RSS the sketches and 20 searches add to the server's modules."""
    import json

    import gpt_ls.lsp.server  # noqa: F401  (what a server has loaded)

    before = rss_mb()
    store = vectors.VectorStore(Path(db))
    rng = random.Random(3)
    for _ in range(20):
        store.nearest(model, [rng.gauss(0.0, 1.0) for _ in range(dim)], 50)
    print(json.dumps({"before": before, "after": rss_mb(), "sketches": store.memory() / 2**20}))


def rss_added(res: Results, db: Path, model: str, dim: int) -> None:
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "benchmarks.semantic_search", "--probe", str(db), model, str(dim)],
                         check=True, capture_output=True, text=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    res.add("semantic", f"{dim} dims: memory of the sketches in memory (exact)", got["sketches"], "MB")
    res.add("semantic", f"{dim} dims: RSS a server process gains from the sketches and 20 searches",
            got["after"] - got["before"], "MB",
            note=f"fresh process with the server's modules: {got['before']:.0f} → {got['after']:.0f} MB "
                 f"(target ≤ {RSS_TARGET_MB:g} MB)")


def real_recall(res: Results) -> None:
    """Real vectors: click's chunks as e5-small embedded them for ``benchmarks.retrieval`` (if it has run).

    Each of 100 chunks is the query (itself left out); the shortlist is forced (no exact
    scoring of everything) at 20, 40 and 80 of the 677 vectors, i.e. 3, 6 and 12 %.
    """
    from benchmarks import retrieval

    found = sorted((retrieval.CACHE / "data" / "index").glob("click-*.sqlite"))
    if not found:
        print("    real vectors: skipped (run python -m benchmarks.retrieval first)")
        return
    store = vectors.VectorStore(found[0])
    model = retrieval.EMBEDDING_MODEL
    rows = store._conn.execute("SELECT hash, vec FROM vectors WHERE model = ?", (model,)).fetchall()
    if len(rows) < 200:
        print("    real vectors: skipped (too few)")
        return
    unit = {h: vectors.unpack(b).tolist() for h, b in rows}
    saved = vectors.EXACT_BELOW, vectors.SHORTLIST, vectors.PER_HIT
    picked = random.Random(1).sample(sorted(unit), 100)
    try:
        vectors.EXACT_BELOW, vectors.PER_HIT = 0, 0
        for size in (20, 40, 80):
            vectors.SHORTLIST = size
            hit = 0
            for h in picked:
                q = unit[h]
                best = heapq.nlargest(10, ((vectors.dot(q, v), k) for k, v in unit.items() if k != h))
                hit += len({k for _, k in best} & {k for k, _ in store.nearest(model, q, size)})
            res.add("semantic", f"real e5-small vectors (click, {len(rows)}): recall@10 of a {size}-vector shortlist",
                    hit / 10, "%", note="100 chunks as queries, each left out")
    finally:
        vectors.EXACT_BELOW, vectors.SHORTLIST, vectors.PER_HIT = saved
        store.close()


class StubClients:
    """Stands in for the HTTP client: the query's vector comes back at once (its request is not timed)."""

    def __init__(self) -> None:
        self.next: list[float] = []

    async def get(self, settings: Settings) -> Any:
        return self

    @property
    def embeddings(self) -> Any:
        return self

    async def create(self, *, model: str, input: list[str]) -> Any:
        return SimpleNamespace(data=[SimpleNamespace(index=0, embedding=self.next)])


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


async def whole_search(res: Results, index: WorkspaceIndex, dim: int, texts: list[str], source: Clustered) -> None:
    model = f"bench-clustered-{dim}"
    stub = StubClients()
    ranker = SemanticRanker(index, stub, env={})  # type: ignore[arg-type]
    settings = Settings(api_key="bench", embedding_model=model)
    store = ranker._vectors()
    qvecs = [source.query() for _ in texts]
    started = time.perf_counter()
    store.nearest(model, qvecs[0], 50)
    res.add("semantic", f"{dim} dims: first search (loads the sketches)", (time.perf_counter() - started) * 1000, "ms")
    near, whole = [], []
    for _ in range(2):
        for text, q in zip(texts, qvecs, strict=True):
            t = time.perf_counter()
            store.nearest(model, q, 50)
            near.append((time.perf_counter() - t) * 1000)
            stub.next = q
            t = time.perf_counter()
            ranked = await ranker.search(text, 20, settings)
            whole.append((time.perf_counter() - t) * 1000)
            assert ranked.semantic, ranked.notice
    res.add("semantic", f"{dim} dims: nearest 50 vectors p50 / p99",
            statistics.median(near), "ms", note=f"p99 {percentile(near, 99):.1f} ms")
    res.add("semantic", f"{dim} dims: whole search p50 ({len(whole)} searches, 20 hits)",
            statistics.median(whole), "ms")
    res.add("semantic", f"{dim} dims: whole search p99 (BM25 + vectors + fusion; query embedding excluded)",
            percentile(whole, 99), "ms", limit=TARGET_MS, note=f"max {max(whole):.0f} ms, {load()}")
    ranker.close()


async def run(res: Results, chunks: int, dims: Sequence[int], n_queries: int) -> None:
    files, size = (10_000, 100_000_000) if chunks > 20_000 else (1_000, 10_000_000)
    root = Path(f"{corpus(files, size)}-grown")  # shared with benchmarks/indexing.py
    data = CACHE / f"data-{chunks}"
    env = {**os.environ, "GPT_LS_DATA_DIR": str(data)}
    if not (root / ".grown").exists():
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(corpus(files, size), root, symlinks=True)
    if not data.exists():  # grow() counts what one build indexes: only right on a fresh index
        await grow(root, env, chunks)
    index = WorkspaceIndex.open(root, Settings(), env)
    try:
        hashes = list(dict.fromkeys(item.hash for item in index.chunk_texts(batch=2000)))
        res.add("semantic", f"chunks in the index ({len(hashes):,} distinct texts)", index.total_chunks(), "")
        texts = queries(index, n_queries)
        store = vectors.VectorStore(index.path)
        for dim in dims:
            source = Clustered(dim)
            took = fill(store, f"bench-clustered-{dim}", hashes, source)
            res.add("semantic", f"{dim} dims: storing {len(hashes):,} clustered vectors (0 if cached)", took, "s")
            await whole_search(res, index, dim, texts, source)
            rss_added(res, index.path, f"bench-clustered-{dim}", dim)
            recall(res, store, f"bench-clustered-{dim}", source, f"{dim} dims, clustered")
            uniform = Uniform(dim)
            fill(store, f"bench-uniform-{dim}", hashes, uniform)
            recall(res, store, f"bench-uniform-{dim}", uniform, f"{dim} dims, random")
        store.close()
    finally:
        index.close()
    real_recall(res)


def figures(res: Results, n: int = 100_000, dims: Sequence[int] = (384, 1536), queries_: int = 60) -> None:
    asyncio.run(run(res, n, dims, queries_))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--dims", default="384,1536")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--probe", nargs=3, metavar=("DB", "MODEL", "DIM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.probe[0], args.probe[1], int(args.probe[2]))
        return
    print(f"semantic search benchmark · load average {os.getloadavg()[0]:.2f}")
    figures(Results(), args.chunks, [int(d) for d in args.dims.split(",")], args.queries)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
