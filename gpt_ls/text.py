"""LSP positions and offsets, exactly as the protocol defines them.

LSP lines end only at ``\\n``, ``\\r\\n`` or ``\\r``, and a position's ``character``
counts code units of the negotiated encoding (UTF-16 by default). Python's
``str.splitlines`` also splits at ``\\x0b``, ``\\x1c``, U+2028 and others, so the
document model here does its own line splitting; offsets are indexes into the
Python string (code points).

Out-of-range positions are clamped, never an exception: a line past the end means
the end of the text, a character past the end of its line means the end of that
line, and a position inside a surrogate pair or a multi-byte sequence rounds down to
the start of that character.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["utf-8", "utf-16", "utf-32"]

_EOL = re.compile(r"\r\n|\r|\n")


def units(text: str, encoding: Encoding) -> int:
    """The length of ``text`` in code units of ``encoding``."""
    if encoding == "utf-32":
        return len(text)
    if text.isascii():
        return len(text)
    if encoding == "utf-16":
        return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)
    return len(text.encode("utf-8", "surrogatepass"))


def _char_units(ch: str, encoding: Encoding) -> int:
    o = ord(ch)
    if encoding == "utf-32":
        return 1
    if encoding == "utf-16":
        return 2 if o > 0xFFFF else 1
    if o < 0x80:
        return 1
    if o < 0x800:
        return 2
    if o < 0x10000:
        return 3
    return 4


def eol_of(text: str) -> str:
    """The document's line ending: the first one found, else ``\\n``."""
    m = _EOL.search(text)
    return m.group(0) if m else "\n"


@dataclass(frozen=True)
class Pos:
    """A position in client units (line, character)."""

    line: int
    character: int


def offset_in_line(text: str, start: int, end: int, character: int, encoding: Encoding) -> int:
    """The offset of ``character`` in the line ``text[start:end]`` (clamped, rounded down)."""
    if character <= 0:
        return start
    if encoding == "utf-32" or text[start:end].isascii():
        return min(start + character, end)
    count = 0
    for i in range(start, end):
        count += _char_units(text[i], encoding)
        if count > character:
            return i
        if count == character:
            return i + 1
    return end


#: Patterns that pass 4096, 256, 16 or 1 lines (``\n`` only) in C, compiled once.
_PAST_LINES = [(n, re.compile(f"(?:[^\n]*\n){{{n}}}")) for n in (4096, 256, 16, 1)]


def _skip_lines(text: str, line: int) -> int:
    """Where ``line`` starts in a text whose lines end in ``\n`` only (the end of the text past its last line)."""
    pos = 0
    for n, pattern in _PAST_LINES:
        while line >= n:
            found = pattern.match(text, pos)
            if found is None:
                return len(text)
            pos, line = found.end(), line - n
    return pos


class LineIndex:
    """Position <-> offset conversion for one text.

    Without ``\r`` (the usual case) each answer comes from C-level scans of the text
    (``count``, ``rfind``, one counted regex), not from a table of every line: an action
    on a 10,000-line document needs a handful of positions, and that table costs
    milliseconds of the event loop. ``starts`` and ``ends`` (every line) are built on first
    use, and always when the text has a ``\r``.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._table: tuple[list[int], list[int]] | None = None
        self._scan = "\r" not in text

    def _lines(self) -> tuple[list[int], list[int]]:
        if self._table is None:
            starts = [0]
            # Each line's content ends where its line ending starts.
            ends: list[int] = []
            for m in _EOL.finditer(self.text):
                ends.append(m.start())
                starts.append(m.end())
            ends.append(len(self.text))
            self._table = (starts, ends)
        return self._table

    @property
    def starts(self) -> list[int]:
        """Where each line starts."""
        return self._lines()[0]

    @property
    def ends(self) -> list[int]:
        """Where each line's content ends (its line ending starts)."""
        return self._lines()[1]

    @functools.cached_property
    def line_count(self) -> int:
        return self.text.count("\n") + 1 if self._scan else len(self.starts)

    def line_start(self, line: int) -> int:
        """Where ``line`` (0 <= line < line_count) starts."""
        if not self._scan or self._table is not None:
            return self.starts[line]
        return _skip_lines(self.text, line)

    def line_end(self, line: int) -> int:
        """Where the content of ``line`` (0 <= line < line_count) ends."""
        if not self._scan or self._table is not None:
            return self.ends[line]
        end = self.text.find("\n", self.line_start(line))
        return len(self.text) if end < 0 else end

    def line_text(self, line: int) -> str:
        """The text of ``line`` without its line ending."""
        return self.text[self.line_start(line) : self.line_end(line)]

    def offset(self, line: int, character: int, encoding: Encoding) -> int:
        """The string offset of a client position (clamped)."""
        if line < 0:
            return 0
        if line >= self.line_count:
            return len(self.text)
        return offset_in_line(self.text, self.line_start(line), self.line_end(line), character, encoding)

    def position(self, offset: int, encoding: Encoding) -> Pos:
        """The client position of a string offset (clamped to the text)."""
        offset = max(0, min(offset, len(self.text)))
        if self._scan and self._table is None:
            start = self.text.rfind("\n", 0, offset) + 1
            return Pos(self.text.count("\n", 0, offset), units(self.text[start:offset], encoding))
        line = bisect_right(self.starts, offset) - 1
        start = self.starts[line]
        # An offset inside a line ending belongs to the end of that line.
        offset = min(offset, self.ends[line])
        return Pos(line, units(self.text[start:offset], encoding))


# One position in a large document is found with C-level string scans, not a LineIndex
# of every line: didChange and each streamed edit need one or two positions, and a
# 10,000-line LineIndex costs milliseconds of the event loop every time.
def offset_at(text: str, line: int, character: int, encoding: Encoding = "utf-16") -> int:
    """The offset of one position in ``text`` (same rules as ``LineIndex.offset``)."""
    if "\r" in text:
        return LineIndex(text).offset(line, character, encoding)
    if line < 0:
        return 0
    if line <= 100:  # a find per line, copying nothing
        start = 0
        for _ in range(line):
            start = text.find("\n", start) + 1
            if start == 0:
                return len(text)
    else:  # one counted regex, in C, copying nothing
        start = LineIndex(text).line_start(line)  # the end of the text for a line past the end
    end = text.find("\n", start)
    return offset_in_line(text, start, len(text) if end < 0 else end, character, encoding)


def position_at(text: str, offset: int, encoding: Encoding = "utf-16") -> Pos:
    """The position of one offset in ``text`` (same rules as ``LineIndex.position``)."""
    if "\r" in text:
        return LineIndex(text).position(offset, encoding)
    offset = max(0, min(offset, len(text)))
    start = text.rfind("\n", 0, offset) + 1
    return Pos(text.count("\n", 0, offset), units(text[start:offset], encoding))


@dataclass(frozen=True)
class Change:
    """One applied content change, in offsets of the text *before* it."""

    start: int
    end: int
    text: str


def apply_change(
    text: str,
    start: Pos | None,
    end: Pos | None,
    new_text: str,
    encoding: Encoding,
) -> tuple[str, Change]:
    """Apply one ``didChange`` content change; ``start is None`` means a whole-document change.

    A whole-document change is reported as the smallest ranged change that has the same
    effect, so that whoever follows the document (the reply's insertion point, hovers)
    sees the user's typing where it happened, whatever kind of change the editor sends.
    """
    if start is None or end is None:
        return new_text, minimal_change(text, new_text)
    a = offset_at(text, start.line, start.character, encoding)
    b = a if end == start else offset_at(text, end.line, end.character, encoding)
    if b < a:
        a, b = b, a
    return text[:a] + new_text + text[b:], Change(a, b, new_text)


def _common_prefix(a: str, b: str, limit: int) -> int:
    """The length of the common prefix of ``a`` and ``b``, at most ``limit``.

    A binary search over slice comparisons: each comparison runs in C, so a megabyte
    document costs about twenty of them instead of a Python loop over every character.
    """
    if a[:limit] == b[:limit]:
        return limit
    lo, hi = 0, limit  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def minimal_change(old: str, new: str) -> Change:
    """The smallest ranged change that turns ``old`` into ``new`` (common prefix and suffix kept).

    An insertion inside a run of equal characters is placed at the run's end (the prefix
    is as long as it can be).
    """
    limit = min(len(old), len(new))
    prefix = _common_prefix(old, new, limit)
    rest = limit - prefix
    # The common suffix of what follows the prefix, found the same way on reversed strings.
    suffix = _common_prefix(old[prefix:][::-1], new[prefix:][::-1], rest)
    return Change(prefix, len(old) - suffix, new[prefix : len(new) - suffix])


def valid_unicode(text: str) -> str:
    """``text`` as UTF-8 can carry it: a lone surrogate (JSON allows ``\\ud800``) becomes U+FFFD."""
    if text.isascii():
        return text
    try:  # only a surrogate stops UTF-8 (a C pass: 0.2 ms for 10,000 lines, where a regex takes 1 ms)
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text  # the same object: a 10,000-line document is not copied (2 MB, and 3 MB transient)
