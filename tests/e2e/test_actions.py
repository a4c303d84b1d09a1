"""Ask, Explain selection and Draft email through a real LSP connection and real HTTP."""

from __future__ import annotations

import json

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from tests.support.fakeopenai import Cut, Error, Reply, Stall
from tests.support.lsp_editor import EditorConfig

URI = "file:///work/notes.md"


async def test_code_actions_are_listed_with_commands(start):
    editor = await start()
    editor.open(URI, "什么是 LSP？\n")
    rng = editor.range_of(URI, "什么是 LSP？")
    actions = await editor.code_actions(URI, rng)
    assert [a.title for a in actions] == [
        "GPT: Ask", "GPT: Explain selection", "GPT: Draft email", "GPT: Continue conversation",
        "GPT: Translate", "GPT: Summarize", "GPT: Tutor", "GPT: Ask about this file",
        "GPT: Ask about the workspace", "GPT: Role-play"]
    assert [a.command.command for a in actions][:5] == [
        "gpt-ls.ask", "gpt-ls.explain", "gpt-ls.draftEmail", "gpt-ls.continue", "gpt-ls.run"]
    assert actions[4].command.arguments[0] == "translate"
    assert actions[0].kind == "refactor.rewrite.gpt"
    assert list(actions[0].command.arguments) == [URI, {"start": {"line": 0, "character": 0},
                                                  "end": {"line": 0, "character": 8}}]


@pytest.mark.fast
async def test_ask_streams_the_reply_below_the_selection(start, api):
    api.script(Reply(text="LSP 是语言服务器协议 🙂。\n它连接编辑器和语言工具。", chunk_size=3, delay=0.01))
    editor = await start()
    editor.open(URI, "# 笔记\n什么是 LSP？\n下一行\n", "markdown")
    result = await editor.action("gpt-ls.ask", URI, "什么是 LSP？")
    assert result["status"] == "started"
    assert editor.docs[URI].text == (
        "# 笔记\n什么是 LSP？\nLSP 是语言服务器协议 🙂。\n它连接编辑器和语言工具。\n下一行\n")
    sent = api.chat_requests()[0].body
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == "gpt-4.1-mini"
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    user = sent["messages"][1]["content"]
    assert "File: notes.md (language: markdown)" in user
    assert user.endswith("Selection:\n什么是 LSP？")
    assert "# 笔记\n<<<SELECTION>>>\n下一行\n" in user
    # progress: begin … end, with the usage at the end
    (reports,) = editor.progress()
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert reports[0].title == "gpt-ls: Ask"
    assert reports[0].cancellable is True
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    assert reports[-1].message.startswith("gpt-4.1-mini · ")
    assert editor.message_texts() == []


async def typing_mid_reply(editor, api, uri: str, sent: str, reply: str, idle_seen: int) -> None:
    """Wait until the pieces sent before the hold are in the document, and prove the reply still streams."""
    await editor.wait_until(lambda: sent in editor.docs[uri].text, f"{sent!r} never reached the document")
    assert api.held.is_set(), "the fake API is not holding the rest of the reply"
    assert reply not in editor.docs[uri].text
    assert editor.idle_count == idle_seen, "the action ended before the user typed"


async def test_ask_with_neovim_like_late_echo_and_user_typing_above(start, api):
    reply = "one two three four five six seven eight nine ten"
    api.script(Reply(text=reply, chunk_size=4, delay=0.05, hold_after=6))
    editor = await start(EditorConfig(capabilities="neovim", echo_delay=0.15))
    editor.open(URI, "top\nquestion?\nbottom\n")
    before = editor.idle_count
    await editor.run("gpt-ls.ask", URI, editor.range_of(URI, "question?"))
    await typing_mid_reply(editor, api, URI, reply[:24], reply, before)
    editor.type(URI, 0, "用户 typed 😀\n")
    api.resume()
    await editor.wait_idle(before)
    assert editor.docs[URI].text == (
        "用户 typed 😀\ntop\nquestion?\none two three four five six seven eight nine ten\nbottom\n")


@pytest.mark.parametrize("capabilities", ["visual-studio-code", "neovim"])
async def test_a_streaming_reply_has_its_own_line_until_it_ends(start, api, capabilities):
    below = "An existing line right below."
    api.script(Reply(chunks=["alpha ", "beta ", "gamma ", "伽马 😀 ", "and the rest."], delay=0.05, hold_after=3))
    editor = await start(EditorConfig(capabilities=capabilities, echo_delay=0.15 if capabilities == "neovim" else None))
    editor.open(URI, f"question 问?\n{below}\n")
    before = editor.idle_count
    await editor.run("gpt-ls.ask", URI, editor.range_of(URI, "question 问?"))
    await typing_mid_reply(editor, api, URI, "alpha beta gamma ", "and the rest.", before)
    # Mid-stream the reply so far is a line of its own, above the existing next line.
    assert editor.docs[URI].text == f"question 问?\nalpha beta gamma \n{below}\n"
    api.resume()
    await editor.wait_idle(before)
    assert editor.docs[URI].text == f"question 问?\nalpha beta gamma 伽马 😀 and the rest.\n{below}\n"
    shown = editor.docs[URI].shown
    assert len(shown) >= 4
    assert all(text.endswith(f"\n{below}\n") and f" {below}" not in text for text in shown), shown


async def test_selection_at_end_of_file_without_newline_and_crlf(start, api):
    api.script(Reply(text="line A\nline B"))
    editor = await start()
    editor.open(URI, "first\r\nquestion at EOF")
    await editor.action("gpt-ls.ask", URI, "question at EOF")
    assert editor.docs[URI].text == "first\r\nquestion at EOF\r\nline A\r\nline B\r\n"


@pytest.mark.fast
async def test_explain_shows_hover_over_the_range(start, api):
    api.script(Reply(text="这段代码把两个数相加。", prompt_tokens=42, completion_tokens=7))
    editor = await start()
    text = "# 加法\ndef add(a, b):\n    return a + b  # 👋\n"
    editor.open(URI.replace(".md", ".py"), text, "python")
    uri = URI.replace(".md", ".py")
    result = await editor.action("gpt-ls.explain", uri, "def add(a, b):\n    return a + b  # 👋")
    assert result["status"] == "complete"
    assert result["text"] == "这段代码把两个数相加。"
    assert editor.docs[uri].text == text  # hover only: the document is untouched
    hover = await editor.hover(uri, "a + b", 2)
    assert hover is not None
    assert hover.contents.kind == types.MarkupKind.Markdown
    assert hover.contents.value == (
        "这段代码把两个数相加。\n\n---\n*gpt-4.1-mini · 42 prompt + 7 completion = 49 tokens*")
    assert hover.range == types.Range(types.Position(1, 0), types.Position(2, 22))
    assert await editor.hover(uri, "# 加法") is None
    system = api.chat_requests()[0].body["messages"][0]["content"]
    assert system.startswith("You explain text to the user of a text editor.")


async def test_hover_range_follows_edits_above_it(start, api):
    api.script(Reply(text="Explained."))
    editor = await start()
    editor.open(URI, "intro\nexplain me\n")
    await editor.action("gpt-ls.explain", URI, "explain me")
    editor.type(URI, 0, "new line 新\n")
    await editor.settle()
    hover = await editor.hover(URI, "explain me", 3)
    assert hover is not None
    assert hover.range == types.Range(types.Position(2, 0), types.Position(2, 10))


async def test_explain_as_comment_above_the_selection(start, api):
    api.script(Reply(text="Adds two numbers.\nReturns the sum."))
    editor = await start(EditorConfig(initialization_options={"explainOutput": "comment"}))
    uri = "file:///work/add.py"
    editor.open(uri, "def add(a, b):\n    return a + b\n", "python")
    await editor.action("gpt-ls.explain", uri, "return a + b")
    assert editor.docs[uri].text == (
        "def add(a, b):\n    # Adds two numbers.\n    # Returns the sum.\n    return a + b\n")


async def test_draft_email_in_the_language_of_the_notes(start, api):
    email = "Subject: 周五会议\n\n王老师您好，\n\n会议改到周五下午三点。\n\n此致\n李雷"
    api.script(Reply(text=email, chunk_size=5))
    editor = await start()
    editor.open(URI, "- 会议改到周五 3pm\n- 通知王老师\n")
    await editor.action("gpt-ls.draftEmail", URI, "- 会议改到周五 3pm\n- 通知王老师")
    assert editor.docs[URI].text == "- 会议改到周五 3pm\n- 通知王老师\n" + email + "\n"
    system = api.chat_requests()[0].body["messages"][0]["content"]
    assert "Subject: …" in system


async def test_settings_from_initialization_options_reach_the_request(start, api):
    editor = await start(EditorConfig(initialization_options={
        "model": "gpt-4o", "temperature": 0.2, "maxTokens": 100, "contextLines": 0}))
    editor.open(URI, "a\nb\nc\n")
    await editor.action("gpt-ls.ask", URI, "b")
    body = api.chat_requests()[0].body
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("gpt-4o", 0.2, 100)
    assert "<<<SELECTION>>>" not in body["messages"][1]["content"]


async def test_reasoning_models_get_max_completion_tokens(start, api):
    editor = await start(EditorConfig(initialization_options={"model": "o3-mini", "temperature": 0.5, "maxTokens": 50}))
    editor.open(URI, "q\n")
    await editor.action("gpt-ls.ask", URI, "q")
    body = api.chat_requests()[0].body
    assert body["max_completion_tokens"] == 50
    assert "max_tokens" not in body
    assert "temperature" not in body


async def test_did_change_configuration_applies_to_the_next_request(start, api):
    editor = await start()
    editor.open(URI, "q\n")
    editor.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"gpt-ls": {"model": "gpt-4-0613"}}))
    await editor.action("gpt-ls.ask", URI, "q")
    assert api.chat_requests()[0].body["model"] == "gpt-4-0613"


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (Error(401, "Incorrect API key provided: sk-test***", code="invalid_api_key"), "401"),
        (Error(404, "The model `gpt-4.1-mini` does not exist", code="model_not_found"), "gpt-4.1-mini"),
        (Error(400, "bad request"), "400"),
    ],
)
async def test_api_errors_give_one_message_and_end_progress(start, api, behaviour, expected):
    api.script(behaviour)
    editor = await start()
    editor.open(URI, "q\n")
    await editor.action("gpt-ls.ask", URI, "q")
    messages = editor.message_texts()
    assert len(messages) == 1
    assert expected in messages[0]
    assert "sk-test-key-0123456789" not in messages[0]
    (reports,) = editor.progress()
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    assert reports[-1].message.startswith("failed")
    assert editor.docs[URI].text == "q\n"
    # the server keeps running
    api.script(Reply(text="ok now"))
    await editor.action("gpt-ls.ask", URI, "q")
    assert editor.docs[URI].text == "q\nok now\n"


async def test_cut_stream_keeps_text_and_marks_it_unfinished(start, api):
    api.script(Cut(text="The beginning of a reply", chunk_size=5))
    editor = await start()
    editor.open(URI, "q\n")
    await editor.action("gpt-ls.ask", URI, "q")
    assert editor.docs[URI].text == "q\nThe beginning of a reply\n[gpt-ls: reply unfinished (interrupted)]\n"
    assert len(editor.message_texts()) == 1
    assert len(api.chat_requests()) == 1  # never retried after text arrived


async def test_no_api_key_says_what_to_set(start, api):
    editor = await start(OPENAI_API_KEY="")
    editor.open(URI, "q\n")
    await editor.action("gpt-ls.ask", URI, "q")
    (message,) = editor.message_texts()
    assert "OPENAI_API_KEY" in message
    assert api.chat_requests() == []


async def test_cancel_stops_at_once_and_keeps_the_text(start, api):
    api.script(Stall(text="partial reply ", seconds=20))
    editor = await start()
    editor.open(URI, "q\n")
    before = editor.idle_count
    await editor.run("gpt-ls.ask", URI, editor.range_of(URI, "q"))
    await editor.wait_until(lambda: "partial" in editor.docs[URI].text,
                            "the partial reply never reached the document", timeout=5)
    result = await editor.run("gpt-ls.cancel")
    assert result["cancelled"] == 1
    await editor.wait_idle(before, timeout=5)
    assert editor.docs[URI].text == "q\npartial reply \n[gpt-ls: reply unfinished (cancelled)]\n"
    (reports,) = editor.progress()
    assert reports[-1].message == "cancelled"
    api.release_stalls()


async def test_progress_cancel_from_the_editor(start, api):
    api.script(Stall(text="", seconds=20))
    editor = await start()
    editor.open(URI, "q\n")
    before = editor.idle_count
    await editor.run("gpt-ls.ask", URI, editor.range_of(URI, "q"))
    await editor.wait_until(lambda: bool(editor.client.progress_reports), "no progress began", timeout=5)
    (token,) = editor.client.progress_reports
    editor.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    await editor.wait_idle(before, timeout=5)
    assert editor.docs[URI].text == "q\n"
    api.release_stalls()


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["file:///not/open.txt", {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}}],
         "open the file"),
        ([URI, {"start": {"line": 50, "character": 0}, "end": {"line": 51, "character": 0}}], "outside the document"),
        ([URI, {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}}], "empty"),
        ([URI], None),
        ([URI, "not a range"], None),
    ],
)
async def test_bad_arguments_get_a_jsonrpc_error(start, api, arguments, fragment):
    editor = await start()
    editor.open(URI, "q\n\n")
    with pytest.raises(Exception) as info:
        await editor.run("gpt-ls.ask", *arguments)
    if fragment:
        assert fragment in str(info.value)
    assert "Traceback" not in str(info.value)
    assert api.chat_requests() == []
    # still alive
    actions = await editor.code_actions(URI, editor.range_of(URI, "q"))
    assert actions[0].title == "GPT: Ask"


async def test_unknown_command_is_an_error_not_a_crash(start):
    editor = await start()
    with pytest.raises(JsonRpcInvalidParams, match=r"gpt-ls\.nope"):
        await editor.run("gpt-ls.nope")
    assert (await editor.run("gpt-ls.cancel"))["cancelled"] == 0


@pytest.mark.fast
async def test_client_without_apply_edit_gets_the_reply_as_a_document(start, api):
    api.script(Reply(text="full reply text 完整"))
    editor = await start(EditorConfig(apply_edit=False))
    editor.open(URI, "q\n")
    result = await editor.action("gpt-ls.ask", URI, "q")
    assert result["text"] == "full reply text 完整"
    assert editor.docs[URI].text == "q\n"
    assert editor.edits == []
    (shown,) = editor.client.shown_documents
    assert shown.uri.endswith(".md")


async def test_reply_documents_of_two_server_sessions_are_two_files(start, api, tmp_path):
    api.script(Reply(text="first session 一"), Reply(text="second session 二"))
    for _ in range(2):  # two servers, each with its run 1
        editor = await start(EditorConfig(apply_edit=False))
        editor.open(URI, "q\n")
        result = await editor.action("gpt-ls.ask", URI, "q")
        assert result["id"] == 1
    files = list((tmp_path / "cache" / "documents").iterdir())
    assert sorted(f.read_text("utf-8") for f in files) == [
        "# GPT: Ask\n\nfirst session 一\n", "# GPT: Ask\n\nsecond session 二\n"]
    assert [f.stat().st_mode & 0o777 for f in files] == [0o600, 0o600]


async def test_utf8_position_encoding(start, api):
    api.script(Reply(text="答"))
    editor = await start(EditorConfig(position_encodings=["utf-8"]))
    editor.open(URI, "问题😀\n")
    # "问题😀" is 3+3+4 bytes in UTF-8
    rng = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 10}}
    before = editor.idle_count
    await editor.run("gpt-ls.ask", URI, rng)
    await editor.wait_idle(before)
    user = api.chat_requests()[0].body["messages"][-1]["content"]
    assert user.endswith("Selection:\n问题😀")


async def test_status_notifications_for_status_bars(start, api):
    api.script(Reply(text="x " * 50, chunk_size=2, delay=0.02))
    editor = await start()
    editor.open(URI, "q\n")
    await editor.action("gpt-ls.ask", URI, "q")
    assert editor.statuses[0] == {"running": 1, "tokens": 0, "message": "GPT: Ask…"}
    assert editor.statuses[-1]["running"] == 0
    assert any(s["running"] == 1 and s["tokens"] > 0 for s in editor.statuses)
    json.dumps(editor.statuses)


async def test_percent_encoded_uri_with_cjk_and_space(start, api):
    api.script(Reply(text="答复"))
    editor = await start()
    uri = "file:///tmp/%E5%B7%A5%E4%BD%9C%E5%8C%BA%20ws/notes.txt"  # /tmp/工作区 ws/notes.txt
    editor.open(uri, "问题\n")
    await editor.action("gpt-ls.ask", uri, "问题")
    assert editor.docs[uri].text == "问题\n答复\n"
    assert editor.message_texts() == []


async def test_removed_setting_stops_applying(start, api):
    editor = await start(EditorConfig(initialization_options={"model": "gpt-4o"}))
    editor.open(URI, "q\n")
    editor.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"gpt-ls": {"temperature": 0.3}}))
    await editor.action("gpt-ls.ask", URI, "q")
    body = api.chat_requests()[0].body
    assert (body["model"], body["temperature"]) == ("gpt-4.1-mini", 0.3)


async def test_neovim_negotiates_utf8_and_cjk_edits_land_in_place(start, api):
    api.script(Reply(text="回答 😀", chunk_size=2, delay=0.02, hold_after=1))
    editor = await start(EditorConfig(capabilities="neovim", echo_delay=0.15))
    assert editor.encoding == "utf-8"  # Neovim offers utf-8 first
    editor.open(URI, "上文 😀\n问题？\n下文\n")
    before = editor.idle_count
    await editor.run("gpt-ls.ask", URI, editor.range_of(URI, "问题？"))
    await typing_mid_reply(editor, api, URI, "问题？\n回答", "回答 😀", before)
    editor.type(URI, len("上文 😀"), " 用户")
    api.resume()
    await editor.wait_idle(before)
    assert editor.docs[URI].text == "上文 😀 用户\n问题？\n回答 😀\n下文\n"


async def test_settings_pulled_with_workspace_configuration(start, api):
    editor = await start(EditorConfig(configuration={"model": "gpt-4-0314", "maxTokens": 64}))
    editor.open(URI, "q\n")
    await editor.wait_until(lambda: editor.configuration_pulls > 0, "gpt-ls never pulled workspace/configuration")
    await editor.settle()  # the answer is applied before the next request arrives
    await editor.action("gpt-ls.ask", URI, "q")
    body = api.chat_requests()[0].body
    assert (body["model"], body["max_tokens"]) == ("gpt-4-0314", 64)
