"""How ``gpt-ls chat`` shows a reply: a sign while waiting, Markdown on a terminal, a usage line.

On a terminal: a dim "waiting" sign until the first token (then erased), the reply rendered
as Markdown with ANSI styles, and a dim usage line. Piped: the reply as plain text on
stdout, the usage line on stderr, no escape codes anywhere.
"""

from __future__ import annotations

import shutil
import sys
from typing import TYPE_CHECKING, TextIO

from gpt_ls.cli.markdown import DIM, RESET, TerminalMarkdown

if TYPE_CHECKING:
    from gpt_ls.exchange import Reply

CLEAR_LINE = "\r\x1b[K"


class ReplyPrinter:
    """Shows one reply after another; ``terminal`` decides styles and signs."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, terminal: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.terminal = self.out.isatty() if terminal is None else terminal
        self.markdown: TerminalMarkdown | None = None
        self.waiting = False
        self.wrote = False

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def start(self, model: str) -> None:
        """A reply is on its way: show the sign (terminal only)."""
        self.wrote = False
        if self.terminal:
            self.markdown = TerminalMarkdown(shutil.get_terminal_size().columns)
            self.waiting = True
            self._write(f"{DIM}… waiting for {model}{RESET}")

    def _unwait(self) -> None:
        if self.waiting:
            self.waiting = False
            self._write(CLEAR_LINE)

    def text(self, delta: str) -> None:
        """One piece of the reply."""
        self._unwait()
        self.wrote = True
        self._write(self.markdown.feed(delta) if self.markdown else delta)

    def end(self, outcome: Reply | None, prices: dict[str, dict[str, float]]) -> None:
        """The reply is over (``None``: stopped before it began): its last line and the usage line."""
        self._unwait()
        if self.markdown is not None:
            self._write(self.markdown.finish())
        if self.wrote:
            self._write("\n")
        if outcome is None or outcome.usage is None or (outcome.error is not None and not outcome.text):
            return
        line = f"[{outcome.usage_line(prices)}]"
        if self.terminal:
            self._write(f"{DIM}{line}{RESET}\n")
        else:
            print(line, file=self.err, flush=True)


class StatusLine:
    """One line of stderr rewritten in place (progress on a terminal), cleared at the end."""

    def __init__(self, err: TextIO) -> None:
        self.err, self.width = err, 0

    def show(self, line: str) -> None:
        line = line[:100]
        self.err.write("\r" + line.ljust(self.width))
        self.width = len(line)
        self.err.flush()

    def end(self) -> None:
        if self.width:
            self.err.write("\r" + " " * self.width + "\r")
            self.err.flush()
