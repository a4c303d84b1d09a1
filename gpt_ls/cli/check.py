"""``gpt-ls check``: the connection diagnosis on the command line (exit status 0 = it works)."""

from __future__ import annotations

import argparse
import asyncio

from gpt_ls.settings import find_workspace_root, load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``check`` subcommand to the CLI's subparsers."""
    parser = sub.add_parser(
        "check",
        help="show the effective settings and test the connection to the model",
        description=(
            "Print the effective settings with the source of each (the API key redacted), "
            "the proxy used for the endpoint, then make one minimal request. "
            "Exit status 0 when it succeeds, 1 otherwise."
        ),
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load settings for the current directory's workspace, check, print the report."""
    from gpt_ls.check import run_check

    loaded = load_settings(workspace_root=find_workspace_root())
    report = asyncio.run(run_check(loaded))
    for line in report.lines:
        print(line)
    return 0 if report.ok else 1
