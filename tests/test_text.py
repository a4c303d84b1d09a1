"""Positions and offsets with CJK text, emoji, CRLF and odd line breaks."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpt_ls.text import (
    Change,
    LineIndex,
    Pos,
    apply_change,
    eol_of,
    minimal_change,
    offset_at,
    position_at,
    units,
)

DOC = "ab\n你好👋x\r\nz😀"
# offsets: a0 b1 \n2 | 你3 好4 👋5 x6 \r7 \n8 | z9 😀10 | end 11


@pytest.mark.parametrize(
    ("text", "encoding", "expected"),
    [
        ("abc", "utf-16", 3),
        ("你好", "utf-16", 2),
        ("你好", "utf-8", 6),
        ("你好", "utf-32", 2),
        ("👋", "utf-16", 2),
        ("👋", "utf-8", 4),
        ("👋", "utf-32", 1),
        ("a👋b", "utf-16", 4),
    ],
)
def test_units(text, encoding, expected):
    assert units(text, encoding) == expected


@pytest.mark.parametrize(
    ("line", "character", "encoding", "expected"),
    [
        (0, 0, "utf-16", 0),
        (1, 0, "utf-16", 3),
        (1, 1, "utf-16", 4),
        (1, 2, "utf-16", 5),
        (1, 3, "utf-16", 5),  # inside 👋's surrogate pair: rounds down
        (1, 4, "utf-16", 6),
        (1, 5, "utf-16", 7),
        (1, 99, "utf-16", 7),  # past the end of the line: before its \r\n
        (2, 1, "utf-16", 10),
        (2, 3, "utf-16", 11),
        (2, 2, "utf-32", 11),
        (1, 4, "utf-8", 4),  # inside 好's bytes: rounds down
        (1, 3, "utf-8", 4),
        (1, 10, "utf-8", 6),
        (9, 0, "utf-16", 11),  # past the last line
        (-1, 4, "utf-16", 0),
    ],
)
def test_offset_at(line, character, encoding, expected):
    assert offset_at(DOC, line, character, encoding) == expected


@pytest.mark.parametrize(
    ("offset", "encoding", "expected"),
    [
        (0, "utf-16", Pos(0, 0)),
        (5, "utf-16", Pos(1, 2)),
        (6, "utf-16", Pos(1, 4)),
        (6, "utf-8", Pos(1, 10)),
        (6, "utf-32", Pos(1, 3)),
        (8, "utf-16", Pos(1, 5)),  # between \r and \n: end of the line
        (9, "utf-16", Pos(2, 0)),
        (11, "utf-16", Pos(2, 3)),
        (10_000, "utf-16", Pos(2, 3)),
    ],
)
def test_position_at(offset, encoding, expected):
    assert position_at(DOC, offset, encoding) == expected


def test_only_lsp_line_breaks_split_lines():
    # \x0b, \x1c and U+2028 are line breaks to str.splitlines, not to LSP.
    text = "a\x0bb\u2028c\x1cd\ne"
    index = LineIndex(text)
    assert index.line_count == 2
    assert index.line_text(0) == "a\x0bb\u2028c\x1cd"
    assert offset_at(text, 1, 0) == 8


def test_lone_cr_is_a_line_break():
    assert LineIndex("a\rb\r\nc\n").starts == [0, 2, 5, 7]


def test_apply_change_with_emoji_and_full_replace():
    new, change = apply_change("x😀y\nz", Pos(0, 1), Pos(0, 3), "你", "utf-16")
    assert new == "x你y\nz"
    assert (change.start, change.end, change.text) == (1, 2, "你")
    new, change = apply_change("abc", None, None, "new", "utf-16")
    assert new == "new"
    assert (change.start, change.end) == (0, 3)


def test_apply_change_inverted_range_is_normalised():
    new, change = apply_change("hello", Pos(0, 4), Pos(0, 1), "", "utf-16")
    assert new == "ho"
    assert (change.start, change.end) == (1, 4)


@pytest.mark.parametrize(("text", "eol"), [("a\r\nb", "\r\n"), ("a\nb\r\n", "\n"), ("ab", "\n"), ("a\rb", "\r")])
def test_eol_of(text, eol):
    assert eol_of(text) == eol


@pytest.mark.parametrize("text", ["", "a", "a\n", "\n\n", "ab\n你好👋x\nz😀", "x\n" * 1500 + "末尾👋"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
def test_single_position_helpers_agree_with_line_index(text, encoding):
    # offset_at/position_at scan strings instead of indexing every line: same answers.
    index = LineIndex(text)
    lines = text.count("\n")
    for line in [-1, 0, 1, 2, lines, lines + 1, 1001, 1200]:
        for character in [0, 1, 2, 3, 4, 5, 99]:
            assert offset_at(text, line, character, encoding) == index.offset(line, character, encoding)
    for offset in range(-1, len(text) + 2, max(1, len(text) // 300)):
        assert position_at(text, offset, encoding) == index.position(offset, encoding)


def test_apply_change_deep_in_a_long_document():
    text = "".join(f"第{i}行\n" for i in range(3000))
    new, change = apply_change(text, Pos(2500, 1), Pos(2500, 4), "👋", "utf-16")
    assert change == Change(text.index("第2500行") + 1, text.index("第2500行") + 4, "👋")
    assert new.splitlines()[2500] == "第👋0行"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("abc", "abc", Change(3, 3, "")),
        ("abc", "abXc", Change(2, 2, "X")),
        ("xaay", "xaaay", Change(3, 3, "a")),  # inside a run: at the run's end
        ("", "new", Change(0, 0, "new")),
        ("abc", "", Change(0, 3, "")),
        ("abc", "new", Change(0, 3, "new")),
        ("你好😀世界", "你好世界", Change(2, 3, "")),
        ("第一行\n问题 👋\n", "用户\n第一行\n问题 👋\n", Change(0, 0, "用户\n")),
        ("a\r\nb\r\n", "a\r\nb\r\nc\r\n", Change(6, 6, "c\r\n")),
        ("ab😀cd", "ab😃cd", Change(2, 3, "😃")),
    ],
)
def test_minimal_change(old, new, expected):
    assert minimal_change(old, new) == expected
    assert old[: expected.start] + expected.text + old[expected.end :] == new


def test_whole_document_change_becomes_the_ranged_change_it_is():
    old = "".join(f"第{i}行 line {i} 😀\n" for i in range(5000))
    at = old.index("第2500行")
    new = old[:at] + "typed 用户 " + old[at:]
    text, change = apply_change(old, None, None, new, "utf-16")
    assert text == new
    assert change == Change(at, at, "typed 用户 ")


# The index answers from scans of the text (no table of every line) when it has no \r: the
# same answers as the table, checked at every line and offset.
_TEXTS = st.text(alphabet=st.sampled_from(["a", " ", "\n", "\r", "中", "文", "🙂", "é"]), max_size=60)


@given(_TEXTS)
def test_the_scanning_index_agrees_with_the_table_of_lines(text: str) -> None:
    table = LineIndex(text)
    assert len(table.starts) == text.count("\n") + text.replace("\r\n", "\n").count("\r") + 1  # the table, built
    scan = LineIndex(text)
    assert scan.line_count == table.line_count
    for line in range(table.line_count):
        assert (scan.line_start(line), scan.line_end(line)) == (table.starts[line], table.ends[line])
        assert scan.line_text(line) == table.line_text(line)
        for character in (0, 1, 2, 5, 99):
            for encoding in ("utf-8", "utf-16", "utf-32"):
                assert scan.offset(line, character, encoding) == table.offset(line, character, encoding)
    for offset in range(-1, len(text) + 2):
        for encoding in ("utf-8", "utf-16", "utf-32"):
            assert scan.position(offset, encoding) == table.position(offset, encoding)
    assert scan.offset(table.line_count + 3, 0, "utf-16") == len(text)


def test_a_deep_line_of_a_long_document_needs_no_table_of_lines() -> None:
    text = "".join(f"第 {i} 行 🙂 x\n" for i in range(10_000))
    index = LineIndex(text)
    offset = index.offset(9_000, 4, "utf-16")  # 第, space, 9, 0 ... the fourth code unit
    assert text[offset - 4 : offset] == "第 90"
    assert index.position(offset, "utf-16") == Pos(9_000, 4)
    assert index._table is None


@given(st.text(alphabet="a你🙂 \n", max_size=60), st.data(), st.integers(1, 4))
def test_the_excerpt_found_by_finds_equals_the_line_tables(text: str, data: st.DataObject, lines: int) -> None:
    from gpt_ls.prompts import excerpt

    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    table = LineIndex(text + "\r")  # a ``\r`` makes the index build its table of every line
    first = max(0, table.position(start, "utf-32").line - lines)
    last = min(table.line_count - 1, table.position(end, "utf-32").line + lines)
    after = len(text) if last + 1 >= table.line_count else table.line_start(last + 1)
    expected = (text[table.line_start(first) : start], text[end:min(after, len(text))])
    assert excerpt(text, start, end, lines) == expected
