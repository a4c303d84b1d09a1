"""Thin ``workspace/executeCommand`` handlers: check the arguments, call one function, return its result.

A user-facing error (``GptLsError``) becomes a JSON-RPC error carrying its sentence.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from gpt_ls.actions.catalog import DEDICATED_COMMANDS, RUN_COMMAND, SEND, Action
from gpt_ls.errors import GptLsError
from gpt_ls.lsp.state import GptLanguageServer
from gpt_ls.secrets import mask
from gpt_ls.text import Pos


def _arguments(args: tuple[Any, ...], usage: str, count: int) -> list[Any]:
    """Check a command's arguments; a JSON-RPC error that says the expected form otherwise."""
    if len(args) < count:
        raise JsonRpcInvalidParams(f"expected arguments {usage}, got {len(args)} argument(s)")
    return list(args)


def _uri(value: Any, usage: str) -> str:
    if not isinstance(value, str) or not value:
        raise JsonRpcInvalidParams(f"expected arguments {usage}: the first must be a document URI")
    return value


def _range(ls: GptLanguageServer, value: Any, usage: str) -> tuple[Pos, Pos]:
    try:
        rng: types.Range = ls.protocol._converter.structure(value, types.Range)
    except Exception:
        raise JsonRpcInvalidParams(f"expected arguments {usage}: {value!r} is not an LSP range") from None
    return Pos(rng.start.line, rng.start.character), Pos(rng.end.line, rng.end.character)


async def _user_errors(call: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """A user-facing error becomes a JSON-RPC error carrying its sentence (never a traceback)."""
    try:
        return await call
    except GptLsError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None


def _plain_errors(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``fn``; a user-facing error becomes a JSON-RPC error with its sentence."""
    try:
        return fn()
    except GptLsError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None


def action_command(action: Action) -> Callable[..., Awaitable[dict[str, Any]]]:
    """The handler of an action's dedicated command: ``[uri, range]``."""
    usage = "[uri, range]"

    async def handler(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
        uri, rng = _arguments(args, usage, 2)[:2]
        if len(args) > 2:
            raise JsonRpcInvalidParams(f"expected arguments {usage}, got {len(args)} arguments")
        uri = _uri(uri, usage)
        return await _user_errors(ls.runner.run_action(action.id, uri, *_range(ls, rng, usage), default=action))

    handler.__doc__ = f"Run {action.title}."
    return handler


async def run_any(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
    """Run any action by id: ``[actionId, uri, range, {diagnostics}?]``."""
    usage = "[actionId, uri, range, options?]"
    action_id, uri, rng, *rest = _arguments(args, usage, 3)
    extra = rest[0] if rest and isinstance(rest[0], dict) else {}
    uri = _uri(uri, usage)
    return await _user_errors(ls.runner.run_action(action_id, uri, *_range(ls, rng, usage), extra))


async def send(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
    """Send a chat document (``*.chat.md``): ``[uri]``."""
    (uri, *_rest) = _arguments(args, "[uri]", 1)
    return await _user_errors(ls.runner.send_chat(_uri(uri, "[uri]")))


def cancel_all(ls: GptLanguageServer, *args: Any) -> dict[str, int]:
    """Cancel every running request."""
    return {"cancelled": ls.runner.cancel()}


def new_conversation(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
    """Start a fresh conversation (arguments are ignored: the workspace decides)."""
    from gpt_ls.actions import conversations

    return _plain_errors(lambda: conversations.new_conversation(ls.exchange, ls.editor, ls.settings))


def show_history(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
    """Open the workspace's recent conversations as a Markdown document."""
    from gpt_ls.actions import conversations

    return _plain_errors(lambda: conversations.history_overview(ls.exchange, ls.editor, ls.settings))


def open_conversation(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
    """Open one conversation as a Markdown document: ``[id]``."""
    from gpt_ls.actions import conversations

    (conversation_id, *_rest) = _arguments(args, "[conversationId]", 1)
    if isinstance(conversation_id, bool) or not isinstance(conversation_id, int):
        raise JsonRpcInvalidParams("expected arguments [conversationId]: a conversation id is a number")
    return _plain_errors(lambda: conversations.open_conversation(ls.exchange, ls.editor, conversation_id))


async def check(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
    """Test the connection with the current settings; show the report."""
    from gpt_ls.check import run_check

    report = await run_check(ls.resolved)
    # The verdict first: editors cut long messages.
    ls.show("\n".join([report.lines[-1], *report.lines[:-1]]), "info" if report.ok else "error")
    return {"ok": report.ok, "lines": [mask(line) for line in report.lines], "latencyMs": report.latency_ms}


def register(server: LanguageServer) -> None:
    """Register every command on ``server``."""
    for command, action in DEDICATED_COMMANDS.items():
        server.command(command)(action_command(action))
    server.command(RUN_COMMAND)(run_any)
    server.command(SEND.command)(send)
    server.command("gpt-ls.cancel")(cancel_all)
    server.command("gpt-ls.newConversation")(new_conversation)
    server.command("gpt-ls.showHistory")(show_history)
    server.command("gpt-ls.openConversation")(open_conversation)
    server.command("gpt-ls.check")(check)
