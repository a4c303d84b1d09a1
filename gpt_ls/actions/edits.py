"""Turning a model stream into coalesced, version-safe document edits.

Three parts, from pure to effectful:

* ``Coalescer`` gathers deltas and releases them a few times a second, with the
  document's line endings.
* ``InsertionTracker`` (in ``insertion``) knows where the reply lives in the document
  while everyone edits it.
* ``DocumentSink`` drives the two against a ``SinkTarget`` (the editor port, through
  ``delivery``; a simulated editor in unit tests): one edit in flight at a time, the next one computed
  against the document as the editor has it. When an edit cannot land, streaming into
  the document stops and the caller shows the whole reply another way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gpt_ls.actions.insertion import InsertionTracker
from gpt_ls.pieces import Text
from gpt_ls.text import Encoding, Pos

log = logging.getLogger(__name__)


def normalize_eol(text: str, eol: str) -> str:
    """Convert any line endings in ``text`` to ``eol``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if eol == "\n" else text.replace("\n", eol)


#: Seconds between streamed edits into an ordinary document.
EDIT_INTERVAL = 0.2
#: Above this many characters, edits are spaced out in proportion to the document's size...
LARGE_DOCUMENT = 200_000
#: ...up to this many seconds apart.
MAX_EDIT_INTERVAL = 0.5


def edit_interval(chars: int) -> float:
    """Seconds between streamed edits into a document of ``chars`` characters.

    Each edit is an ``applyEdit`` round trip and a ``didChange`` echo that the editor and the
    server handle while they answer nothing else, and an editor's own work per edit grows with
    the document. (When this was measured, both sides also copied the whole text per edit,
    1-4 ms each for 10,000 lines of mixed scripts; the server and the simulated editor now keep
    it in pieces, ``gpt_ls/pieces.py``.) A very large document gets fewer, larger edits: 0.2 s
    apart up to 200,000 characters, then in proportion, at most 0.5 s.
    """
    return min(MAX_EDIT_INTERVAL, EDIT_INTERVAL * max(1.0, chars / LARGE_DOCUMENT))


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


class SinkTarget(Protocol):
    """What a sink needs from the editor."""

    @property
    def encoding(self) -> Encoding:
        """The negotiated position encoding."""

    @property
    def versioned(self) -> bool:
        """Whether edits carry the document version."""

    def document(self, uri: str) -> tuple[Text, int | None] | None:
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
        at = virtual.position(self.tracker.insert_offset(), self.port.encoding)
        versioned = self.port.versioned and version is not None
        self.tracker.sent(text, versioned=versioned, after=after)
        ok = await self.port.apply_insert(self.uri, version if versioned else None, at, text)
        if not ok:
            self.tracker.rejected(text, after)
        return ok
