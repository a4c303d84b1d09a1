"""``create_server()``: a new gpt-ls language server with its features and commands registered.

Nothing is built at import time; ``gpt-ls`` (``gpt_ls.cli``) calls this to serve.
"""

from __future__ import annotations

from gpt_ls.lsp import commands, handlers
from gpt_ls.lsp.state import GptLanguageServer


def create_server() -> GptLanguageServer:
    """A new server with every feature handler and command registered."""
    server = GptLanguageServer()
    handlers.register(server)
    commands.register(server)
    return server
