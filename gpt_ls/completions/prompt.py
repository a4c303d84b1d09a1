"""Pure: what a completion request sends, from the text around the cursor.

The context is bounded by ``completionContextTokens`` without loading a tokenizer: a token
is at least one UTF-8 byte, so a window of N bytes is at most N tokens (a proven upper
bound). Loading an encoding costs 40-70 MB of memory, which would break the server's
100 MB target for a feature that runs at every pause in typing. When the process already
has the model's encoding loaded (another request needed it), ``count`` trims a wider
window exactly instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

Mode = Literal["chat", "fim"]
#: The model used when ``completionModel`` is not set, per mode: small and fast.
DEFAULT_MODELS: dict[str, str] = {"chat": "gpt-4.1-nano", "fim": "gpt-3.5-turbo-instruct"}
#: Marks the cursor in the chat prompt.
CURSOR = "<CURSOR>"
#: Share of the context budget for the text before the cursor (the rest: after it).
BEFORE_SHARE = 0.75
#: Related open files: at most this many, each at most this share of the budget.
RELATED_FILES = 2
RELATED_SHARE = 0.1
#: With an exact counter, the window read before trimming: this many bytes per token.
WIDE_BYTES_PER_TOKEN = 6

SYSTEM = (
    "You are a code completion engine inside an editor. The user message shows a file with "
    f"the cursor marked {CURSOR}. Reply with only the text to insert at the cursor, exactly "
    "as it should appear in the file (keep the file's indentation), with no explanation, no "
    "code fences and no text that is already before or after the cursor. If nothing useful "
    "fits, reply with nothing."
)
SCOPE = {
    False: "Complete the current line, or at most the next few lines of the current statement.",
    True: "Complete the current block.",
}


@dataclass(frozen=True)
class Window:
    """The text around the cursor that is sent."""

    before: str
    after: str


@dataclass(frozen=True)
class Related:
    """An excerpt of another open file in the same language."""

    name: str
    text: str


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _tail_bytes(text: str, limit: int) -> str:
    """The longest end of ``text`` within ``limit`` UTF-8 bytes, from a line start when cut."""
    if utf8_len(text) <= limit:
        return text
    raw = text.encode("utf-8", "surrogatepass")[-limit:] if limit > 0 else b""
    cut = raw.decode("utf-8", "ignore")  # a character split at the cut is dropped
    line = cut.find("\n")
    return cut[line + 1 :] if 0 <= line < len(cut) - 1 else cut


def _head_bytes(text: str, limit: int) -> str:
    """The longest start of ``text`` within ``limit`` UTF-8 bytes, to a line end when cut."""
    if utf8_len(text) <= limit:
        return text
    raw = text.encode("utf-8", "surrogatepass")[:limit] if limit > 0 else b""
    cut = raw.decode("utf-8", "ignore")
    line = cut.rfind("\n")
    return cut[: line + 1] if line > 0 else cut


def _trim_exact(text: str, budget: int, count: Callable[[str], int], from_end: bool) -> str:
    """Drop whole lines from the far side of ``text`` until it counts at most ``budget`` tokens."""
    lines = text.splitlines(keepends=True)
    while lines and count("".join(lines)) > budget:
        drop = max(1, len(lines) // 8)  # a few counts, not one per line
        lines = lines[drop:] if from_end else lines[:-drop]
    return "".join(lines)


def window(text: str, offset: int, budget: int, count: Callable[[str], int] | None = None) -> Window:
    """The text before and after ``offset`` within ``budget`` tokens (3/4 before, 1/4 after).

    Without ``count`` the bound is the UTF-8 byte size; with it, a wider window is trimmed
    to exact counts by whole lines (the current line is always kept).
    """
    before, after = text[:offset], text[offset:]
    b_budget = int(budget * BEFORE_SHARE)
    a_budget = budget - b_budget
    if count is None:
        return Window(_tail_bytes(before, b_budget), _head_bytes(after, a_budget))
    wide_before = _tail_bytes(before, b_budget * WIDE_BYTES_PER_TOKEN)
    wide_after = _head_bytes(after, a_budget * WIDE_BYTES_PER_TOKEN)
    line_start = wide_before.rfind("\n") + 1
    head = _trim_exact(wide_before[:line_start], b_budget - count(wide_before[line_start:]), count, True)
    line_end = wide_after.find("\n") + 1 or len(wide_after)
    tail = _trim_exact(wide_after[line_end:], a_budget - count(wide_after[:line_end]), count, False)
    return Window(head + wide_before[line_start:], wide_after[:line_end] + tail)


def related_excerpts(others: Sequence[tuple[str, str]], budget: int) -> list[Related]:
    """Short starts (imports, definitions) of up to ``RELATED_FILES`` other open files, byte-bounded."""
    each = int(budget * RELATED_SHARE)
    out = []
    for name, text in others[:RELATED_FILES]:
        excerpt = _head_bytes(text, each).strip("\n")
        if excerpt.strip():
            out.append(Related(name, excerpt))
    return out


def chat_messages(win: Window, file_name: str, language: str, invoked: bool,
                  related: Sequence[Related] = ()) -> list[dict[str, str]]:
    """A system message and one user message with the cursor marked."""
    parts = [f"Related file {r.name}:\n{r.text}\n" for r in related]
    parts.append(f"File {file_name} ({language}). {SCOPE[invoked]}\n")
    parts.append(f"{win.before}{CURSOR}{win.after}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(parts)}]


def fim_request(win: Window) -> dict[str, str]:
    """``prompt`` and ``suffix`` for ``/v1/completions``."""
    return {"prompt": win.before, "suffix": win.after}


def stop_sequences(before: str, after: str, invoked: bool) -> list[str]:
    """Where the model stops: the line's end when the cursor is mid-line and typing; else a blank line.

    The end of a block by indentation is cut afterwards (``postprocess.cut_block``).
    """
    rest_of_line = after.split("\n", 1)[0]
    if not invoked and rest_of_line.strip():
        return ["\n"]
    return ["\n\n\n"] if invoked else ["\n\n"]


def model_for(mode: str, configured: str | None) -> str:
    """``completionModel``, or the default for the mode."""
    return configured or DEFAULT_MODELS.get(mode, DEFAULT_MODELS["chat"])
