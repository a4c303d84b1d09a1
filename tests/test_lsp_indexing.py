"""The server's index glue without a server: @ completion (UTF-16 positions) and saved files queued."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from gpt_ls.lsp.indexing import Indexing
from gpt_ls.settings import Settings
from tests.support.memory_editor import MemoryEditor


def make(root: Path | None) -> Indexing:
    return Indexing(lambda: root, Settings, MemoryEditor(workspace_root=root))


def test_at_completion_walks_the_workspace_when_there_is_no_index_yet(tmp_path: Path) -> None:
    (tmp_path / "文档").mkdir()
    (tmp_path / "文档" / "说明 😀.md").write_text("x")
    (tmp_path / "app.py").write_text("x")
    indexing = make(tmp_path)
    text = "## user\n\n😀 见 @文"
    found = indexing.completion("file:///w/a.chat.md", text, types.Position(2, 7), "utf-16")
    assert found is not None
    assert [(i.label, i.text_edit.new_text) for i in found.items if isinstance(i.text_edit, types.TextEdit)] == [
        ("文档/说明 😀.md", '"文档/说明 😀.md"')]
    edit = found.items[0].text_edit
    assert isinstance(edit, types.TextEdit)
    assert (edit.range.start.character, edit.range.end.character) == (6, 7)
    quoted = indexing.completion("file:///w/a.chat.md", '## user\n\n@"文档/说', types.Position(2, 6), "utf-16")
    assert quoted is not None and quoted.items[0].filter_text == '"文档/说明 😀.md'
    assert quoted.items[0].text_edit is not None and quoted.items[0].text_edit.range.start.character == 1
    assert indexing.completion("file:///w/notes.md", text, types.Position(2, 7), "utf-16") is None
    assert indexing.completion("file:///w/a.chat.md", "mail me@x", types.Position(0, 9), "utf-16") is None
    assert indexing.completion("file:///w/a.chat.md", "x", types.Position(5, 0), "utf-16") is None
    assert make(None).completion("file:///w/a.chat.md", "@", types.Position(0, 1), "utf-16") is not None


def test_saved_files_are_ignored_until_the_index_is_open(tmp_path: Path) -> None:
    indexing = make(tmp_path)
    indexing.changed([(tmp_path / "a.py").as_uri()])  # nothing open yet: nothing to do, no error
    live = indexing.get()
    assert live is not None and live.root == tmp_path and indexing.get() is live
    assert make(None).get() is None
