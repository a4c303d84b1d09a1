"""``gpt-ls chat``: the tutorial's loop, in the terminal (``ask`` lives in ``cli/ask.py``).

On a terminal: GNU readline line editing with a persistent input history
(``cli/lineedit.py``), a sign while waiting, Markdown rendered (``cli/output.py``). With
history off the conversation still lives in memory for the session (the exchange keeps it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from gpt_ls.cli import ask
from gpt_ls.cli.ask import CHAT_SYSTEM, chat_action, exchange_once, load, report

if TYPE_CHECKING:
    from gpt_ls.cli.lineedit import LineEditor
    from gpt_ls.exchange import Reply

HELP = """Commands:
  /new            start a new conversation
  /model NAME     use another model from now on
  /system TEXT    set the system prompt (starts a new conversation)
  /tokens         tokens used in this conversation
  /history        show this conversation so far
  /exit           leave (or Ctrl-D)
End a line with \\ to continue on the next one, or enclose several lines in \"\"\"."""


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


def read_piped(prompt: str) -> str:
    """One line of a piped standard input (``input()`` without readline or a prompt)."""
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.removesuffix("\n")


class ChatSession:
    """The interactive loop's state: settings, the action (system prompt), totals."""

    def __init__(self, args: argparse.Namespace) -> None:
        from gpt_ls.cli.output import ReplyPrinter

        self.settings, self.workspace, self.instructions = load(args)
        self.action = chat_action(args.system)
        self.new = bool(args.system) or not args.continue_
        from gpt_ls.exchange import Exchange

        self.exchange = Exchange()
        self.loop = asyncio.new_event_loop()
        self.printer = ReplyPrinter()
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def start_new(self, said: str) -> None:
        """A new conversation from the next message on: no turns, no tokens counted."""
        self.new = True
        self.exchange.memory.forget(self.workspace)  # history off: the session's conversation
        self.prompt_tokens = self.completion_tokens = 0
        print(said)

    def command(self, line: str) -> bool:
        """Handle a /command; return False to leave."""
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        if name in ("/exit", "/quit"):
            return False
        if name == "/new":
            self.start_new("(new conversation)")
        elif name == "/model":
            if rest:
                self.settings = dataclasses.replace(self.settings, model=rest)
            print(f"(model: {self.settings.model})")
        elif name == "/system":
            self.action = dataclasses.replace(self.action, system=rest or CHAT_SYSTEM)
            self.start_new("(system prompt set; new conversation)")
        elif name == "/tokens":
            total = self.prompt_tokens + self.completion_tokens
            print(f"({self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion = {total:,} tokens)")
        elif name == "/history":
            self.show_history()
        else:
            print(HELP)
        return True

    def current_turns(self) -> list[dict[str, str]]:
        """The turns the next message resends (from history, or from memory when it is off)."""
        if self.new:
            return []
        if not self.settings.history:
            return self.exchange.memory.turns(self.workspace)
        store = self.exchange.store()
        current = store.current_conversation(self.workspace)
        return [] if current is None else store.turns(current.id)

    def show_history(self) -> None:
        turns = self.current_turns()
        if not turns:
            print("(no conversation yet)")
        for turn in turns:
            print(f"[{turn['role']}] {turn['content']}")

    def turn(self, question: str) -> None:
        self.printer.start(self.settings.model)
        task = self.loop.create_task(exchange_once(
            self.exchange, self.action, question, self.settings, self.workspace, self.new, self.printer.text,
            self.instructions))
        self.loop.add_signal_handler(signal.SIGINT, task.cancel)
        outcome: Reply | None = None
        try:
            outcome = self.loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
        finally:
            self.loop.remove_signal_handler(signal.SIGINT)
            self.printer.end(outcome, self.settings.prices)
        if outcome is None or outcome.status == "cancelled":
            print("(stopped)")  # said once: not also "gpt-ls: cancelled"
        if outcome is None:
            return
        self.new = False
        if outcome.usage is not None:
            self.prompt_tokens += outcome.usage.prompt_tokens
            self.completion_tokens += outcome.usage.completion_tokens
        report(outcome, cancelled=None)

    def run(self) -> int:
        interactive = sys.stdin.isatty()
        editor: LineEditor | None = None
        read: Callable[[str], str] = read_piped
        if interactive:
            from gpt_ls.cli.lineedit import LineEditor

            editor, read = LineEditor(), input
            print(f"gpt-ls chat · {self.settings.model} · /help for commands, Ctrl-D to leave")
        armed = False
        try:
            while True:
                try:
                    line = read_message("> " if interactive else "", read)
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
                if editor is not None:
                    editor.save()
                if not line.strip():
                    continue
                if line.startswith("/"):
                    if not self.command(line.strip()):
                        return 0
                    continue
                self.turn(line)
        finally:
            self.close()

    def close(self) -> None:
        """Close the HTTP clients and the store, then the loop: nothing left pending at exit."""
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(self.exchange.aclose())
        self.exchange.close()
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()


def run_chat(args: argparse.Namespace) -> int:
    """The interactive loop."""
    return ChatSession(args).run()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ask`` and ``chat`` to the ``gpt-ls`` command line."""
    ask.register(sub)
    chat = sub.add_parser("chat", help="an interactive conversation")
    chat.add_argument("--model", "-m", help="the model to use")
    chat.add_argument("--system", "-s", help="the system prompt")
    chat.add_argument("--continue", "-c", dest="continue_", action="store_true",
                      help="continue the latest conversation of this workspace")
    chat.set_defaults(func=run_chat)
