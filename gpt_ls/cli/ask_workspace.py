"""``gpt-ls ask --workspace QUESTION``: the question with the workspace's best chunks, then its Sources.

As "Ask about the workspace" in the editor: the index is brought up to date (built on first
use, progress on stderr when it is a terminal), searched for the question, and as many
chunks as the model's window allows go with it, labelled ``path:start-end``. The reply
streams to stdout as the model writes it; the Sources (the chunks it cited, else the ones
sent) follow it. ``--json`` adds them as ``sources``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from gpt_ls.actions.catalog import ASK_WORKSPACE
from gpt_ls.cli.ask import ToStdout, as_json, load, report, run_ask, with_exchange, write
from gpt_ls.cli.output import StatusLine
from gpt_ls.errors import FileRefused, GptLsError, InvalidRequest
from gpt_ls.files import read_workspace_file
from gpt_ls.index import neighbours
from gpt_ls.index.citations import sources_used
from gpt_ls.index.context import FittedContext, HitLike, Source, label
from gpt_ls.index.live import open_index, progress_text, relative_path, semantic_ranker, summary_of
from gpt_ls.index.walk import MAX_FILE_BYTES
from gpt_ls.secret_files import is_secret
from gpt_ls.settings import Settings, find_workspace_root

#: Chunks asked of the index (the window decides how many go).
SEARCH_LIMIT = 40


_FILE_SPEC = re.compile(r"^(?P<path>.+?)(?::(?P<a>\d{1,9})(?:-(?P<b>\d{1,9}))?)?$", re.S)


@dataclass(frozen=True)
class FileSelection:
    """``--file PATH[:A-B]``: a workspace file (relative POSIX path), its text, the 0-based lines chosen."""

    path: str
    text: str
    first: int
    last: int


def file_selection(root: Path, cwd: Path, spec: str, settings: Settings) -> FileSelection:
    """``PATH[:A-B]`` (``PATH`` relative to ``cwd``) read inside ``root`` only (no symlink out, at most 1 MB,
    never a secret or an ``indexExclude`` file); without a range, its first line."""
    m = _FILE_SPEC.match(spec)
    name = m.group("path") if m else spec
    rel = relative_path(root, os.path.normpath(cwd / name))
    if rel is None or rel in ("", "."):
        raise FileRefused(f"--file {spec}: {name} is not a file of the workspace {root}; give one inside it.")
    if is_secret(rel, settings.index_exclude):
        raise FileRefused(f"--file {spec}: {rel} may hold secrets (or indexExclude excludes it); gpt-ls does not "
                          "send it.")
    text = read_workspace_file(root, rel, MAX_FILE_BYTES)
    if text is None:
        raise FileRefused(f"--file {spec}: there is no file {rel} in the workspace {root}.")
    count = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    a = int(m.group("a") or 1) if m else 1
    b = int(m.group("b") or a) if m else a
    if not 1 <= a <= max(count, 1) or b < a:
        raise InvalidRequest(f"--file {spec}: lines {a}-{b} are not in {rel} ({count:,} lines); give PATH:A-B "
                             "with 1 <= A <= B.")
    return FileSelection(rel, text, a - 1, min(b, max(count, 1)) - 1)


def local_sources(index: Any, selection: FileSelection, question: str) -> list[Source]:
    """The chunks around the chosen lines and the best of the neighbours' (``index.neighbours``), by priority."""
    from gpt_ls.actions.workspace import package_reader

    own, queries = neighbours.plan(selection.path, selection.text, selection.first, selection.last, question,
                                   index.files(), read=package_reader(index.root, ()))
    found = {path: index.search_file(query, path, neighbours.PER_NEIGHBOUR) for path, query in queries}
    return neighbours.ordered(own, *neighbours.neighbour_sources(found))


class Progress(StatusLine):
    """``indexing 120/4,000 files`` on one stderr line (a terminal only)."""

    def __call__(self, *args: Any) -> None:
        self.show(f"gpt-ls: indexing {progress_text(args)}")


async def retrieve(root: Path, settings: Settings, question: str, err: TextIO, clients: Any = None,
                   selection: FileSelection | None = None) -> tuple[list[HitLike], list[Source]]:
    """(the hits, the selection's file's and neighbours' chunks): the index brought up to date and searched
    (with semantic ranking when ``embeddingModel`` is set).

    Problems go to ``err``; the question is asked anyway, without excerpts if need be.
    """
    try:
        index = await asyncio.to_thread(open_index, root, settings)
    except GptLsError as exc:
        print(f"gpt-ls: {exc} The question goes without workspace excerpts.", file=err)
        return [], []
    try:
        if notice := getattr(index, "notice", None):
            print(f"gpt-ls: {notice}", file=err)
        progress = Progress(err) if err.isatty() else None
        try:
            summary = summary_of(await asyncio.to_thread(index.update, progress=progress))
        except GptLsError as exc:  # e.g. a read-only disk: search what there is
            summary = ""
            print(f"gpt-ls: {exc}", file=err)
        finally:
            if progress is not None:
                progress.end()
        if summary and err.isatty():
            print(f"gpt-ls: {summary}", file=err)
        hits: list[HitLike] = []
        try:
            hits = await search(index, settings, question, err, clients)
        except GptLsError as exc:
            print(f"gpt-ls: {exc} The question goes without the excerpts found for it.", file=err)
        local = await asyncio.to_thread(local_sources, index, selection, question) if selection else []
        return hits, local
    finally:
        index.close()


async def search(index: Any, settings: Settings, question: str, err: TextIO, clients: Any) -> list[HitLike]:
    """BM25, fused with vectors when ``embeddingModel`` is set and gpt-ls has semantic ranking."""
    ranker = await asyncio.to_thread(semantic_ranker(lambda: clients), index) if settings.embedding_model else None
    if ranker is not None:
        try:
            refreshed = await ranker.refresh(settings)
            ranked = await ranker.search(question, SEARCH_LIMIT, settings)
        except GptLsError:
            raise
        except Exception as exc:  # a bug there must not cost the question its excerpts
            print(f"gpt-ls: semantic ranking failed ({type(exc).__name__}: {exc}); searching with BM25 alone.",
                  file=err)
        else:
            for notice in dict.fromkeys([getattr(refreshed, "notice", None), ranked.notice]):
                if notice:
                    print(f"gpt-ls: {notice}", file=err)
            return list(ranked.hits)
    return list(await asyncio.to_thread(index.search, question, SEARCH_LIMIT))


def sources_lines(text: str, fitted: FittedContext, root: Path) -> str:
    """The Sources after the reply, one ``path:start-end`` a line."""
    used = sources_used(text, fitted.sources, root)
    return "\nSources:\n" + "".join(f"  {label(p, a, b)}\n" for p, a, b in used) if fitted.sources else ""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``--workspace`` to ``gpt-ls ask`` (which ``gpt_ls.cli.chat`` registers first)."""
    ask = sub.choices["ask"]
    ask.add_argument("--workspace", "-w", action="store_true",
                     help="answer from this workspace's files (its search index), citing them; Sources follow")
    ask.add_argument("--file", metavar="PATH[:A-B]",
                     help="with --workspace: the question is about these lines of this file; the chunks around "
                          "them and the best ones of the files it imports go too")
    ask.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``gpt-ls ask``, with the workspace's chunks when ``--workspace`` is given."""
    if not args.workspace:
        if args.file:
            print("gpt-ls: --file goes with --workspace (-w): gpt-ls ask -w --file PATH[:A-B] QUESTION",
                  file=sys.stderr)
            return 2
        return run_ask(args)
    question = " ".join(args.question) if args.question else ""
    if not question or question == "-":
        question = sys.stdin.read()
    if not question.strip():
        print("gpt-ls: no question: pass it as an argument or on standard input", file=sys.stderr)
        return 2
    return run_workspace_ask(args, question)


def run_workspace_ask(args: argparse.Namespace, question: str) -> int:
    """``gpt-ls ask --workspace``: see the module docstring."""
    from gpt_ls.actions.workspace import fit_hits
    from gpt_ls.exchange import Exchange, ExchangeRequest, Reply
    from gpt_ls.prompts import SelectionContext

    root = find_workspace_root(Path.cwd())
    if root in (Path.home().resolve(), Path(root.anchor)):
        print(f"gpt-ls: {root} is not a project: run gpt-ls ask --workspace inside one (a folder with .git or "
              ".gpt-ls.toml, or below it), so that only its files are indexed.", file=sys.stderr)
        return 2
    settings, workspace, instructions = load(args)
    selection = None
    if args.file:
        try:
            selection = file_selection(root, Path.cwd(), args.file, settings)
        except GptLsError as exc:
            print(f"gpt-ls: {exc}", file=sys.stderr)
            return 2
    action = ASK_WORKSPACE if not args.system else dataclasses.replace(ASK_WORKSPACE, system=args.system)
    ctx = SelectionContext(uri="", language="", selection=question, scope="workspace-index")
    req = ExchangeRequest(action, ctx, settings, workspace=workspace, new_conversation=not args.continue_,
                          system_extra=instructions)
    fitted = FittedContext((), "", 0, 0, 0)
    on_text = ToStdout(args.json)

    async def ask(exchange: Exchange) -> Reply:
        nonlocal fitted
        clients = exchange.clients if settings.embedding_model else None
        hits, local = await retrieve(root, settings, question, sys.stderr, clients, selection)
        fitted = await asyncio.to_thread(fit_hits, req, hits, local)
        extra = "\n\n".join(part for part in (fitted.system_text(), instructions) if part)
        return await exchange.run(dataclasses.replace(req, system_extra=extra), on_text)

    outcome = with_exchange(ask)
    if args.json:
        body = as_json(outcome)
        body["sources"] = [label(p, a, b) for p, a, b in sources_used(outcome.text, fitted.sources, root)] \
            if fitted.sources else []
        print(json.dumps(body, ensure_ascii=False, indent=2))
    elif on_text.any:
        write("\n")
        if outcome.status == "complete":
            write(sources_lines(outcome.text, fitted, root))
    return report(outcome)
