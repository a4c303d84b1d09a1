"""``gpt_ls.pieces.Text`` answers exactly as the one-string functions of ``gpt_ls.text`` do."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt_ls import pieces, prompts
from gpt_ls.pieces import Text, cut
from gpt_ls.text import Change, LineIndex, Pos, apply_change, eol_of, offset_at, position_at

ENCODINGS = ("utf-16", "utf-8", "utf-32")
#: Characters that make positions differ by encoding, and line endings of every kind.
ALPHABET = st.sampled_from(["a", "b", " ", "\n", "中", "文", "🙂", "é", "\r", "\r\n", "\t"])


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 8 characters, so that short texts already span many blocks."""
    monkeypatch.setattr(pieces, "BLOCK", 8)


def text_of(chars: list[str]) -> str:
    return "".join(chars)


def test_cut_ends_blocks_at_line_breaks_and_keeps_every_character() -> None:
    text = "line one\nsecond\n" * 5 + "x" * 40
    blocks = cut(text)
    assert "".join(blocks) == text
    lines = [b for b in blocks if "x" not in b]
    assert len(lines) >= 4 and all(b.endswith("\n") for b in lines)
    inside = [len(b) for b in blocks if "\n" not in b]  # a long line is cut inside, every BLOCK characters
    assert len(inside) >= 3 and set(inside[:-1]) == {8} and inside[-1] <= 16
    assert all(len(b) <= 2 * pieces.BLOCK for b in blocks)


def test_cut_short_text_is_one_block() -> None:
    assert cut("") == [""]
    assert cut("a\nb") == ["a\nb"]


@settings(max_examples=120, deadline=None)
@given(st.lists(ALPHABET, max_size=80), st.lists(st.tuples(st.integers(-3, 90), st.integers(-3, 90),
                                                           st.lists(ALPHABET, max_size=12)), max_size=8))
def test_replace_and_slices_match_str(chars: list[str], edits: list[tuple[int, int, list[str]]]) -> None:
    expected = text_of(chars)
    text = Text(expected)
    versions = [(text, expected)]
    for a, b, new in edits:
        lo, hi = sorted((max(0, min(a, len(expected))), max(0, min(b, len(expected)))))
        text = text.replace(a, b, text_of(new))
        expected = expected[:lo] + text_of(new) + expected[hi:]
        versions.append((text, expected))
    for value, string in versions:  # every earlier value is still valid: Text is immutable
        assert len(value) == len(string)
        for i in range(0, len(string) + 2, 3):
            for j in range(i, len(string) + 2, 5):
                assert value[i:j] == string[i:j]
        assert value[-4:] == string[-4:]
        assert str(value) == string


@settings(max_examples=120, deadline=None)
@given(st.lists(ALPHABET, max_size=80), st.integers(0, 80))
def test_positions_match_str(chars: list[str], at: int) -> None:
    string = text_of(chars)
    at = min(at, len(string))
    # One string, the same in blocks, and blocks after an edit: each agrees with the str functions.
    edited = Text(string[:at] + "#" + string[at:]).replace(at, at + 1, "")
    for text in (Text(string), Text(string).replace(0, 0, ""), edited):
        assert str(text) == string
        for encoding in ENCODINGS:
            for offset in range(-1, len(string) + 2):
                assert text.position(offset, encoding) == position_at(string, offset, encoding)
            for line in range(-1, string.count("\n") + string.count("\r") + 3):
                for character in (-1, 0, 1, 2, 3, 5, 9, 40):
                    assert text.offset(line, character, encoding) == offset_at(string, line, character, encoding)


@settings(max_examples=100, deadline=None)
@given(st.lists(ALPHABET, max_size=60), st.integers(0, 12), st.integers(0, 4), st.integers(0, 12),
       st.integers(0, 4), st.lists(ALPHABET, max_size=6), st.sampled_from(ENCODINGS))
def test_apply_matches_apply_change(chars: list[str], l1: int, c1: int, l2: int, c2: int,
                                    new: list[str], encoding: str) -> None:
    string = text_of(chars)
    text = Text(string).replace(0, 0, "")  # in blocks
    start, end = Pos(l1, c1), Pos(l2, c2)
    got, change = text.apply(start, end, text_of(new), encoding)  # type: ignore[arg-type]
    want, want_change = apply_change(string, start, end, text_of(new), encoding)  # type: ignore[arg-type]
    assert (str(got), change) == (want, want_change)


def test_whole_document_change_is_reported_as_the_smallest_ranged_change() -> None:
    text = Text("第一行\n第二行 🙂\n第三行\n" * 3).replace(0, 0, "")
    new_text = str(text).replace("第二行 🙂", "第二行 🙂🙂", 1)
    got, change = text.apply(None, None, new_text, "utf-16")
    assert str(got) == new_text
    assert change == Change(9, 9, "🙂")  # after "第一行\n第二行 🙂"


def test_a_long_document_edit_copies_one_block_not_the_document() -> None:
    text = Text("def f():  # 第 1 行 🙂\n" * 2_000).replace(0, 0, "")
    edited = text.replace(20_000, 20_000, "新")
    old = {id(b) for b in text._blocks or []}
    fresh = [b for b in edited._blocks or [] if id(b) not in old]
    assert 1 <= len(fresh) <= 2  # only the touched block (cut in two when it grew) is new
    assert str(edited)[20_000] == "新"


@settings(max_examples=100, deadline=None)
@given(st.lists(ALPHABET, max_size=60))
def test_line_questions_match_line_index(chars: list[str]) -> None:
    string = text_of(chars)
    index = LineIndex(string)
    for text in (Text(string), Text("#" + string).replace(0, 1, "")):
        assert text.line_count == index.line_count
        assert text.eol == eol_of(string)
        for line in range(index.line_count):
            assert (text.line_start(line), text.line_end(line)) == (index.line_start(line), index.line_end(line))


@settings(max_examples=100, deadline=None)
@given(st.lists(ALPHABET, max_size=60), st.integers(0, 60), st.integers(0, 60), st.integers(0, 3))
def test_excerpt_of_a_text_matches_the_excerpt_of_its_string(chars: list[str], a: int, b: int, lines: int) -> None:
    string = text_of(chars)
    start, end = sorted((min(a, len(string)), min(b, len(string))))
    pieced = Text("#" + string).replace(0, 1, "")
    assert prompts.excerpt(pieced, start, end, lines) == prompts.excerpt(string, start, end, lines)
