"""Pure: the reply's ``path:start-end`` citations as links to those lines, and its Sources list.

A citation of a file that was sent (``[src/app.py:10-24]``, `` `src/app.py:10` ``, or bare)
becomes a Markdown link to ``file:///abs/path#L10``: VS Code opens such a link at the
line from its Markdown preview and hovers, and Neovim's ``gx`` opens the file. Paths are
percent-encoded (spaces, CJK). Only paths among the sources are linked, never text inside
a fenced code block. ``CitationStream`` does the same to a reply while it streams: it holds
back only the last few characters that may still be part of a citation, and gives
everything back on ``flush``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from gpt_ls.index.context import Source, label

#: Line numbers longer than this are not line numbers.
_DIGITS = 9
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)
#: The start of a line that may yet become a fence.
_MAYBE_FENCE = re.compile(r" {0,3}(?:[`~]|$)")


def file_link(root: Path, path: str, start: int) -> str:
    """``file:///abs/path#Lstart``, percent-encoded."""
    return f"{(root / path).as_uri()}#L{start}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def markdown_link(root: Path, path: str, start: int, end: int) -> str:
    return f"[{_escape(label(path, start, end))}]({file_link(root, path, start)})"


class Linker:
    """Finds the citations of the sources' files in text and writes them as links."""

    def __init__(self, sources: Sequence[Source], root: Path) -> None:
        self.root = root
        self.sources = list(sources)
        paths = sorted({s.path for s in sources}, key=len, reverse=True)
        self.pattern: re.Pattern[str] | None = None
        #: The longest citation that can match (what a stream holds back).
        self.longest = 0
        if paths:
            alternatives = "|".join(re.escape(p) for p in paths)
            self.pattern = re.compile(
                rf"(?:(?P<bracket>\[)|(?P<tick>`))?(?<![\w/.\-])(?P<path>{alternatives}):(?P<a>\d{{1,{_DIGITS}}})"
                rf"(?:-(?P<b>\d{{1,{_DIGITS}}}))?(?![\d-])(?(bracket)\]|(?(tick)`|))(?!\]?\()"
            )
            self.longest = max(len(p) for p in paths) + 2 * _DIGITS + 4

    def _replace(self, m: re.Match[str]) -> str:
        start = int(m.group("a"))
        end = int(m.group("b")) if m.group("b") else start
        if start < 1 or end < start:
            return m.group(0)
        return markdown_link(self.root, m.group("path"), start, end)

    def _sub(self, line: str, before: str) -> str:
        """``line`` with its citations linked; ``before`` is only looked at (a path glued to it is plain)."""
        assert self.pattern is not None
        text, out, at = before + line, [], len(before)
        for m in self.pattern.finditer(text, len(before)):
            out.append(text[at : m.start()])
            out.append(self._replace(m))
            at = m.end()
        out.append(text[at:])
        return "".join(out)

    def rewrite(self, text: str, fence: str = "", at_start: bool = True, before: str = "") -> tuple[str, str]:
        """``text`` with its citations linked, outside fences; and the fence open after it.

        ``fence``: the fence open before ``text``; ``at_start``: ``text`` begins a line;
        ``before``: the character before ``text`` (a path glued to it is not a citation).
        """
        out: list[str] = []
        for i, line in enumerate(text.splitlines(keepends=True)):
            whole = line.endswith(("\n", "\r"))
            opened = _FENCE.match(line) if (i or at_start) else None
            if fence:
                if opened and whole and _closes(opened.group(1), fence):
                    fence = ""
                out.append(line)
            elif opened:
                fence = opened.group(1) if whole else fence
                out.append(line)
            elif self.pattern is None:
                out.append(line)
            else:
                out.append(self._sub(line, before if i == 0 else ""))
        return "".join(out), fence

    def cited(self, text: str) -> list[tuple[str, int, int]]:
        """The citations in ``text`` (outside fences), in order, each once."""
        if self.pattern is None:
            return []
        found: list[tuple[str, int, int]] = []
        fence = ""
        for line in text.splitlines(keepends=True):
            before = fence
            fence = _fence_after(line, fence)
            if before or _FENCE.match(line):
                continue
            for m in self.pattern.finditer(line):
                start = int(m.group("a"))
                end = int(m.group("b")) if m.group("b") else start
                item = (m.group("path"), start, max(start, end))
                if item not in found:
                    found.append(item)
        return found


def _closes(run: str, fence: str) -> bool:
    return run[0] == fence[0] and len(run) >= len(fence)


def _fence_after(text: str, fence: str) -> str:
    """The fence open after the complete lines of ``text``, starting with ``fence`` open."""
    for line in text.splitlines(keepends=True):
        opened = _FENCE.match(line)
        if opened and line.endswith(("\n", "\r")):
            fence = "" if fence and _closes(opened.group(1), fence) else (fence or opened.group(1))
    return fence


def link_citations(text: str, sources: Sequence[Source], root: Path) -> str:
    """``text`` with every citation of a sent file as a Markdown link to its lines."""
    return Linker(sources, root).rewrite(text)[0]


def sources_used(text: str, sources: Sequence[Source], root: Path) -> list[tuple[str, int, int]]:
    """The sources the reply cited (in the order first cited), else every source sent.

    A citation of lines inside a sent chunk names that chunk; one of other lines of a sent
    file stays as cited.
    """
    used: list[tuple[str, int, int]] = []
    for path, start, end in Linker(sources, root).cited(text):
        match = next((s for s in sources if s.path == path and s.start_line <= end and start <= s.end_line), None)
        item = (match.path, match.start_line, match.end_line) if match else (path, start, end)
        if item not in used:
            used.append(item)
    return used or [(s.path, s.start_line, s.end_line) for s in sources]


def sources_section(text: str, sources: Sequence[Source], root: Path) -> str:
    """The short "Sources" list that follows the reply (``""`` when nothing was sent)."""
    if not sources:
        return ""
    items = "".join(f"- {markdown_link(root, p, a, b)}\n" for p, a, b in sources_used(text, sources, root))
    lead = "" if text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
    return f"{lead}**Sources**\n\n{items}"


class CitationStream:
    """Links citations in a streamed reply: ``feed`` each delta, ``flush`` at the end.

    What comes out is the reply with its citations linked; nothing is lost: ``flush``
    returns whatever is still held back.
    """

    def __init__(self, sources: Sequence[Source], root: Path) -> None:
        self.linker = Linker(sources, root)
        self.pending = ""
        self.fence = ""
        self.at_start = True
        self.before = ""

    def feed(self, delta: str) -> str:
        self.pending += delta
        cut = len(self.pending) - self.linker.longest - 2
        if cut <= 0:
            return ""
        if self.linker.pattern is not None:
            for m in self.linker.pattern.finditer(self.pending):
                if m.start() >= cut:
                    break
                if m.end() > cut or m.end() >= len(self.pending) - 1:  # split, or may grow
                    cut = m.start()
                    break
        # A line that may open a fence goes out whole, so its fence is seen.
        last = max(self.pending.rfind("\n", 0, cut), self.pending.rfind("\r", 0, cut))
        if (last >= 0 or self.at_start) and _MAYBE_FENCE.match(self.pending, last + 1, cut):
            cut = last + 1
        return self._release(cut)

    def _release(self, cut: int) -> str:
        if cut <= 0:
            return ""
        head, self.pending = self.pending[:cut], self.pending[cut:]
        out, self.fence = self.linker.rewrite(head, self.fence, self.at_start, self.before)
        self.at_start, self.before = head.endswith(("\n", "\r")), head[-1]
        return out

    def flush(self) -> str:
        """Everything still held back, linked."""
        return self._release(len(self.pending))
