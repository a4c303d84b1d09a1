"""Pure: action + selection context (+ history) -> the message list.

The excerpt around the selection is passed separately (``before``/``after``) so the
budget can shrink it; ``render`` puts the pieces together in a fixed order: the
action's system message, the earlier turns, then one user message with the file
name, language, excerpt and selection.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlparse

from gpt_ls.actions.catalog import Action
from gpt_ls.pieces import Text
from gpt_ls.text import LineIndex

Message = dict[str, str]

SELECTION_MARK = "<<<SELECTION>>>"
#: ``{scope}``: what the reference material is (``workspace-index``: excerpts from the workspace index).
SCOPES = {"workspace": "open files", "workspace-index": "workspace"}
_VARIABLE = re.compile(r"\{([A-Za-z_]+)\}")


@dataclass(frozen=True)
class SelectionContext:
    """What the editor told us about the selection, in plain strings."""

    uri: str
    language: str
    selection: str
    before: str = ""
    after: str = ""
    document: str = ""
    diagnostics: str = ""
    input: str = ""
    target_language: str = ""
    persona: str = ""
    scope: str = "document"

    @property
    def file_name(self) -> str:
        path = unquote(urlparse(self.uri).path) if "://" in self.uri else self.uri
        return PurePosixPath(path).name or self.uri


def excerpt(text: str | Text, start: int, end: int, context_lines: int) -> tuple[str, str]:
    """Up to ``context_lines`` lines before ``start`` and after ``end`` (offsets).

    A ``Text`` (a document in pieces) is its own index: its line questions touch a block or two.
    """
    if context_lines <= 0:
        return "", ""
    if isinstance(text, Text):
        return _excerpt_lines(text, text, start, end, context_lines)
    if "\r" not in text:
        # A few finds around the selection, however deep it lies in the document.
        first = text.rfind("\n", 0, start) + 1
        for _ in range(context_lines):
            if first == 0:
                break
            first = text.rfind("\n", 0, first - 1) + 1
        after_end = end
        for _ in range(context_lines + 1):
            found = text.find("\n", after_end)
            after_end = len(text) if found < 0 else found + 1
            if found < 0:
                break
        return text[first:start], text[end:after_end]
    return _excerpt_lines(text, LineIndex(text), start, end, context_lines)


def _excerpt_lines(
    text: str | Text, index: LineIndex | Text, start: int, end: int, context_lines: int
) -> tuple[str, str]:
    first = index.position(start, "utf-32").line
    last = index.position(end, "utf-32").line
    from_line = max(0, first - context_lines)
    to_line = min(index.line_count - 1, last + context_lines)
    before = text[index.line_start(from_line) : start]
    after_end = len(text) if to_line + 1 >= index.line_count else index.line_start(to_line + 1)
    return before, text[end:after_end]


def uses_document(action: Action) -> bool:
    """Whether the action's prompts ask for ``{document}`` (the whole text)."""
    return any(m.group(1) == "document" for m in _VARIABLE.finditer(action.system + action.template))


def fill(template: str, values: Mapping[str, str]) -> str:
    """Substitute ``{name}`` variables; unknown names and the values' own braces stay as they are."""
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def context_block(language: str, before: str, after: str) -> str:
    """The excerpt around the selection, with the selection's place marked."""
    if not before.strip() and not after.strip():
        return ""
    return (
        f"Excerpt of the file around the selection (the selection's place is marked {SELECTION_MARK}):\n"
        f"```{language}\n{before}{SELECTION_MARK}{after}\n```\n\n"
    )


def variables(ctx: SelectionContext, before: str, after: str) -> dict[str, str]:
    """The template variables for one request (with a possibly shortened excerpt)."""
    return {
        "file_name": ctx.file_name,
        "language": ctx.language,
        "selection": ctx.selection,
        "before": before,
        "after": after,
        "context": context_block(ctx.language, before, after),
        "document": ctx.document,
        "diagnostics": ctx.diagnostics or "(none reported)",
        "input": ctx.input,
        "target_language": ctx.target_language,
        "persona": ctx.persona,
        "scope": SCOPES.get(ctx.scope, "current file"),
    }


def user_message(action: Action, ctx: SelectionContext, before: str, after: str) -> str:
    """The action's user message for a (possibly shortened) excerpt."""
    return fill(action.template, variables(ctx, before, after))


def render(
    action: Action,
    ctx: SelectionContext,
    before: str,
    after: str,
    history: list[Message],
    system_extra: str = "",
) -> list[Message]:
    """The complete message list: system, earlier turns, the new user message."""
    system = fill(action.system, variables(ctx, before, after)).rstrip()
    if system_extra:
        system = f"{system}\n\n{system_extra}"
    messages: list[Message] = [{"role": "system", "content": system}]
    messages.extend({"role": m["role"], "content": m["content"]} for m in history)
    messages.append({"role": "user", "content": user_message(action, ctx, before, after)})
    return messages


COMMENT_SYNTAX: dict[str, tuple[str, str]] = {
    **{lang: ("# ", "") for lang in (
        "python", "shellscript", "sh", "bash", "zsh", "fish", "ruby", "perl", "r", "yaml",
        "toml", "dockerfile", "makefile", "cmake", "powershell", "elixir", "nim", "julia",
        "conf", "ini", "gitignore", "coffeescript", "tcl", "awk")},
    **{lang: ("// ", "") for lang in (
        "c", "cpp", "csharp", "java", "javascript", "javascriptreact", "typescript",
        "typescriptreact", "go", "rust", "swift", "kotlin", "scala", "dart", "php", "groovy",
        "objective-c", "objective-cpp", "jsonc", "zig", "proto", "solidity", "glsl", "hlsl")},
    **{lang: ("-- ", "") for lang in ("lua", "sql", "haskell", "elm", "ada", "vhdl")},
    **{lang: (";; ", "") for lang in ("lisp", "clojure", "scheme", "racket", "emacs-lisp", "elisp")},
    **{lang: ("% ", "") for lang in ("latex", "tex", "matlab", "erlang", "prolog")},
    **{lang: ('" ', "") for lang in ("vim",)},
    **{lang: ("<!-- ", " -->") for lang in ("html", "xml", "markdown", "svg", "vue", "svelte")},
    **{lang: ("/* ", " */") for lang in ("css", "scss", "less")},
}


def as_comment(text: str, language: str, indent: str = "", eol: str = "\n") -> str:
    """``text`` as line comments in ``language`` (``# `` when unknown), one per line."""
    start, end = COMMENT_SYNTAX.get(language.lower(), ("# ", ""))
    lines = text.strip("\n").replace("\r\n", "\n").split("\n")
    return "".join(f"{indent}{start}{line}{end}".rstrip() + eol for line in lines)


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def default_target_language(text: str) -> str:
    """Chinese ↔ English: text that is mostly CJK goes to English, anything else to Chinese."""
    letters = [ch for ch in text if ch.isalpha()]
    cjk = sum(1 for ch in letters if _CJK.match(ch))
    return "English" if letters and cjk * 3 >= len(letters) else "Chinese (Simplified)"


_FENCE = re.compile(r"^\s*(`{3,}|~{3,})[^\n]*\n(.*?)\n?\s*\1\s*$", re.DOTALL)


def strip_fences(text: str) -> str:
    """A reply wrapped in one Markdown code fence becomes the code inside it."""
    match = _FENCE.match(text)
    return match.group(2) if match else text.strip("\n")


def match_indentation(code: str, indent: str) -> str:
    """Re-indent ``code`` so that its least-indented lines start with ``indent``."""
    lines = code.split("\n")
    widths = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    strip = min(widths, default=0)
    return "\n".join((indent + line[strip:]) if line.strip() else "" for line in lines)


_SECTION = re.compile(r"##[ \t]+(system|user|assistant)[ \t]*", re.IGNORECASE)
#: A Markdown code fence: up to three spaces, then three or more backticks or tildes.
_FENCE_LINE = re.compile(r" {0,3}(`{3,}|~{3,})")


def is_chat_document(uri: str) -> bool:
    """A Markdown file whose name ends in ``.chat.md`` holds a conversation."""
    return uri.lower().endswith(".chat.md")


def parse_chat(text: str) -> list[Message]:
    """``## system`` / ``## user`` / ``## assistant`` sections -> messages (empty ones dropped).

    A heading inside a fenced code block is part of the text, not a new turn: a reply that
    shows a chat document as an example is sent back as that one reply.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    messages: list[Message] = []
    role: str | None = None
    body: list[str] = []
    fence = ""  # the open fence's characters, or "" outside a code block

    def flush() -> None:
        content = "\n".join(body).strip()
        if role is not None and content:
            messages.append({"role": role, "content": content})

    for line in lines:
        opened = _FENCE_LINE.match(line)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence) \
                    and not line[opened.end():].strip():
                fence = ""
        elif opened and not (opened.group(1)[0] == "`" and "`" in line[opened.end():]):
            fence = opened.group(1)
        elif heading := _SECTION.fullmatch(line):
            flush()
            role, body = heading.group(1).lower(), []
            continue
        body.append(line)
    flush()
    return messages
