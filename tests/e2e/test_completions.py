"""Completions as you type through the real server process: ghost text, the fallback, registration."""

from __future__ import annotations

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
    assert api.chat_requests() == []


async def test_turning_completions_on_registers_inline_completion_and_off_unregisters(
        start: StartEditor, api: FakeOpenAI) -> None:
    editor = await start(EditorConfig(**VSCODE))
    editor.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"gpt-ls": ON}))
    await editor.wait_until(lambda: editor.registrations == [("register", types.TEXT_DOCUMENT_INLINE_COMPLETION)],
                            "inline completion was not registered")
    uri = "file:///w/b.py"
    editor.open(uri, "x = 1\n", "python")
    api.script(Reply(text="y = 2"))
    assert [i.insert_text for i in await editor.inline(uri, at(1, 0))] == ["y = 2"]
    editor.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"gpt-ls": {}}))
    await editor.wait_until(lambda: len(editor.registrations) == 2, "inline completion was not unregistered")
    assert editor.registrations[1] == ("unregister", types.TEXT_DOCUMENT_INLINE_COMPLETION)


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
