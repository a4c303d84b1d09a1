"""Editors that send whole-document didChange (full sync, buffer reloads, some plugins).

The simulated editor sends every change as ``TextDocumentContentChangeWholeDocument``,
the user's typing and the echoes of gpt-ls's own edits alike, debounced like Neovim
(one didChange per 150 ms for everything changed meanwhile). Typing above the selection,
before the first edit or while the reply streams, must leave the reply in the document,
never in a side document.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_actions import typing_mid_reply
from tests.support.fakeopenai import Reply
from tests.support.lsp_editor import EditorConfig

URI = "file:///work/notes.md"
PIECES = ["答案 ", "is forty-", "two 🎉", " — 四十二 👍", " done."]
REPLY = "".join(PIECES)
TYPED = "# 用户 typed 😀 above\n"


@pytest.mark.parametrize("capabilities", ["neovim", "visual-studio-code"])
@pytest.mark.parametrize("when", ["before the first edit", "during streaming"])
async def test_typing_above_with_whole_document_changes_keeps_the_reply_in_the_document(
    start, api, tmp_path: Path, capabilities: str, when: str
) -> None:
    hold = 0 if when == "before the first edit" else 3
    api.script(Reply(chunks=PIECES, delay=0.05, hold_after=hold))
    editor = await start(EditorConfig(capabilities=capabilities, echo_delay=0.15, whole_document=True))
    editor.open(URI, "顶部 top 👋\n问题 question？🤔\ntail 尾 🐉\n", "markdown")
    before = editor.idle_count
    await editor.run("gpt-ls.ask", URI, editor.range_of(URI, "问题 question？🤔"))
    if hold == 0:
        # Nothing of the reply has arrived yet: the model's stream is held before its first piece.
        await editor.wait_until(api.held.is_set, "the fake API never held the reply")
        assert editor.docs[URI].text == "顶部 top 👋\n问题 question？🤔\ntail 尾 🐉\n"
    else:
        await typing_mid_reply(editor, api, URI, "".join(PIECES[:hold]), REPLY, before)
    editor.type(URI, 0, TYPED)
    api.resume()
    await editor.wait_idle(before)
    assert editor.docs[URI].text == f"{TYPED}顶部 top 👋\n问题 question？🤔\n{REPLY}\ntail 尾 🐉\n"
    assert editor.message_texts() == []  # no "could not put the whole reply into the document"
    assert editor.client.shown_documents == []
    assert not (tmp_path / "cache" / "replies").exists()
    # Every didChange was a whole-document one, debounced: fewer than the edits and the typing.
    assert set(editor.did_changes) == {"whole"}
    assert 2 <= len(editor.did_changes) < len(editor.edits) + 1
    # During streaming the reply went in several edits; before the first one, the first edit
    # was computed without the typing: discarded (Neovim) or refused (VS Code), then sent again.
    assert len(editor.edits) >= (3 if hold else 2)


async def test_typing_below_and_in_the_line_above_at_once_with_whole_document_changes(
    start, api, tmp_path: Path
) -> None:
    api.script(Reply(chunks=PIECES, delay=0.05, hold_after=2))
    editor = await start(EditorConfig(capabilities="neovim", echo_delay=0.15, whole_document=True))
    editor.open(URI, "问题 question？🤔\ntail 尾 🐉\n", "markdown")
    before = editor.idle_count
    await editor.run("gpt-ls.ask", URI, editor.range_of(URI, "问题 question？🤔"))
    await typing_mid_reply(editor, api, URI, "".join(PIECES[:2]), REPLY, before)
    # Typed within 150 ms: one whole-document didChange holds both, a change around the reply.
    editor.type(URI, len(editor.docs[URI].text), "below 下面 🙂\n")
    editor.type(URI, len("问题"), " 😀")
    api.resume()
    await editor.wait_idle(before)
    assert editor.docs[URI].text == f"问题 😀 question？🤔\n{REPLY}\ntail 尾 🐉\nbelow 下面 🙂\n"
    assert editor.message_texts() == []
    assert not (tmp_path / "cache" / "replies").exists()
