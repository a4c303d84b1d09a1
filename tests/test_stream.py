"""Coalescing and insertion tracking against a simulated editor that echoes late."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpt_ls.actions.edits import Coalescer, DocumentSink, normalize_eol
from gpt_ls.actions.insertion import InsertionTracker
from gpt_ls.pieces import Text
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
    def document(self, uri: str) -> tuple[Text, int | None] | None:
        return Text(self.server_text), self.server_version

    silent = False  # Neovim: a stale versioned edit is dropped but reported as applied

    async def apply_insert(self, uri: str, version: int | None, at: Pos, text: str) -> bool:
        self.calls.append((version, at, text))
        if self.reject_versions and version is not None and version != self.version:
            return self.silent
        self.edit(at, at, text)
        return True

    # the user, or the editor applying an edit
    #: Neovim-like debounce of whole-document changes: one didChange per ``echo_delay``
    #: carries every change made meanwhile (the user's and ours together).
    debounce = False

    def edit(self, start: Pos, end: Pos, text: str) -> None:
        self.text, _ = apply_change(self.text, start, end, text, "utf-16")
        self.version += 1
        version = self.version
        if self.debounce:
            if not any(not echo.done() for echo in self._echoes):
                self._echoes.append(asyncio.get_running_loop().create_task(self._debounced()))
            return
        self._echoes.append(asyncio.get_running_loop().create_task(self._echo(start, end, text, version)))

    async def _debounced(self) -> None:
        await asyncio.sleep(self.echo_delay)
        old = self.server_text
        new, change = apply_change(old, None, None, self.text, "utf-16")
        self.server_text, self.server_version = new, self.version
        for tracker in self.trackers:
            tracker.on_change(change, old, new)

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
        while not all(echo.done() for echo in self._echoes):
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


# -- the reply's own line: opened by the first edit, never glued onto the next line ---------
NEXT = "An existing line right below 下一行 👇."


class Recording(SimEditor):
    """A SimEditor that keeps the text it shows after every change."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.shown = [self.text]

    def edit(self, start: Pos, end: Pos, text: str) -> None:
        super().edit(start, end, text)
        self.shown.append(self.text)


async def stream_below(pieces: list[str], open_line: bool, delay: float = 0.03, **kw) -> Recording:
    editor = Recording(f"问题 alpha?\n{NEXT}\n", echo_delay=kw.pop("echo_delay", 0.02), **kw)
    sink = make_sink(editor, offset=len("问题 alpha?\n"), open_line=open_line)
    await feed(sink, pieces, delay=delay)
    report = await sink.close()
    await editor.settle()
    assert report.complete_in_document
    assert editor.server_text == editor.text
    return editor


REPLIES = [
    ["alpha ", "beta ", "gamma 😀"],
    ["line one 一\n", "line two", " 二\n"],
    ["ends with two breaks\n", "\n"],
    ["\n"],
    ["\n", "starts with a break"],
    [],
]


@pytest.mark.parametrize("pieces", REPLIES)
@pytest.mark.parametrize("whole_document", [False, True])
async def test_an_opened_line_ends_as_the_reply_inserted_at_once(pieces, whole_document):
    opened = await stream_below(pieces, open_line=True, whole_document=whole_document)
    glued = await stream_below(pieces, open_line=False, whole_document=whole_document)
    assert opened.text == glued.text  # the final document is exactly what it was
    reply = "".join(pieces)
    expected = reply if reply.endswith("\n") or not reply else reply + "\n"
    assert opened.text == f"问题 alpha?\n{expected}{NEXT}\n"


@pytest.mark.parametrize("pieces", REPLIES)
async def test_no_intermediate_document_glues_the_reply_onto_the_next_line(pieces):
    editor = await stream_below(pieces, open_line=True, delay=0.08)
    for shown in editor.shown:
        assert f"\n{NEXT}\n" in shown, shown  # the next line is always a whole line of its own
    if len(pieces) == 3:
        assert len(editor.shown) == 4  # it streamed in three edits


async def test_the_first_edit_opens_the_line_and_later_ones_stream_into_it():
    editor = await stream_below(["alpha ", "beta ", "gamma"], open_line=True, echo_delay=0.15)
    assert editor.shown[1] == f"问题 alpha?\nalpha \n{NEXT}\n"
    assert [text for _, _, text in editor.calls] == ["alpha \n", "beta ", "gamma"]
    assert editor.shown[2] == f"问题 alpha?\nalpha beta \n{NEXT}\n"


async def test_an_opened_line_survives_a_discarded_first_edit():
    editor = Recording(f"q\n{NEXT}\n", echo_delay=0.15)
    editor.silent = True  # Neovim: the stale versioned edit is dropped but "applied"
    sink = make_sink(editor, offset=2, open_line=True)
    editor.type_at_offset(0, "> ")  # unseen by the server when the first edit goes out
    sink.write("reply 回复")
    report = await sink.close()
    await editor.settle()
    assert editor.text == f"> q\nreply 回复\n{NEXT}\n"
    assert report.inserted == "reply 回复\n"
    assert report.complete_in_document


async def test_an_opened_line_after_a_refused_first_edit():
    editor = Recording(f"q\n{NEXT}\n", echo_delay=0.15)
    sink = make_sink(editor, offset=2, open_line=True)
    editor.type_at_offset(0, "> ")  # refused: the version is stale
    await feed(sink, ["one ", "two"], delay=0.05)
    report = await sink.close()
    await editor.settle()
    assert editor.calls[0][0] == 1
    assert editor.text == f"> q\none two\n{NEXT}\n"
    assert report.complete_in_document
    assert all(f"\n{NEXT}\n" in shown for shown in editor.shown)


# (Unversioned edits with typing above cannot be tested: an edit computed before the
# user's typing reached the server lands where the server thought the reply was.)
@pytest.mark.parametrize(("where", "versioned"), [("above", True), ("below", True), ("below", False)])
async def test_typing_beside_an_opened_line_with_debounced_whole_document_changes(where, versioned):
    # One whole-document didChange may carry the user's typing and our edits together.
    editor = Recording(f"q 你\n{NEXT}\n", echo_delay=0.15, whole_document=True)
    editor.debounce, editor.versioned = True, versioned
    sink = make_sink(editor, offset=len("q 你\n"), open_line=True)
    sink.write("one 一 ")
    await asyncio.sleep(0.2)
    assert sink.report.edits >= 1
    at = 0 if where == "above" else len(editor.text)
    editor.type_at_offset(at, "用户 😀\n")
    await feed(sink, ["two ", "三"], delay=0.06)
    report = await sink.close()
    await editor.settle()
    assert report.complete_in_document
    body = f"q 你\none 一 two 三\n{NEXT}\n"
    assert editor.text == ("用户 😀\n" + body if where == "above" else body + "用户 😀\n")


async def test_typing_above_and_below_in_one_debounced_whole_document_change():
    editor = Recording(f"q 你\n{NEXT}\n", echo_delay=0.15, whole_document=True)
    editor.debounce = True
    sink = make_sink(editor, offset=len("q 你\n"), open_line=True)
    sink.write("one 一 ")
    await asyncio.sleep(0.25)
    assert sink.report.edits == 1 and not sink.tracker.pending
    editor.type_at_offset(len(editor.text), "below 😀\n")
    editor.type_at_offset(1, " above 上")  # one didChange: a change from line 1 to the end, around the reply
    await asyncio.sleep(0.2)
    await feed(sink, ["two ", "三"], delay=0.06)
    report = await sink.close()
    await editor.settle()
    assert report.complete_in_document
    assert editor.text == f"q above 上 你\none 一 two 三\n{NEXT}\nbelow 😀\n"


@pytest.mark.parametrize(("change", "region"), [
    (Change(0, 1, "XY"), (4, 10)),  # before
    (Change(3, 3, "Z"), (4, 10)),  # at its start: before
    (Change(9, 9, "Y"), (3, 9)),  # at its end: after
    (Change(1, 11, "abcd" + "reply!" + "e"), (5, 11)),  # around: found once in the new text
    (Change(1, 11, "reply!reply!"), None),  # around, found twice: ambiguous
    (Change(1, 11, "rep ly!"), None),  # around, the reply changed
    (Change(5, 6, "Q"), None),  # inside
    (Change(5, 5, ""), (3, 9)),  # nothing at all
])
def test_tracker_follows_changes_before_after_and_around(change, region):
    text = "012reply!789"
    t = InsertionTracker(3)
    t.end = 9  # the reply "reply!" is text[3:9]
    t.on_change(change, text, text[: change.start] + change.text + text[change.end :])
    if region is None:
        assert t.broken == "the reply's text was edited while it streamed"
    else:
        assert (t.start, t.end, t.broken) == (*region, None)


async def test_an_opened_line_in_a_crlf_document():
    editor = Recording("q 问\r\nnext 下\r\n", echo_delay=0.02)
    sink = make_sink(editor, offset=len("q 问\r\n"), prefix="", eol="\r\n", open_line=True)
    await feed(sink, ["a 一\n", "b\r", "\nc 😀\r\n"], delay=0.08)
    report = await sink.close()
    await editor.settle()
    assert editor.text == "q 问\r\na 一\r\nb\r\nc 😀\r\nnext 下\r\n"
    assert report.inserted == "a 一\r\nb\r\nc 😀\r\n"
    assert all(shown.endswith("\r\nnext 下\r\n") and "\r\r" not in shown for shown in editor.shown)


_PIECES = st.text(alphabet=st.sampled_from(["a", "b", "\n", "中", "🙂"]), max_size=6)


@given(old=st.text(alphabet=st.sampled_from(["a", "b", "\n", "中", "🙂"]), max_size=30),
       data=st.data(), pieces=st.lists(_PIECES, min_size=1, max_size=3))
def test_an_echo_is_recognised_from_the_changed_window_exactly_as_from_the_whole_text(
        old: str, data: st.DataObject, pieces: list[str]) -> None:
    """The tracker compares only where an echo can differ; the answer is the whole-text comparison's."""
    start = data.draw(st.integers(0, len(old)))
    tracker = InsertionTracker(start)
    for piece in pieces:
        tracker.sent(piece, after=data.draw(st.integers(0, len(piece))))
    a = data.draw(st.one_of(st.just(min(tracker.point, len(old))), st.integers(0, len(old))))
    b = data.draw(st.one_of(st.just(a), st.integers(a, len(old))))
    inserted = data.draw(st.one_of(_PIECES, st.just("".join(pieces)), st.just(pieces[0])))
    new = old[:a] + inserted + old[b:]
    change = Change(a, b, inserted)
    for count in range(1, len(pieces) + 1):
        whole = len(new) - len(old) == sum(map(len, pieces[:count])) and new == tracker._with_pending(old, count)
        assert tracker._echoes(count, change, old, new) == whole
