"""Mentions in chat documents (pure): what is found, what a file mention brings, @ completion."""

from __future__ import annotations

import os
from pathlib import Path

from gpt_ls.index.mentions import (
    Mention,
    candidates,
    file_source,
    find_mentions,
    insert_text,
    typed_quote,
    typing_mention,
    walk_files,
)


def test_file_range_and_search_mentions_outside_code() -> None:
    text = ("Compare @src/app.py:10-40 with @文档/说明.md, and @lib/util.py:7.\n"
            "@search: parse config file 解析\n"
            "mail me@example.com, ask @alice, see `@not/this.py` and\n"
            "```python\n@property\ndef x(self): ...\n@inside/fence.py\n```\n"
            "again @src/app.py:10-40!\n")
    assert find_mentions(text) == [
        Mention("file", "src/app.py", 10, 40), Mention("file", "文档/说明.md"), Mention("file", "lib/util.py", 7, 7),
        Mention("search", "parse config file 解析")]
    assert [m.written for m in find_mentions(text)] == [
        "@src/app.py:10-40", "@文档/说明.md", "@lib/util.py:7", "@search: parse config file 解析"]
    assert find_mentions("@search:   \n") == []
    spaced = find_mentions('Read @"my docs/说明 😀.md":2-3, then @"a b.txt".')
    assert spaced == [Mention("file", "my docs/说明 😀.md", 2, 3), Mention("file", "a b.txt")]
    assert [m.written for m in spaced] == ['@"my docs/说明 😀.md":2-3', '@"a b.txt"']


def test_a_file_mention_brings_its_lines_or_a_clear_note() -> None:
    text = "".join(f"第{i}行 😀\n" for i in range(1, 11))
    source, note = file_source(Mention("file", "a.md", 3, 4), text, 0)
    assert source is not None and (source.start_line, source.end_line, source.text) == (3, 4, "第3行 😀\n第4行 😀\n")
    assert note is None
    whole, _ = file_source(Mention("file", "a.md"), text, 2)
    assert whole is not None and (whole.start_line, whole.end_line, whole.rank) == (1, 10, 2)
    clipped, note = file_source(Mention("file", "a.md", 8, 30), text, 0)
    assert clipped is not None and clipped.end_line == 10
    assert note == "@a.md:8-30: the file has 10 lines; lines 8-10 are included."
    assert file_source(Mention("file", "a.md", 20, 30), text, 0) == (
        None, "@a.md:20-30: the lines 20-30 are not in the file (10 lines); write @a.md:1-10 or less.")
    assert file_source(Mention("file", "gone.py"), None, 0) == (
        None, "@gone.py: there is no such file in the workspace.")
    assert file_source(Mention("file", "empty.txt"), "", 0) == (None, "@empty.txt: the file is empty.")


def test_completion_knows_when_a_mention_is_typed_and_ranks_prefixes_first() -> None:
    assert typing_mention("see @") == ""
    assert typing_mention("@src/ap") == "src/ap"
    assert typing_mention("mail me@exa") is None
    assert typing_mention("@src/app.py:1") is None
    assert typing_mention('see @"my do') == "my do" and typed_quote('see @"my do') and not typed_quote("@my")
    assert insert_text("my docs/a.md", False) == '"my docs/a.md"' and insert_text("a.md", False) == "a.md"
    assert insert_text("a.md", True) == '"a.md"'
    files = ["docs/app notes.md", "src/app.py", "src/文档.md", "tests/test_app.py"]
    assert candidates(files, "src/") == ["src/app.py", "src/文档.md"]
    assert candidates(files, "app") == ["docs/app notes.md", "src/app.py", "tests/test_app.py"]
    assert candidates(files, "文档") == ["src/文档.md"]
    assert candidates(files, "", limit=2) == ["docs/app notes.md", "src/app.py"]


def test_the_walk_without_an_index_is_bounded_skips_hidden_and_never_follows_links(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "说明 😀.md").write_text("x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("x")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "m.js").write_text("x")
    (tmp_path / "a.py").write_text("x")
    os.symlink("/etc", tmp_path / "etc")
    assert walk_files(tmp_path) == ["a.py", "src/说明 😀.md"]
    assert len(walk_files(tmp_path, limit=1)) <= 1
