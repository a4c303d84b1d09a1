"""Turning a model stream into coalesced, version-safe document edits.

Three parts, from pure to effectful:

* ``Coalescer`` gathers deltas and releases them a few times a second, with the
  document's line endings.
* ``InsertionTracker`` knows where the reply lives in the document while everyone
  edits it. Editors answer ``workspace/applyEdit`` before (Neovim: 150 ms before) the
  matching ``didChange`` arrives, so our own edits are *pending* until their echo is
  seen; any other change shifts the region, or breaks it when it touches the reply.
* ``DocumentSink`` drives the two against an ``EditorPort`` (the LSP connection in the
  server, a fake in unit tests): one edit in flight at a time, the next one computed
  against the document as the editor has it. When an edit cannot land, streaming into
  the document stops and the caller shows the whole reply another way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from gpt_ls.text import Change, Encoding, LineIndex, Pos

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
    """The region ``[start, end)`` of the document that holds our reply."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.end = start
        #: Texts we inserted at ``end`` that the editor applied but has not echoed yet.
        self.pending: deque[str] = deque()
        #: Why the region can no longer be written to, or None.
        self.broken: str | None = None
        self.settled = asyncio.Event()
        self.settled.set()

    def sent(self, text: str) -> None:
        """We are about to insert ``text`` at the end of the region."""
        self.pending.append(text)
        self.settled.clear()

    def rejected(self) -> None:
        """The last insertion did not happen."""
        if self.pending:
            self.pending.pop()
        if not self.pending:
            self.settled.set()

    def insert_offset(self) -> int:
        """Where the next insertion goes, in the editor's (virtual) text."""
        return self.end + sum(len(p) for p in self.pending)

    def virtual(self, text: str) -> str:
        """The document as the editor has it: ours plus the pending insertions."""
        if not self.pending:
            return text
        return text[: self.end] + "".join(self.pending) + text[self.end :]

    def on_change(self, change: Change, old: str, new: str) -> None:
        """Follow one content change of the document (ours or the user's)."""
        if self.pending:
            first = self.pending[0]
            if len(new) - len(old) == len(first) and new == old[: self.end] + first + old[self.end :]:
                self.pending.popleft()
                self.end += len(first)
                if not self.pending:
                    self.settled.set()
                return
        a, b = change.start, change.end
        delta = len(change.text) - (b - a)
        if b <= self.start:
            # Entirely before the reply (an insertion at its very start counts as before).
            self.start += delta
            self.end += delta
        elif a >= self.end:
            return
        else:
            self.broken = "the reply's text was edited while it streamed"
            self.settled.set()


class EditorPort(Protocol):
    """What a sink needs from the editor connection."""

    encoding: Encoding
    versioned: bool

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
    timestamps: list[float] = field(default_factory=list)


class DocumentSink:
    """Streams text into one document at a tracked insertion point."""

    def __init__(
        self,
        port: EditorPort,
        uri: str,
        tracker: InsertionTracker,
        eol: str = "\n",
        prefix: str = "",
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
        self.coalescer = Coalescer(eol, interval)
        self.echo_timeout = echo_timeout
        self.retries = retries
        self.clock = clock
        self.report = SinkReport()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._written_tail = ""

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

    async def _flush(self, final: bool) -> None:
        text = self.coalescer.take(self.clock(), final=final)
        if final and (self.report.inserted or text):
            if not (self._written_tail + text).endswith(self.eol):
                text += self.eol
        if not text or self.failed:
            return
        if not self.report.inserted and self.prefix:
            text = self.prefix + text
        for _attempt in range(self.retries + 1):
            if self.tracker.broken:
                self._fail(self.tracker.broken)
                return
            if self.tracker.pending:
                try:
                    await asyncio.wait_for(self.tracker.settled.wait(), self.echo_timeout)
                except asyncio.TimeoutError:
                    log.debug("no didChange echo for our edit within %ss", self.echo_timeout)
            if self.tracker.broken:
                self._fail(self.tracker.broken)
                return
            current = self.port.document(self.uri)
            if current is None:
                self._fail("the document was closed while the reply streamed")
                return
            source, version = current
            virtual = self.tracker.virtual(source)
            if self.tracker.pending:
                version = None  # we cannot know the editor's version: send unversioned
            at = LineIndex(virtual).position(self.tracker.insert_offset(), self.port.encoding)
            self.tracker.sent(text)
            ok = await self.port.apply_insert(self.uri, version if self.port.versioned else None, at, text)
            if ok:
                self.report.inserted += text
                self.report.edits += 1
                self.report.timestamps.append(self.clock())
                self._written_tail = (self._written_tail + text)[-4:]
                return
            self.tracker.rejected()
            # Most often the editor has changes we have not seen yet: let them arrive.
            await asyncio.sleep(0.3)
        self._fail("the editor did not apply the reply's edits")


async def apply_or_false(call: Awaitable[bool], timeout: float) -> bool:
    """Await an edit request, treating a timeout or error as "not applied"."""
    try:
        return await asyncio.wait_for(call, timeout)
    except asyncio.TimeoutError:
        log.warning("the editor did not answer workspace/applyEdit within %ss", timeout)
        return False
    except Exception as exc:
        log.warning("workspace/applyEdit failed: %s", exc)
        return False
