"""Coalescing and insertion tracking against a simulated editor that echoes late."""

from __future__ import annotations

import asyncio

import pytest

from gpt_ls.actions.edits import Coalescer, DocumentSink, InsertionTracker, normalize_eol
from gpt_ls.text import Change, LineIndex, Pos, apply_change


class SimEditor:
    """An editor: applies edits at once, sends didChange ``echo_delay`` seconds later."""

    def __init__(
        self, text: str, echo_delay: float = 0.05, reject_versions: bool = True, whole_document: bool = False
    ) -> None:
        self.text = text  # what the editor shows
        #: Echo every change as a whole-document didChange (full sync, buffer reloads).
        self.whole_document = whole_document
        self.version = 1
        self.server_text = text  # what the server has seen through didChange
        self.server_version = 1
        self.trackers: list[InsertionTracker] = []
        self.echo_delay = echo_delay
        self.reject_versions = reject_versions
        self.encoding = "utf-16"
        self.versioned = True
        self.calls: list[tuple[int | None, Pos, str]] = []
        self._echoes: list[asyncio.Task[None]] = []

    # SinkTarget
    def document(self, uri: str) -> tuple[str, int | None] | None:
        return self.server_text, self.server_version

    silent = False  # Neovim: a stale versioned edit is dropped but reported as applied

    async def apply_insert(self, uri: str, version: int | None, at: Pos, text: str) -> bool:
        self.calls.append((version, at, text))
        if self.reject_versions and version is not None and version != self.version:
            return self.silent
        self.edit(at, at, text)
        return True

    # the user, or the editor applying an edit
    def edit(self, start: Pos, end: Pos, text: str) -> None:
        self.text, _ = apply_change(self.text, start, end, text, "utf-16")
        self.version += 1
        version = self.version
        self._echoes.append(asyncio.get_running_loop().create_task(self._echo(start, end, text, version)))

    def type_at_offset(self, offset: int, text: str) -> None:
        pos = LineIndex(self.text).position(offset, "utf-16")
        self.edit(pos, pos, text)

    async def _echo(self, start: Pos, end: Pos, text: str, version: int) -> None:
        await asyncio.sleep(self.echo_delay)
        old = self.server_text
        new, change = apply_change(old, start, end, text, "utf-16")
        if self.whole_document:
            new, change = apply_change(old, None, None, new, "utf-16")
        self.server_text, self.server_version = new, version
        for tracker in self.trackers:
            tracker.on_change(change, old, new)

    async def settle(self) -> None:
        await asyncio.gather(*self._echoes)


def make_sink(editor: SimEditor, offset: int, **kw) -> DocumentSink:
    tracker = InsertionTracker(offset)
    editor.trackers.append(tracker)
    sink = DocumentSink(editor, "file:///doc.txt", tracker, interval=kw.pop("interval", 0.05), **kw)
    sink.start()
    return sink


async def feed(sink: DocumentSink, pieces: list[str], delay: float = 0.01) -> None:
    for piece in pieces:
        sink.write(piece)
        await asyncio.sleep(delay)


async def test_reply_lands_below_selection_with_cjk_and_emoji():
    editor = SimEditor("问题：你好吗？👋\nnext line\n")
    sink = make_sink(editor, offset=len("问题：你好吗？👋\n"))
    await feed(sink, ["我很", "好 😀", "，谢谢", "！"])
    report = await sink.close()
    await editor.settle()
    assert editor.text == "问题：你好吗？👋\n我很好 😀，谢谢！\nnext line\n"
    assert editor.server_text == editor.text
    assert report.complete_in_document
    assert report.inserted == "我很好 😀，谢谢！\n"
    assert 1 <= report.edits <= 4


async def test_user_typing_above_during_streaming_keeps_both_texts():
    editor = SimEditor("top\nquestion\n", echo_delay=0.08)
    sink = make_sink(editor, offset=len("top\nquestion\n"))
    sink.write("Answer ")
    await asyncio.sleep(0.1)
    editor.type_at_offset(0, "# typed by the user 用户\n")
    await feed(sink, ["is ", "forty-", "two."], delay=0.06)
    report = await sink.close()
    await editor.settle()
    assert editor.text == "# typed by the user 用户\ntop\nquestion\nAnswer is forty-two.\n"
    assert report.complete_in_document


async def test_user_typing_after_the_insertion_point_stays_after_the_reply():
    editor = SimEditor("q\ntail\n", echo_delay=0.05)
    sink = make_sink(editor, offset=2)
    sink.write("one ")
    await asyncio.sleep(0.12)
    editor.type_at_offset(len(editor.text), "more user text\n")
    await feed(sink, ["two ", "three"], delay=0.06)
    await sink.close()
    await editor.settle()
    assert editor.text == "q\none two three\ntail\nmore user text\n"


async def test_editing_inside_the_reply_stops_streaming_and_reports_it():
    editor = SimEditor("q\n", echo_delay=0.02)
    sink = make_sink(editor, offset=2)
    sink.write("first part ")
    await asyncio.sleep(0.15)
    editor.type_at_offset(4, "XX")  # inside "first part"
    await asyncio.sleep(0.1)
    await feed(sink, ["second part"], delay=0.06)
    report = await sink.close()
    await editor.settle()
    assert not report.complete_in_document
    assert report.reason == "the reply's text was edited while it streamed"
    assert "second part" not in editor.text
    assert editor.text == "q\nfiXXrst part "


async def test_rejected_stale_version_is_retried_after_the_changes_arrive():
    editor = SimEditor("q\n", echo_delay=0.15)
    sink = make_sink(editor, offset=2)
    editor.type_at_offset(0, "> ")  # the server has not seen this yet: its version is stale
    sink.write("reply")
    report = await sink.close()
    await editor.settle()
    assert editor.text == "> q\nreply\n"
    assert report.complete_in_document
    assert editor.calls[0][0] == 1  # first try carried the stale version and was refused


async def test_crlf_document_gets_crlf_reply_and_eof_prefix():
    editor = SimEditor("line one\r\nquestion")
    sink = make_sink(editor, offset=len(editor.text), prefix="\n", eol="\r\n")
    await feed(sink, ["a\n", "b\r", "\nc"])
    await sink.close()
    await editor.settle()
    assert editor.text == "line one\r\nquestion\r\na\r\nb\r\nc\r\n"


async def test_editor_that_never_applies_fails_without_hanging():
    class Refusing(SimEditor):
        async def apply_insert(self, uri, version, at, text):
            return False

    editor = Refusing("q\n")
    sink = make_sink(editor, offset=2, retries=1)
    sink.write("lost?")
    report = await asyncio.wait_for(sink.close(), 5)
    assert not report.complete_in_document
    assert report.reason == "the editor did not apply the reply's edits"


async def test_edits_are_coalesced():
    editor = SimEditor("q\n", echo_delay=0.0)
    sink = make_sink(editor, offset=2, interval=0.1)
    await feed(sink, ["x"] * 100, delay=0.005)  # ~0.5 s of tokens
    report = await sink.close()
    assert editor.text == "q\n" + "x" * 100 + "\n"
    assert report.edits <= 8


def test_coalescer_holds_back_a_trailing_cr():
    c = Coalescer(eol="\r\n", interval=0)
    c.feed("a\r")
    assert c.take(1.0) == "a"
    c.feed("\nb")
    assert c.take(2.0) == "\r\nb"
    c.feed("z\r")
    assert c.take(3.0, final=True) == "z\r\n"


@pytest.mark.parametrize(("text", "eol", "expected"), [("a\nb", "\r\n", "a\r\nb"), ("a\r\nb\rc", "\n", "a\nb\nc")])
def test_normalize_eol(text, eol, expected):
    assert normalize_eol(text, eol) == expected


def test_tracker_shifts_and_breaks():
    t = InsertionTracker(10)
    t.sent("abc")
    old = "0123456789tail"
    new = old[:10] + "abc" + old[10:]
    t.on_change(Change(10, 10, "abc"), old, new)
    assert (t.start, t.end, list(t.pending)) == (10, 13, [])
    t.on_change(Change(0, 2, ""), new, new[2:])  # deletion before: shift left
    assert (t.start, t.end) == (8, 11)
    t.on_change(Change(11, 11, "zz"), "", "")  # insertion right after: untouched
    assert (t.start, t.end, t.broken) == (8, 11, None)
    t.on_change(Change(9, 10, "Q"), "", "")  # inside: broken
    assert t.broken is not None


async def test_silently_discarded_versioned_edit_is_sent_again():
    editor = SimEditor("q\n", echo_delay=0.15)
    editor.silent = True
    sink = make_sink(editor, offset=2)
    editor.type_at_offset(0, "> ")  # unseen by the server when the first edit goes out
    sink.write("reply 回复")
    report = await sink.close()
    await editor.settle()
    assert editor.text == "> q\nreply 回复\n"
    assert report.complete_in_document
    assert report.inserted == "reply 回复\n"


# -- whole-document didChange: the same results as ranged changes ------------------------
@pytest.mark.parametrize("typed", ["before the first edit", "during streaming"])
async def test_whole_document_changes_keep_typing_above_the_reply(typed):
    editor = SimEditor("顶部 top 👋\nquestion 问题\ntail 尾\n", echo_delay=0.08, whole_document=True)
    sink = make_sink(editor, offset=len("顶部 top 👋\nquestion 问题\n"))
    if typed == "before the first edit":
        editor.type_at_offset(0, "# 用户 typed 😀\n")
        await asyncio.sleep(0.01)
    sink.write("答案 ")
    await asyncio.sleep(0.1)
    if typed == "during streaming":
        assert sink.report.edits >= 1  # streaming has begun; the sink is not closed yet
        editor.type_at_offset(0, "# 用户 typed 😀\n")
    await feed(sink, ["is ", "forty-", "two 🎉."], delay=0.06)
    report = await sink.close()
    await editor.settle()
    assert editor.text == "# 用户 typed 😀\n顶部 top 👋\nquestion 问题\n答案 is forty-two 🎉.\ntail 尾\n"
    assert editor.server_text == editor.text
    assert report.complete_in_document


async def test_whole_document_changes_keep_typing_below_the_reply_after_it():
    editor = SimEditor("q 你\ntail 😀\n", echo_delay=0.05, whole_document=True)
    sink = make_sink(editor, offset=len("q 你\n"))
    sink.write("one ")
    await asyncio.sleep(0.12)
    assert sink.report.edits >= 1
    editor.type_at_offset(len(editor.text), "more 用户 text\n")
    await feed(sink, ["two ", "三"], delay=0.06)
    report = await sink.close()
    await editor.settle()
    assert editor.text == "q 你\none two 三\ntail 😀\nmore 用户 text\n"
    assert report.complete_in_document


async def test_whole_document_change_inside_the_reply_still_stops_streaming():
    editor = SimEditor("q\n", echo_delay=0.02, whole_document=True)
    sink = make_sink(editor, offset=2)
    sink.write("first 第一 part ")
    await asyncio.sleep(0.1)
    await editor.settle()
    editor.type_at_offset(4, "X")
    await asyncio.sleep(0.05)
    await feed(sink, ["second"], delay=0.01)
    report = await sink.close()
    assert not report.complete_in_document
    assert report.reason == "the reply's text was edited while it streamed"
