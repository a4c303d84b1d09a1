"""The door of a TCP or Unix-socket session: nothing reaches the server before a valid ``initialize``.

Over TCP any local user (or, with ``--allow-remote``, any host) can connect, and the
settings an ``initialize`` carries decide which programs run and where the key goes. So
the first request must be ``initialize`` with ``initializationOptions.tcpToken`` equal to
the token of this start (compared in constant time). Until then every other request gets
an error and nothing else; a missing or wrong token is answered with an error and closes
the connection, and so do too many messages before it. The token is taken out of the
options before pygls (which logs them) or the settings see it.

Pure (stdlib only): ``lsp/transport.py`` feeds it the decoded messages.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

#: The ``initializationOptions`` key that carries the token.
TOKEN_KEY = "tcpToken"
#: Messages a connection may send before its ``initialize``; then it is closed.
MAX_BEFORE_INITIALIZE = 5
#: JSON-RPC codes: ServerNotInitialized (LSP) and InvalidRequest.
NOT_INITIALIZED = -32002
INVALID_REQUEST = -32600

REFUSED = ("gpt-ls refused this connection: initializationOptions.tcpToken is {how}. Pass the token from "
           "the file gpt-ls named when it started (see docs/connecting.md); the connection is closed.")


@dataclass(frozen=True)
class Verdict:
    """What to do with one message: pass it on, answer ``reply`` (an error), close, and log ``why``."""

    passes: bool = False
    reply: dict[str, Any] | None = None
    close: bool = False
    why: str = ""


def error_reply(msg_id: Any, code: int, message: str) -> dict[str, Any]:
    """A JSON-RPC error response."""
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


def token_matches(expected: str, given: Any) -> bool:
    """Constant-time comparison (``hmac.compare_digest``) of the token a client presented."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "surrogatepass"))


class Gate:
    """One connection's door. ``token=None``: no token is asked (a Unix socket, already private)."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.open = False
        self.seen = 0

    def check(self, message: Any) -> Verdict:
        """The verdict on one decoded message (an ``initialize`` that passes has its token removed)."""
        if self.open:
            return Verdict(passes=True)
        self.seen += 1
        if not isinstance(message, dict):
            return Verdict(close=True, why="the client sent something that is not a JSON-RPC message")
        msg_id, method = message.get("id"), message.get("method")
        if method == "initialize" and isinstance(msg_id, str | int):
            return self._initialize(message, msg_id)
        if method == "exit":
            return Verdict(close=True, why="the client sent exit before initialize")
        if self.seen > MAX_BEFORE_INITIALIZE:
            return Verdict(close=True, why=f"{MAX_BEFORE_INITIALIZE} messages without a valid initialize")
        if isinstance(method, str) and isinstance(msg_id, str | int):
            return Verdict(reply=error_reply(msg_id, NOT_INITIALIZED, "gpt-ls: send initialize (with "
                                             "initializationOptions.tcpToken) before anything else."),
                           why=f"a {method[:40]!r} request before initialize was answered with an error")
        return Verdict(why="a message before initialize was ignored")

    def _initialize(self, message: dict[str, Any], msg_id: str | int) -> Verdict:
        params = message.get("params")
        options = params.get("initializationOptions") if isinstance(params, dict) else None
        given = options.pop(TOKEN_KEY, None) if isinstance(options, dict) else None
        if self.token is not None and not token_matches(self.token, given):
            how = "missing" if given is None else "wrong"
            return Verdict(reply=error_reply(msg_id, INVALID_REQUEST, REFUSED.format(how=how)), close=True,
                           why=f"initialize with a {how} tcpToken")
        self.open = True
        return Verdict(passes=True, why="initialize accepted")
