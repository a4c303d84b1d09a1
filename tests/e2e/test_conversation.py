"""Conversations that continue: Continue resends earlier turns; history as documents."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.fakeopenai import Reply
from tests.support.lsp_editor import EditorConfig, server_env

URI = "file:///work/chat.txt"


async def test_continue_resends_the_earlier_turn(start, api):
    api.script(Reply(text="巴黎。"), Reply(text="About 2.1 million."))
    editor = await start()
    editor.open(URI, "法国的首都是哪里？\nHow many people live there?\n")
    await editor.action("gpt-ls.ask", URI, "法国的首都是哪里？")
    await editor.action("gpt-ls.continue", URI, "How many people live there?")
    first, second = api.chat_requests()
    assert [m["role"] for m in first.body["messages"]] == ["system", "user"]
    messages = second.body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1] == {"role": "user", "content": "法国的首都是哪里？"}
    assert messages[2] == {"role": "assistant", "content": "巴黎。"}
    assert messages[3]["content"].endswith("Selection:\nHow many people live there?")
    assert editor.docs[URI].text == "法国的首都是哪里？\n巴黎。\nHow many people live there?\nAbout 2.1 million.\n"


async def test_new_conversation_makes_continue_start_fresh(start, api):
    editor = await start()
    editor.open(URI, "one\ntwo\n")
    await editor.action("gpt-ls.ask", URI, "one")
    result = await editor.run("gpt-ls.newConversation")
    assert result == {"status": "fresh"}
    await editor.action("gpt-ls.continue", URI, "two")
    assert [m["role"] for m in api.chat_requests()[1].body["messages"]] == ["system", "user"]


async def test_ask_can_continue_by_setting(start, api):
    editor = await start(EditorConfig(initialization_options={"askContinuesConversation": True}))
    editor.open(URI, "one\ntwo\n")
    await editor.action("gpt-ls.ask", URI, "one")
    await editor.action("gpt-ls.ask", URI, "two")
    assert [m["role"] for m in api.chat_requests()[1].body["messages"]] == ["system", "user", "assistant", "user"]


async def test_history_is_shown_as_markdown_documents(start, api):
    api.script(Reply(text="答案 42"))
    editor = await start()
    editor.open(URI, "问题\n")
    await editor.action("gpt-ls.ask", URI, "问题")
    overview = await editor.run("gpt-ls.showHistory")
    (conv,) = overview["conversations"]
    assert conv["title"] == "问题"
    assert conv["messages"] == 2
    shown = editor.client.shown_documents[-1].uri
    text = Path(shown.removeprefix("file://")).read_text(encoding="utf-8")
    assert "**问题** · 2 messages" in text
    opened = await editor.run("gpt-ls.openConversation", conv["id"])
    text = Path(opened["uri"].removeprefix("file://")).read_text(encoding="utf-8")
    assert "答案 42" in text
    assert "sk-test-key-0123456789" not in text


async def test_history_off_records_nothing(start, api, tmp_path):
    editor = await start(EditorConfig(initialization_options={"history": False}))
    editor.open(URI, "q\n")
    await editor.action("gpt-ls.ask", URI, "q")
    assert editor.docs[URI].text.startswith("q\nEcho:")
    assert not (tmp_path / "data" / "history.db").exists()


async def test_editor_conversation_continues_in_the_terminal_and_back(start, api, workspace, tmp_path):
    api.script(Reply(text="editor answer"), Reply(text="terminal answer"), Reply(text="editor again"))
    editor = await start()
    editor.open(URI, "editor question\nback in the editor\n")
    await editor.action("gpt-ls.ask", URI, "editor question")
    env = server_env(api.url, str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "gpt_ls", "ask", "-c", "terminal question"], env=env,
                            cwd=workspace, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "terminal answer\n"
    assert [m["content"] for m in api.chat_requests()[1].body["messages"][1:]] == [
        "editor question", "editor answer", "terminal question"]
    await editor.action("gpt-ls.continue", URI, "back in the editor")
    contents = [m["content"] for m in api.chat_requests()[2].body["messages"][1:]]
    assert contents[:4] == ["editor question", "editor answer", "terminal question", "terminal answer"]


async def test_a_request_refused_before_sending_leaves_no_conversation(start, api):
    editor = await start(EditorConfig(initialization_options={
        "model": "my-local-model", "contextWindow": 300, "maxOutputTokens": 100}))
    editor.open(URI, "长问题 " * 400 + "\n")
    await editor.action("gpt-ls.ask", URI, ("长问题 " * 400).rstrip())
    assert any("context window" in m for m in editor.message_texts())
    assert api.chat_requests() == []
    overview = await editor.run("gpt-ls.showHistory")
    assert overview["conversations"] == []
