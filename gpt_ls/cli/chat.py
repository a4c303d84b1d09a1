"""``gpt-ls ask`` and ``gpt-ls chat``: the tutorial's loop, in the terminal.

Both run through ``exchange.Exchange``, as the editor does, so settings, proxies,
token fitting, errors and history are shared: a conversation started in the editor
continues here, and back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import signal
import sys
from collections.abc import Callable
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

HELP = """Commands:
  /new            start a new conversation
  /model NAME     use another model from now on
  /system TEXT    set the system prompt (starts a new conversation)
  /tokens         tokens used in this conversation
  /history        show this conversation so far
  /exit           leave (or Ctrl-D)
End a line with \\ to continue on the next one, or enclose several lines in \"\"\"."""


def _settings(args: argparse.Namespace) -> tuple[Settings, str, str]:
    """Settings, workspace key and project instructions of the current directory's workspace."""
    from gpt_ls.instructions import project_instructions

    root = find_workspace_root(Path.cwd())
    overrides: dict[str, Any] = {}
    if getattr(args, "model", None):
        overrides["model"] = args.model
    loaded = load_settings(overrides, root)
    for problem in loaded.problems:
        print(f"gpt-ls: warning: {problem}", file=sys.stderr)
    instructions = project_instructions(root, loaded.settings.instructions_file)
    return loaded.settings, workspace_key(root), instructions


async def _exchange(
    exchange: Exchange, action: Action, question: str, settings: Settings, workspace: str, new: bool,
    on_text: Callable[[str], None], instructions: str = "",
) -> Reply:
    from gpt_ls.exchange import ExchangeRequest
    from gpt_ls.prompts import SelectionContext

    ctx = SelectionContext(uri="", language="", selection=question)
    req = ExchangeRequest(action, ctx, settings, workspace=workspace, new_conversation=new, system_extra=instructions)
    return await exchange.run(req, on_text)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _report(outcome: Reply) -> int:
    for notice in outcome.notices:
        print(f"gpt-ls: {notice}", file=sys.stderr)
    if outcome.error is not None:
        print(f"gpt-ls: {outcome.error}", file=sys.stderr)
        return 1
    if outcome.status == "cancelled":
        print("gpt-ls: cancelled", file=sys.stderr)
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
    settings, workspace, instructions = _settings(args)
    action = CHAT_ACTION if not args.system else dataclasses.replace(CHAT_ACTION, system=args.system)
    from gpt_ls.exchange import Exchange

    exchange = Exchange()
    streamed = [False]

    def on_text(delta: str) -> None:
        if not args.json:
            streamed[0] = True
            _write(delta)

    try:
        outcome = asyncio.run(
            _exchange(exchange, action, question, settings, workspace, not args.continue_, on_text, instructions)
        )
    finally:
        exchange.close()
    if args.json:
        print(json.dumps(_as_json(outcome), ensure_ascii=False, indent=2))
    elif streamed[0]:
        _write("\n")
    return _report(outcome)


def _as_json(outcome: Reply) -> dict[str, Any]:
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


def read_message(prompt: str, read: Callable[[str], str] = input) -> str:
    """Read one message: ``\\`` at a line's end continues it; \"\"\" … \"\"\" spans lines."""
    first = read(prompt)
    if first.strip() == '"""':
        lines = []
        while (line := read("... ")).strip() != '"""':
            lines.append(line)
        return "\n".join(lines)
    lines = [first]
    while lines[-1].endswith("\\"):
        lines[-1] = lines[-1][:-1]
        lines.append(read("... "))
    return "\n".join(lines)


class ChatSession:
    """The interactive loop's state: settings, the action (system prompt), totals."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.settings, self.workspace, self.instructions = _settings(args)
        self.action = CHAT_ACTION if not args.system else dataclasses.replace(CHAT_ACTION, system=args.system)
        self.new = bool(args.system) or not args.continue_
        from gpt_ls.exchange import Exchange

        self.exchange = Exchange()
        self.loop = asyncio.new_event_loop()
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def command(self, line: str) -> bool:
        """Handle a /command; return False to leave."""
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        if name in ("/exit", "/quit"):
            return False
        if name == "/new":
            self.new = True
            print("(new conversation)")
        elif name == "/model":
            if rest:
                self.settings = dataclasses.replace(self.settings, model=rest)
            print(f"(model: {self.settings.model})")
        elif name == "/system":
            self.action = dataclasses.replace(self.action, system=rest or CHAT_SYSTEM)
            self.new = True
            print("(system prompt set; new conversation)")
        elif name == "/tokens":
            total = self.prompt_tokens + self.completion_tokens
            print(f"({self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion = {total:,} tokens)")
        elif name == "/history":
            self.show_history()
        else:
            print(HELP)
        return True

    def show_history(self) -> None:
        store = self.exchange.store()
        current = None if self.new else store.current_conversation(self.workspace)
        if current is None:
            print("(no conversation yet)")
            return
        for turn in store.turns(current.id):
            print(f"[{turn['role']}] {turn['content']}")

    def turn(self, question: str) -> None:
        task = self.loop.create_task(
            _exchange(self.exchange, self.action, question, self.settings, self.workspace, self.new, _write,
                      self.instructions)
        )
        self.loop.add_signal_handler(signal.SIGINT, task.cancel)
        try:
            outcome = self.loop.run_until_complete(task)
        except asyncio.CancelledError:
            print("\n(stopped)")
            return
        finally:
            self.loop.remove_signal_handler(signal.SIGINT)
        _write("\n")
        self.new = False
        if outcome.usage is not None:
            self.prompt_tokens += outcome.usage.prompt_tokens
            self.completion_tokens += outcome.usage.completion_tokens
        if outcome.status == "cancelled":
            print("(stopped)")
        _report(outcome)

    def run(self) -> int:
        interactive = sys.stdin.isatty()
        if interactive:
            print(f"gpt-ls chat · {self.settings.model} · /help for commands, Ctrl-D to leave")
        armed = False
        try:
            while True:
                try:
                    line = read_message("> " if interactive else "")
                except KeyboardInterrupt:
                    if armed:
                        print()
                        return 0
                    armed = True
                    print("\n(press Ctrl-C again or Ctrl-D to leave)")
                    continue
                except EOFError:
                    if interactive:
                        print()
                    return 0
                armed = False
                if not line.strip():
                    continue
                if line.startswith("/"):
                    if not self.command(line.strip()):
                        return 0
                    continue
                self.turn(line)
        finally:
            self.exchange.close()
            with contextlib.suppress(Exception):
                self.loop.close()


def run_chat(args: argparse.Namespace) -> int:
    """The interactive loop."""
    return ChatSession(args).run()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ask`` and ``chat`` to the ``gpt-ls`` command line."""
    ask = sub.add_parser("ask", help="ask one question; the reply streams to stdout")
    ask.add_argument("question", nargs="*", help="the question (default: read standard input)")
    ask.add_argument("--model", "-m", help="the model to use")
    ask.add_argument("--system", "-s", help="the system prompt")
    ask.add_argument("--continue", "-c", dest="continue_", action="store_true",
                     help="continue the latest conversation of this workspace")
    ask.add_argument("--json", action="store_true", help="print the whole response as JSON, usage included")
    ask.set_defaults(func=run_ask)
    chat = sub.add_parser("chat", help="an interactive conversation")
    chat.add_argument("--model", "-m", help="the model to use")
    chat.add_argument("--system", "-s", help="the system prompt")
    chat.add_argument("--continue", "-c", dest="continue_", action="store_true",
                      help="continue the latest conversation of this workspace")
    chat.set_defaults(func=run_chat)
