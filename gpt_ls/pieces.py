"""A document's text in pieces, so that one edit copies kilobytes, not the whole document.

A streamed reply is dozens of edits into a document the editor echoes back with
``didChange``. With the text as one ``str`` every echo builds a new copy of it: for a
10,000-line file with Chinese and emoji (4 bytes a character) that is 2 MB of fresh
memory per edit, and the kernel's page faults for it took 2.5-5 ms of the event loop
each time (``benchmarks/first_seconds.py`` with ``GPT_LS_BENCH_TRACE``), which every
other request waited for. ``Text`` keeps blocks of about ``BLOCK`` characters that end at
a line break where one is near; an edit makes a new ``Text`` that shares every block but
the one or two it touches. It is immutable like ``str``: an old value stays valid, which
the insertion tracker relies on (it compares the text before and after each change).

Offsets are code points of the whole text, as everywhere in ``gpt_ls.text``; positions
follow the same LSP rules (``offset_at``, ``position_at``). A text with a ``\\r`` in it
(rare) answers positions from the joined string and ``LineIndex``, which handles every
kind of line ending.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate

from gpt_ls.text import Change, Encoding, LineIndex, Pos, eol_of, minimal_change, offset_in_line, units

#: The size (characters) blocks are cut to; a block is split when it grows past twice this.
BLOCK = 4096


def cut(text: str) -> list[str]:
    """``text`` as blocks of ``BLOCK`` to ``2 * BLOCK`` characters, each ending at a line break where there is one."""
    if len(text) <= 2 * BLOCK:
        return [text]
    blocks: list[str] = []
    start = 0
    while len(text) - start > 2 * BLOCK:
        found = text.find("\n", start + BLOCK, start + 2 * BLOCK)
        end = start + BLOCK if found < 0 else found + 1  # a very long line is cut inside
        blocks.append(text[start:end])
        start = end
    blocks.append(text[start:])
    return blocks


class Text:
    """An immutable text kept in blocks; ``replace`` returns a new one that shares the untouched blocks."""

    __slots__ = ("_blocks", "_breaks", "_cr", "_ends", "_joined", "_lines", "_sizes")

    def __init__(self, text: str = "", cut_now: bool = False) -> None:
        # Cut on first need (a small text that is never edited stays one string), or now:
        # an opened document is cut as it opens, not at the first keystroke.
        self._blocks: list[str] | None = None
        self._sizes: list[int] = []
        self._breaks: list[int] = []
        self._ends: list[int] = []
        self._lines: list[int] = []
        self._joined: str | None = text
        self._cr = "\r" in text
        if cut_now:
            self._cut()

    @classmethod
    def _of(cls, blocks: list[str], sizes: list[int], breaks: list[int], cr: bool) -> Text:
        new = cls.__new__(cls)
        new._set(blocks, sizes, breaks)
        new._joined = None
        new._cr = cr
        return new

    def _set(self, blocks: list[str], sizes: list[int], breaks: list[int]) -> None:
        self._blocks, self._sizes, self._breaks = blocks, sizes, breaks
        self._ends = list(accumulate(sizes))
        self._lines = list(accumulate(breaks))

    def _cut(self) -> list[str]:
        if self._blocks is None:
            blocks = cut(self._joined or "")
            self._set(blocks, [len(b) for b in blocks], [b.count("\n") for b in blocks])
            return blocks
        return self._blocks

    # -- as a string -------------------------------------------------------------
    def __str__(self) -> str:
        """The whole text (joined once, then kept until this value is dropped)."""
        if self._joined is None:
            self._joined = "".join(self._blocks or ())
        return self._joined

    def __len__(self) -> int:
        return len(self._joined) if self._joined is not None else self._ends[-1]

    def __getitem__(self, key: slice) -> str:
        """A slice (step 1) as a string, copying only the blocks it covers."""
        start, stop, step = key.indices(len(self))
        if step != 1:
            raise ValueError("Text slices take no step")
        if self._joined is not None:
            return self._joined[start:stop]
        if stop <= start:
            return ""
        blocks = self._cut()
        i, j = self._block(start), self._block(stop - 1)
        a, b = start - self._start(i), stop - self._start(j)
        if i == j:
            return blocks[i][a:b]
        return "".join([blocks[i][a:], *blocks[i + 1 : j], blocks[j][:b]])

    def __repr__(self) -> str:
        return f"Text({len(self)} characters)"

    # -- blocks ------------------------------------------------------------------
    def _block(self, offset: int) -> int:
        """The block that holds the character at ``offset`` (the last block for the end)."""
        return min(bisect_right(self._ends, offset), len(self._ends) - 1)

    def _start(self, i: int) -> int:
        return self._ends[i] - self._sizes[i]

    # -- editing -----------------------------------------------------------------
    def replace(self, a: int, b: int, new: str) -> Text:
        """This text with ``[a, b)`` replaced by ``new`` (offsets clamped, like slicing)."""
        n = len(self)
        a, b = max(0, min(a, n)), max(0, min(b, n))
        a, b = min(a, b), max(a, b)
        blocks = self._cut()
        i = self._block(a)
        j = max(i, min(bisect_left(self._ends, b), len(blocks) - 1))
        merged = blocks[i][: a - self._start(i)] + new + blocks[j][b - self._start(j) :]
        if len(merged) < BLOCK // 2 and j + 1 < len(blocks):  # keep blocks from shrinking to nothing
            j += 1
            merged += blocks[j]
        pieces = cut(merged) if merged or len(blocks) == j - i + 1 else []
        sizes = [len(p) for p in pieces]
        breaks = [p.count("\n") for p in pieces]
        return Text._of(blocks[:i] + pieces + blocks[j + 1 :], self._sizes[:i] + sizes + self._sizes[j + 1 :],
                        self._breaks[:i] + breaks + self._breaks[j + 1 :], self._cr or "\r" in new)

    def apply(self, start: Pos | None, end: Pos | None, new_text: str, encoding: Encoding) -> tuple[Text, Change]:
        """``gpt_ls.text.apply_change`` for a ``Text``: one ``didChange`` content change and where it happened."""
        if start is None or end is None:
            return Text(new_text), minimal_change(str(self), new_text)
        a = self.offset(start.line, start.character, encoding)
        b = a if end == start else self.offset(end.line, end.character, encoding)
        if b < a:
            a, b = b, a
        return self.replace(a, b, new_text), Change(a, b, new_text)

    # -- positions -----------------------------------------------------------------
    def _scan(self) -> bool:
        """Whether positions can come from the blocks (no ``\\r``: lines end at ``\\n`` only)."""
        if self._cr:
            return False
        self._cut()
        return True

    def _line_start(self, line: int) -> int:
        """Where ``line`` (1 <= line <= the number of line breaks) starts."""
        k = bisect_left(self._lines, line)  # the block with the line break that ends line - 1
        blocks = self._blocks or []
        at = -1
        for _ in range(line - (self._lines[k - 1] if k else 0)):
            at = blocks[k].find("\n", at + 1)
        return self._start(k) + at + 1

    def _line_end(self, offset: int) -> int:
        """Where the line holding ``offset`` ends (its line break, or the end of the text)."""
        blocks = self._blocks or []
        k = self._block(offset)
        local = offset - self._start(k)
        while k < len(blocks):
            found = blocks[k].find("\n", local)
            if found >= 0:
                return self._start(k) + found
            k, local = k + 1, 0
        return len(self)

    # -- lines: ``LineIndex``'s questions, so a ``Text`` can stand in for one -------------
    @property
    def eol(self) -> str:
        """The line ending: the first one found, else ``\n`` (``gpt_ls.text.eol_of``)."""
        return "\n" if not self._cr else eol_of(str(self))

    @property
    def line_count(self) -> int:
        if not self._scan():
            return LineIndex(str(self)).line_count
        return self._lines[-1] + 1

    def line_start(self, line: int) -> int:
        """Where ``line`` (0 <= line < line_count) starts."""
        return self.offset(line, 0, "utf-32")

    def line_end(self, line: int) -> int:
        """Where the content of ``line`` (0 <= line < line_count) ends."""
        if not self._scan():
            return LineIndex(str(self)).line_end(line)
        return self._line_end(self.line_start(line))

    def offset(self, line: int, character: int, encoding: Encoding = "utf-16") -> int:
        """The offset of an LSP position (``gpt_ls.text.offset_at``'s rules)."""
        if not self._scan():
            return LineIndex(str(self)).offset(line, character, encoding)
        if line < 0:
            return 0
        if line > self._lines[-1]:
            return len(self)
        start = self._line_start(line) if line else 0
        end = self._line_end(start)
        # Each character is at least one code unit: the line's first ``character`` characters suffice.
        head = self[start : min(end, start + max(character, 0))]
        return start + offset_in_line(head, 0, len(head), character, encoding)

    def position(self, offset: int, encoding: Encoding = "utf-16") -> Pos:
        """The LSP position of an offset (``gpt_ls.text.position_at``'s rules)."""
        if not self._scan():
            return LineIndex(str(self)).position(offset, encoding)
        blocks = self._blocks or []
        offset = max(0, min(offset, len(self)))
        k = self._block(offset)
        local = offset - self._start(k)
        line = (self._lines[k - 1] if k else 0) + blocks[k].count("\n", 0, local)
        start = 0
        found = blocks[k].rfind("\n", 0, local)
        if found >= 0:
            start = self._start(k) + found + 1
        else:
            for m in range(k - 1, -1, -1):
                found = blocks[m].rfind("\n")
                if found >= 0:
                    start = self._start(m) + found + 1
                    break
        return Pos(line, units(self[start:offset], encoding))
