"""select_context: chunks in rank order, fitted to the window with exact counts, deduplicated, labelled."""

from __future__ import annotations

from dataclasses import replace

from gpt_ls import tokens
from gpt_ls.index.chunks import Chunk
from gpt_ls.index.context import (
    CITE_INSTRUCTIONS,
    MIN_PARTIAL_TOKENS,
    SPARE_TOKENS,
    chunk_budget,
    default_overhead,
    label,
    render_block,
    reply_reserve,
    select_context,
)
from gpt_ls.index.search import Hit
from gpt_ls.models import lookup_model
from gpt_ls.settings import Settings


def hit(path: str, start: int, text: str, score: float = 1.0) -> Hit:
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    return Hit(Chunk(path, start, start + lines - 1, text), score)


def body(name: str, lines: int) -> str:
    return "".join(f"    value_{name}_{i} = compute_{name}({i}, 'parameter number {i}')\n" for i in range(lines))


SETTINGS = Settings()


def test_small_hits_all_go_in_rank_order_labelled_fitted_by_their_size() -> None:
    hits = [hit("src/b.py", 10, "def b():\n    return 2\n", 3.0),
            hit("文档/说明 😀.md", 1, "# 标题\n递归就是函数调用自身\n", 2.0)]
    fitted = select_context("what does b return?", hits, "gpt-4o", SETTINGS)
    assert fitted.labels == ["src/b.py:10-11", "文档/说明 😀.md:1-2"]
    assert fitted.block.index("[src/b.py:10-11]") < fitted.block.index("[文档/说明 😀.md:1-2]")
    assert "递归就是函数调用自身" in fitted.block
    assert fitted.left_out == 0 and fitted.covers("src/b.py", 11) and not fitted.covers("src/b.py", 12)
    assert not fitted.exact and fitted.tokens == len(fitted.block.encode("utf-8"))  # the bound: no count needed
    assert fitted.system_text().startswith(CITE_INSTRUCTIONS)
    assert label("a.py", 3, 3) == "a.py:3"


def test_gpt4_window_keeps_the_top_hit_and_fills_up_with_whole_chunks_exactly() -> None:
    # The answer ranks third behind two big chunks; gpt-4's 8k window must still carry it.
    hits = [hit("big/one.py", 1, body("one", 90)), hit("big/two.py", 1, body("two", 90)),
            hit("src/config.py", 40, "def parse_config_file(path):\n    return load(path)\n"),
            *[hit(f"more/m{i}.py", 1, body(f"m{i}", 40)) for i in range(20)]]
    fitted = select_context("where is parse_config_file defined?", hits, "gpt-4", SETTINGS)
    info = lookup_model("gpt-4")
    assert fitted.covers("src/config.py", 40)
    ranks = [s.rank for s in fitted.sources]
    assert ranks == sorted(ranks) and ranks[0] == 0
    assert fitted.exact and fitted.tokens == tokens.count_text(fitted.block, info.encoding) <= fitted.budget
    assert fitted.left_out > 0
    for source in fitted.sources:  # nothing cut: each is the whole chunk
        original = hits[source.rank].chunk
        assert (source.start_line, source.end_line, source.text) == (original.start_line, original.end_line,
                                                                      original.text)
    overhead = default_overhead("where is parse_config_file defined?", info)
    assert reply_reserve(info, None) == 2048
    assert fitted.budget == chunk_budget(info, None, overhead) == 8192 - 2048 - overhead - SPARE_TOKENS


def test_overlapping_ranges_are_sent_once() -> None:
    text = "".join(f"line {i}\n" for i in range(1, 31))
    lines = text.splitlines(keepends=True)
    hits = [hit("a.py", 1, "".join(lines[:20])), hit("a.py", 5, "".join(lines[4:10])),
            hit("a.py", 15, "".join(lines[14:30])), hit("b.py", 5, "x\n")]
    fitted = select_context("q", hits, "gpt-4o", SETTINGS)
    assert fitted.labels == ["a.py:1-20", "a.py:21-30", "b.py:5"]
    assert fitted.sources[1].text == "".join(lines[20:30])
    assert fitted.left_out == 1


def test_a_chunk_larger_than_the_room_is_cut_only_when_much_of_it_fits() -> None:
    small = Settings(context_window=3000, max_tokens=1000)
    huge = hit("huge.py", 1, body("huge", 300))
    fitted = select_context("q", [huge, hit("s.py", 1, "def s(): pass\n")], "gpt-4", small)
    first = fitted.sources[0]
    assert first.path == "huge.py" and first.start_line == 1 and first.end_line < 300
    assert first.text == "".join(huge.chunk.text.splitlines(keepends=True)[: first.end_line])
    assert fitted.tokens <= fitted.budget and fitted.tokens >= MIN_PARTIAL_TOKENS
    # When the top hit fits, a later big one is skipped, never cut.
    fitted = select_context("q", [hit("s.py", 1, "def s(): pass\n"), huge], "gpt-4", small)
    assert fitted.labels == ["s.py:1"] and fitted.left_out == 1


def test_no_room_no_chunks_and_backticks_get_a_longer_fence() -> None:
    assert select_context("q", [hit("a.md", 1, "x\n")], "gpt-4", Settings(context_window=1200, max_tokens=1200)
                          ).sources == ()
    block = render_block(select_context("q", [hit("a.md", 1, "```py\nx\n```\n")], "gpt-4o", SETTINGS).sources)
    assert block.startswith("[a.md:1-3]\n````\n```py\n") and block.endswith("```\n````\n")


def test_overhead_and_max_tokens_shrink_the_room() -> None:
    fitted = select_context("q", [], "gpt-4", replace(SETTINGS, max_tokens=500), overhead=1000)
    assert fitted.budget == 8192 - 500 - 1000 - SPARE_TOKENS and fitted.block == "" and fitted.system_text() == ""
