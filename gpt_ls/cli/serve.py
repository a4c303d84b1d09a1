"""``gpt-ls`` / ``gpt-ls serve``: the language server over stdio (``--stdio``), one TCP client, or a Unix socket.

This is the editor's case, so it imports pygls and the SDK only once it runs.
``--tcp`` binds loopback only (``--allow-remote`` for another address, with a warning) and
requires the token of this start (docs/connecting.md); ``--socket PATH`` is the
recommended alternative.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The serving options, on ``gpt-ls`` and on ``gpt-ls serve``."""
    parser.add_argument("--stdio", action="store_true", help="serve LSP over stdin/stdout (the default)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--tcp", metavar="HOST:PORT",
                       help="serve one LSP client over TCP, loopback only; it must send the token "
                                  "(initializationOptions.tcpToken) from the file printed at start")
    where.add_argument("--socket", metavar="PATH",
                       help="serve one LSP client on a Unix socket created 0600 (recommended over --tcp)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="let --tcp listen on an address other than loopback (prints a warning)")
    parser.add_argument("--token-file", metavar="PATH",
                        help="where --tcp writes its token (default: <data dir>/tcp/PORT.token)")
    parser.add_argument("--log-file", metavar="PATH", help="write the log here instead of stderr")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")


@contextmanager
def lasting_imports() -> Iterator[None]:
    """Around the start-up imports: no garbage collection meanwhile, then what they built frozen.

    pygls, lsprotocol and gpt-ls create some 50,000 objects that live as long as the process;
    with the collector on, gpt-ls's share tips it into one full collection over all of them
    (13-25 ms of the ~60 ms gpt-ls adds to a bare pygls start). Freezing them (``gc.freeze``)
    also keeps every later full collection from walking them again.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def serve(args: argparse.Namespace) -> int:
    """Run the language server (imports pygls and the SDK only now)."""
    from gpt_ls.errors import FileRefused, ListenRefused
    from gpt_ls.logs import setup_logging

    try:
        address = socket_path = token = None
        if args.tcp or args.socket:  # (stdio, the editor's case, needs none of it)
            from gpt_ls.lsp import listen

            address = listen.parse_tcp(args.tcp, args.allow_remote) if args.tcp else None
            socket_path = listen.prepare_socket(Path(args.socket).absolute()) if args.socket else None
            token = listen.choose_token(os.environ) if address is not None else None
        try:
            setup_logging(args.verbose, args.log_file)
        except FileRefused as exc:
            print(f"gpt-ls: --log-file: {exc}", file=sys.stderr)
            return 2
        with lasting_imports():
            from gpt_ls.lsp import transport
            from gpt_ls.lsp.server import create_server
            from gpt_ls.secrets import add_secret

            server = create_server()
        if address is not None and token is not None:
            add_secret(token)  # never in a log line
            written: list[Path | None] = []
            try:
                return transport.serve_tcp(server, address.host, address.port, token,
                                           lambda host, port: written.append(_announce_tcp(args, host, port, token)))
            finally:
                for path in filter(None, written):
                    path.unlink(missing_ok=True)  # this start's token is void now
        if socket_path is not None:
            return transport.serve_socket(server, socket_path, lambda: print(
                f"gpt-ls: serving LSP on the Unix socket {socket_path} (owner-only, one client).",
                file=sys.stderr, flush=True))
        return transport.serve_stdio(server)
    except ListenRefused as exc:
        print(f"gpt-ls: {exc}", file=sys.stderr)
        return 2


def _announce_tcp(args: argparse.Namespace, host: str, port: int, token: str) -> Path | None:
    """Write the token file and say where it is (a token from the environment is not written)."""
    from gpt_ls.lsp import listen
    from gpt_ls.settings import data_dir

    if not listen.is_loopback(host):
        print(listen.remote_warning(host, port), file=sys.stderr)
    path: Path | None = None
    if os.environ.get(listen.TOKEN_ENV):
        where = f"the value of {listen.TOKEN_ENV}"
    else:
        path = Path(args.token_file) if args.token_file else listen.default_token_file(data_dir(), port)
        listen.write_token(path, token)
        where = f"the token in {path}"
    print(f"gpt-ls: serving LSP on {host}:{port} (one client); it must send {where} as "
          "initializationOptions.tcpToken (docs/connecting.md).", file=sys.stderr, flush=True)
    return path
