"""The ``gpt-ls`` command line: argument parsing only; each subcommand's module does the work.

``gpt-ls`` with no subcommand serves LSP over stdio (``--stdio`` is accepted because
VS Code's client appends it); ``--tcp HOST:PORT`` (loopback, with a token) and ``--socket PATH``
serve one client (docs/connecting.md).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from gpt_ls import __version__
from gpt_ls.cli.serve import add_arguments, serve

#: Modules that add a subcommand through ``register(subparsers)``.
SUBCOMMAND_MODULES = ("gpt_ls.cli.chat", "gpt_ls.cli.check", "gpt_ls.cli.history", "gpt_ls.cli.tokens",
                      "gpt_ls.cli.trust")

#: Names of the subcommands (``serve`` is built in).
SUBCOMMANDS = frozenset({"serve", "ask", "chat", "check", "history", "tokens", "trust", "untrust"})


def build_parser(subcommands: bool = True) -> argparse.ArgumentParser:
    """The ``gpt-ls`` command line (``subcommands=False``: just enough to serve, quickly)."""
    parser = argparse.ArgumentParser(
        prog="gpt-ls",
        description="A language server that puts OpenAI's chat models inside any editor.",
    )
    parser.add_argument("--version", action="version", version=f"gpt-ls {__version__}")
    add_arguments(parser)
    parser.set_defaults(func=serve)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    serve_parser = sub.add_parser("serve", help="serve LSP (the default)")
    add_arguments(serve_parser)
    serve_parser.set_defaults(func=serve)
    if subcommands:
        for name in SUBCOMMAND_MODULES:
            importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gpt-ls`` script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Serving (the editor's case) skips importing the terminal commands: start-up matters.
    full = any(a in SUBCOMMANDS or a in ("-h", "--help") for a in argv)
    parser = build_parser(subcommands=full)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one sentence here; the traceback only in a --log-file
        if logging.getLogger().handlers:
            logging.getLogger("gpt_ls").exception("gpt-ls stopped on an unexpected error")
        print(f"gpt-ls: internal error ({type(exc).__name__}); gpt-ls stopped. This is a bug: please report "
              "it with the command you ran.", file=sys.stderr)
        return 1
