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
                      "gpt_ls.cli.trust", "gpt_ls.cli.index", "gpt_ls.cli.search")


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


#: Options of serving that take a value (the next argument is not a command).
VALUED_OPTIONS = frozenset({"--tcp", "--socket", "--token-file", "--log-file"})


def wants_commands(argv: Sequence[str]) -> bool:
    """Does ``argv`` name a command (or ask for help)? Only serving's options: no need to load them."""
    after_option = False
    for arg in argv:
        if after_option:
            after_option = False
        elif arg in VALUED_OPTIONS:
            after_option = True
        elif arg in ("-h", "--help") or not arg.startswith("-"):
            return True  # a command, or a mistyped one: argparse lists every command
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gpt-ls`` script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Serving (the editor's case) skips importing the terminal commands: start-up matters.
    parser = build_parser(subcommands=wants_commands(argv))
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
