"""Markdown rendered for a terminal with ANSI styles, as a reply streams (pure: text in, text out).

Only what replies use: headings, bold, italics, inline code, fenced code blocks, lists,
quotes and rules. A line is shown raw while it arrives, then replaced by its rendering
once it is complete (the cursor goes back over the rows the raw text took). Piped output
never comes here: it stays plain text.
"""

from __future__ import annotations

import re
import unicodedata

RESET = "\x1b[0m"
BOLD = "\x1b[1m"
DIM = "\x1b[2m"
ITALIC = "\x1b[3m"
HEADING = "\x1b[1;4m"
CODE = "\x1b[36m"
BLOCK = "\x1b[33m"

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^(\s*)(\d+[.)])\s+(.*)$")
_QUOTE = re.compile(r"^\s*>\s?(.*)$")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
_INLINE = re.compile(r"(`+)(.+?)\1|\*\*(.+?)\*\*|__(.+?)__|(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal (wide CJK characters take two; controls none)."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Cc", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def inline(text: str) -> str:
    """Inline code, bold and italics of one line."""

    def style(m: re.Match[str]) -> str:
        if m.group(2) is not None:
            return f"{CODE}{m.group(2)}{RESET}"
        if m.group(3) is not None or m.group(4) is not None:
            return f"{BOLD}{m.group(3) or m.group(4)}{RESET}"
        return f"{ITALIC}{m.group(5)}{RESET}"

    return _INLINE.sub(style, text)


class TerminalMarkdown:
    """Feed it the reply's deltas; write what it returns."""

    def __init__(self, columns: int = 80) -> None:
        self.columns = max(columns, 1)
        self.in_fence = False
        self.partial = ""  # the current line so far, shown raw

    def render_line(self, line: str) -> str:
        """One complete line, styled (code blocks keep their text as it is)."""
        if _FENCE.match(line):
            self.in_fence = not self.in_fence
            return f"{DIM}{line}{RESET}"
        if self.in_fence:
            return f"{BLOCK}{line}{RESET}" if line else ""
        if m := _HEADING.match(line):
            return f"{HEADING if len(m.group(1)) <= 2 else BOLD}{m.group(2)}{RESET}"
        if _RULE.match(line):
            return f"{DIM}{'─' * min(self.columns, 40)}{RESET}"
        if m := _BULLET.match(line):
            return f"{m.group(1)}• {inline(m.group(2))}"
        if m := _NUMBERED.match(line):
            return f"{m.group(1)}{m.group(2)} {inline(m.group(3))}"
        if m := _QUOTE.match(line):
            return f"{DIM}│{RESET} {ITALIC}{inline(m.group(1))}{RESET}"
        return inline(line)

    def _erase_partial(self) -> str:
        """Back to the start of the raw partial line, and clear it (and below)."""
        if not self.partial:
            return ""
        rows = max(1, -(-display_width(self.partial) // self.columns))
        return "\r" + "\x1b[A" * (rows - 1) + "\x1b[J"

    def feed(self, delta: str) -> str:
        """The text to write for one delta."""
        *complete, rest = (self.partial + delta).split("\n")
        if not complete:
            self.partial = rest
            return delta
        out = [self._erase_partial()]
        out += [self.render_line(line) + "\n" for line in complete]
        out.append(rest)
        self.partial = rest
        return "".join(out)

    def finish(self) -> str:
        """The end of the reply: the last line rendered (no newline added)."""
        out = self._erase_partial() + (self.render_line(self.partial) if self.partial else "")
        self.partial = ""
        self.in_fence = False
        return out
