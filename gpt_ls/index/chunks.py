"""Chunks that follow the text's structure, pure: definitions in code, sections in Markdown, paragraphs elsewhere.

A file is cut into *segments* at structural boundaries, then segments are packed into chunks:
a small segment (imports, a constant) joins its neighbours, a definition stays whole when it
fits, and one too long is cut again one level deeper (a class at its methods, a brace block at
its members), then at blank lines, then by lines. No chunk is over ``MAX_CHARS`` characters or
``MAX_LINES`` lines; a single line longer than that is cut into pieces that share its number.

* Python (and other indentation languages by extension): ``def``/``class`` (decorators and the
  comments right above included) at the top level, then module code after a definition;
* brace languages (C, Go, Rust, JS/TS, Java, …): each top-level statement or block, tracked by
  brace depth outside strings and comments;
* Markdown: a section per heading (code fences respected);
* anything else: paragraphs, a new one at a line after a blank line.

Line numbers are 1-based and inclusive; chunks never start or end with a blank line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

MAX_CHARS = 2400
MAX_LINES = 120
#: A segment smaller than this joins a neighbour when the two fit in one chunk.
SMALL_CHARS = 400


@dataclass(frozen=True)
class Chunk:
    """A piece of a workspace file: workspace-relative POSIX path, 1-based inclusive lines, text."""

    path: str
    start_line: int
    end_line: int
    text: str


PYTHON = frozenset({".py", ".pyi", ".pyw"})
BRACE = frozenset({
    ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".m", ".mm", ".cs", ".java", ".kt", ".kts",
    ".scala", ".groovy", ".gradle", ".go", ".rs", ".swift", ".dart", ".js", ".jsx", ".mjs", ".cjs",
    ".ts", ".tsx", ".mts", ".cts", ".php", ".css", ".scss", ".less", ".zig", ".v", ".sol", ".proto",
})
MARKDOWN = frozenset({".md", ".markdown", ".mdx", ".mkd"})

_PY_DEF = ("def ", "class ", "async def ", "@")
_PY_CONTINUES = ("else", "elif", "except", "finally", ")", "]", "}")
_BRACE_CONTINUES = ("}", ")", "]", "else", "catch", "finally", "except", "while")
_COMMENT_START = ("#", "//", "/*", "*", "--", ";", "@", "#[")
_HEADING = re.compile(r"^ {0,3}#{1,6}(\s|$)")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/")
_DEFINITION = re.compile(
    r"^[ \t]*(?:(?:export|default|public|private|protected|internal|static|final|abstract|sealed|open|pub"
    r"(?:\([\w ]*\))?|async|unsafe|extern|override|data|inline)\s+)*"
    r"(?:def|class|function\*?|func|fn|struct|enum|trait|interface|impl|type|module|namespace|record|object)"
    r"\s+(?:\([^)]*\)\s*)?([A-Za-z_$][\w$]*)", re.M)
_TOP_BINDING = re.compile(
    r"^(?:export\s+)?(?:pub\s+)?(?:const|let|var|static|val)\s+(?:mut\s+)?([A-Za-z_$][\w$]*)", re.M)
_MD_TITLE = re.compile(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$")

Span = tuple[int, int]  # 0-based, end exclusive


def kind_of(path: str) -> str:
    """"python", "brace", "markdown" or "text", by the file's extension."""
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in PYTHON:
        return "python"
    if suffix in BRACE:
        return "brace"
    if suffix in MARKDOWN:
        return "markdown"
    return "text"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _pull_comments(lines: list[str], start: int, lo: int, indent: int) -> int:
    """Move a boundary up over the comment lines (at the same indentation) right above it."""
    while start > lo:
        above = lines[start - 1]
        if not above.strip() or _indent(above) != indent or not above.strip().startswith(_COMMENT_START):
            break
        start -= 1
    return start


def _cut(lo: int, hi: int, starts: list[int]) -> list[Span]:
    points = sorted({lo, *[s for s in starts if lo < s < hi]})
    return [(a, b) for a, b in zip(points, [*points[1:], hi], strict=True)]


def python_segments(lines: list[str], lo: int, hi: int, indent: int) -> list[Span]:
    """Definitions (with decorators and comments above) and the code between them, at one indentation."""
    starts: list[int] = []
    in_def = after_decorator = False
    for i in range(lo, hi):
        text = lines[i].strip()
        if not text or _indent(lines[i]) != indent or text.startswith("#"):
            continue  # comments join the definition below them
        if text.startswith(_PY_DEF):
            if not after_decorator:
                starts.append(_pull_comments(lines, i, lo, indent))
            in_def = True
        elif not text.startswith(_PY_CONTINUES):
            if in_def:
                starts.append(_pull_comments(lines, i, lo, indent))
            in_def = False
        after_decorator = text.startswith("@")
    return _cut(lo, hi, starts)


def brace_depths(lines: list[str]) -> list[tuple[int, int]]:
    """Each line's brace depth at its start and at its end (strings and comments ignored)."""
    depths = []
    depth = 0
    in_block_comment = False
    for line in lines:
        start = depth
        if not any(c in line for c in "{}()[]"):
            depths.append((start, depth))
            if "/*" in line and not in_block_comment and "*/" not in line.split("/*", 1)[1]:
                in_block_comment = True
            elif in_block_comment and "*/" in line:
                in_block_comment = False
            continue
        text = _STRINGS.sub('""', line) if ("'" in line or '"' in line or "`" in line) else line
        if in_block_comment:
            end = text.find("*/")
            if end < 0:
                depths.append((start, depth))
                continue
            text = text[end + 2:]
            in_block_comment = False
        if "/*" in text:
            text = _BLOCK_COMMENT.sub("", text)
        if "/*" in text:
            text, in_block_comment = text[: text.index("/*")], True
        text = text.split("//", 1)[0]
        depth = max(0, depth + text.count("{") + text.count("(") + text.count("[")
                    - text.count("}") - text.count(")") - text.count("]"))
        depths.append((start, depth))
    return depths


def brace_segments(lines: list[str], depths: list[tuple[int, int]], lo: int, hi: int, level: int) -> list[Span]:
    """Each statement or block that opens at brace depth ``level`` once the one before it closed."""
    starts = []
    closed = True
    for i in range(lo, hi):
        text = lines[i].strip()
        start, end = depths[i]
        if text and start == level and closed and not text.startswith(_BRACE_CONTINUES):
            starts.append(_pull_comments(lines, i, lo, _indent(lines[i])))
        if text:
            closed = end == level
    return _cut(lo, hi, starts)


def markdown_segments(lines: list[str], lo: int, hi: int) -> list[Span]:
    """A section per heading; fenced code never holds a heading."""
    starts = []
    fenced = False
    for i in range(lo, hi):
        if _FENCE.match(lines[i]):
            fenced = not fenced
        elif not fenced and _HEADING.match(lines[i]):
            starts.append(i)
    return _cut(lo, hi, starts)


def paragraph_segments(lines: list[str], lo: int, hi: int) -> list[Span]:
    """A new segment at each non-blank line after a blank one."""
    starts = [i for i in range(lo + 1, hi) if lines[i].strip() and not lines[i - 1].strip()]
    return _cut(lo, hi, starts)


class _Chunker:
    def __init__(self, path: str, lines: list[str]) -> None:
        self.path = path
        self.lines = lines
        self.kind = kind_of(path)
        self.sizes = [len(line) + 1 for line in lines]
        self.depths = brace_depths(lines) if self.kind == "brace" else []

    def size(self, span: Span) -> int:
        return sum(self.sizes[span[0]:span[1]])

    def fits(self, span: Span) -> bool:
        return span[1] - span[0] <= MAX_LINES and self.size(span) <= MAX_CHARS

    def deeper(self, span: Span, level: int) -> list[Span]:
        """The span cut one structural level down, or [] when there is no such level."""
        lo, hi = span
        if self.kind == "python":
            inner = [_indent(self.lines[i]) for i in range(lo, hi) if self.lines[i].strip()]
            deeper = sorted({n for n in inner if n > inner[0]}) if inner else []
            return python_segments(self.lines, lo, hi, deeper[0]) if deeper else []
        if self.kind == "brace":
            return brace_segments(self.lines, self.depths, lo, hi, level + 1)
        return []

    def pieces(self, span: Span, level: int) -> list[Span]:
        """Spans that each fit, cutting deeper, then at paragraphs, then by lines."""
        if self.fits(span):
            return [span]
        cut = self.deeper(span, level)
        if len(cut) > 1:
            return self.pack([p for s in cut for p in self.pieces(s, level + 1)])
        return self.fill(paragraph_segments(self.lines, *span))

    def fill(self, spans: list[Span]) -> list[Span]:
        """Prose (a long docstring, a section): as much as fits in each chunk, ending at a paragraph when
        one fits, else at a line; a definition's header takes the start of its text with it."""
        out: list[Span] = []
        for span in spans:
            if out and self.fits((out[-1][0], span[1])):
                out[-1] = (out[-1][0], span[1])
            elif out and self.size(out[-1]) < SMALL_CHARS:  # a header alone says little: it takes lines along
                out.extend(self.by_lines((out.pop()[0], span[1])))
            else:
                out.extend([span] if self.fits(span) else self.by_lines(span))
        return out

    def by_lines(self, span: Span) -> list[Span]:
        out, start, size = [], span[0], 0
        for i in range(span[0], span[1]):
            if i > start and (size + self.sizes[i] > MAX_CHARS or i - start >= MAX_LINES):
                out.append((start, i))
                start, size = i, 0
            size += self.sizes[i]
        out.append((start, span[1]))
        return out

    def pack(self, spans: list[Span]) -> list[Span]:
        """Join small neighbours while the result fits."""
        out: list[Span] = []
        for span in spans:
            if out:
                last = out[-1]
                joined = (last[0], span[1])
                if (self.size(last) < SMALL_CHARS or self.size(span) < SMALL_CHARS) and self.fits(joined):
                    out[-1] = joined
                    continue
            out.append(span)
        return out

    def top(self) -> list[Span]:
        n = len(self.lines)
        if self.kind == "python":
            return python_segments(self.lines, 0, n, 0)
        if self.kind == "brace":
            return brace_segments(self.lines, self.depths, 0, n, 0)
        if self.kind == "markdown":
            return markdown_segments(self.lines, 0, n)
        return paragraph_segments(self.lines, 0, n)

    def chunks(self) -> list[Chunk]:
        spans: list[Span] = []
        whole = False  # was the last span a whole segment (which may take a small neighbour)?
        for segment in self.top():
            cut = self.pieces(segment, 0)
            if len(cut) == 1 and whole:
                spans[-1:] = self.pack([spans[-1], cut[0]])
            else:  # a definition cut in pieces never joins its neighbours: its header starts a chunk
                spans.extend(cut)
            whole = len(cut) == 1
        out = []
        for lo, hi in spans:
            while lo < hi and not self.lines[lo].strip():
                lo += 1
            while hi > lo and not self.lines[hi - 1].strip():
                hi -= 1
            if lo < hi:
                out.extend(self.emit(lo, hi))
        return out

    def emit(self, lo: int, hi: int) -> list[Chunk]:
        text = "\n".join(self.lines[lo:hi])
        if len(text) <= MAX_CHARS:
            return [Chunk(self.path, lo + 1, hi, text)]
        # A single line longer than a chunk: pieces that share its line number.
        return [Chunk(self.path, lo + 1, hi, text[i:i + MAX_CHARS]) for i in range(0, len(text), MAX_CHARS)]


def chunk_text(path: str, text: str) -> list[Chunk]:
    """The chunks of one file's text (``path`` workspace-relative POSIX; its extension picks the rules)."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return _Chunker(path, lines).chunks()


def definition_names(text: str, path: str = "") -> str:
    """The names a chunk defines (functions, classes, types, top-level constants, headings), space-separated."""
    if kind_of(path) == "markdown":
        titles, fenced = [], False
        for line in text.split("\n"):
            if _FENCE.match(line):
                fenced = not fenced
            elif not fenced and (title := _MD_TITLE.match(line)):
                titles.append(title.group(1))
        return " ".join(titles)
    names = dict.fromkeys(_DEFINITION.findall(text))
    names.update(dict.fromkeys(_TOP_BINDING.findall(text)))
    return " ".join(names)
