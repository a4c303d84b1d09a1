"""Turning a model stream into coalesced, version-safe document edits.

Three parts, from pure to effectful:

* ``Coalescer`` gathers deltas and releases them a few times a second, with the
  document's line endings.
* ``InsertionTracker`` knows where the reply lives in the document while everyone
  edits it. Editors answer ``workspace/applyEdit`` before (Neovim: 150 ms before) the
  matching ``didChange`` arrives, so our own edits are *pending* until their echo is
  seen; any other change shifts the region, or breaks it when it touches the reply.
* ``DocumentSink`` drives the two against a ``SinkTarget`` (the editor port, through
  ``delivery``; a simulated editor in unit tests): one edit in flight at a time, the next one computed
  against the document as the editor has it. When an edit cannot land, streaming into
  the document stops and the caller shows the whole reply another way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gpt_ls.text import Change, Encoding, Pos, minimal_change, position_at

log = logging.getLogger(__name__)


def normalize_eol(text: str, eol: str) -> str:
    """Convert any line endings in ``text`` to ``eol``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if eol == "\n" else text.replace("\n", eol)


class Coalescer:
    """Collects deltas; hands them out at most once per ``interval`` seconds."""

    def __init__(self, eol: str = "\n", interval: float = 0.2) -> None:
        self.eol = eol
        self.interval = interval
        self._parts: list[str] = []
        self._last = 0.0

    def feed(self, delta: str) -> None:
        """Add text from the model."""
        if delta:
            self._parts.append(delta)

    @property
    def empty(self) -> bool:
        return not any(self._parts)

    def due(self, now: float) -> bool:
        """Is there text, and has the interval passed since the last release?"""
        return not self.empty and now - self._last >= self.interval

    def wait_time(self, now: float) -> float:
        """Seconds until the next release may happen."""
        return max(0.0, self._last + self.interval - now)

    def take(self, now: float, final: bool = False) -> str:
        """Release the gathered text (a trailing ``\\r`` waits for a possible ``\\n``)."""
        raw = "".join(self._parts)
        self._parts = []
        if raw.endswith("\r") and not final:
            raw, self._parts = raw[:-1], ["\r"]
        self._last = now
        return normalize_eol(raw, self.eol)


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

    def _with_pending(self, text: str, count: int) -> str:
        heads, tails = self._split(count)
        return text[: self.point] + heads + tails + text[self.point :]

    def virtual(self, text: str) -> str:
        """The document as the editor has it: ours plus the pending insertions."""
        if not self.pending:
            return text
        return self._with_pending(text, len(self.pending))

    def _echoed(self, count: int) -> None:
        """The editor echoed our first ``count`` pending insertions."""
        for _ in range(count):
            self.end += len(self.pending.popleft())
            self._versioned.popleft()
            self.after += self._after.popleft()
        if not self.pending:
            self.settled.set()

    @staticmethod
    def _moved(start: int, end: int, change: Change, before: str) -> tuple[int, int] | None:
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

    def on_change(self, change: Change, old: str, new: str) -> None:
        """Follow one content change of the document (ours or the user's)."""
        if self.pending:
            for count in range(1, len(self.pending) + 1):
                added = sum(len(p) for p in list(self.pending)[:count])
                if len(new) - len(old) == added and new == self._with_pending(old, count):
                    self._echoed(count)
                    return
            if change.start <= self.point <= change.end:
                # Our insertions and other edits in one change (a debounced whole-document didChange).
                for count in range(1, len(self.pending) + 1):
                    ours = self._with_pending(old, count)
                    moved = self._moved(self.start, self.end + len(ours) - len(old), minimal_change(ours, new), ours)
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


class SinkTarget(Protocol):
    """What a sink needs from the editor."""

    @property
    def encoding(self) -> Encoding:
        """The negotiated position encoding."""

    @property
    def versioned(self) -> bool:
        """Whether edits carry the document version."""

    def document(self, uri: str) -> tuple[str, int | None] | None:
        """The current text and version of an open document, or None once it is closed."""

    async def apply_insert(self, uri: str, version: int | None, at: Pos, text: str) -> bool:
        """Ask the editor to insert ``text`` at ``at``; True if it applied the edit."""


@dataclass
class SinkReport:
    """What happened to the streamed text."""

    inserted: str = ""
    edits: int = 0
    complete_in_document: bool = True
    reason: str | None = None


class DocumentSink:
    """Streams text into one document at a tracked insertion point."""

    def __init__(
        self,
        port: SinkTarget,
        uri: str,
        tracker: InsertionTracker,
        eol: str = "\n",
        prefix: str = "",
        final_eol: bool = True,
        open_line: bool = False,
        interval: float = 0.2,
        echo_timeout: float = 1.0,
        retries: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port = port
        self.uri = uri
        self.tracker = tracker
        self.eol = eol
        self.prefix = normalize_eol(prefix, eol)
        self.final_eol = final_eol
        #: Insert at the start of an existing line: the first edit opens the reply's own
        #: line (its text and a line break), later ones go before that line break.
        self.open_line = open_line
        self.coalescer = Coalescer(eol, interval)
        self.echo_timeout = echo_timeout
        self.retries = retries
        self.clock = clock
        self.report = SinkReport()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._tail = ""
        self._prefixed = False
        #: A line break at the end of the text so far, held back (``open_line``).
        self._held = ""

    def start(self) -> None:
        """Start the writer task."""
        self._task = asyncio.create_task(self._writer(), name=f"gpt-ls sink {self.uri}")

    def write(self, delta: str) -> None:
        """Queue text from the model (never blocks)."""
        self.coalescer.feed(delta)
        self._wake.set()

    @property
    def failed(self) -> bool:
        return not self.report.complete_in_document

    async def close(self, suffix: str = "") -> SinkReport:
        """Flush everything, add ``suffix`` and a final line ending; return the report."""
        self.coalescer.feed(suffix)
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        return self.report

    async def _writer(self) -> None:
        try:
            while True:
                if self._closing:
                    await self._flush(final=True)
                    return
                now = self.clock()
                if self.coalescer.due(now):
                    await self._flush(final=False)
                    continue
                self._wake.clear()
                timeout = self.coalescer.wait_time(now) if not self.coalescer.empty else None
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not lose the reply
            log.exception("streaming into %s failed", self.uri)
            self._fail(f"internal error: {exc}")

    def _fail(self, reason: str) -> None:
        if self.report.complete_in_document:
            self.report.complete_in_document = False
            self.report.reason = reason

    def _hold_line_break(self, text: str, final: bool) -> tuple[str, bool]:
        """With ``open_line``: hold back a trailing line break until more text follows.

        The reply's own line already ends in a line break, so a reply ending in one
        gets no second one: the document ends up exactly as if the reply, with its
        final line ending, had been inserted at once. Also returns whether the line must
        be opened even without text (a reply that is only a line break).
        """
        text, self._held = self._held + text, ""
        if text.endswith(self.eol):
            text, self._held = text[: len(text) - len(self.eol)], self.eol
        if final:
            held, self._held = bool(self._held), ""
            return text, held
        return text, False

    async def _flush(self, final: bool) -> None:
        text = self.coalescer.take(self.clock(), final=final)
        if text and not self._prefixed:
            text, self._prefixed = self.prefix + text, True
        must_open = False
        if self.open_line:
            text, must_open = self._hold_line_break(text, final)
        elif final and self.final_eol and (self._tail or text) and not (self._tail + text).endswith(self.eol):
            text += self.eol
        self._tail = (self._tail + text)[-4:]
        failures = 0
        while not self.failed:
            await self._settle()
            if self.tracker.broken:
                self._fail(self.tracker.broken)
                return
            dropped = self.tracker.take_dropped()
            if dropped:
                # A versioned edit the editor discarded after all (its buffer was newer).
                self.report.inserted = self.report.inserted[: len(self.report.inserted) - len(dropped)]
                text = dropped + text
                failures += 1
            opens = self.open_line and not self.tracker.opened and (bool(text) or must_open)
            if not text and not opens:
                if final and self.open_line and self.tracker.opened:
                    self.report.inserted += self.eol  # the reply's own line break ends it
                return
            if failures > self.retries:
                self._fail("the editor did not apply the reply's edits")
                return
            after = len(self.eol) if opens else 0
            if await self._send(text + self.eol * opens, after):
                self.report.inserted += text
                self.report.edits += 1
                text, must_open = "", False
                if not final:
                    return
                continue  # the last edit: wait for its echo, in case it was discarded
            failures += 1
            # Most often the editor has changes we have not seen yet: let them arrive.
            await asyncio.sleep(0.3)

    async def _settle(self) -> None:
        """Wait until the editor has echoed our previous edit (or a while)."""
        if self.tracker.pending:
            try:
                await asyncio.wait_for(self.tracker.settled.wait(), self.echo_timeout)
            except asyncio.TimeoutError:
                log.debug("no didChange echo for our edit within %ss", self.echo_timeout)

    async def _send(self, text: str, after: int = 0) -> bool:
        """One insertion at the tracked point, against the document as the editor has it."""
        current = self.port.document(self.uri)
        if current is None:
            self._fail("the document was closed while the reply streamed")
            return False
        source, version = current
        virtual = self.tracker.virtual(source)
        if self.tracker.pending:
            version = None  # we cannot know the editor's version: send unversioned
        at = position_at(virtual, self.tracker.insert_offset(), self.port.encoding)
        versioned = self.port.versioned and version is not None
        self.tracker.sent(text, versioned=versioned, after=after)
        ok = await self.port.apply_insert(self.uri, version if versioned else None, at, text)
        if not ok:
            self.tracker.rejected(text, after)
        return ok
