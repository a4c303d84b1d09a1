"""Completions as you type through the real server process: ghost text, the fallback, registration."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types

from tests.e2e.conftest import StartEditor
from tests.support.fakeopenai import FakeOpenAI, Reply
from tests.support.lsp_editor import EditorConfig

ON = {"completions": True, "completionDebounceMs": 0}
#: VS Code with vscode-languageclient 11: inline completion, registered dynamically.
VSCODE = {"inline_completion": True}


def at(line: int, character: int) -> types.Position:
    return types.Position(line=line, character=character)


async def test_ghost_text_from_a_chat_model(start: StartEditor, api: FakeOpenAI) -> None:
    editor = await start(EditorConfig(initialization_options=ON, **VSCODE))
    uri = "file:///w/add.py"
    editor.open(uri, "def add(a, b):\n    ret\n\nprint(add(1, 2))\n", "python")
    api.script(Reply(text="```python\n    return a + b\n```"))
    items = await editor.inline(uri, at(1, 7))
    assert [(i.insert_text, i.range) for i in items] == [("urn a + b", types.Range(at(1, 7), at(1, 7)))]
    body = api.chat_requests()[-1].body
    assert body["model"] == "gpt-4.1-nano"
    assert "def add(a, b):\n    ret<CURSOR>\n\nprint(add(1, 2))\n" in body["messages"][1]["content"]
    assert body["max_tokens"] == 64 and body["stop"] == ["\n\n\n"]

    async def with_menu_on(text: str) -> list[tuple[str, types.Range | None]]:
        info = types.SelectedCompletionInfo(range=types.Range(at(1, 4), at(1, 7)), text=text)
        result = await editor.client.text_document_inline_completion_async(types.InlineCompletionParams(
            context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Automatic, info),
            text_document=types.TextDocumentIdentifier(uri=uri), position=at(1, 7)))
        assert isinstance(result, types.InlineCompletionList)
        return [(str(i.insert_text), i.range) for i in result.items]

    # The editor's menu is open: the ghost text extends its item, asked (or reused) with the item applied.
    assert await with_menu_on("return") == [("return a + b", types.Range(at(1, 4), at(1, 7)))]
    assert len(api.chat_requests()) == 1  # "return" is a start of the suggestion: reused
    api.script(Reply(text="(a + b)"))
    assert await with_menu_on("retval") == [("retval(a + b)", types.Range(at(1, 4), at(1, 7)))]
    assert "    retval<CURSOR>\n" in api.chat_requests()[-1].body["messages"][1]["content"]


async def test_the_fallback_gives_neovim_one_ai_item_that_inserts_the_suggestion(
        start: StartEditor, api: FakeOpenAI) -> None:
    editor = await start(EditorConfig(capabilities="neovim", initialization_options=ON))
    uri = "file:///w/greet.py"
    editor.open(uri, "# 你好 🙂\nname = 'x'\nprint(na\n", "python")
    api.script(Reply(text="me)\nprint(name)"))
    result = await editor.complete(uri, at(2, 8))
    assert isinstance(result, types.CompletionList) and result.is_incomplete
    [item] = result.items
    assert item.text_edit == types.TextEdit(range=types.Range(at(2, 6), at(2, 8)), new_text="name)\nprint(name)")
    assert (item.label, item.detail, item.kind, item.filter_text, item.sort_text) == (
        "name) …", "gpt-ls", types.CompletionItemKind.Text, "name)", "0")
    assert item.insert_text_format == types.InsertTextFormat.PlainText


async def test_inline_is_advertised_only_when_enabled_and_then_no_fallback(start: StartEditor, api: FakeOpenAI) -> None:
    on = await start(EditorConfig(initialization_options=ON, **VSCODE))
    off = await start(EditorConfig(**VSCODE))
    assert on.capabilities is not None and on.capabilities.inline_completion_provider is not None
    assert off.capabilities is not None and off.capabilities.inline_completion_provider is None
    assert off.capabilities.completion_provider is not None
    uri = "file:///w/a.py"
    on.open(uri, "x = 1\n", "python")
    assert await on.complete(uri, at(1, 0)) is None  # VS Code gets ghost text, not a second suggestion
    off.open(uri, "x = 1\n", "python")
    assert await off.inline(uri, at(1, 0)) == []  # off: no request at all
    assert await off.complete(uri, at(1, 0)) is None
    assert api.chat_requests() == []


async def test_turning_completions_on_registers_inline_completion_and_off_unregisters(
        start: StartEditor, api: FakeOpenAI) -> None:
    editor = await start(EditorConfig(**VSCODE))
    def inline_registrations() -> list[tuple[str, str]]:  # the server registers watched files too
        return [r for r in editor.registrations if r[1] == types.TEXT_DOCUMENT_INLINE_COMPLETION]

    editor.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"gpt-ls": ON}))
    await editor.wait_until(lambda: inline_registrations() == [("register", types.TEXT_DOCUMENT_INLINE_COMPLETION)],
                            "inline completion was not registered")
    uri = "file:///w/b.py"
    editor.open(uri, "x = 1\n", "python")
    api.script(Reply(text="y = 2"))
    assert [i.insert_text for i in await editor.inline(uri, at(1, 0))] == ["y = 2"]
    editor.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"gpt-ls": {}}))
    await editor.wait_until(lambda: len(inline_registrations()) == 2, "inline completion was not unregistered")
    assert inline_registrations()[1] == ("unregister", types.TEXT_DOCUMENT_INLINE_COMPLETION)


async def test_fim_mode_sends_prompt_and_suffix_to_v1_completions(start: StartEditor, api: FakeOpenAI) -> None:
    editor = await start(EditorConfig(initialization_options={**ON, "completionMode": "fim"}, **VSCODE))
    uri = "file:///w/m.py"
    editor.open(uri, "def mul(a, b):\n    return \n", "python")
    api.script(Reply(text="a * b\n"))
    items = await editor.inline(uri, at(1, 11))
    assert [i.insert_text for i in items] == ["a * b"]
    [req] = api.fim_requests()
    assert (req.body["prompt"], req.body["suffix"], req.body["model"]) == (
        "def mul(a, b):\n    return ", "\n", "gpt-3.5-turbo-instruct")
    assert req.body["stream"] is True and api.chat_requests() == []


async def test_bad_positions_and_unknown_documents_get_an_empty_result(start: StartEditor, api: FakeOpenAI) -> None:
    editor = await start(EditorConfig(initialization_options=ON, **VSCODE))
    uri = "file:///w/emoji.py"
    editor.open(uri, "s = '你好🙂'\n", "python")
    for where in (at(0, 8), at(0, 40), at(5, 0)):  # inside the surrogate pair of 🙂, past the line, past the end
        assert await editor.inline(uri, where) == []
    assert await editor.inline("file:///w/never-opened.py", at(0, 0)) == []
    neovim = await start(EditorConfig(capabilities="neovim", initialization_options=ON))
    neovim.open(uri, "s = '你好🙂'\n", "python")
    result = await neovim.complete(uri, at(0, 40))
    assert isinstance(result, types.CompletionList) and list(result.items) == []
    assert api.chat_requests() == []
    api.script(Reply(text="!"))
    assert [i.insert_text for i in await editor.inline(uri, at(0, 9))] == ["!"]  # just after 🙂: fine


async def test_cancel_request_stops_the_model_request(start: StartEditor, api: FakeOpenAI) -> None:
    editor = await start(EditorConfig(initialization_options=ON, **VSCODE))
    uri = "file:///w/slow.py"
    editor.open(uri, "x = \n", "python")
    api.script(Reply(text="1 + 1", hold_after=0))
    params = types.InlineCompletionParams(
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
        text_document=types.TextDocumentIdentifier(uri=uri), position=at(0, 4))
    pending = asyncio.ensure_future(editor.client.protocol.send_request_async(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id="slow-1"))
    await editor.wait_until(api.held.is_set, "the model request never arrived")
    editor.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="slow-1"))
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(pending, 5)
    api.resume()
    api.script(Reply(text="2"))
    assert [i.insert_text for i in await editor.inline(uri, at(0, 4))] == ["2"]


async def test_a_chat_document_gets_no_ai_items(start: StartEditor, api: FakeOpenAI) -> None:
    editor = await start(EditorConfig(capabilities="neovim", initialization_options=ON))
    uri = "file:///w/notes.chat.md"
    editor.open(uri, "# Chat\n\nHow do I \n", "markdown")
    result = await editor.complete(uri, at(2, 9))
    assert not (isinstance(result, types.CompletionList) and result.items)
    assert api.chat_requests() == []


async def test_typing_through_a_suggestion_asks_once(start: StartEditor, api: FakeOpenAI) -> None:
    editor = await start(EditorConfig(capabilities="neovim", initialization_options=ON))
    uri = "file:///w/t.py"
    editor.open(uri, "total = \n", "python")
    api.script(Reply(text="price * count"))
    first = await editor.complete(uri, at(0, 8))
    assert isinstance(first, types.CompletionList) and first.items[0].text_edit is not None
    for i, ch in enumerate("price"):
        editor.type(uri, 8 + i, ch)
        result = await editor.complete(uri, at(0, 9 + i), invoked=False)
        assert isinstance(result, types.CompletionList)
        [item] = result.items
        assert item.text_edit is not None and item.text_edit.new_text == "price * count"  # the word + the rest
    assert len(api.chat_requests()) == 1


async def test_the_fallback_range_counts_utf16_units_before_a_chinese_word(start: StartEditor, api: FakeOpenAI) -> None:
    editor = await start(EditorConfig(initialization_options=ON))  # VS Code 1.65: no inline completion
    uri = "file:///w/cjk.py"
    editor.open(uri, "s = '🙂' + 名字\n", "python")
    api.script(Reply(text="名字 + '你好'"))  # the word echoed, then the rest
    result = await editor.complete(uri, at(0, 13))
    assert isinstance(result, types.CompletionList)
    [item] = result.items
    assert item.text_edit == types.TextEdit(range=types.Range(at(0, 11), at(0, 13)), new_text="名字 + '你好'")
    assert item.label == "名字 + '你好'"
