"""Where a streaming reply lives in a document while everyone edits it.

Editors answer ``workspace/applyEdit`` before (Neovim: 150 ms before) the matching
``didChange`` arrives, so our own edits are *pending* until their echo is seen; any
other change shifts the region, or breaks it when it touches the reply. A debounced
whole-document didChange may hold our echo and the user's typing together.
"""

from __future__ import annotations

import asyncio
from collections import deque

from gpt_ls.pieces import Text
from gpt_ls.text import Change, minimal_change

#: A document's text: a string, or the server's ``Text`` in pieces (both slice to strings).
AnyText = str | Text


class InsertionTracker:
    """The region ``[start, end)`` of the document that holds our reply.

    The region may end in text that stays *after* the insertion point: the line break a
    reply inserted below a line opens first (``after`` characters), so that the reply
    streams into a line of its own instead of being glued onto the next one.
    """

    def __init__(self, start: int) -> None:
        self.start = start
        self.end = start
        #: How many characters at the end of the region follow the insertion point.
        self.after = 0
        #: Texts we inserted at the insertion point that the editor applied but has not echoed yet.
        self.pending: deque[str] = deque()
        #: Whether each pending insertion carried a document version.
        self._versioned: deque[bool] = deque()
        #: How many characters at the end of each pending insertion stay after the insertion point.
        self._after: deque[int] = deque()
        #: Text of versioned insertions the editor discarded after saying "applied".
        self._dropped = ""
        #: Why the region can no longer be written to, or None.
        self.broken: str | None = None
        self.settled = asyncio.Event()
        self.settled.set()

    @property
    def point(self) -> int:
        """The insertion point in the text the editor has echoed."""
        return self.end - self.after

    @property
    def opened(self) -> bool:
        """Whether the reply's own line break is in the document (or on its way there)."""
        return self.after > 0 or any(self._after)

    def sent(self, text: str, versioned: bool = False, after: int = 0) -> None:
        """We are about to insert ``text`` at the insertion point (its last ``after`` characters stay after it)."""
        self.pending.append(text)
        self._versioned.append(versioned)
        self._after.append(after)
        self.settled.clear()

    def rejected(self, text: str, after: int = 0) -> None:
        """The last insertion, of ``text``, did not happen."""
        head = text[: len(text) - after]
        if self.pending and self.pending[-1] == text:
            self.pending.pop()
            self._versioned.pop()
            self._after.pop()
        elif self._dropped.endswith(head):  # already given up on by on_change
            self._dropped = self._dropped[: len(self._dropped) - len(head)]
        if not self.pending:
            self.settled.set()

    def take_dropped(self) -> str:
        """Text to send again: versioned insertions the editor silently discarded."""
        dropped, self._dropped = self._dropped, ""
        return dropped

    def _split(self, count: int) -> tuple[str, str]:
        """The first ``count`` pending insertions as the text before the insertion point and after it."""
        heads: list[str] = []
        tails: list[str] = []
        for text, after in list(zip(self.pending, self._after, strict=True))[:count]:
            heads.append(text[: len(text) - after])
            tails.insert(0, text[len(text) - after :])
        return "".join(heads), "".join(tails)

    def insert_offset(self) -> int:
        """Where the next insertion goes, in the editor's (virtual) text."""
        return self.point + sum(len(p) - a for p, a in zip(self.pending, self._after, strict=True))

    def _with_pending(self, text: AnyText, count: int) -> str:
        heads, tails = self._split(count)
        return text[: self.point] + heads + tails + text[self.point :]

    def _echoes(self, count: int, change: Change, old: AnyText, new: AnyText) -> bool:
        """Whether ``new == self._with_pending(old, count)``, compared only where the two can differ.

        ``new`` is ``old`` with ``change`` applied, so both strings agree before the change
        and the insertion point, and after both: comparing the window between costs nothing
        like building and comparing the whole document (2.4 MB per echo for 10,000 lines).
        """
        heads, tails = self._split(count)
        ours, point = heads + tails, self.point
        if len(new) - len(old) != len(ours):
            return False
        if len(old) - (change.end - change.start) + len(change.text) != len(new):
            return str(new) == self._with_pending(old, count)  # not the change that made ``new``
        lo, hi = min(change.start, point), max(change.start + len(change.text), point + len(ours))
        return new[lo:hi] == old[lo:point] + ours + old[point : hi - len(ours)]

    def virtual(self, text: Text) -> Text:
        """The document as the editor has it: ours plus the pending insertions."""
        if not self.pending:
            return text
        heads, tails = self._split(len(self.pending))
        return text.replace(self.point, self.point, heads + tails)

    def _echoed(self, count: int) -> None:
        """The editor echoed our first ``count`` pending insertions."""
        for _ in range(count):
            self.end += len(self.pending.popleft())
            self._versioned.popleft()
            self.after += self._after.popleft()
        if not self.pending:
            self.settled.set()

    @staticmethod
    def _moved(start: int, end: int, change: Change, before: AnyText) -> tuple[int, int] | None:
        """The region ``[start, end)`` of ``before`` after ``change``; None when the change touched it.

        A change around the region (one whole-document didChange for typing above and
        below it) leaves it in place when its text appears, once and untouched, in what
        the change put there.
        """
        a, b = change.start, change.end
        if a == b and not change.text:
            return start, end
        if b <= start:
            delta = len(change.text) - (b - a)
            # Entirely before the reply (an insertion at its very start counts as before).
            return start + delta, end + delta
        if a >= end:
            return start, end
        region = before[start:end]
        at = change.text.find(region) if region else -1
        if at < 0 or change.text.find(region, at + 1) >= 0:
            return None
        return a + at, a + at + len(region)

    def on_change(self, change: Change, old: AnyText, new: AnyText) -> None:
        """Follow one content change of the document (ours or the user's)."""
        if self.pending:
            for count in range(1, len(self.pending) + 1):
                if self._echoes(count, change, old, new):
                    self._echoed(count)
                    return
            if change.start <= self.point <= change.end:
                # Our insertions and other edits in one change (a debounced whole-document didChange).
                for count in range(1, len(self.pending) + 1):
                    ours = self._with_pending(old, count)
                    change = minimal_change(ours, str(new))
                    moved = self._moved(self.start, self.end + len(ours) - len(old), change, ours)
                    if moved is not None:
                        self._echoed(count)
                        self.start, self.end = moved
                        return
            if all(self._versioned):
                # Another change came first: the editor's buffer was newer than our
                # versioned edits, so it discarded them (Neovim does so silently).
                self._dropped += self._split(len(self.pending))[0]
                self.pending.clear()
                self._versioned.clear()
                self._after.clear()
                self.settled.set()
        moved = self._moved(self.start, self.end, change, old)
        if moved is None:
            self.broken = "the reply's text was edited while it streamed"
            self.settled.set()
        else:
            self.start, self.end = moved
