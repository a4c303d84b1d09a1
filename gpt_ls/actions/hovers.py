"""Ranges that follow the text through edits, and the replies shown as hover over them."""

from __future__ import annotations

from dataclasses import dataclass

from gpt_ls.text import Change, Encoding, LineIndex, Pos

#: Hover replies kept per document (the latest win).
HOVERS_PER_DOCUMENT = 20


@dataclass
class TrackedRange:
    """A range of offsets that stays over the same text as the document changes."""

    start: int
    end: int
    markdown: str = ""

    def on_change(self, change: Change) -> None:
        """Follow one change of the document."""
        delta = len(change.text) - (change.end - change.start)
        if change.end <= self.start:
            self.start += delta
            self.end += delta
        elif change.start < self.end:
            self.end = max(self.start, self.end + delta)


@dataclass(frozen=True)
class HoverReply:
    """The hover to show: Markdown over a range (positions in the negotiated encoding)."""

    markdown: str
    start: Pos
    end: Pos


class Hovers:
    """Per document: the replies shown as hover, and the ranges that replies will replace."""

    def __init__(self) -> None:
        self.notes: dict[str, list[TrackedRange]] = {}
        self.anchors: dict[str, list[TrackedRange]] = {}

    def add(self, uri: str, note: TrackedRange) -> None:
        notes = self.notes.setdefault(uri, [])
        notes.append(note)
        del notes[:-HOVERS_PER_DOCUMENT]

    def anchor(self, uri: str, start: int, end: int) -> TrackedRange:
        """A range to follow until :meth:`release` (the selection a reply replaces)."""
        anchor = TrackedRange(start, end)
        self.anchors.setdefault(uri, []).append(anchor)
        return anchor

    def release(self, uri: str, anchor: TrackedRange) -> None:
        if anchor in self.anchors.get(uri, []):
            self.anchors[uri].remove(anchor)

    def on_change(self, uri: str, change: Change) -> None:
        for note in (*self.notes.get(uri, []), *self.anchors.get(uri, [])):
            note.on_change(change)

    def forget(self, uri: str) -> None:
        """A closed document has no hovers."""
        self.notes.pop(uri, None)

    def at(self, uri: str, text: str, position: Pos, encoding: Encoding) -> HoverReply | None:
        """The latest hover whose range holds ``position`` (in ``text``, the document now)."""
        notes = self.notes.get(uri)
        if not notes:
            return None
        index = LineIndex(text)
        offset = index.offset(position.line, position.character, encoding)
        for note in reversed(notes):
            if note.start <= offset <= note.end:
                start, end = index.position(note.start, encoding), index.position(note.end, encoding)
                return HoverReply(note.markdown, start, end)
        return None
