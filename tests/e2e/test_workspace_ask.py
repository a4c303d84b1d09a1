"""Questions about the workspace through the real server and the real index, against the fake API:
labelled chunks in the request, links and Sources in the document, didSave, @ completion, the terminal."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types

from tests.support.fakeopenai import Reply
from tests.test_cli_chat import cli_env

SOURCE = "src/配置/设置 😀.py"
CODE = ('import json\n\n\ndef parse_config_file(path):\n    """读取配置文件 😀"""\n'
        "    with open(path) as f:\n        return json.load(f)\n")


def fill(workspace: Path) -> Path:
    (workspace / ".git").mkdir(parents=True, exist_ok=True)
    path = workspace / SOURCE
    path.parent.mkdir(parents=True)
    path.write_text(CODE, encoding="utf-8")
    (workspace / "README.md").write_text("# 项目说明\n\nSee the docs folder.\n", encoding="utf-8")
    for i, topic in enumerate(["retry backoff", "HTTP proxy", "token window", "streaming edits", "history store",
                               "trust list", "chat documents", "code actions"]):
        (workspace / "docs" / f"note{i}.md").parent.mkdir(exist_ok=True)
        (workspace / "docs" / f"note{i}.md").write_text(f"# {topic}\n\nHow the {topic} works.\n", encoding="utf-8")
    return path


async def ask(editor, uri, needle):
    before = editor.idle_count
    await editor.run("gpt-ls.run", "askWorkspace", uri, editor.range_of(uri, needle))
    await editor.wait_idle(before)


async def test_the_question_goes_with_labelled_chunks_and_the_reply_links_them(start, api, workspace):
    source = fill(workspace)
    api.script(Reply(text=f"It is parse_config_file in [{SOURCE}:1-7].", chunk_size=3))
    editor = await start()
    uri = (workspace / "问题.md").as_uri()
    editor.open(uri, "Where is the config file parsed?\n", "markdown")
    await ask(editor, uri, "Where is the config file parsed?")
    system = api.chat_requests()[0].body["messages"][0]["content"]
    assert f"[{SOURCE}:1-7]\n```\nimport json\n" in system
    assert "Cite the excerpts you use by their label" in system
    link = f"{source.as_uri()}#L1"
    assert editor.docs[uri].text == (
        "Where is the config file parsed?\n"
        f"It is parse_config_file in [{SOURCE}:1-7]({link}).\n\n**Sources**\n\n- [{SOURCE}:1-7]({link})\n")

    # Saved changes are indexed again: the next question sees the new text, not the old.
    source.write_text(CODE.replace("parse_config_file", "load_settings_file"), encoding="utf-8")
    editor.client.text_document_did_save(types.DidSaveTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=source.as_uri())))
    editor.open((workspace / "再问.md").as_uri(), "Where is load_settings_file?\n", "markdown")
    await ask(editor, (workspace / "再问.md").as_uri(), "Where is load_settings_file?")
    system = api.chat_requests()[1].body["messages"][0]["content"]
    assert f"[{SOURCE}:1-7]\n```\nimport json\n\n\ndef load_settings_file(path):" in system
    assert "def parse_config_file" not in system


async def test_an_index_on_disk_is_brought_up_to_date_at_initialized(start, api, workspace, tmp_path):
    source = fill(workspace)
    env = {**cli_env(api, tmp_path), "GPT_LS_DATA_DIR": str(tmp_path / "data")}
    built = subprocess.run([sys.executable, "-m", "gpt_ls", "index"], capture_output=True, text=True, env=env,
                           cwd=workspace, timeout=60)
    assert built.returncode == 0, built.stderr
    source.write_text(CODE + "\n\ndef added_later():\n    return 2\n", encoding="utf-8")
    editor = await start()

    def ended() -> list[Any]:
        return [r for reports in editor.progress() if reports and isinstance(reports[0], types.WorkDoneProgressBegin)
                and reports[0].title == "gpt-ls: Updating the workspace index"
                and isinstance(reports[-1], types.WorkDoneProgressEnd) for r in reports]

    await editor.wait_until(lambda: bool(ended()), "no index update after initialized", timeout=30)
    end = ended()[-1]
    assert isinstance(end, types.WorkDoneProgressEnd) and "1 file" in (end.message or "")
    assert editor.message_texts() == []


async def test_unsaved_open_documents_take_precedence_over_their_files(start, api, workspace):
    fill(workspace)
    editor = await start()
    draft = (workspace / "草稿 draft.md").as_uri()
    editor.open(draft, "# 草稿\n\nThe frobnicator setting lives in frobnicate.toml.\n", "markdown")
    editor.open((workspace / ".env.local").as_uri(), "FROBNICATOR_TOKEN=sk-frobnicator-secret\n")  # never indexed
    uri = (workspace / "q.md").as_uri()
    editor.open(uri, "Where does the frobnicator setting live?\n", "markdown")
    await ask(editor, uri, "Where does the frobnicator setting live?")
    system = api.chat_requests()[0].body["messages"][0]["content"]
    assert "[草稿 draft.md:1-3]" in system and "frobnicate.toml" in system
    assert "sk-frobnicator-secret" not in system


async def test_at_completion_offers_workspace_files_in_chat_documents_only(start, api, workspace):
    fill(workspace)
    editor = await start()
    chat = (workspace / "notes.chat.md").as_uri()
    line = "😀 Look at @src/配"  # the emoji is two UTF-16 units
    editor.open(chat, f"## user\n\n{line}", "markdown")
    result = await editor.client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=chat), position=types.Position(2, len(line) + 1),
        context=types.CompletionContext(types.CompletionTriggerKind.TriggerCharacter, "@")))
    assert result is not None
    items = result.items if isinstance(result, types.CompletionList) else result
    assert [i.label for i in items] == [SOURCE]
    edit = items[0].text_edit
    assert isinstance(edit, types.TextEdit)
    assert edit.new_text == f'"{SOURCE}"'  # quoted: the name has a space
    assert (edit.range.start.line, edit.range.start.character, edit.range.end.character) == (2, 12, len(line) + 1)
    # Not in other documents: there the AI completion (issue 15) answers, and it is off by default.
    other = (workspace / "notes.md").as_uri()
    editor.open(other, line, "markdown")
    plain = await editor.client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=other), position=types.Position(0, len(line) + 1)))
    assert not (plain.items if isinstance(plain, types.CompletionList) else plain or [])


async def test_chat_mentions_bring_files_and_searches_into_the_request(start, api, workspace):
    source = fill(workspace)
    api.script(Reply(text=f"It reads JSON [{SOURCE}:4-7]."))
    editor = await start()
    uri = (workspace / "对话.chat.md").as_uri()
    editor.open(uri, f'## user\n\nExplain @"{SOURCE}":4-7 and @docs/missing.md\n@search: retry backoff\n', "markdown")
    before = editor.idle_count
    await editor.run("gpt-ls.send", uri)
    await editor.wait_idle(before)
    content = api.chat_requests()[0].body["messages"][-1]["content"]
    assert content.startswith(f'Explain @"{SOURCE}":4-7 and @docs/missing.md\n@search: retry backoff\n\n')
    assert f'[{SOURCE}:4-7]\n```\ndef parse_config_file(path):\n    """读取配置文件 😀"""\n' in content
    assert "[docs/note0.md:1-3]" in content  # from @search
    assert "(gpt-ls note: @docs/missing.md: there is no such file in the workspace.)" in content
    assert any("@docs/missing.md" in m for m in editor.message_texts())
    assert f"It reads JSON [{SOURCE}:4-7]({source.as_uri()}#L4)." in editor.docs[uri].text


def test_ask_workspace_in_the_terminal_prints_the_sources(api, tmp_path, workspace):
    fill(workspace)
    api.script(Reply(text=f"See {SOURCE}:4-7.", chunk_size=4))
    env = cli_env(api, tmp_path)
    result = subprocess.run([sys.executable, "-m", "gpt_ls", "ask", "--workspace", "--model", "gpt-4",
                             "Where is parse_config_file defined?"], capture_output=True, text=True, env=env,
                            cwd=workspace, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"See {SOURCE}:4-7.\n\nSources:\n  {SOURCE}:1-7\n"
    body = api.chat_requests()[0].body
    assert body["model"] == "gpt-4"
    assert f"[{SOURCE}:1-7]" in body["messages"][0]["content"]
    assert body["messages"][1] == {"role": "user", "content": "Where is parse_config_file defined?"}
    api.script(Reply(text="No citation."))
    result = subprocess.run([sys.executable, "-m", "gpt_ls", "ask", "-w", "--json", "parse config"],
                            capture_output=True, text=True, env=env, cwd=workspace, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sources"] == [f"{SOURCE}:1-7"]


def test_ask_workspace_refuses_the_home_folder(api, tmp_path):
    env = cli_env(api, tmp_path)  # HOME is tmp_path
    result = subprocess.run([sys.executable, "-m", "gpt_ls", "ask", "-w", "anything?"], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "is not a project: run gpt-ls ask --workspace inside one" in result.stderr
    assert api.chat_requests() == []


async def test_asked_from_a_file_its_enclosing_chunk_and_the_imported_module_s_chunk_go(start, api, workspace):
    from tests.test_workspace_neighbours import MAIN, PARSER, QUESTION

    (workspace / ".git").mkdir(parents=True, exist_ok=True)
    (workspace / "src/配置").mkdir(parents=True)
    (workspace / "src/应用").mkdir(parents=True)
    (workspace / "src/配置/解析.py").write_text(PARSER, encoding="utf-8")
    (workspace / "src/应用/main.py").write_text(MAIN, encoding="utf-8")
    start_line = PARSER.splitlines().index("def parse_config_file(path):") + 1
    cited = f"src/配置/解析.py:{start_line}-{start_line + 16}"
    api.script(Reply(text=f"It raises in [{cited}].", chunk_size=4))
    editor = await start()
    uri = (workspace / "src/应用/main.py").as_uri()
    editor.open(uri, MAIN, "python")
    await ask(editor, uri, QUESTION)
    system = api.chat_requests()[0].body["messages"][0]["content"]
    # contextLines (40) sends all of main.py as the excerpt around the question: none of its chunks goes
    # again; the function it imports and calls goes first, not the imported module's head.
    labels = re.findall(r"^\[([^\]\n]+)\]\n```", system, re.M)
    assert labels[0] == cited and not any(label.startswith("src/应用/main.py") for label in labels)
    assert f"[{cited}]\n```\ndef parse_config_file(path):\n" in system and "def load_defaults(path):" not in system
    link = f"{(workspace / 'src/配置/解析.py').as_uri()}#L{start_line}"
    assert f"It raises in [{cited}]({link}).\n\n**Sources**\n\n- [{cited}]({link})\n" in editor.docs[uri].text
