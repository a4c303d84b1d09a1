"""Semantic search speed: the nearest vectors among 100,000, without numpy.

    .venv/bin/python -m benchmarks.semantic_search [--vectors 100000] [--dim 1536] [--queries 50]

Stores ``--vectors`` random unit vectors of ``--dim`` dimensions (text-embedding-3-small's
1,536 by default) through ``gpt_ls.index.vectors.VectorStore`` in a temporary SQLite file,
then times ``nearest`` (sign-sketch shortlist by Hamming distance, then exact cosine of
the shortlist) for ``--queries`` queries: the first (which loads the sketches) and the
p50/p99 of the rest. Also times the exact scan the shortlist replaces, on a sample, and
the RSS the sketches add. Random vectors are the worst case for the shortlist's quality,
not its speed; its quality on real embeddings is in ``benchmarks/retrieval.py``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.results import Results, percentile
from gpt_ls.index import vectors

TARGET_MS = 30.0  # the search target (p99 at 100,000 chunks), for the vector side too


def rss_mb() -> float:
    """This process's resident memory now (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def figures(res: Results, n: int = 100_000, dim: int = 1536, queries: int = 50) -> None:
    rng = random.Random(14)
    with tempfile.TemporaryDirectory() as tmp:
        store = vectors.VectorStore(Path(tmp) / "v.sqlite")
        started = time.monotonic()
        for start in range(0, n, 2000):
            store.put("m", [(f"{i:08d}", [rng.gauss(0, 1) for _ in range(dim)])
                            for i in range(start, min(n, start + 2000))])
        res.add("semantic", f"storing {n:,} vectors of {dim} dims (normalise, sketch, SQLite)",
                time.monotonic() - started, "s")
        before = rss_mb()
        qs = [[rng.gauss(0, 1) for _ in range(dim)] for _ in range(queries)]
        times = []
        for q in qs:
            t = time.perf_counter()
            store.nearest("m", q, 20)
            times.append((time.perf_counter() - t) * 1000)
        res.add("semantic", "first search (loads the sketches)", times[0], "ms")
        res.add("semantic", f"search p50 at {n:,} vectors", statistics.median(times[1:]), "ms")
        res.add("semantic", f"search p99 at {n:,} vectors", percentile(times[1:], 99), "ms", limit=TARGET_MS)
        res.add("semantic", "RSS added by the cached sketches", rss_mb() - before, "MB")
        sample = [vectors.normalise([rng.gauss(0, 1) for _ in range(dim)]) for _ in range(500)]
        q = vectors.normalise(qs[0])
        t = time.perf_counter()
        for v in sample:
            vectors.dot(q, v)
        exact_ms = (time.perf_counter() - t) * 1000 / len(sample) * n
        res.add("semantic", f"an exact pure-Python scan of {n:,} (estimated from 500)", exact_ms, "ms")
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1536)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    import os

    print(f"semantic search benchmark · load average {os.getloadavg()[0]:.2f}")
    figures(Results(), args.vectors, args.dim, args.queries)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
