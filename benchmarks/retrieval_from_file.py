"""Retrieval quality asked from a file: is the definition still among what is sent, with the asking file's context?

    .venv/bin/python -m benchmarks.retrieval_from_file [--quick] [--show-misses]

The corpus, the questions and the windows are ``benchmarks.retrieval``'s (click 8.1.7, 40
definitions, gpt-4 8k and gpt-4o 128k), English questions, BM25 alone. Each question is asked
three ways, as ``gpt-ls ask -w --file PATH:LINE QUESTION`` would send it:

* from no file: the hits alone (the retrieval benchmark's own figure);
* from a *related* file: of the corpus's Python files other than the defining one, the one
  whose text names the definition most often (a caller, its test), at the first line naming
  it: its chunks and its neighbours' best ones go first (``gpt_ls.index.neighbours``);
* from an *unrelated* file: the largest Python file that never names it, at its middle
  line: what the up to 30 % the asking file's context takes costs the question's own hits.

Information only (no target): the retrieval benchmark's 90 % at 8k is for questions asked
from no file.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import time
from pathlib import Path
from typing import Any

from benchmarks.results import Results
from benchmarks.retrieval import CACHE, HITS, WINDOWS, corpus, definition, open_index
from benchmarks.retrieval_questions import QUESTIONS
from gpt_ls.actions.workspace import package_reader
from gpt_ls.index.context import Source, chunk_budget, default_overhead, select_context
from gpt_ls.index.neighbours import PER_NEIGHBOUR, fitted, neighbour_sources, ordered, plan
from gpt_ls.models import model_info
from gpt_ls.settings import Settings


def asking_files(root: Path, files: list[str], name: str, defining: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """((related path, 0-based line), (unrelated path, 0-based line)) for the definition ``name``."""
    word = re.compile(rf"\b{re.escape(name)}\b")
    best: tuple[int, str, int] = (0, "", 0)
    unrelated: tuple[int, str, int] = (-1, "", 0)
    for path in files:
        if not path.endswith(".py") or path == defining:
            continue
        text = (root / path).read_text("utf-8", errors="replace")
        uses = word.findall(text)
        if uses and (len(uses), path) > best[:2]:
            first = word.search(text)
            best = (len(uses), path, text.count("\n", 0, first.start()) if first else 0)
        if not uses and len(text) > unrelated[0]:
            unrelated = (len(text), path, text.count("\n") // 2)
    return (best[1], best[2]), (unrelated[1], unrelated[2])


def local_for(index: Any, root: Path, asking: tuple[str, int], question: str) -> list[Source]:
    """The asking file's excerpts and its neighbours' best chunks, by priority (as ``--file PATH:LINE``)."""
    path, line = asking
    text = (root / path).read_text("utf-8", errors="replace")
    read = package_reader(root, ())
    own, queries = plan(path, text, line, line, question, index.files(), read=read)
    return ordered(own, *neighbour_sources({p: index.search_file(q, p, PER_NEIGHBOUR) for p, q in queries}))


def sent_with(local: list[Source], question: str, hits: list[Any], model: str, settings: Settings,
              where: tuple[str, int]) -> bool:
    """Whether the definition's line is among what is sent with these local excerpts."""
    info = model_info(dataclasses.replace(settings, model=model))
    room = chunk_budget(info, settings.max_tokens, default_overhead(question, info))
    return bool(fitted(local, hits, room, info).covers(*where))


def run(res: Results, quick: bool, show_misses: bool) -> None:
    root = corpus()
    settings = Settings()
    index = open_index(root, CACHE / "data", settings)
    questions = QUESTIONS[:10] if quick else QUESTIONS
    started = time.monotonic()
    try:
        files = index.files()
        found: dict[str, list[bool]] = {}
        missed: dict[str, list[str]] = {}
        for q in questions:
            path, first, _ = definition(root, q.target)
            name = q.target.split("::")[1].rsplit(".", 1)[-1]
            hits = index.search(q.en, HITS)
            asked = {kind: (asking, local_for(index, root, asking, q.en)) for kind, asking in
                     zip(("a related file", "an unrelated file"), asking_files(root, files, name, path), strict=True)
                     if asking[0]}
            for model, window in WINDOWS:
                outcomes = {"no file": (bool(select_context(q.en, hits, model, settings).covers(path, first)), "")}
                for kind, (asking, local) in asked.items():
                    ok = sent_with(local, q.en, hits, model, settings, (path, first))
                    outcomes[kind] = (ok, f" (from {asking[0]}:{asking[1] + 1})")
                for kind, (ok, source) in outcomes.items():
                    found.setdefault(f"{kind} @ {window}", []).append(ok)
                    if not ok:
                        missed.setdefault(f"{kind} @ {window}", []).append(q.target + source)
        for key, flags in found.items():
            res.add("retrieval from a file", f"BM25, English, asked from {key}: definition sent",
                    100.0 * sum(flags) / len(flags), "%", note=f"{sum(flags)}/{len(flags)}")
            if show_misses and missed.get(key):
                print(f"    missed ({key}): {', '.join(missed[key])}")
        print(f"  ({time.monotonic() - started:.1f} s)")
    finally:
        index.close()


def figures(res: Results, quick: bool) -> None:
    run(res, quick, show_misses=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="the first 10 questions only")
    parser.add_argument("--show-misses", action="store_true", help="name the definitions not sent")
    args = parser.parse_args()
    run(Results(), args.quick, args.show_misses)


if __name__ == "__main__":
    main()
