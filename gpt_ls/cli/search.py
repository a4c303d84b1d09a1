"""``gpt-ls search QUERY [-n N]``: the workspace's best chunks for a query, with no model call.

Each hit is ``path:start-end  score`` and a short excerpt (the lines holding the query's
words, else the first lines). The index is built first when there is none yet.
"""

from __future__ import annotations

import argparse
import re
import sys

from gpt_ls.cli.index import build, open_index
from gpt_ls.errors import GptLsError
from gpt_ls.index.store import Hit
from gpt_ls.index.terms import query_terms, split_identifier

EXCERPT_LINES = 3
EXCERPT_WIDTH = 100


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``search`` subcommand to the main parser."""
    parser = sub.add_parser(
        "search",
        help="search the workspace's index (no model call)",
        description="The chunks of the workspace that best match QUERY (BM25; identifiers match in any "
        "spelling: parseConfigFile, parse_config_file, parse config file).",
    )
    parser.add_argument("query", nargs="+", metavar="QUERY", help="words, names or a question")
    parser.add_argument("-n", type=_positive, default=10, metavar="N", help="at most N hits (10)")
    parser.set_defaults(func=run)


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError("must be between 1 and 1000")
    return value


def excerpt(hit: Hit, words: list[str]) -> list[str]:
    """Up to ``EXCERPT_LINES`` lines of the chunk: those holding a query word, else the first ones."""
    lines = [(n, line) for n, line in enumerate(hit.chunk.text.split("\n"), hit.chunk.start_line) if line.strip()]
    plain = [w.rstrip("*") for w in words if len(w.rstrip("*")) > 1]

    def holds(line: str) -> bool:
        low = line.lower()
        parts = set(split_identifier(line)) | set(re.findall(r"\w+", low))
        return any(w in parts or (not w.isascii() and w in low) for w in plain)

    chosen = [item for item in lines if holds(item[1])][:EXCERPT_LINES] or lines[:EXCERPT_LINES]
    return [f"    {n:>5}  {line.strip()[:EXCERPT_WIDTH]}" for n, line in chosen]


def run(args: argparse.Namespace) -> int:
    """Print the ranked hits; 1 with a sentence on stderr when there is nothing to search."""
    query = " ".join(args.query)
    try:
        words = query_terms(query)
        with open_index(sys.stderr) as index:
            if not index.built:
                print(f"gpt-ls: no index yet for {index.root}; building it first.", file=sys.stderr)
                print(build(index, sys.stderr).summary(), file=sys.stderr)
            hits = index.search(query, args.n)
    except GptLsError as exc:
        print(f"gpt-ls search: {exc}", file=sys.stderr)
        return 1
    if not hits:
        print(f"Nothing in the index matches {query!r}.")
        return 0
    for hit in hits:
        chunk = hit.chunk
        print(f"{chunk.path}:{chunk.start_line}-{chunk.end_line}  {hit.score:.2f}")
        print("\n".join(excerpt(hit, words)))
    return 0
