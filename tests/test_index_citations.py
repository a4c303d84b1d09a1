"""Citations become links to the lines (percent-encoded), streamed or not; the Sources list."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from gpt_ls.index.citations import CitationStream, file_link, link_citations, sources_section
from gpt_ls.index.context import Source

ROOT = Path("/work/my project")
SOURCES = [Source("src/app.py", 10, 24, "x\n", 0), Source("文档/说明 😀.md", 1, 8, "y\n", 1),
           Source("lib/util.py", 3, 5, "z\n", 2)]
APP = "file:///work/my%20project/src/app.py"
DOC = "file:///work/my%20project/%E6%96%87%E6%A1%A3/%E8%AF%B4%E6%98%8E%20%F0%9F%98%80.md"


def test_links_percent_encode_spaces_cjk_and_emoji() -> None:
    assert file_link(ROOT, "src/app.py", 10) == f"{APP}#L10"
    assert file_link(ROOT, "文档/说明 😀.md", 1) == f"{DOC}#L1"


def test_bracketed_backticked_and_bare_citations_become_links() -> None:
    text = ("It parses [src/app.py:10-24]. See `文档/说明 😀.md:2` and src/app.py:12-13; "
            "[src/app.py:10-24](already) stays, other.py:1-2 and xsrc/app.py:1 are not sources.")
    assert link_citations(text, SOURCES, ROOT) == (
        f"It parses [src/app.py:10-24]({APP}#L10). See [文档/说明 😀.md:2]({DOC}#L2) and "
        f"[src/app.py:12-13]({APP}#L12); [src/app.py:10-24](already) stays, other.py:1-2 and xsrc/app.py:1 "
        "are not sources.")


def test_nothing_inside_a_code_fence_is_rewritten() -> None:
    text = "see src/app.py:10\n```\nsrc/app.py:10\n```\nthen lib/util.py:3-5\n"
    assert link_citations(text, SOURCES, ROOT) == (
        f"see [src/app.py:10]({APP}#L10)\n```\nsrc/app.py:10\n```\n"
        "then [lib/util.py:3-5](file:///work/my%20project/lib/util.py#L3)\n")


def test_sources_lists_the_cited_chunks_in_order_else_all_sent() -> None:
    reply = "Answer [lib/util.py:4] and [src/app.py:10-24], again [lib/util.py:3-5], and [src/app.py:40]."
    assert sources_section(reply, SOURCES, ROOT) == (
        "\n\n**Sources**\n\n"
        "- [lib/util.py:3-5](file:///work/my%20project/lib/util.py#L3)\n"
        f"- [src/app.py:10-24]({APP}#L10)\n"
        f"- [src/app.py:40]({APP}#L40)\n")
    uncited = sources_section("No citations here.\n", SOURCES, ROOT)
    assert uncited.startswith("\n**Sources**\n\n") and uncited.count("\n- ") == 3
    assert sources_section("x", [], ROOT) == ""


REPLY = st.lists(st.sampled_from([
    "src/app.py:10-24", "[src/app.py:12]", "`lib/util.py:3-5`", "文档/说明 😀.md:1-8", " ", "\n", "```\n", "~~~\n",
    "text ", "src/app.py", ":", "1", "-", "[", "]", "`", "(x)", "中文", "😀", "    ", "\r\n",
]), max_size=40).map("".join)


@given(REPLY, st.lists(st.integers(1, 7), min_size=1, max_size=60))
def test_streaming_gives_the_same_text_as_rewriting_it_whole(reply: str, sizes: list[int]) -> None:
    stream, out, at = CitationStream(SOURCES, ROOT), [], 0
    for size in sizes * (len(reply) // max(1, sum(sizes)) + 1):
        if at >= len(reply):
            break
        out.append(stream.feed(reply[at : at + size]))
        at += size
    out.append(stream.feed(reply[at:]))
    out.append(stream.flush())
    assert "".join(out) == link_citations(reply, SOURCES, ROOT)


def test_a_path_glued_to_the_text_before_a_cut_stays_plain() -> None:
    stream = CitationStream(SOURCES, ROOT)
    start = "y" * 60 + "x"
    rest = "src/app.py:10 " + "z" * 21  # the cut falls right after the "x"
    assert stream.feed(start + rest) == start
    assert stream.flush() == rest


def test_a_stream_holds_back_only_a_citation_s_length() -> None:
    stream = CitationStream(SOURCES, ROOT)
    text = "A long first sentence that has nothing to link at all, and goes on. " * 3
    first = stream.feed(text)
    assert len(first) > 100 and first + stream.flush() == text
    plain = CitationStream([], ROOT)
    assert plain.feed("x" * 10) + plain.flush() == "x" * 10
