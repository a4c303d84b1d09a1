"""``gpt-ls ask``, and what ``ask`` and ``chat`` share: settings, the chat action, one exchange.

Both run through ``exchange.Exchange``, as the editor does, so settings, proxies, token
fitting, errors and history are shared: a conversation started in the editor continues
here, and back.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpt_ls.actions.catalog import Action
from gpt_ls.history.store import workspace_key
from gpt_ls.settings import Settings, find_workspace_root, load_settings

if TYPE_CHECKING:  # the exchange imports the SDK: only when a command runs
    from gpt_ls.exchange import Exchange, Reply

CHAT_SYSTEM = "You are a helpful assistant."
CHAT_ACTION = Action(
    "chat", "gpt-ls.chat", "Chat", CHAT_SYSTEM, template="{selection}", conversation="continue", code_action=False
)
NO_HISTORY_TO_CONTINUE = (
    "gpt-ls: history is off (setting 'history'), so --continue has no earlier conversation to "
    "continue across runs: this question starts a new one (gpt-ls chat remembers within a session)."
)


def load(args: argparse.Namespace) -> tuple[Settings, str, str]:
    """Settings, workspace key and project instructions of the current directory's workspace."""
    from gpt_ls.instructions import read_instructions

    root = find_workspace_root(Path.cwd())
    overrides: dict[str, Any] = {}
    if getattr(args, "model", None):
        overrides["model"] = args.model
    loaded = load_settings(overrides, root)
    instructions, refused = read_instructions(root, loaded.settings.instructions_file)
    untrusted = [loaded.untrusted.message()] if loaded.untrusted is not None else []
    for problem in [*loaded.problems, *untrusted, *([refused] if refused else [])]:
        print(f"gpt-ls: warning: {problem}", file=sys.stderr)
    return loaded.settings, workspace_key(root), instructions


def chat_action(system: str | None) -> Action:
    """The chat action, with another system prompt when one is given."""
    return CHAT_ACTION if not system else dataclasses.replace(CHAT_ACTION, system=system)


async def exchange_once(
    exchange: Exchange, action: Action, question: str, settings: Settings, workspace: str, new: bool,
    on_text: Callable[[str], None], instructions: str = "",
) -> Reply:
    """One question through the exchange, as the editor would send it."""
    from gpt_ls.exchange import ExchangeRequest
    from gpt_ls.prompts import SelectionContext

    ctx = SelectionContext(uri="", language="", selection=question)
    req = ExchangeRequest(action, ctx, settings, workspace=workspace, new_conversation=new, system_extra=instructions)
    return await exchange.run(req, on_text)


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


class ToStdout:
    """``on_text`` for a reply streamed to stdout (nothing with ``--json``); ``any``: something was written."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.any = quiet, False

    def __call__(self, delta: str) -> None:
        if not self.quiet:
            self.any = True
            write(delta)


def with_exchange(body: Callable[[Exchange], Awaitable[Reply]]) -> Reply:
    """Run ``body`` with a new exchange, closed afterwards whatever happens."""
    from gpt_ls.exchange import Exchange

    async def run() -> Reply:
        exchange = Exchange()
        try:
            return await body(exchange)
        finally:
            await exchange.aclose()

    return asyncio.run(run())


def report(outcome: Reply, cancelled: str | None = "gpt-ls: cancelled") -> int:
    """Notices and the error on stderr; the exit code (``cancelled``: what to say when stopped)."""
    for notice in outcome.notices:
        print(f"gpt-ls: {notice}", file=sys.stderr)
    if outcome.error is not None:
        print(f"gpt-ls: {outcome.error}", file=sys.stderr)
        return 1
    if outcome.status == "cancelled":
        if cancelled:
            print(cancelled, file=sys.stderr)
        return 130
    return 0


def run_ask(args: argparse.Namespace) -> int:
    """One exchange; the reply streams to stdout."""
    question = " ".join(args.question) if args.question else ""
    if not question or question == "-":
        question = sys.stdin.read()
    if not question.strip():
        print("gpt-ls: no question: pass it as an argument or on standard input", file=sys.stderr)
        return 2
    settings, workspace, instructions = load(args)
    if args.continue_ and not settings.history:
        print(NO_HISTORY_TO_CONTINUE, file=sys.stderr)
    on_text = ToStdout(args.json)
    outcome = with_exchange(lambda exchange: exchange_once(
        exchange, chat_action(args.system), question, settings, workspace, not args.continue_, on_text, instructions))
    if args.json:
        print(json.dumps(as_json(outcome), ensure_ascii=False, indent=2))
    elif on_text.any:
        write("\n")
    return report(outcome)


def as_json(outcome: Reply) -> dict[str, Any]:
    """The whole response of ``gpt-ls ask --json``."""
    usage = outcome.usage
    return {
        "model": outcome.model,
        "status": outcome.status,
        "content": outcome.text,
        "usage": None if usage is None else {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "exact": usage.exact,
        },
        "conversation_id": outcome.conversation_id,
        "duration_ms": outcome.duration_ms,
        "error": None if outcome.error is None else {"kind": outcome.error.kind, "message": str(outcome.error)},
    }


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ask`` to the ``gpt-ls`` command line."""
    ask = sub.add_parser("ask", help="ask one question; the reply streams to stdout")
    ask.add_argument("question", nargs="*", help="the question (default: read standard input)")
    ask.add_argument("--model", "-m", help="the model to use")
    ask.add_argument("--system", "-s", help="the system prompt")
    ask.add_argument("--continue", "-c", dest="continue_", action="store_true",
                     help="continue the latest conversation of this workspace (needs history on)")
    ask.add_argument("--json", action="store_true", help="print the whole response as JSON, usage included")
    ask.set_defaults(func=run_ask)
