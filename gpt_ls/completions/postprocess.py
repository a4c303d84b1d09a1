"""Pure: a model's reply -> the exact text to insert at the cursor (or "" for no suggestion).

Models wrap code in fences, repeat what is before the cursor, write what is already after
it, lose the indentation, and run past the end of the block. Each step below undoes one of
those, conservatively: when in doubt the text is kept.
"""

from __future__ import annotations

import re

from gpt_ls.completions.prompt import CURSOR

#: What may close a line: overlap made only of these is removed even when partial.
CLOSERS = set(")]}>\"'`;,: \t")
#: A first line ending with one of these opens a block.
OPENERS = (":", "{", "(", "[", "=>", " do", " then")
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^`\n]*$")


def indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def strip_fences(text: str) -> str:
    """The inside of a fenced block the reply is (or that one short lead-in line introduces)."""
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if len(lines) >= 2 and lines[0].rstrip().endswith(":") and _FENCE.match(lines[1]):
        lines.pop(0)  # "Here is the completion:" before the fence
    if not lines or not _FENCE.match(lines[0]):
        return text
    fence = _FENCE.match(lines[0]).group(1)  # type: ignore[union-attr]
    body = lines[1:]
    for i, line in enumerate(body):
        if line.strip() == fence or (line.strip().startswith(fence[0] * 3) and not line.strip().strip(fence[0])):
            body = body[:i]
            break
    return "\n".join(body)


def strip_echo(text: str, before: str) -> str:
    """Remove a repetition of the text before the cursor (whole lines, or the current line's start)."""
    line_start = before.rfind("\n") + 1
    line_before = before[line_start:]
    for k in range(min(len(text), len(before)), 0, -1):
        piece = text[:k]
        if not piece.strip() or not before.endswith(piece):
            continue
        start = len(before) - k
        lead = before[before.rfind("\n", 0, start) + 1 : start]
        if not lead.strip():  # the echo starts at a line start (or after its indentation)
            return text[k:]
    if line_before and not line_before.strip():  # the cursor is after the indentation
        if text.startswith(line_before):
            return text[len(line_before):]
        first, nl, rest = text.partition("\n")
        return first.lstrip(" \t") + nl + rest
    return text


def reindent(text: str, raw_first_indent: str, line_before: str) -> str:
    """A chat reply written from column 0 at an indented cursor: indent its later lines like the cursor."""
    base = line_before if line_before and not line_before.strip() else ""
    lines = text.split("\n")
    later = [line for line in lines[1:] if line.strip()]
    if not base or raw_first_indent or not later:
        return text
    opener = lines[0].rstrip().endswith(OPENERS)
    shallow = min(len(indent_of(line)) for line in later)
    if shallow < len(base) or (opener and len(indent_of(later[0])) <= len(base)):
        return "\n".join([lines[0], *[base + line if line.strip() else line for line in lines[1:]]])
    return text


def cut_block(text: str, line_before: str, invoked: bool) -> str:
    """End at the block's end: a line less indented than the cursor's, the end of a block the
    first line opens, or (typing) a blank line."""
    lines = text.split("\n")
    base = len(indent_of(line_before))
    opener = (line_before + lines[0]).rstrip().endswith(OPENERS)
    for i, line in enumerate(lines[1:], 1):
        if not line.strip():
            if not invoked:
                return "\n".join(lines[:i])
            continue
        depth = len(indent_of(line))
        closing = line.strip()[0] in ")]}" or line.strip() in ("end", "fi", "done", "esac")
        if depth < base:
            return "\n".join(lines[:i])
        if opener and depth <= base:
            return "\n".join(lines[: i + 1] if closing and depth == base else lines[:i])
    return text


def strip_suffix_overlap(text: str, after: str) -> str:
    """Remove an end of the reply that the rest of the cursor's line already has."""
    rest = after.split("\n", 1)[0].rstrip("\r")
    whole = rest.rstrip()
    if not whole.strip():
        return text
    if text.endswith(whole) and len(text) > len(whole):
        return text[: -len(whole)]
    for k in range(min(len(whole), len(text)), 0, -1):
        piece = whole[:k]
        if text.endswith(piece) and set(piece) <= CLOSERS and piece.strip():
            return text[:-k]
    return text


def drop_duplicate_lines(text: str, line_before: str, after: str) -> str:
    """Drop the reply's last lines when they repeat the lines after the cursor's line ("" if all do)."""
    head, _, tail = after.partition("\n")
    if head.strip():
        return text
    following = [line.strip() for line in tail.split("\n") if line.strip()]
    lines = text.split("\n")
    full = [(line_before + lines[0]).strip(), *[line.strip() for line in lines[1:]]]
    for k in range(len(full), 0, -1):
        if full[-k:] == following[:k] and any(full[-k:]):
            return "" if k == len(full) else "\n".join(lines[:-k])
    return text


def clean(raw: str, before: str, after: str, *, invoked: bool = False, chat: bool = True) -> str:
    """The text to insert at the cursor, or "" when the reply has nothing worth showing."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").replace(CURSOR, "")
    text = strip_fences(text).rstrip()
    if not text.strip():
        return ""
    before_n, after_n = before.replace("\r\n", "\n"), after.replace("\r\n", "\n")
    line_before = before_n[before_n.rfind("\n") + 1 :]
    raw_first_indent = indent_of(text.split("\n", 1)[0])
    text = strip_echo(text, before_n)
    if chat:
        text = reindent(text, raw_first_indent, line_before)
    text = cut_block(text, line_before, invoked).rstrip()
    text = strip_suffix_overlap(text, after_n)
    text = drop_duplicate_lines(text, line_before, after_n).rstrip()
    if not text.strip():
        return ""
    if "\r\n" in before or "\r\n" in after:
        text = text.replace("\n", "\r\n")
    return text
