"""Post-processing a completion reply into the exact text to insert: literal cases, one per habit of models."""

from __future__ import annotations

import pytest

from gpt_ls.completions.postprocess import (
    clean,
    cut_block,
    drop_duplicate_lines,
    reindent,
    strip_echo,
    strip_fences,
    strip_suffix_overlap,
)

FUNC = "def add(a, b):\n    ret"


@pytest.mark.parametrize(
    ("raw", "before", "after", "expected"),
    [
        # nothing useful
        ("", FUNC, "\n", ""),
        ("   \n\t\n", FUNC, "\n", ""),
        ("```\n```", FUNC, "\n", ""),
        ("```python\n\n```", FUNC, "\n", ""),
        # plain continuations
        ("urn a + b", FUNC, "\n", "urn a + b"),
        (" + 1", "x = y", "\n", " + 1"),
        # fences
        ("```python\nurn a + b\n```", FUNC, "\n", "urn a + b"),
        ("```py\nurn a + b\n```\nThis returns the sum.", FUNC, "\n", "urn a + b"),
        ("~~~\nurn a + b\n~~~", FUNC, "\n", "urn a + b"),
        ("Here is the completion:\n```python\nurn a + b\n```", FUNC, "\n", "urn a + b"),
        ("```\nurn a + b", FUNC, "\n", "urn a + b"),  # unclosed (cut at max_tokens)
        # echoes of the prefix: the current line, with or without its indentation, or whole lines
        ("    return a + b", FUNC, "\n", "urn a + b"),
        ("return a + b", FUNC, "\n", "urn a + b"),
        ("def add(a, b):\n    return a + b", FUNC, "\n", "urn a + b"),
        ("def add(a, b):\n    ret", FUNC, "\n", ""),  # only the prefix again
        ("def add(a, b):\n    return a + b", "def add(a, b):\n    ", "\n", "return a + b"),
        ("    return a + b", "def add(a, b):\n    ", "\n", "return a + b"),
        ("  return a + b", "def add(a, b):\n    ", "\n", "return a + b"),
        # the cursor placeholder of the chat prompt, echoed
        ("<CURSOR>urn a + b", FUNC, "\n", "urn a + b"),
        # overlap with the rest of the line
        ("x, y)", "print(", ")\n", "x, y"),
        ("x, y))", "print(len(", "))\n", "x, y"),
        ('name}")', 'print(f"{', '}")\n', "name"),
        ("items[0]", "first = ", "\n", "items[0]"),
        ("a + b", "total = ", " + c\n", "a + b"),  # "b" is not the rest of the line: kept
        ("value;", "let x = ", ";\n", "value"),
        # duplicates of the next lines
        ("    return 1", "def f():\n", "\n    return 1\n", ""),
        ("x = 1\ny = 2", "", "\ny = 2\n", "x = 1"),
        ("x = 1\n\ny = 2", "", "\ny = 2\n", "x = 1"),
        # indentation: a chat reply written from column 0 at an indented cursor
        ("if x:\n    return 1", "def f(x):\n    ", "\n", "if x:\n        return 1"),
        ("for i in r:\n    s += i\nreturn s", "def f(r):\n    s = 0\n    ", "\n",
         "for i in r:\n        s += i"),  # typing: the block the first line opens, then stop
        # the end of the block
        ("\n    return x\n\ndef g():\n    pass", "def f(x):", "\n", "\n    return x"),
        ("\n    return x\ndef g():\n    pass", "def f(x):", "\n", "\n    return x"),
        (" {\n  return 1;\n}\nfunction g() {}", "function f()", "\n", " {\n  return 1;\n}"),
        # CJK and emoji pass through untouched
        ('"你好，世界 🙂")', 'print(', ")\n", '"你好，世界 🙂"'),
        ("注释：求和", "# ", "\n", "注释：求和"),
        # trailing blank lines are dropped
        ("urn a + b\n\n", FUNC, "\n", "urn a + b"),
        # CRLF documents get CRLF suggestions
        ("\n    return x\n    pass", "def f(x):", "\r\n", "\r\n    return x\r\n    pass"),
    ],
)
def test_clean_typing(raw: str, before: str, after: str, expected: str) -> None:
    assert clean(raw, before, after) == expected


def test_invoked_keeps_a_block_with_blank_lines() -> None:
    raw = "\n    a = 1\n\n    return a\n\ndef g(): pass"
    assert clean(raw, "def f():", "\n", invoked=True) == "\n    a = 1\n\n    return a"
    assert clean(raw, "def f():", "\n", invoked=False) == "\n    a = 1"


def test_fim_replies_are_not_reindented() -> None:
    # A FIM model sees the real prefix: its later lines are already absolute.
    assert clean("if x:\n        return 1", "def f(x):\n    ", "\n", chat=False) == "if x:\n        return 1"
    assert clean("if x:\n        return 1", "def f(x):\n    ", "\n", chat=True) == "if x:\n        return 1"
    # ...so a line back at the cursor's depth ends the block the first line opened.
    assert clean("if x:\n    return 1", "def f(x):\n    ", "\n", chat=False) == "if x:"
    assert clean("x = 1\n    y = 2\nz = 3", "def f():\n    ", "\n", chat=False) == "x = 1\n    y = 2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("```\ncode\n```", "code"),
        ("\n\n```js\ncode()\nmore()\n```\n", "code()\nmore()"),
        ("````md\n```\ninner\n```\n````", "```\ninner\n```"),
        ("prose: not a fence\ncode", "prose: not a fence\ncode"),
        ("code\n```", "code\n```"),  # no opening fence: kept
    ],
)
def test_strip_fences(text: str, expected: str) -> None:
    assert strip_fences(text) == expected


@pytest.mark.parametrize(
    ("text", "before", "expected"),
    [
        ("abc", "", "abc"),
        ("x = 1", "x = 1\n", "x = 1"),  # a new line that happens to equal the last one: not an echo of the cursor line
        ("x = 1\ny = 2", "x = 1\n", "y = 2"),
        ("ppend(x)", "items.a", "ppend(x)"),
        ("items.append(x)", "items.a", "ppend(x)"),
        ("s.append(x)", "items.a", "s.append(x)"),  # starts mid-word: not an echo
        ("range(3)", "for i in ra", "nge(3)"),  # the word being typed, repeated
        ("名字 + 1", "x = 名字", " + 1"),
    ],
)
def test_strip_echo(text: str, before: str, expected: str) -> None:
    assert strip_echo(text, before) == expected


def test_strip_echo_keeps_a_newline_only_overlap() -> None:
    assert strip_echo("\nprint(x)", "x = 1\n") == "\nprint(x)"


def test_reindent_only_for_a_cursor_after_indentation() -> None:
    assert reindent("if x:\n    y", "", "    ") == "if x:\n        y"
    assert reindent("if x:\n    y", "    ", "    ") == "if x:\n    y"  # the model kept the indentation
    assert reindent("x + 1\ny", "", "    a = ") == "x + 1\ny"  # mid-line: not a new statement


def test_cut_block_and_overlap_helpers() -> None:
    assert cut_block("a\n  b\nc", "  x", invoked=True) == "a\n  b"
    assert cut_block("a\nb", "", invoked=False) == "a\nb"
    assert strip_suffix_overlap("f(x)", ")  \n") == "f(x"
    assert strip_suffix_overlap("abc", "") == "abc"
    assert drop_duplicate_lines("a\nb", "", "x\nb") == "a\nb"  # the cursor's line is not blank after it
    assert drop_duplicate_lines("a\nb", "", "\nb\nc") == "a"


@pytest.mark.parametrize(
    ("raw", "before", "after", "invoked", "expected"),
    [
        # typing inside a line: the suggestion ends with the line
        ("x, y)\nprint(z)", "f(", ")\n", False, "x, y"),
        ("x, y)\nprint(z)", "f(", ")\n", True, "x, y)\nprint(z"),  # invoked: a block may follow (then ")" overlaps)
        # running on into the code already below, the last line cut short by max_tokens
        ("x = 1\ny = 2\nz = 3\nw", "", "\ny = 2\nz = 3\nwhile True:\n", False, "x = 1"),
        ("x = 1\ny = 2\nq = 0", "", "\ny = 2\nz = 3\n", False, "x = 1\ny = 2\nq = 0"),  # diverges: kept
        # a block written from column 0 after an indented header
        ("\nreturn x\n", "    def f(self, x):", "\n", True, "\n        return x"),
        ("\n        return x", "    def f(self, x):", "\n", True, "\n        return x"),
        # a long echo that starts mid-line (the prompt's window began there)
        ("ine two\nline three\nlin" + "e four", "line one\nline two\nline three\nlin", "\n", False, "e four"),
    ],
)
def test_clean_more(raw: str, before: str, after: str, invoked: bool, expected: str) -> None:
    assert clean(raw, before, after, invoked=invoked) == expected
