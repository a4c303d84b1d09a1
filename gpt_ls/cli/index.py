"""``gpt-ls index [--status | --rebuild | --clear]``: build or update the search index of this workspace.

The workspace is found as the other commands find it (the nearest folder with ``.git`` or
``.gpt-ls.toml``); the index itself is ``gpt_ls.index.store.WorkspaceIndex``. Progress goes to
stderr when it is a terminal; the summary line to stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from gpt_ls.cli.output import StatusLine
from gpt_ls.errors import GptLsError
from gpt_ls.index.report import IndexReport
from gpt_ls.index.store import WorkspaceIndex
from gpt_ls.settings import find_workspace_root, load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``index`` subcommand to the main parser."""
    parser = sub.add_parser(
        "index",
        help="build or update the search index of this workspace",
        description="Index the workspace's text files for `gpt-ls search` and questions about the "
        "workspace: .gitignore/.ignore, indexInclude/indexExclude are respected, secrets and binaries "
        "skipped. Only changed files are read again.",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--status", action="store_true", help="say what the index holds; change nothing")
    what.add_argument("--rebuild", action="store_true", help="forget the index and build it again")
    what.add_argument("--clear", action="store_true", help="forget everything indexed")
    parser.set_defaults(func=run)


def open_index(err: TextIO) -> WorkspaceIndex:
    """The index of the current directory's workspace, with the settings' problems on ``err``."""
    root = find_workspace_root(Path.cwd())
    loaded = load_settings(workspace_root=root)
    for problem in loaded.problems:
        print(f"gpt-ls: warning: {problem}", file=err)
    index = WorkspaceIndex.open(root, loaded.settings)
    if index.notice:
        print(f"gpt-ls: {index.notice}", file=err)
    return index


class TerminalProgress(StatusLine):
    """``indexing 120/4,000 src/app.py`` on one stderr line, at most ten times a second."""

    def __init__(self, err: TextIO) -> None:
        super().__init__(err)
        self.shown = 0.0

    def __call__(self, done: int, total: int, path: str) -> None:
        now = time.monotonic()
        if now - self.shown < 0.1 and done < total:
            return
        self.shown = now
        self.show(f"indexing {done:,}/{total:,} {path}")


def build(index: WorkspaceIndex, err: TextIO) -> IndexReport:
    """Update the index, with progress on ``err`` when it is a terminal."""
    progress = TerminalProgress(err) if err.isatty() else None
    try:
        return index.update(progress=progress, jobs=os.cpu_count() or 1)
    finally:
        if progress:
            progress.end()


def run(args: argparse.Namespace) -> int:
    """Run ``gpt-ls index``; 1 with a sentence on stderr when the index cannot be used."""
    try:
        with open_index(sys.stderr) as index:
            if args.status:
                print(index.status().summary())
                last = index.status().last
                if last is not None:
                    print(f"Last update: {last.summary()}")
                return 0
            if args.clear or args.rebuild:
                index.clear()
                if args.clear:
                    print(f"Cleared the index of {index.root}.")
                    return 0
            print(build(index, sys.stderr).summary())
            return 0
    except GptLsError as exc:
        print(f"gpt-ls index: {exc}", file=sys.stderr)
        return 1
