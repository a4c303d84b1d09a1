"""Chunking follows structure: definitions in code, sections in Markdown, paragraphs elsewhere (literal line ranges)."""

from __future__ import annotations

import random

import pytest

from gpt_ls.index import chunks
from gpt_ls.index.chunks import MAX_CHARS, MAX_LINES, chunk_text, definition_names

PYTHON = '''"""Module doc."""

import os

CONSTANT = 1


# A comment about parse.
@decorator
def parse_config_file(path):
    if path:
        return 1
    else:
        return 2


class Loader:
    """Loads."""

    def load(self):
        return os.getcwd()


if __name__ == "__main__":
    main()
'''

TYPESCRIPT = '''import { a } from "./a";
import { b } from "./b";

// Parses the config.
export function parseConfigFile(path: string): Config {
  const text = read(path);
  return JSON.parse(text);
}

export class Loader {
  load(): string {
    return "}";
  }
}

const x = {
  y: 1,
};
'''

GO = '''package main

import "fmt"

// Add adds.
func Add(a, b int) int {
\treturn a + b
}

type Point struct {
\tX int
}

func (p *Point) String() string {
\treturn fmt.Sprintf("%d", p.X)
}
'''

RUST = '''use std::fmt;

/// A point.
pub struct Point {
    x: i32,
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.x)
    }
}
'''

MARKDOWN = '''# Title

Intro text.

## Install

Run pip.

```sh
# not a heading
pip install x
```

## Usage

Use it.
'''

TEXT = "First paragraph\nstill first.\n\n\nSecond paragraph.\n\nThird 😀 paragraph\nwith 中文.\n"


def spans(path: str, text: str) -> list[tuple[int, int]]:
    return [(c.start_line, c.end_line) for c in chunk_text(path, text)]


@pytest.fixture
def unpacked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Show the structural cut alone: no small segment joins its neighbour."""
    monkeypatch.setattr(chunks, "SMALL_CHARS", 0)


@pytest.mark.usefixtures("unpacked")
@pytest.mark.parametrize(("path", "text", "expected"), [
    ("a.py", PYTHON, [(1, 5), (8, 14), (17, 21), (24, 25)]),
    ("a.ts", TYPESCRIPT, [(1, 1), (2, 2), (4, 8), (10, 14), (16, 18)]),
    ("a.go", GO, [(1, 1), (3, 3), (5, 8), (10, 12), (14, 16)]),
    ("a.rs", RUST, [(1, 1), (3, 6), (8, 12)]),
    ("README.md", MARKDOWN, [(1, 3), (5, 12), (14, 16)]),
    ("notes.txt", TEXT, [(1, 2), (5, 5), (7, 8)]),
])
def test_structural_boundaries(path: str, text: str, expected: list[tuple[int, int]]) -> None:
    assert spans(path, text) == expected


def test_small_neighbours_are_kept_together() -> None:
    assert spans("a.py", PYTHON) == [(1, 25)]
    assert spans("a.ts", TYPESCRIPT) == [(1, 18)]


def test_chunk_text_and_lines_match_the_file() -> None:
    lines = PYTHON.split("\n")
    for chunk in chunk_text("a.py", PYTHON):
        assert chunk.text == "\n".join(lines[chunk.start_line - 1:chunk.end_line])
        assert chunk.path == "a.py"


def test_a_long_class_is_cut_at_its_methods() -> None:
    methods = "".join(f"    def method_{i}(self):\n" + "        x = 1\n" * 30 + "\n" for i in range(8))
    text = "class Big:\n    \"\"\"Doc.\"\"\"\n\n" + methods
    found = chunk_text("big.py", text)
    assert len(found) > 1
    assert found[0].start_line == 1
    for chunk in found[1:]:
        assert chunk.text.lstrip().startswith("def method_")


def test_a_long_brace_block_is_cut_at_its_members() -> None:
    body = "".join(f"  method{i}() {{\n" + "    x += 1;\n" * 30 + "  }\n" for i in range(8))
    found = chunk_text("big.js", "class Big {\n" + body + "}\n")
    assert len(found) > 1
    assert all(c.text.lstrip().startswith(("class Big", "method")) for c in found)


def test_bounds_hold_for_any_text() -> None:
    rng = random.Random(14)
    words = ["def f():", "    return 1", "", "}", "{", "# h", "x = [", "]", "a" * 300, "中文 😀"]
    for path in ("a.py", "a.c", "a.md", "a.txt"):
        text = "\n".join(rng.choice(words) for _ in range(3000))
        found = chunk_text(path, text)
        assert all(len(c.text) <= MAX_CHARS and c.end_line - c.start_line < MAX_LINES for c in found)
        assert all(c.text.strip() for c in found)
        covered = {n for c in found for n in range(c.start_line, c.end_line + 1)}
        assert all(n in covered for n, line in enumerate(text.split("\n"), 1) if line.strip())


def test_a_minified_line_is_cut_into_pieces_sharing_its_number() -> None:
    found = chunk_text("app.min.js", "x" * (MAX_CHARS * 2 + 10))
    assert [(c.start_line, c.end_line, len(c.text)) for c in found] == [
        (1, 1, MAX_CHARS), (1, 1, MAX_CHARS), (1, 1, 10)]


def test_crlf_and_empty_files() -> None:
    assert spans("a.txt", "one\r\ntwo\r\n\r\nthree\r\n") == [(1, 4)]
    assert chunk_text("a.txt", "one\r\n")[0].text == "one"
    assert chunk_text("empty.py", "") == []
    assert chunk_text("blank.md", "\n\n  \n") == []


def test_definition_names() -> None:
    assert definition_names(PYTHON, "a.py") == "parse_config_file Loader load"
    assert definition_names(TYPESCRIPT, "a.ts") == "parseConfigFile Loader x"
    assert definition_names(GO, "a.go") == "Add Point String"
    assert definition_names(MARKDOWN, "a.md") == "Title Install Usage"


def test_a_long_class_header_never_joins_the_tail_before_it() -> None:
    method = "    def {}(self):\n" + "        x = 1\n" * 40 + "\n"
    text = ("class Parameter:\n" + "".join(method.format(f"m{i}") for i in range(4)) + "    def tail(self):\n"
            "        return 1\n\n\nclass Option(Parameter):\n    \"\"\"An option.\"\"\"\n\n"
            + "".join(method.format(f"o{i}") for i in range(4)))
    found = chunk_text("core.py", text)
    option = next(c for c in found if "class Option" in c.text)
    assert option.text.startswith("class Option(Parameter):")
    assert "def o0(self):" in option.text  # the header goes with what follows it
    assert definition_names(option.text, "core.py") == "Option o0"


def test_names_come_from_definitions_not_prose() -> None:
    text = '"""The class was built; a type is a name."""\nexport default class Widget {}\npub fn run() {}\n'
    assert definition_names(text, "a.ts") == "Widget run"


def test_a_class_header_takes_the_start_of_its_long_docstring_along() -> None:
    params = "".join(f"    :param p{i}: the parameter number {i}, described at some length here.\n" for i in range(60))
    text = 'class Option(Parameter):\n    """Options are optional values.\n\n' + params + '    """\n\n' + \
        "    def __init__(self):\n" + "        x = 1\n" * 10
    found = chunk_text("core.py", text)
    assert found[0].start_line == 1 and found[0].end_line > 10  # not the header and two lines alone
    assert ":param p0:" in found[0].text and len(found[0].text) > MAX_CHARS // 2
