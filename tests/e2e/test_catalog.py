"""The tutorial's uses as actions, user-defined actions, project instructions, chat documents."""

from __future__ import annotations

import re

import pytest
from lsprotocol import types

from tests.support.fakeopenai import Reply
from tests.support.lsp_editor import EditorConfig, server_env, start_editor

PY = "file:///work/code.py"


async def run(editor, action_id, uri, needle, extra=None):
    before = editor.idle_count
    args = [action_id, uri, editor.range_of(uri, needle)] + ([extra] if extra else [])
    result = await editor.run("gpt-ls.run", *args)
    await editor.wait_idle(before)
    return result


async def test_write_code_strips_fences_and_matches_indentation(start, api):
    api.script(Reply(text="```python\nif n < 2:\n    return n\nreturn fib(n - 1) + fib(n - 2)\n```"))
    editor = await start()
    editor.open(PY, "def fib(n):\n    # 递归计算斐波那契数\n", "python")
    await run(editor, "writeCode", PY, "# 递归计算斐波那契数")
    assert editor.docs[PY].text == (
        "def fib(n):\n    # 递归计算斐波那契数\n    if n < 2:\n        return n\n"
        "    return fib(n - 1) + fib(n - 2)\n")
    system, user = api.chat_requests()[0].body["messages"]
    assert system["content"].startswith(
        "You write code. The selection is a comment or an instruction in a python file.")
    assert user["content"].endswith("Selection:\n# 递归计算斐波那契数")


@pytest.mark.fast
async def test_improve_code_replaces_the_selection(start, api):
    api.script(Reply(text="```\nreturn sum(items)\n```"))
    editor = await start()
    text = "def total(items):\n    t = 0\n    for i in items: t += i\n    return t\n"
    editor.open(PY, text, "python")
    await run(editor, "improveCode", PY, "t = 0\n    for i in items: t += i\n    return t")
    assert editor.docs[PY].text == "def total(items):\n    return sum(items)\n"


async def test_fix_code_sends_the_editors_diagnostics(start, api):
    api.script(Reply(text="print('hi')"))
    editor = await start()
    editor.open(PY, "print 'hi'\n", "python")
    diagnostic = types.Diagnostic(
        range=types.Range(types.Position(0, 0), types.Position(0, 10)),
        message="Missing parentheses in call to 'print'", source="pyright")
    actions = await editor.client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=PY), range=editor.range_of(PY, "print 'hi'"),
        context=types.CodeActionContext(diagnostics=[diagnostic])))
    fix = next(a for a in actions if a.title == "GPT: Fix code")
    before = editor.idle_count
    await editor.run(fix.command.command, *fix.command.arguments)
    await editor.wait_idle(before)
    assert editor.docs[PY].text == "print('hi')\n"
    user = api.chat_requests()[0].body["messages"][1]["content"]
    assert "Diagnostics:\nline 1: Missing parentheses in call to 'print' (pyright)" in user
    assert user.endswith("Code to fix:\nprint 'hi'")


async def test_code_actions_are_not_offered_for_prose(start):
    editor = await start()
    editor.open("file:///work/notes.md", "text\n", "markdown")
    titles = [a.title for a in await editor.code_actions("file:///work/notes.md", editor.range_of(
        "file:///work/notes.md", "text"))]
    assert "GPT: Write code" not in titles
    assert "GPT: Translate" in titles
    editor.open(PY, "x = 1\n", "python")
    titles = [a.title for a in await editor.code_actions(PY, editor.range_of(PY, "x = 1"))]
    assert {"GPT: Write code", "GPT: Improve code", "GPT: Fix code"} <= set(titles)


@pytest.mark.parametrize(
    ("text", "target"), [("早上好，世界", "English"), ("Good morning", "Chinese (Simplified)")])
async def test_translate_picks_chinese_or_english(start, api, text, target):
    api.script(Reply(text="译文"))
    editor = await start()
    uri = "file:///work/t.txt"
    editor.open(uri, text + "\n")
    await run(editor, "translate", uri, text)
    system, user = api.chat_requests()[0].body["messages"]
    assert system["content"].startswith(f"You translate. Translate the user's text into {target},")
    assert user == {"role": "user", "content": text}
    assert editor.docs[uri].text == f"{text}\n译文\n"


async def test_translate_target_from_settings(start, api):
    editor = await start(EditorConfig(initialization_options={"translateTo": "Japanese"}))
    uri = "file:///work/t.txt"
    editor.open(uri, "hello\n")
    await run(editor, "translate", uri, "hello")
    assert "into Japanese," in api.chat_requests()[0].body["messages"][0]["content"]


async def test_summarize_is_shown_as_hover(start, api):
    api.script(Reply(text="- 一句话总结"))
    editor = await start()
    uri = "file:///work/long.txt"
    editor.open(uri, "a long text\n")
    result = await run(editor, "summarize", uri, "a long text")
    assert result["text"] == "- 一句话总结"
    hover = await editor.hover(uri, "long")
    assert hover.contents.value.startswith("- 一句话总结\n\n---\n")


async def test_tutor_ends_with_a_check_question_prompt(start, api):
    editor = await start()
    uri = "file:///work/lesson.txt"
    editor.open(uri, "勾股定理\n")
    await run(editor, "tutor", uri, "勾股定理")
    system = api.chat_requests()[0].body["messages"][0]["content"]
    assert "step by step" in system
    assert "End with one short question" in system


async def test_ask_about_this_file_sends_the_document_as_reference(start, api):
    editor = await start(EditorConfig(initialization_options={"contextLines": 1}))
    uri = "file:///work/spec.md"
    body = "".join(f"第{i}行 requirement {i}\n" for i in range(30))
    editor.open(uri, body + "Which requirement mentions 7?\n", "markdown")
    await run(editor, "askFile", uri, "Which requirement mentions 7?")
    system, user = api.chat_requests()[0].body["messages"]
    assert "The reference material below is the user's current file" in system["content"]
    assert "第0行 requirement 0\n" in system["content"]  # the whole file, not 1 line of context
    assert "<<<SELECTION>>>" in system["content"]
    assert user["content"] == "Which requirement mentions 7?"


async def test_ask_about_the_workspace_without_a_folder_includes_other_open_files(api, tmp_path):
    # With a workspace folder the question goes with the index's chunks (tests/e2e/test_workspace_ask.py).
    editor = await start_editor(server_env(api.url, str(tmp_path)), EditorConfig(), None)
    try:
        editor.open("file:///work/a.txt", "Alpha 的内容\n")
        editor.open("file:///work/b.txt", "What is in a?\n")
        await run(editor, "askWorkspace", "file:///work/b.txt", "What is in a?")
    finally:
        await editor.client.shutdown_session()
        await editor.client.stop()
    system = api.chat_requests()[0].body["messages"][0]["content"]
    assert "user's open files" in system
    assert "--- open file: a.txt ---\nAlpha 的内容" in system


async def test_role_play_uses_the_persona_and_continues(start, api):
    api.script(Reply(text="Arr!"), Reply(text="Aye."))
    editor = await start(EditorConfig(initialization_options={"persona": "You are a pirate 海盗."}))
    uri = "file:///work/play.txt"
    editor.open(uri, "Hello\nWho are you?\n")
    await run(editor, "rolePlay", uri, "Hello")
    await run(editor, "rolePlay", uri, "Who are you?")
    first, second = api.chat_requests()
    assert first.body["messages"] == [
        {"role": "system", "content": "You are a pirate 海盗."}, {"role": "user", "content": "Hello"}]
    assert second.body["messages"][1:] == [
        {"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Arr!"},
        {"role": "user", "content": "Who are you?"}]


async def test_user_defined_actions_from_toml_with_validation(start, api, workspace, tmp_path):
    # The user's own config may change a built-in; a workspace file may only add actions.
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text(
        '[actions.explain]\ntitle = "GPT: Explain (brief)"\noutput = "document"\n', encoding="utf-8")
    (workspace / ".gpt-ls.toml").write_text('''
[actions.haiku]
title = "GPT: Haiku"
system = "Write a haiku about {selection} in {language}."
template = "{selection}"
output = "insert_below"
model = "gpt-4o"
temperature = 1.2

[actions.explain]
title = "GPT: Explain (repo)"
output = "replace"

[actions.broken]
title = "Broken"
system = "uses {nope}"

[actions.badout]
title = "X"
system = "x"
output = "sideways"

[actions.nosystem]
title = "Only a title"
''', encoding="utf-8")
    api.script(Reply(text="古池や"))
    editor = await start()
    uri = "file:///work/poem.txt"
    editor.open(uri, "frogs\n")
    titles = [a.title for a in await editor.code_actions(uri, editor.range_of(uri, "frogs"))]
    assert "GPT: Haiku" in titles
    assert "GPT: Explain (brief)" in titles and "GPT: Explain (repo)" not in titles
    assert "Broken" not in titles and "X" not in titles and "Only a title" not in titles
    problems = [m for m in editor.message_texts() if "action" in m]
    ws = str(workspace / ".gpt-ls.toml")
    assert any(f"{ws}: action 'broken': 'system' uses unknown variable(s) {{nope}}" in m for m in problems)
    assert any(f"{ws}: action 'badout': 'output' must be one of" in m for m in problems)
    assert any(f"{ws}: action 'nosystem': a new action needs 'system'; skipped" in m for m in problems)
    assert any(f"{ws}: action 'explain' exists already ({tmp_path / 'config' / 'config.toml'}); a workspace "
               "file may add actions but not "
               "change existing ones" in m for m in problems)
    await run(editor, "haiku", uri, "frogs")
    body = api.chat_requests()[0].body
    assert (body["model"], body["temperature"]) == ("gpt-4o", 1.2)
    assert body["messages"][0]["content"] == "Write a haiku about frogs in plaintext."
    assert editor.docs[uri].text == "frogs\n古池や\n"
    # the built-in overridden in the user's config keeps its command and now opens a document
    before = editor.idle_count
    await editor.run("gpt-ls.explain", uri, editor.range_of(uri, "frogs"))
    await editor.wait_idle(before)
    assert re.search(r"/documents/\d{8}-\d{6}-explain-[0-9a-f]{8}\.md$", editor.client.shown_documents[-1].uri)
    # the action's model is for that action only
    await editor.action("gpt-ls.ask", uri, "frogs")
    assert api.chat_requests()[-1].body["model"] == "gpt-4.1-mini"


async def test_input_choices_are_asked_with_show_message_request(start, api):
    editor = await start(EditorConfig(initialization_options={"actions": {"tone": {
        "title": "GPT: Rewrite in a tone", "system": "Rewrite the text in a {input} tone.",
        "template": "{selection}", "output": "replace", "inputChoices": ["formal", "friendly"]}}}))

    @editor.client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def choose(params: types.ShowMessageRequestParams) -> types.MessageActionItem:
        return params.actions[1]

    uri = "file:///work/mail.txt"
    editor.open(uri, "send it now\n")
    api.script(Reply(text="Could you send it when you have a moment? 😊"))
    await run(editor, "tone", uri, "send it now")
    assert api.chat_requests()[0].body["messages"][0]["content"] == "Rewrite the text in a friendly tone."
    assert editor.docs[uri].text == "Could you send it when you have a moment? 😊\n"


async def test_project_instructions_join_every_system_message(start, api, workspace):
    (workspace / ".gpt-ls.md").write_text("Always answer in 简体中文.\n", encoding="utf-8")
    editor = await start()
    uri = "file:///work/q.txt"
    editor.open(uri, "q1\nq2\n")
    await editor.action("gpt-ls.ask", uri, "q1")
    await editor.action("gpt-ls.continue", uri, "q2")
    for request in api.chat_requests():
        assert request.body["messages"][0]["content"].endswith(
            "Project instructions (from .gpt-ls.md):\nAlways answer in 简体中文.")


async def test_chat_document_over_several_turns(start, api):
    api.script(Reply(text="你好！有什么可以帮你？"), Reply(text="北京。"))
    editor = await start()
    uri = "file:///work/talk.chat.md"
    editor.open(uri, "## system\n\n只用中文回答。\n\n## user\n\n你好\n", "markdown")
    actions = await editor.code_actions(uri, editor.range_of(uri, "你好"))
    assert actions[0].title == "GPT: Send"
    assert list(actions[0].command.arguments) == [uri]
    before = editor.idle_count
    await editor.run("gpt-ls.send", uri)
    await editor.wait_idle(before)
    assert editor.docs[uri].text == (
        "## system\n\n只用中文回答。\n\n## user\n\n你好\n\n## assistant\n\n你好！有什么可以帮你？\n\n## user\n\n")
    editor.type(uri, len(editor.docs[uri].text), "中国的首都是哪里？\n")
    await editor.settle()
    before = editor.idle_count
    await editor.run("gpt-ls.send", uri)
    await editor.wait_idle(before)
    assert api.chat_requests()[1].body["messages"] == [
        {"role": "system", "content": "只用中文回答。"},
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": "你好！有什么可以帮你？"},
        {"role": "user", "content": "中国的首都是哪里？"},
    ]
    assert editor.docs[uri].text.endswith("\n## user\n\n中国的首都是哪里？\n\n## assistant\n\n北京。\n\n## user\n\n")


async def test_send_without_a_user_message_is_a_clear_error(start, api):
    editor = await start()
    uri = "file:///work/empty.chat.md"
    editor.open(uri, "## system\n\nbe nice\n", "markdown")
    with pytest.raises(Exception, match="## user"):
        await editor.run("gpt-ls.send", uri)
    assert api.chat_requests() == []


async def test_unknown_action_id_is_a_jsonrpc_error(start):
    editor = await start()
    editor.open(PY, "x\n", "python")
    with pytest.raises(Exception, match="unknown action 'nope'"):
        await editor.run("gpt-ls.run", "nope", PY, editor.range_of(PY, "x"))
