"""Pure: ``@path``, ``@path:10-40`` and ``@search: query`` in a chat document's user section; ``@`` completion.

A mention starts with ``@`` at the start of a line or after white space (a path with
spaces is quoted: ``@"my notes.md":3-9``), outside code
(fenced blocks and inline code are left alone: ``@property`` in a code sample is code).
``@search: query`` runs to the end of its line. A file mention that names nothing in the
workspace becomes a note in the request (and a message), never a failure; so does a bad
range. The files themselves are read by the caller (confined to the workspace, bounded).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gpt_ls.index.context import HitLike, Source

#: Mentions taken from one message, at most.
MAX_MENTIONS = 20
#: Completion items offered at most, and entries a walk without an index looks at.
MAX_ITEMS = 200
WALK_LIMIT = 5_000
#: Folders a walk without an index never enters (besides hidden ones).
SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "venv", "target", "build", "dist"})

_MENTION = re.compile(
    r"(?<!\S)@(?:(?P<search>search:)[ \t]*(?P<query>[^\n]*)"
    r"|(?:\"(?P<quoted>[^\"\n]+)\"|(?P<path>[^\s`'\"<>()\[\]{}]+?))"
    r"(?::(?P<a>\d{1,9})(?:-(?P<b>\d{1,9}))?)?)(?=[\s.,;!?)\]]*(?:\s|$))"
)
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
#: Text before the cursor that is a file mention being typed: ``@`` and a path so far.
_TYPING = re.compile(r"(?:^|(?<=\s))@(?:\"(?P<quoted>[^\"\n]*)|(?P<prefix>[^\s`'\"<>()\[\]{}:]*))$")


@dataclass(frozen=True)
class Mention:
    """One mention as written: a file (with its lines, if given) or a search."""

    kind: Literal["file", "search"]
    target: str
    start: int | None = None
    end: int | None = None

    @property
    def written(self) -> str:
        if self.kind == "search":
            return f"@search: {self.target}"
        target = f'"{self.target}"' if any(ch.isspace() for ch in self.target) else self.target
        lines = "" if self.start is None else f":{self.start}"
        lines += "" if self.end in (None, self.start) else f"-{self.end}"
        return f"@{target}{lines}"


def find_mentions(text: str) -> list[Mention]:
    """The mentions in ``text`` (a user section), in order, each once, outside code."""
    found: list[Mention] = []
    fence = ""
    for line in text.splitlines():
        opened = _FENCE.match(line)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
            continue
        if opened:
            fence = opened.group(1)
            continue
        for m in _MENTION.finditer(_INLINE_CODE.sub(lambda c: " " * len(c.group(0)), line)):
            if m.group("search"):
                query = m.group("query").strip()
                mention = Mention("search", query) if query else None
            else:
                path = m.group("quoted") or m.group("path").rstrip(".,;!?")
                if not _looks_like_path(path):
                    continue
                a = int(m.group("a")) if m.group("a") else None
                mention = Mention("file", path, a, int(m.group("b")) if m.group("b") else a)
            if mention is not None and mention not in found:
                found.append(mention)
    return found[:MAX_MENTIONS]


def _looks_like_path(path: str) -> bool:
    """A mention of a file has a folder or an extension (``@someone`` is a person)."""
    return bool(path) and ("/" in path or "." in path.strip(".")) and not path.startswith(("/", "~"))


def file_source(mention: Mention, text: str | None, rank: int) -> tuple[Source | None, str | None]:
    """The lines a file mention brings (or None), and a note when something is wrong with it."""
    if text is None:
        return None, f"{mention.written}: there is no such file in the workspace."
    lines = text.splitlines(keepends=True)
    count = len(lines)
    if not count:
        return None, f"{mention.written}: the file is empty."
    start, end = mention.start or 1, mention.end or count
    if start < 1 or end < start or start > count:
        return None, (f"{mention.written}: the lines {start}-{end} are not in the file ({count} lines); "
                      f"write @{mention.target}:1-{count} or less.")
    note = None
    if end > count:
        note = f"{mention.written}: the file has {count} lines; lines {start}-{count} are included."
        end = count
    return Source(mention.target, start, end, "".join(lines[start - 1 : end]), rank), note


def search_sources(hits: Sequence[HitLike], rank: int) -> list[Source]:
    """Search hits as sources, ranked after ``rank``."""
    return [Source(h.chunk.path, h.chunk.start_line, h.chunk.end_line, h.chunk.text, rank + i, float(h.score))
            for i, h in enumerate(hits)]


def notes_text(notes: Sequence[str]) -> str:
    """The notes about mentions, as they go into the request."""
    return "".join(f"(gpt-ls note: {n})\n" for n in notes)


# -- completion --------------------------------------------------------------------------------
def typing_mention(line_before_cursor: str) -> str | None:
    """The path typed so far when the cursor is in a file mention (``""`` right after ``@``), else None."""
    m = _TYPING.search(line_before_cursor)
    if m is None:
        return None
    return m.group("quoted") if m.group("quoted") is not None else m.group("prefix")


def typed_quote(line_before_cursor: str) -> bool:
    """Whether the mention being typed opened a quote (``@"``)."""
    m = _TYPING.search(line_before_cursor)
    return m is not None and m.group("quoted") is not None


def insert_text(path: str, quoted: bool) -> str:
    """What completing ``path`` puts after ``@`` (replacing a ``"`` typed): quoted when it has white space."""
    if quoted:
        return f'"{path}"'
    return f'"{path}"' if any(ch.isspace() for ch in path) else path


def candidates(files: Iterable[str], prefix: str, limit: int = MAX_ITEMS) -> list[str]:
    """Files for a mention being typed: those starting with ``prefix`` first, then those containing it."""
    lowered = prefix.lower()
    starts, contains = [], []
    for path in files:
        low = path.lower()
        if low.startswith(lowered) or os.path.basename(low).startswith(lowered):
            starts.append(path)
        elif lowered in low:
            contains.append(path)
        if len(starts) >= limit:
            break
    return (starts + contains)[:limit]


def walk_files(root: Path, limit: int = WALK_LIMIT) -> list[str]:
    """Workspace files for completion when there is no index: a bounded walk, no symlink followed."""
    found: list[str] = []
    seen = 0
    stack = [root]
    while stack and seen < limit:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > limit:
                break
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIPPED_DIRS:
                    stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                found.append(Path(entry.path).relative_to(root).as_posix())
    return sorted(found)
