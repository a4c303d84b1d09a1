"""Figure: preparing a question about the workspace (search, then fitting the chunks to the window).

The corpus is the ``openai`` SDK's source as installed in this venv (about 2,000 files nobody
here wrote), indexed once into a temporary data dir. Each question is a function defined in
it, asked in words (``create_chat_completion`` -> "create chat completion"). Timed per
question: the search (40 hits), ``select_context`` for gpt-4 (8,192 tokens: counted exactly)
and gpt-4o (128,000), and the citation stream over a 2,000-delta reply. Also printed, for
information: how often the defining line is among what is sent (the retrieval-quality
benchmark measures that properly). Asserts nothing.

    .venv/bin/python -m benchmarks.workspace_ask [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.results import Results, percentile
from gpt_ls import tokens
from gpt_ls.index.citations import CitationStream
from gpt_ls.index.context import select_context
from gpt_ls.settings import Settings

#: The Ask's preparation is part of its first-token latency; no target is set for it: the
#: figures are shown beside the first-token target (≤ 300 ms server time) for scale.
SEARCH_LIMIT = 40
_DEF = re.compile(r"^\s*(?:async\s+)?def ([a-z][a-z0-9]*(?:_[a-z0-9]+){2,})\(", re.MULTILINE)


def corpus() -> Path:
    import openai

    return Path(openai.__file__).resolve().parent


def questions(root: Path, count: int, seed: int = 7) -> list[tuple[str, str, int]]:
    """(question, path, line of the definition) for functions with at least three words in their name."""
    found: dict[str, tuple[str, int]] = {}
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in _DEF.finditer(text):
            if m.group(1) not in found:
                found[m.group(1)] = (path.relative_to(root).as_posix(), text.count("\n", 0, m.start(1)) + 1)
    names = sorted(found)
    random.Random(seed).shuffle(names)
    return [(" ".join(n.split("_")), *found[n]) for n in names[:count]]


def measure(res: Results, quick: bool) -> None:
    """The figures (see the module docstring)."""
    print("workspace question: search + fit", flush=True)
    root = corpus()
    asked = questions(root, 30 if quick else 100)
    with tempfile.TemporaryDirectory(prefix="gpt-ls-bench-ask-") as tmp:
        env = {**os.environ, "GPT_LS_DATA_DIR": tmp}
        from gpt_ls.index.store import WorkspaceIndex

        index = WorkspaceIndex.open(root, Settings(), env)
        t0 = time.monotonic()
        report = index.update()
        print(f"  indexed {root} in {time.monotonic() - t0:.1f} s: {report.summary()}", flush=True)
        tokens.get_encoding("cl100k_base")
        tokens.get_encoding("o200k_base")
        searches, fits8, fits128, covered8, covered128 = [], [], [], 0, 0
        for question, path, line in asked:
            t = time.perf_counter()
            hits = index.search(question, SEARCH_LIMIT)
            searches.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            small = select_context(question, hits, "gpt-4", Settings())
            fits8.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            large = select_context(question, hits, "gpt-4o", Settings())
            fits128.append((time.perf_counter() - t) * 1000)
            covered8 += small.covers(path, line)
            covered128 += large.covers(path, line)
        index.close()
    reply = [f"word{i} " if i % 50 else "[_client.py:10-20] " for i in range(2000)]
    stream = CitationStream(small.sources, root)
    t = time.perf_counter()
    for delta in reply:
        stream.feed(delta)
    stream.flush()
    linking = (time.perf_counter() - t) * 1000
    n = len(asked)
    for name, samples in (("search, 40 hits (p99)", searches), ("fit for gpt-4, 8k, exact (p99)", fits8),
                          ("fit for gpt-4o, 128k (p99)", fits128)):
        res.add("workspace-ask", f"{name}, {n} questions", percentile(samples, 99), "ms",
                note=f"p50 {statistics.median(samples):.2f} ms")
    res.add("workspace-ask", "linking citations in a 2,000-delta reply", linking, "ms")
    res.add("workspace-ask", "definition among what is sent at 8k (information)", 100 * covered8 / n, "%")
    res.add("workspace-ask", "definition among what is sent at 128k (information)", 100 * covered128 / n, "%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="30 questions instead of 100")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    measure(Results(), args.quick)
    print(f"load average: {os.getloadavg()[0]:.2f}", file=sys.stderr)


if __name__ == "__main__":
    main()
