"""Pure: the workspace chunks a question is sent with, fitted to the model's window.

``select_context`` takes the search hits in rank order and keeps as many as the window
allows once the rest of the request and the reply are reserved: a chunk that overlaps
one already kept loses the overlapping lines (or goes, when nothing new is left), a chunk
too large for what remains is skipped for the next ones (rank order is kept; a chunk is
cut only when at least ``MIN_PARTIAL_TOKENS`` of it fit and it is the first to go in).
Each chunk is labelled ``path:start-end``; the system message tells the model to cite
those labels. Counts are exact (the tokenizer loads only when the UTF-8 size alone does
not settle it: a token is at least a byte).

The retrieval-quality benchmark calls ``select_context`` directly to measure what would
be sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gpt_ls import budget, tokens
from gpt_ls.models import ModelInfo, model_info
from gpt_ls.settings import Settings

#: The reply's share of the window when ``maxTokens`` is unset (at least 1,024 tokens, at
#: most the model's output limit): gpt-4's 8,192 leave about 6,000 for chunks.
REPLY_SHARE = 4
MIN_REPLY_TOKENS = 1024
#: Tokens kept spare: the joins between the excerpts, the instructions and the rest of the
#: system message may count a few tokens more than the parts did.
SPARE_TOKENS = 32
#: A chunk larger than what remains is cut only if this much of it fits (else skipped).
MIN_PARTIAL_TOKENS = 256
#: What the system message tells the model about the excerpts.
CITE_INSTRUCTIONS = (
    "The workspace excerpts below were retrieved for this question; each is labelled "
    "path:start-end. Cite the excerpts you use by their label in square brackets, for "
    "example [src/app.py:10-24], right after the sentence they support. If they do not "
    "contain the answer, say so."
)
#: The system message the ``select_context`` callers without a request of their own are counted with.
DEFAULT_SYSTEM = "You answer questions about the user's workspace. Answer in the language of the question."


class ChunkLike(Protocol):
    """What the index's ``Chunk`` has (``gpt_ls.index``): a workspace-relative POSIX path, 1-based lines."""

    @property
    def path(self) -> str: ...
    @property
    def start_line(self) -> int: ...
    @property
    def end_line(self) -> int: ...
    @property
    def text(self) -> str: ...


class HitLike(Protocol):
    """What the index's ``Hit`` has: a chunk and its score (higher is better)."""

    @property
    def chunk(self) -> ChunkLike: ...
    @property
    def score(self) -> float: ...


@dataclass(frozen=True)
class Source:
    """One chunk as sent: its label, its lines and its rank among the hits (0 = best)."""

    path: str
    start_line: int
    end_line: int
    text: str
    rank: int
    score: float = 0.0

    @property
    def label(self) -> str:
        return label(self.path, self.start_line, self.end_line)

    def covers(self, path: str, line: int) -> bool:
        """Whether ``path:line`` is among the lines sent."""
        return self.path == path and self.start_line <= line <= self.end_line


@dataclass(frozen=True)
class FittedContext:
    """The chunks that go with a question, and what they cost."""

    sources: tuple[Source, ...]
    #: The excerpts as they go into the system message (``""`` when there are none).
    block: str
    #: Tokens of ``block`` (an upper bound when ``exact`` is False).
    tokens: int
    #: Tokens the chunks could use at most.
    budget: int
    #: Hits that did not go (no room, or nothing new in them).
    left_out: int
    exact: bool = True

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.sources]

    def covers(self, path: str, line: int) -> bool:
        """Whether ``path:line`` is in what is sent (the benchmark's recall test)."""
        return any(s.covers(path, line) for s in self.sources)

    def system_text(self) -> str:
        """The instructions and excerpts for the system message."""
        return f"{CITE_INSTRUCTIONS}\n\n{self.block}" if self.block else ""


def label(path: str, start: int, end: int) -> str:
    """``path:start-end`` (``path:start`` for one line)."""
    return f"{path}:{start}" if start == end else f"{path}:{start}-{end}"


def _fence(text: str) -> str:
    """A backtick fence longer than any run of backticks in ``text``."""
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def render_source(source: Source) -> str:
    """One excerpt as it is sent: its label, then its lines in a fence."""
    fence = _fence(source.text)
    body = source.text if source.text.endswith("\n") or not source.text else source.text + "\n"
    return f"[{source.label}]\n{fence}\n{body}{fence}\n"


def render_block(sources: Iterable[Source]) -> str:
    return "\n".join(render_source(s) for s in sources)


def reply_reserve(info: ModelInfo, max_tokens: int | None) -> int:
    """Tokens kept for the reply: ``maxTokens``, else a quarter of the window within the model's output limit."""
    if max_tokens:
        return min(max_tokens, info.max_output)
    return min(info.max_output, max(MIN_REPLY_TOKENS, info.context_window // REPLY_SHARE))


def chunk_budget(info: ModelInfo, max_tokens: int | None, overhead: int) -> int:
    """Tokens left for the chunks once the rest of the request (``overhead``) and the reply are reserved."""
    limit = info.context_window - budget.spare_tokens(info) - reply_reserve(info, max_tokens)
    if info.max_input is not None:
        limit = min(limit, info.max_input)
    return max(0, limit - overhead - SPARE_TOKENS)


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _new_part(source: Source, kept: Sequence[Source]) -> Source | None:
    """``source`` without the lines an already kept chunk of the same file has (None: nothing new)."""
    start, end = source.start_line, source.end_line
    for other in kept:
        if other.path != source.path or other.end_line < start or other.start_line > end:
            continue
        if other.start_line <= start and other.end_line >= end:
            return None
        if other.start_line <= start:  # overlaps the head
            start = other.end_line + 1
        elif other.end_line >= end:  # overlaps the tail
            end = other.start_line - 1
        # else: the other lies inside; both are kept whole (the rarer case, and cheap)
    if (start, end) == (source.start_line, source.end_line):
        return source
    lines = _lines(source.text)
    first = start - source.start_line
    text = "".join(lines[first : first + end - start + 1])
    if not text.strip():
        return None
    return dataclasses.replace(source, start_line=start, end_line=end, text=text)


def _head(source: Source, room: int, encoding: str) -> Source | None:
    """The first lines of ``source`` that fit ``room`` tokens as rendered (None: too little)."""
    lines = _lines(source.text)
    wrapper = tokens.count_text(render_source(dataclasses.replace(source, text="")), encoding)
    counts = tokens.count_chunks(lines, encoding) if lines else []
    used, n = wrapper, 0
    for count in counts:
        if used + count > room:
            break
        used, n = used + count, n + 1
    if n == 0 or used < MIN_PARTIAL_TOKENS:
        return None
    return dataclasses.replace(source, end_line=source.start_line + n - 1, text="".join(lines[:n]))


def hit_sources(hits: Iterable[HitLike]) -> list[Source]:
    """The hits as sources, in rank order (empty or malformed chunks left out)."""
    out: list[Source] = []
    for rank, hit in enumerate(hits):
        c = hit.chunk
        if c.text.strip() and c.end_line >= c.start_line >= 1:
            out.append(Source(c.path, c.start_line, c.end_line, c.text, rank, float(hit.score)))
    return out


def default_overhead(question: str, info: ModelInfo) -> int:
    """Tokens of a request made of the default system message, the instructions and ``question``."""
    messages = [{"role": "system", "content": f"{DEFAULT_SYSTEM}\n\n{CITE_INSTRUCTIONS}\n\n"},
                {"role": "user", "content": question}]
    return tokens.count_messages(messages, info)


def fit_sources(candidates: Sequence[Source], room: int, info: ModelInfo) -> tuple[list[Source], int, bool]:
    """(the sources kept in rank order, their block's tokens, exact) for ``room`` tokens."""
    kept: list[Source] = []
    for source in candidates:  # every new line, if it all fits by its size alone: no tokenizer
        part = _new_part(source, kept)
        if part is not None:
            kept.append(part)
    bound = budget.byte_bound(render_block(kept))
    if bound <= room:
        return kept, bound, False
    kept = []
    used = 0
    # Every candidate is looked at (a smaller one may fill a gap): counted in one batch, cached.
    counts = dict(zip(candidates, tokens.count_chunks([render_source(c) for c in candidates], info.encoding),
                      strict=True))
    for source in candidates:
        part = _new_part(source, kept)
        if part is None:
            continue
        whole = counts[source] if part is source else tokens.count_text(render_source(part), info.encoding)
        cost = whole + (1 if kept else 0)
        if used + cost <= room:
            kept.append(part)
            used += cost
        elif not kept and room - used >= MIN_PARTIAL_TOKENS:
            head = _head(part, room - used, info.encoding)
            if head is not None:
                kept.append(head)
                used += tokens.count_text(render_source(head), info.encoding)
    # The joins may count differently than the parts: the block as a whole is what is checked.
    total = tokens.count_text(render_block(kept), info.encoding) if kept else 0
    while kept and total > room:
        kept.pop()
        total = tokens.count_text(render_block(kept), info.encoding) if kept else 0
    return kept, total, tokens.is_exact(info.encoding)


def select_context(
    question: str,
    hits: Sequence[HitLike],
    model: str | None,
    settings: Settings,
    *,
    overhead: int | None = None,
    info: ModelInfo | None = None,
) -> FittedContext:
    """The hits (in rank order) that fit ``model``'s window with ``question``; see the module docstring.

    ``overhead``: tokens of the rest of the request (system message, instructions, the
    question and its excerpt), counted by the caller; by default a request of
    ``DEFAULT_SYSTEM`` and ``question`` alone.
    """
    if info is None:
        info = model_info(dataclasses.replace(settings, model=model) if model else settings)
    if overhead is None:
        overhead = default_overhead(question, info)
    room = chunk_budget(info, settings.max_tokens, overhead)
    candidates = hit_sources(hits)
    kept, used, exact = fit_sources(candidates, room, info) if room > 0 else ([], 0, True)
    return FittedContext(tuple(kept), render_block(kept), used, room, len(candidates) - len(kept), exact)
