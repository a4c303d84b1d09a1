"""The action runner and every delivery path, in-process: an in-memory editor and a scripted exchange."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpt_ls.actions.catalog import Action, Catalog
from gpt_ls.actions.runner import ActionRunner
from gpt_ls.errors import InvalidRequest, RateLimited
from gpt_ls.settings import Settings
from gpt_ls.text import Pos
from tests.support.memory_editor import FULL, NO_EDITS, Hang, MemoryEditor, ScriptedExchange

pytestmark = pytest.mark.timeout(10)

SETTINGS = Settings(history=False)
#: A reply file's name: the time, the action, a random part (ACTION stands for the action's id).
REPLY_FILE = re.compile(r"\d{8}-\d{6}-ACTION-[0-9a-f]{8}\.md")
USAGE = "gpt-4.1-mini · 12 prompt + {n} completion = {t} tokens"


def make(
    *script: Any, features: Any = FULL, settings: Settings = SETTINGS, catalog: Catalog | None = None, **kw: Any
) -> tuple[MemoryEditor, ScriptedExchange, ActionRunner]:
    editor = MemoryEditor(features, **kw)
    exchange = ScriptedExchange(*script)
    runner = ActionRunner(editor, lambda: settings, exchange, (lambda: catalog) if catalog else Catalog)
    editor.listeners.append(runner.on_change)
    return editor, exchange, runner


async def start(runner: ActionRunner, editor: MemoryEditor, action: str, uri: str, needle: str) -> asyncio.Task[Any]:
    """Start an action on ``needle``; its task."""
    result = await runner.run_action(action, uri, *editor.range_of(uri, needle))
    task = runner.running[result["id"]].task
    assert task is not None
    return task


async def run(runner: ActionRunner, editor: MemoryEditor, action: str, uri: str, needle: str,
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run an action on ``needle`` and wait until its reply is delivered."""
    start, end = editor.range_of(uri, needle)
    result = await runner.run_action(action, uri, start, end, extra)
    run_ = runner.running.get(result.get("id", -1))
    if run_ is not None and run_.task is not None:
        await run_.task
    await editor.settle()
    return result


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_ask_streams_below_the_selection() -> None:
    editor, _, runner = make("我很", "好 😀", "，谢谢！")
    uri = "file:///work/q.md"
    editor.open(uri, "问题：你好吗？👋\nnext line\n", "markdown")
    result = await run(runner, editor, "ask", uri, "你好吗？👋")
    assert result == {"id": 1, "status": "started", "output": "insert_below"}
    assert editor.text(uri) == "问题：你好吗？👋\n我很好 😀，谢谢！\nnext line\n"
    assert editor.progresses[0].title == "gpt-ls: Ask"
    assert editor.progresses[0].events[0] == "begin gpt-ls: Ask"
    assert editor.progresses[0].events[-1] == "end " + USAGE.format(n=3, t=15)
    assert editor.statuses[0] == (1, 0, "GPT: Ask…")
    assert editor.statuses[-1] == (0, 0, USAGE.format(n=3, t=15))
    assert runner.running == {} and runner.trackers == {uri: []}


async def test_typing_above_while_the_reply_streams_keeps_both() -> None:
    editor, _, runner = make("一", 0.05, "二", 0.05, "三", echo_delay=0.03)
    uri = "file:///work/q.txt"
    editor.open(uri, "问？\n")
    task = await start(runner, editor, "ask", uri, "问？")
    await until(lambda: "一" in editor.text(uri))
    assert not task.done()  # still streaming when the user types
    editor.type(uri, 0, "用户 👤\n")
    await task
    await editor.settle()
    assert editor.text(uri) == "用户 👤\n问？\n一二三\n"


@pytest.mark.parametrize("echo_delay", [None, 0.15])
async def test_a_streaming_reply_is_never_glued_onto_the_next_line(echo_delay: float | None) -> None:
    editor, _, runner = make("alpha ", 0.25, "beta 二 ", 0.25, "gamma 😀", echo_delay=echo_delay)
    uri = "file:///work/q.txt"
    below = "An existing line right below."
    editor.open(uri, f"问题 ask?\n{below}\n")
    seen: list[str] = []
    editor.listeners.append(lambda _uri, _change, _old, new: seen.append(new))
    await run(runner, editor, "ask", uri, "问题 ask?")
    assert editor.text(uri) == f"问题 ask?\nalpha beta 二 gamma 😀\n{below}\n"
    # Each document the editor showed: the reply so far on a line of its own, then the next line.
    assert seen == [f"问题 ask?\n{part}\n{below}\n" for part in ("alpha ", "alpha beta 二 ", "alpha beta 二 gamma 😀")]


async def test_replace_puts_code_in_place_of_the_selection() -> None:
    editor, _, runner = make("```python\nreturn 2  # 二 😀\n```")
    uri = "file:///work/f.py"
    editor.open(uri, "def f():\n    return 1+1  # 二\n", "python")
    result = await run(runner, editor, "improveCode", uri, "return 1+1  # 二")
    assert result == {"id": 1, "status": "started", "output": "replace"}
    assert editor.text(uri) == "def f():\n    return 2  # 二 😀\n"
    assert editor.edits[0][4] == 1  # versioned


async def test_explain_is_a_hover_over_the_range_it_explains() -> None:
    editor, _, runner = make("青蛙", " 🐸")
    uri = "file:///work/poem.txt"
    editor.open(uri, "古池や\n蛙飛び込む 🐸\n")
    result = await run(runner, editor, "explain", uri, "蛙飛び込む")
    assert result == {"id": 1, "status": "complete", "text": "青蛙 🐸", "output": "hover"}
    assert editor.text(uri) == "古池や\n蛙飛び込む 🐸\n"  # the document is untouched
    hover = runner.hover_at(uri, Pos(1, 2))
    assert hover is not None
    assert hover.markdown == "青蛙 🐸\n\n---\n*" + USAGE.format(n=2, t=14) + "*"
    assert (hover.start, hover.end) == (Pos(1, 0), Pos(1, 5))
    assert runner.hover_at(uri, Pos(0, 1)) is None
    editor.type(uri, 0, "😀\n")  # the hover follows its text
    moved = runner.hover_at(uri, Pos(2, 2))
    assert moved is not None and (moved.start, moved.end) == (Pos(2, 0), Pos(2, 5))
    runner.forget(uri)
    assert runner.hover_at(uri, Pos(2, 2)) is None


async def test_explain_output_comment_writes_a_comment_above() -> None:
    editor, _, runner = make("Sets x.\n", "设定 x。", settings=Settings(history=False, explain_output="comment"))
    uri = "file:///work/x.py"
    editor.open(uri, "if y:\n    x = 1  # 一\n", "python")
    result = await run(runner, editor, "explain", uri, "x = 1")
    assert result == {"id": 1, "status": "complete", "text": "Sets x.\n设定 x。", "output": "comment_above"}
    assert editor.text(uri) == "if y:\n    # Sets x.\n    # 设定 x。\n    x = 1  # 一\n"


async def test_a_client_without_edits_gets_the_reply_as_a_document() -> None:
    editor, _, runner = make("答案 ✅", features=NO_EDITS)
    uri = "file:///work/q.txt"
    editor.open(uri, "问题？\n")
    result = await run(runner, editor, "ask", uri, "问题？")
    assert result == {"id": 1, "status": "complete", "text": "答案 ✅", "output": "document"}
    [path] = editor.files
    assert path.parent == Path("/memory/documents") and REPLY_FILE.fullmatch(path.name.replace("ask", "ACTION", 1))
    assert editor.files == {path: "# GPT: Ask\n\n答案 ✅\n"}
    assert editor.shown == [(path, True)]
    assert editor.text(uri) == "问题？\n"
    assert editor.progresses[0].events[-1].startswith("end gpt-4.1-mini")


@pytest.mark.parametrize(("features", "action", "title"), [
    (NO_EDITS, "ask", "GPT: Ask"),  # the reply is a document
    (FULL, "improveCode", "GPT: Improve code"),  # the edit is refused: the reply falls back to a file
])
async def test_reply_files_of_two_sessions_never_overwrite_each_other(features: Any, action: str, title: str) -> None:
    files: dict[Path, str] = {}
    for session in ("一", "二"):  # each session's first run has run id 1
        editor, _, runner = make(f"答案 {session}", features=features)
        editor.files = files  # one cache directory for both
        editor.refuse_edits = True
        uri = "file:///work/q.py"
        editor.open(uri, "问题 = 1\n", "python")
        result = await run(runner, editor, action, uri, "问题 = 1")
        assert result["id"] == 1
    assert sorted(files.values()) == [f"# {title}\n\n答案 一\n", f"# {title}\n\n答案 二\n"]
    assert len({path.parent for path in files}) == 1


async def test_a_replace_the_editor_refuses_opens_as_a_markdown_document() -> None:
    editor, _, runner = make("fixed = 1  # 😀")
    editor.refuse_edits = True
    uri = "file:///work/f.py"
    editor.open(uri, "fixed = 0\n", "python")
    await run(runner, editor, "improveCode", uri, "fixed = 0")
    assert editor.text(uri) == "fixed = 0\n"
    [(path, text)] = editor.files.items()
    assert path.parent == Path("/memory/replies") and REPLY_FILE.fullmatch(path.name.replace("improveCode", "ACTION"))
    assert text == "# GPT: Improve code\n\nfixed = 1  # 😀\n"
    assert editor.shown == [(path, False)]
    assert editor.messages == [("warning", "gpt-ls could not put the whole reply into the document (the editor did "
                                f"not apply the edit); it is shown in {path.name} and kept in history.")]


async def test_a_reply_that_can_be_neither_placed_nor_saved_is_shown_as_a_message() -> None:
    editor, _, runner = make("新代码 🆕")
    uri = "file:///work/f.py"
    editor.open(uri, "old = 0\n", "python")
    editor.save_fails = True
    task = await start(runner, editor, "improveCode", uri, "old = 0")
    editor.type(uri, 0, "# 用户\n")  # the user edits the selection's line before the reply lands
    editor.type(uri, len("# 用户\nold"), "er")
    await task
    assert editor.text(uri) == "# 用户\nolder = 0\n"
    assert editor.messages == [("info", "GPT: Improve code (the selection changed while the reply was written):"
                                "\n\n新代码 🆕")]


async def test_cancel_keeps_what_streamed_and_marks_it_unfinished() -> None:
    editor, _, runner = make("第一部分 🐢", Hang())
    uri = "file:///work/q.txt"
    editor.open(uri, "问：\n")
    task = await start(runner, editor, "ask", uri, "问：")
    await until(lambda: "第一部分" in editor.text(uri))
    editor.progresses[0].cancel()  # the user cancels the progress
    reply = await task
    assert (reply.status, reply.text) == ("cancelled", "第一部分 🐢")
    assert editor.text(uri) == "问：\n第一部分 🐢\n[gpt-ls: reply unfinished (cancelled)]\n"
    assert editor.progresses[0].events[-1] == "end cancelled"
    assert runner.cancel() == 0  # nothing left running


async def test_an_error_mid_stream_is_shown_and_the_partial_reply_kept() -> None:
    error = RateLimited("Rate limited (429) by the API: try again later.")
    editor, _, runner = make("部分", " 😀", error)
    uri = "file:///work/q.txt"
    editor.open(uri, "问？")
    await run(runner, editor, "ask", uri, "问？")
    assert editor.text(uri) == "问？\n部分 😀\n[gpt-ls: reply unfinished (rate_limit)]\n"
    assert editor.messages == [("error", "Rate limited (429) by the API: try again later.")]
    assert editor.progresses[0].events[-1] == "end failed: rate_limit"


async def test_send_streams_a_new_assistant_section_into_a_chat_document() -> None:
    editor, exchange, runner = make("Hi", " 😀")
    uri = "file:///work/talk.chat.md"
    editor.open(uri, "## user\n你好 👋\n", "markdown")
    result = await runner.send_chat(uri)
    task = runner.running[result["id"]].task
    assert task is not None
    await task
    await editor.settle()
    assert result["output"] == "insert_below"
    assert exchange.requests[0].chat == [{"role": "user", "content": "你好 👋"}]
    assert editor.text(uri) == "## user\n你好 👋\n\n## assistant\n\nHi 😀\n\n## user\n\n"


async def test_fix_code_gets_the_diagnostics_and_an_input_action_asks_its_choice() -> None:
    pick = Action("pick", "gpt-ls.run", "GPT: Pick", "Answer in {input}.", input_choices=("中文", "English"))
    catalog = Catalog()
    catalog.actions.append(pick)
    editor, exchange, runner = make("x", catalog=catalog, features=NO_EDITS)
    uri = "file:///work/f.py"
    editor.open(uri, "print(y)\n", "python")
    diagnostic = {"range": {"start": {"line": 0, "character": 6}}, "message": "undefined name 'y'", "source": "flake"}
    await run(runner, editor, "fixCode", uri, "print(y)", {"diagnostics": [diagnostic]})
    assert exchange.requests[0].context.diagnostics == "line 1: undefined name 'y' (flake)"
    editor.features = FULL
    editor.choice = "中文"
    await run(runner, editor, "pick", uri, "print(y)")
    assert editor.choices_asked == [("GPT: Pick: choose", ["中文", "English"])]
    assert exchange.requests[1].context.input == "中文"
    editor.choice = None
    start, end = editor.range_of(uri, "print(y)")
    assert await runner.run_action("pick", uri, start, end) == {"status": "dismissed"}


async def test_unknown_actions_and_empty_selections_are_refused_with_a_sentence() -> None:
    editor, _, runner = make()
    uri = "file:///work/a.txt"
    editor.open(uri, "\n   \n")
    with pytest.raises(InvalidRequest, match=r"unknown action 'nope'; known: ask, explain"):
        await runner.run_action("nope", uri, Pos(0, 0), Pos(0, 0))
    with pytest.raises(InvalidRequest, match="GPT: Ask: the selection is empty"):
        await runner.run_action("ask", uri, Pos(1, 0), Pos(1, 3))
    with pytest.raises(InvalidRequest, match=r"does not have file:///work/b\.txt open"):
        await runner.run_action("ask", "file:///work/b.txt", Pos(0, 0), Pos(0, 0))


async def test_a_very_large_document_gets_fewer_larger_edits(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpt_ls.actions import delivery, edits

    intervals: list[float] = []
    sink = delivery.DocumentSink

    def spy(*args: Any, **kw: Any) -> Any:
        intervals.append(kw["interval"])
        return sink(*args, **kw)

    monkeypatch.setattr(delivery, "DocumentSink", spy)
    editor, _, runner = make("答案 🙂", "，完")
    small, large = "file:///work/small.md", "file:///work/large.md"
    editor.open(small, "问题 👋\nnext\n", "markdown")
    body = "第 n 行 🙂 line\n" * 30_000  # 420,000 characters
    editor.open(large, "问题 👋\n" + body, "markdown")
    await run(runner, editor, "ask", small, "问题 👋")
    await run(runner, editor, "ask", large, "问题 👋")
    assert intervals == [edits.EDIT_INTERVAL, pytest.approx(0.2 * len(editor.text(large)) / 200_000, rel=0.01)]
    assert editor.text(large) == "问题 👋\n答案 🙂，完\n" + body  # nothing lost, in place
    assert edits.edit_interval(10**8) == edits.MAX_EDIT_INTERVAL and edits.edit_interval(0) == edits.EDIT_INTERVAL
