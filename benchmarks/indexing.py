"""Figure 11, the workspace index (issue 14): build, update and search times, and the server while it indexes.

Targets: indexing 10,000 files / 100 MB on 2 cores ≤ 60 s cold; one changed file ≤ 50 ms;
search p99 ≤ 30 ms at 100,000 chunks; code-action p99 ≤ 2 ms server time while indexing;
the server's memory while indexing within the performance targets (RSS ≤ 100 MB).

* The corpus is ``benchmarks/index_corpus.py`` (generated, seeded; cached in the temp folder).
* Cold build: ``gpt_ls.index.worker.build`` (the child process the server uses), fresh database.
* One changed file: ``WorkspaceIndex.update([path])`` as the server runs it on ``didSave``, 30
  files edited one after another (a line appended); also a whole-workspace update after one change.
* Search: files are added until the index holds ≥ 100,000 chunks, then 300 queries (identifiers
  that exist, questions in English with stop words, common words, Chinese) from a new
  ``WorkspaceIndex`` (no warm term counts), each once; then once more (counts cached); then each
  again within 4 random files (``search_file``: the neighbours of a file a question is asked from).
* While indexing: the real server (``timed_server.py``, the simulated editor) answers code
  actions one after another while ``worker.build(rebuild=True)`` rebuilds the corpus's index in
  its child process (the server process does not index: this is the worker the LSP side calls).

    .venv/bin/python -m benchmarks.indexing [--quick] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.fake_server import RemoteFake
from benchmarks.index_corpus import CHINESE, generate, vocabulary
from benchmarks.results import Results, percentile
from gpt_ls.index import worker
from gpt_ls.index.store import WorkspaceIndex
from gpt_ls.settings import Settings

CORPUS_VERSION = 1
SEARCH_CHUNKS = 100_000
STOP = ["how", "does", "the", "where", "is", "what", "do", "i", "a", "of", "in", "when"]


def corpus(files: int, size: int) -> Path:
    """The generated workspace, reused between runs (a marker says it is complete)."""
    root = Path(tempfile.gettempdir()) / f"gpt-ls-bench-index-v{CORPUS_VERSION}-{files}-{size}"
    if not (root / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        started = time.monotonic()
        written = generate(root, files, size)
        (root / ".complete").write_text(str(written))
        print(f"  generated {files:,} files, {written / 1e6:.1f} MB in {time.monotonic() - started:.0f} s "
              f"({root})", flush=True)
    return root


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def queries(index: WorkspaceIndex, n: int, seed: int = 5) -> list[str]:
    """A mixed query set: identifiers that exist, English questions, common words, Chinese."""
    rng = random.Random(seed)
    words = vocabulary(random.Random(14))
    idents: list[str] = []
    for item in index.chunk_texts(batch=2000):
        if rng.random() < 0.02:
            found = [w for w in item.text.replace("(", " ").split() if "_" in w or any(c.isupper() for c in w[1:])]
            if found:
                idents.append(rng.choice(found).strip(":,;."))
        if len(idents) >= n:
            break
    out: list[str] = []
    for i in range(n):
        kind = i % 6
        if kind in (0, 1) and idents:
            out.append(rng.choice(idents))
        elif kind == 2:
            out.append(" ".join(rng.sample(STOP, 3) + rng.sample(words[:300], 2) + rng.sample(words, 1)))
        elif kind == 3:
            out.append(" ".join(rng.sample(words[:60], 2)))  # common words only
        elif kind == 4:
            out.append("".join(rng.sample(CHINESE, 2)))
        else:
            out.append(" ".join(rng.sample(words, 3)))
    return out


async def cold_build(res: Results, root: Path, env: dict[str, str], files: int, size: int) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    report = await worker.build(root, Settings(), env)
    took = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    label = f"cold build, {files:,} files / {size / 1e6:.0f} MB (worker process)"
    res.add("index", label, took, "s", limit=60 if files >= 10_000 else None,
            note=f"{report.chunks:,} chunks, {cpu:.0f} s CPU, {os.cpu_count()} cores, {load()}")
    res.add("index", "worker peak RSS (largest process of the build)", after.ru_maxrss / 1024, "MB")


def changed_files(res: Results, root: Path, env: dict[str, str]) -> None:
    with WorkspaceIndex.open(root, Settings(), env) as index:
        paths = [p for p in index.files() if p.endswith((".py", ".ts", ".go", ".md"))]
        rng = random.Random(9)
        times = []
        edited = rng.sample(paths, 31)
        sizes = {rel: (root / rel).stat().st_size for rel in edited}
        try:
            for rel in edited[:30]:
                with open(root / rel, "a", encoding="utf-8") as out:
                    out.write(f"\n# edited {time.time()} changedMarker\n")
                started = time.perf_counter()
                report = index.update([rel])
                times.append((time.perf_counter() - started) * 1000)
                assert report.indexed == 1, report.summary()
            with open(root / edited[30], "a", encoding="utf-8") as out:
                out.write("\n# once more\n")
            started = time.perf_counter()
            report = index.update()
            whole = (time.perf_counter() - started) * 1000
        finally:  # the cached corpus stays as generated
            for rel, size in sizes.items():
                os.truncate(root / rel, size)
        res.add("index", "one changed file (update([path]), as on didSave), median of 30", statistics.median(times),
                "ms", limit=50, note=f"p90 {percentile(times, 90):.0f} ms, max {max(times):.0f} ms, {load()}")
        res.add("index", "whole-workspace update after one change (walk + stat)", whole, "ms",
                note=f"{report.unchanged:,} unchanged, {load()}")


async def grow(root: Path, env: dict[str, str], chunks: int) -> int:
    """Add generated files until the index holds ``chunks`` chunks; the count reached."""
    first = await worker.build(root, Settings(), env)
    have, files = first.chunks, first.files
    seed = 100
    while have < chunks:
        more = int((chunks - have) / max(1.0, have / max(1, files)) * 1.1) + 1
        generate(root / f"extra{seed}", more, more * 10_000, seed=seed)
        seed += 1
        report = await worker.build(root, Settings(), env)
        have, files = have + report.chunks, report.files
    (root / ".grown").write_text(str(have))
    return have


def search_figures(res: Results, root: Path, env: dict[str, str], n: int) -> None:
    with WorkspaceIndex.open(root, Settings(), env) as index:
        total = index.total_chunks()
        qs = queries(index, n)
    with WorkspaceIndex.open(root, Settings(), env) as index:  # fresh: no term counts cached
        rounds = []
        for _ in range(2):
            times = []
            for q in qs:
                started = time.perf_counter()
                index.search(q, 20)
                times.append((time.perf_counter() - started) * 1000)
            rounds.append(times)
        first, second = rounds
        res.add("search", f"search p50 at {total:,} chunks ({len(qs)} mixed queries, 20 hits)",
                statistics.median(first), "ms")
        res.add("search", "search p99, first time each query", percentile(first, 99), "ms", limit=30,
                note=f"max {max(first):.0f} ms, {load()}")
        res.add("search", "search p99, again (term counts cached)", percentile(second, 99), "ms", limit=30)
        neighbour_figures(res, index, qs)


def neighbour_figures(res: Results, index: WorkspaceIndex, qs: list[str]) -> None:
    """A question asked from a file: its neighbours searched one file each (``search_file``, 2 chunks)."""
    from gpt_ls.index.neighbours import MAX_NEIGHBOURS, PER_NEIGHBOUR, plan

    rng = random.Random(9)
    paths = index.files()
    times = []
    for q in qs:
        picked = rng.sample(paths, MAX_NEIGHBOURS)
        started = time.perf_counter()
        for path in picked:
            index.search_file(q, path, PER_NEIGHBOUR)
        times.append((time.perf_counter() - started) * 1000)
    res.add("search", f"neighbours of the asking file: {MAX_NEIGHBOURS} searches within one file each, per "
            "question, p99", percentile(times, 99), "ms", limit=30, note=f"max {max(times):.0f} ms, {load()}")
    source = (Path(__file__).parents[1] / "gpt_ls" / "index" / "chunks.py").read_text(encoding="utf-8")
    for size in (20_000, 1_000_000):  # the asking file chunked, its imports read (off the event loop)
        text = source * max(1, size // len(source))
        middle = text.count("\n") // 2
        took = []
        for _ in range(5):
            started = time.perf_counter()
            plan("pkg/asking.py", text, middle, middle, qs[0], paths, (middle - 40, middle + 40))
            took.append((time.perf_counter() - started) * 1000)
        res.add("search", f"the asking file's chunks and imports, a {len(text) // 1024:,} KB file, median of 5",
                statistics.median(took), "ms", note=load())


async def while_indexing(res: Results, root: Path, env: dict[str, str]) -> None:
    """Code actions against the real server while the worker rebuilds the index."""
    from benchmarks.session import LONG_URI, open_documents, session_env, start_session, stop_session

    api = RemoteFake()
    try:
        with session_env(api) as (server_env, log):
            session = await start_session(server_env, log)
            try:
                open_documents(session.editor)
                for _ in range(50):
                    await session.code_action(LONG_URI)
                mark = session.timing_lines()
                for _ in range(300):
                    await session.code_action(LONG_URI)
                    await asyncio.sleep(0.005)
                idle = [t.wall for t in session.timings(mark)]
                mark = session.timing_lines()
                done = asyncio.Event()
                poller = asyncio.create_task(session.code_actions_until(LONG_URI, done))
                rss: list[float] = []

                async def sample() -> None:
                    while not done.is_set():
                        rss.append(rss_mb(session.pid))
                        await asyncio.sleep(0.1)

                sampler = asyncio.create_task(sample())
                started = time.monotonic()
                report = await worker.build(root, Settings(), env, rebuild=True)
                took = time.monotonic() - started
                done.set()
                rtts = await poller
                await sampler
                server = [t.wall for t in session.timings(mark)]
            finally:
                await stop_session(session)
    finally:
        api.close()
    res.add("while indexing", "code action server time p99, idle (same session, just before)",
            percentile(idle, 99), "ms", limit=2)
    res.add("while indexing", f"code action server time p99 during a {took:.0f} s rebuild (n={len(server)})",
            percentile(server, 99), "ms", limit=2, note=f"{report.files:,} files, {load()}")
    res.add("while indexing", "code action client round trip p99", percentile(rtts, 99), "ms")
    res.add("while indexing", "server RSS during the rebuild, max", max(rss), "MB", limit=100)


async def figures(res: Results, quick: bool) -> None:
    """The suite's part: every index figure (``quick``: 1,000 files / 10 MB, 20,000 chunks)."""
    files, size = (1_000, 10_000_000) if quick else (10_000, 100_000_000)
    print(f"11. index: {files:,} files, {size / 1e6:.0f} MB", flush=True)
    root = corpus(files, size)
    base = Path(tempfile.mkdtemp(prefix="gpt-ls-bench-index-data-"))
    env = {**os.environ, "GPT_LS_DATA_DIR": str(base)}
    try:
        await cold_build(res, root, env, files, size)
        changed_files(res, root, env)
        big = corpus(files, size)  # the same files, grown (in a copy) to the search size
        grown = Path(f"{big}-grown")
        if not (grown / ".grown").exists():
            shutil.rmtree(grown, ignore_errors=True)
            shutil.copytree(big, grown, symlinks=True)
        await grow(grown, env, SEARCH_CHUNKS // 5 if quick else SEARCH_CHUNKS)
        search_figures(res, grown, env, 60 if quick else 300)
        await while_indexing(res, root, env)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1,000 files / 10 MB instead of 10,000 / 100 MB")
    args = parser.parse_args()
    asyncio.run(figures(Results(), args.quick))


if __name__ == "__main__":
    main()
