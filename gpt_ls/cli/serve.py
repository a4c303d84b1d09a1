"""``gpt-ls`` / ``gpt-ls serve``: the language server over stdio (``--stdio``) or one TCP connection.

This is the editor's case, so it imports pygls and the SDK only once it runs.
"""

from __future__ import annotations

import argparse
import sys


def serve(args: argparse.Namespace) -> int:
    """Run the language server (imports pygls and the SDK only now)."""
    from gpt_ls.errors import FileRefused
    from gpt_ls.logs import setup_logging

    try:
        setup_logging(args.verbose, args.log_file)
    except FileRefused as exc:
        print(f"gpt-ls: --log-file: {exc}", file=sys.stderr)
        return 2
    from gpt_ls.lsp.server import create_server

    server = create_server()

    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not port.isdigit():
            print(f"gpt-ls: --tcp takes HOST:PORT (got {args.tcp!r})", file=sys.stderr)
            return 2
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        server.start_io()
    return 0
