"""The terminal Markdown renderer of ``gpt-ls chat`` and the reply printer, in-process."""

from __future__ import annotations

import io

import pytest

from gpt_ls.cli.markdown import TerminalMarkdown, display_width
from gpt_ls.cli.output import ReplyPrinter
from gpt_ls.exchange import Reply, Usage


@pytest.mark.parametrize(("line", "shown"), [
    ("# Title", "\x1b[1;4mTitle\x1b[0m"),
    ("### Small ###", "\x1b[1mSmall\x1b[0m"),
    ("Use `a*b*c` and **bold** or *it*", "Use \x1b[36ma*b*c\x1b[0m and \x1b[1mbold\x1b[0m or \x1b[3mit\x1b[0m"),
    ("  - 列表 item", "  • 列表 item"),
    ("2. second", "2. second"),
    ("> quoted", "\x1b[2m│\x1b[0m \x1b[3mquoted\x1b[0m"),
    ("---", "\x1b[2m" + "─" * 40 + "\x1b[0m"),
    ("2 * 3 * 4", "2 * 3 * 4"),
    ("snake_case_name", "snake_case_name"),
])
def test_lines_are_styled(line: str, shown: str) -> None:
    assert TerminalMarkdown().render_line(line) == shown


def test_code_blocks_keep_their_text() -> None:
    md = TerminalMarkdown()
    shown = [md.render_line(line) for line in ["```py", "# not a heading", "", "**x**", "```", "# Heading"]]
    assert shown == ["\x1b[2m```py\x1b[0m", "\x1b[33m# not a heading\x1b[0m", "", "\x1b[33m**x**\x1b[0m",
                     "\x1b[2m```\x1b[0m", "\x1b[1;4mHeading\x1b[0m"]


def test_a_streamed_line_is_shown_raw_then_replaced_by_its_rendering() -> None:
    md = TerminalMarkdown(columns=4)
    assert md.feed("# 你好") == "# 你好"
    # "# 你好" is 6 columns: two rows of 4, so one row up before clearing.
    assert md.feed("\nplain") == "\r\x1b[A\x1b[J\x1b[1;4m你好\x1b[0m\nplain"
    assert md.finish() == "\r\x1b[A\x1b[Jplain"
    assert display_width("a你👋\u0301") == 5


def test_piped_replies_are_plain_and_the_usage_goes_to_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    printer = ReplyPrinter(out, err, terminal=False)
    printer.start("gpt-4o")
    for delta in ("# Ti", "tle\n`x`"):
        printer.text(delta)
    printer.end(Reply("# Title\n`x`", "complete", "gpt-4o", usage=Usage(3, 4)), {})
    assert out.getvalue() == "# Title\n`x`\n"
    assert err.getvalue() == "[gpt-4o · 3 prompt + 4 completion = 7 tokens]\n"


def test_the_waiting_sign_is_cleared_when_nothing_came() -> None:
    out = io.StringIO()
    printer = ReplyPrinter(out, io.StringIO(), terminal=True)
    printer.start("gpt-4o")
    printer.end(None, {})
    assert out.getvalue() == "\x1b[2m… waiting for gpt-4o\x1b[0m\r\x1b[K"
