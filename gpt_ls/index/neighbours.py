"""Pure: the selection's file and its neighbours as excerpts, merged with the question's hits under one budget.

"Ask about the workspace" sends, besides the best chunks for the question:

1. **the selection's own file**: its live text (unsaved edits included) cut by the index's
   chunker (``chunks.chunk_text``; a text over ``WHOLE_TEXT_CHARS`` only in a window of
   ``WINDOW_CHARS`` around the selection): the chunks holding the selection (its
   enclosing definition or section, at most ``MAX_ENCLOSING``), then ``AROUND`` chunk(s)
   just before and after them. The lines already sent as the excerpt around the selection
   are cut out of them (a chunk may become its head and its tail), so nothing goes twice;
2. **its neighbours**: the workspace files it imports and its test or counterpart
   (``index.imports.neighbours``, at most ``MAX_NEIGHBOURS``), ``PER_NEIGHBOUR`` chunks of
   each: the ones the index's search restricted to that file ranks best for the question
   and the names imported from it, or its first ones when nothing matches.

**Budget and order** (``merge``): these *local* excerpts are fitted first, by priority (the
chunks holding the selection, what the user points at; the best chunk of each neighbour;
the chunks beside the selection's; the neighbours' next ones), into at most ``LOCAL_SHARE``
percent of the chunk budget; the question's ranked hits then fill the rest (at least 70 %,
plus whatever the local ones left), in rank order, with the existing fitting
(``context.fit_sources``: exact counts, overlaps removed, nothing cut short but a first
chunk). The block sends the local excerpts first, then the hits; a hit loses the lines a
local excerpt or the excerpt around the selection has already (its head and tail around
them go). Without a selection's file (the retrieval benchmark, ``gpt-ls ask --workspace``
without ``--file``) the hits alone are fitted, exactly as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from gpt_ls.index.chunks import Chunk, chunk_text
from gpt_ls.index.context import FittedContext, HitLike, Source, fit_sources, hit_sources, render_block
from gpt_ls.index.imports import Neighbour, neighbours
from gpt_ls.models import ModelInfo

#: Percent of the chunk budget the selection's file and its neighbours may take at most.
LOCAL_SHARE = 30
#: Chunks holding the selection that are sent, at most; and chunks before and after them.
MAX_ENCLOSING = 2
AROUND = 1
#: Files related to the selection's file, at most; and chunks of each.
MAX_NEIGHBOURS = 4
PER_NEIGHBOUR = 2
#: A text longer than this is chunked only in a window of ``WINDOW_CHARS`` around the selection.
WHOLE_TEXT_CHARS = 1024 * 1024
WINDOW_CHARS = 256 * 1024
#: Characters of the selected lines whose names rank the neighbours (with the question's).
POINTED_CHARS = 8 * 1024
#: The rank of a local excerpt (hits have 0, 1, …).
LOCAL_RANK = -1
_BLOCK = 1 << 16


def line_offset(text: str, line: int) -> int:
    """The offset of 0-based ``line`` in ``text`` (its length when the text has fewer lines); whole blocks
    of lines are skipped by counting (a selection deep in a huge file costs no loop over its lines)."""
    pos = seen = 0
    while pos + _BLOCK < len(text) and seen + (n := text.count("\n", pos, pos + _BLOCK)) < line:
        seen, pos = seen + n, pos + _BLOCK
    for _ in range(line - seen):
        found = text.find("\n", pos)
        if found < 0:
            return len(text)
        pos = found + 1
    return pos


def _window(text: str, first: int, last: int) -> tuple[str, int]:
    """(the text to chunk, the 0-based number of its first line): all of a small text, else a window of whole
    lines around the selection (at most ``WINDOW_CHARS`` of the selection itself; an enormous line is cut)."""
    if len(text) <= WHOLE_TEXT_CHARS:
        return text, 0
    start = line_offset(text, first)
    end = min(line_offset(text, last + 1), start + WINDOW_CHARS)
    half = WINDOW_CHARS // 2
    lo, hi = max(0, start - half), min(len(text), end + half)
    line_start = text.rfind("\n", 0, lo) + 1
    if lo - line_start <= half:
        lo = line_start
    line_end = text.find("\n", hi)
    line_end = len(text) if line_end < 0 else line_end + 1
    if line_end - hi <= half:
        hi = line_end
    return text[lo:hi], text.count("\n", 0, lo)


def _slice(source: Source, start: int, end: int) -> Source | None:
    """Lines ``start``-``end`` of ``source`` (blank lines at the edges dropped); None when nothing is left."""
    lines = source.text.split("\n")
    if source.start_line == source.end_line:  # one line (or pieces of one long line): whole or nothing
        return source if start <= source.start_line <= end else None
    first, last = start - source.start_line, end - source.start_line
    while first <= last and not lines[first].strip():
        first += 1
    while last >= first and not lines[last].strip():
        last -= 1
    if first > last:
        return None
    text = "\n".join(lines[first : last + 1])
    return dataclasses.replace(source, start_line=source.start_line + first, end_line=source.start_line + last,
                               text=text)


def without(source: Source, sent: tuple[int, int] | None) -> list[Source]:
    """``source`` without the lines ``sent`` (1-based, inclusive): itself, its head and/or tail, or nothing."""
    if sent is None or source.end_line < sent[0] or source.start_line > sent[1]:
        return [source]
    parts = []
    if source.start_line < sent[0]:
        parts.append(_slice(source, source.start_line, sent[0] - 1))
    if source.end_line > sent[1]:
        parts.append(_slice(source, sent[1] + 1, source.end_line))
    return [p for p in parts if p is not None and p.text.strip()]


def _local(chunk: Chunk) -> Source:
    return Source(chunk.path, chunk.start_line, chunk.end_line, chunk.text, LOCAL_RANK)


@dataclass(frozen=True)
class Around:
    """The selection's file's excerpts: the chunks holding the selection, and those just before and after."""

    holding: tuple[Source, ...] = ()
    beside: tuple[Source, ...] = ()


def selection_sources(path: str, text: str, first: int, last: int, sent: tuple[int, int] | None = None) -> Around:
    """The chunks of ``text`` (the file ``path``) around the 0-based lines ``first``-``last``: those holding
    them, then the one before and the one after; without the lines ``sent`` (1-based, inclusive)."""
    window, offset = _window(text, first, last)
    chunks = [dataclasses.replace(c, start_line=c.start_line + offset, end_line=c.end_line + offset)
              for c in chunk_text(path, window)]
    if not chunks:
        return Around()
    lo, hi = first + 1, last + 1
    holding = [i for i, c in enumerate(chunks) if c.start_line <= hi and c.end_line >= lo]
    if holding:
        holding = holding[:MAX_ENCLOSING]
        before = list(range(max(0, holding[0] - AROUND), holding[0]))
        after_first = holding[-1] + 1
        while after_first < len(chunks) and chunks[after_first].start_line <= chunks[holding[-1]].end_line:
            after_first += 1  # pieces of the same long line
        after = list(range(after_first, min(len(chunks), after_first + AROUND)))
    else:  # between chunks (blank lines): the ones on either side
        nxt = next((i for i, c in enumerate(chunks) if c.start_line > hi), len(chunks))
        before = list(range(max(0, nxt - AROUND), nxt))
        after = list(range(nxt, min(len(chunks), nxt + AROUND)))
    return Around(tuple(part for i in holding for part in without(_local(chunks[i]), sent)),
                  tuple(part for i in (*before, *after) for part in without(_local(chunks[i]), sent)))


def neighbour_query(question: str, neighbour: Neighbour) -> str:
    """What a neighbour is searched for: the names imported from it, then the question."""
    return " ".join([*neighbour.names, question])


def plan(path: str, text: str, first: int, last: int, question: str, files: Collection[str],
         sent: tuple[int, int] | None = None, nearby: str = "",
         read: Callable[[str], str | None] | None = None) -> tuple[Around, list[tuple[str, str]]]:
    """The selection's file's excerpts, and (path, query) for each neighbour to search within: the imports
    the question, ``nearby`` (the excerpt around the selection) or those excerpts name come first.
    ``read``: a package's ``__init__.py`` text, to follow the names it re-exports (``imports.neighbours``)."""
    own = selection_sources(path, text, first, last, sent)
    focus = "\n".join([nearby, *(s.text for s in (*own.holding, *own.beside))])
    start = line_offset(text, first)
    pointed = f"{question}\n{text[start:min(line_offset(text, last + 1), start + POINTED_CHARS)]}"
    near = neighbours(path, text, files, focus, MAX_NEIGHBOURS, pointed, read)
    return own, [(n.path, neighbour_query(question, n)) for n in near]


def neighbour_sources(found: Mapping[str, Sequence[HitLike]]) -> tuple[list[Source], list[Source]]:
    """(the best chunk of each neighbour, their next ones): ``found`` is path -> hits (best first), in the
    neighbours' order."""
    best: list[Source] = []
    more: list[Source] = []
    for hits in found.values():
        sources = [dataclasses.replace(s, rank=LOCAL_RANK, score=0.0) for s in hit_sources(hits[:PER_NEIGHBOUR])]
        best += sources[:1]
        more += sources[1:]
    return best, more


def ordered(around: Around, best: Sequence[Source], more: Sequence[Source]) -> list[Source]:
    """The local excerpts by priority: the chunks holding the selection, the neighbours' best chunks, the
    chunks beside the selection's, the neighbours' next ones."""
    return [*around.holding, *best, *around.beside, *more]


def candidates(local: Sequence[Source], hits: Sequence[Source], room: int, info: ModelInfo,
               sent: tuple[str, int, int] | None = None) -> tuple[list[Source], list[Source]]:
    """(the local excerpts that fit their share of ``room``, the hits without the lines those and ``sent`` have)."""
    mine = fit_sources(local, room * LOCAL_SHARE // 100, info)[0] if local else []
    taken = [(s.path, s.start_line, s.end_line) for s in mine] + ([sent] if sent is not None else [])
    return mine, [part for hit in hits for part in _minus(hit, taken)]


def merge(local: Sequence[Source], hits: Sequence[Source], room: int, info: ModelInfo,
          sent: tuple[str, int, int] | None = None) -> tuple[list[Source], int, bool]:
    """(the sources sent, their block's tokens, exact) for ``room`` tokens; see the module docstring.

    ``sent``: (path, first, last), lines of the asking document sent already (hits lose them).
    """
    mine, rest = candidates(local, hits, room, info, sent)
    return fit_sources([*mine, *rest], room, info)


def _minus(source: Source, taken: Sequence[tuple[str, int, int]]) -> list[Source]:
    """``source`` without the ``taken`` lines of its file (it may fall in pieces)."""
    parts = [source]
    for path, first, last in taken:
        if path == source.path:
            parts = [piece for part in parts for piece in without(part, (first, last))]
    return parts


def fitted(local: Sequence[Source], hits: Sequence[HitLike], room: int, info: ModelInfo,
           sent: tuple[str, int, int] | None = None) -> FittedContext:
    """``merge`` as the ``FittedContext`` that goes into the system message (``left_out``: the excerpts with
    lines not sent already that did not go)."""
    if room <= 0:
        return FittedContext((), "", 0, room, len(local) + len(hits), True)
    mine, rest = candidates(local, hit_sources(hits), room, info, sent)
    kept, used, exact = fit_sources([*mine, *rest], room, info)
    return FittedContext(tuple(kept), render_block(kept), used, room, len(local) + len(rest) - len(kept), exact)
