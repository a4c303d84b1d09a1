"""Ask about the workspace and chat mentions, in-process: the runner, a memory editor, a fake index."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gpt_ls.actions.catalog import Catalog
from gpt_ls.actions.runner import ActionRunner
from gpt_ls.errors import GptLsError
from gpt_ls.index.chunks import Chunk
from gpt_ls.index.live import LiveIndex
from gpt_ls.index.search import Hit
from gpt_ls.settings import Settings
from tests.support.memory_editor import FULL, MemoryEditor, ScriptedExchange

pytestmark = pytest.mark.timeout(10)

SETTINGS = Settings(history=False, model="gpt-4")
ROOT = Path("/work")


CONFIG = Chunk("src/配置 config.py", 40, 41, "def parse_config_file(path):\n    return load(path)\n")


@dataclass
class FakeIndex:
    """The index's API in memory: what it was asked, in order."""

    hits: list[Hit] = field(default_factory=lambda: [Hit(CONFIG, 3.0), Hit(Chunk("README.md", 1, 2, "# 项目\n"), 1.0)])
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    block: threading.Event | None = None
    failure: GptLsError | None = None

    def update(self, paths: Iterable[str] | None = None, *, progress: Any = None, cancel: Any = None) -> Any:
        self.calls.append(("update", None if paths is None else list(paths)))
        if progress is not None:
            progress(1, 2, "a.py")
        if self.block is not None:
            assert cancel is not None
            while not cancel.wait(0.01):
                pass
        return None

    def set_overlay(self, path: str, text: str | None) -> None:
        self.calls.append(("overlay", path, text))

    def search(self, query: str, limit: int = 20) -> list[Hit]:
        self.calls.append(("search", query))
        if self.failure is not None:
            raise self.failure
        return self.hits

    def files(self) -> list[str]:
        return sorted({h.chunk.path for h in self.hits}) if any(c[0] == "update" for c in self.calls) else []

    def close(self) -> None:
        self.calls.append(("close",))


def make(
    *script: Any, index: FakeIndex | None = None
) -> tuple[MemoryEditor, ScriptedExchange, ActionRunner, FakeIndex]:
    fake = index or FakeIndex()
    editor = MemoryEditor(FULL, workspace_root=ROOT)
    exchange = ScriptedExchange(*script)
    live = LiveIndex(ROOT, lambda: SETTINGS, opener=lambda root, settings: fake)
    runner = ActionRunner(editor, lambda: SETTINGS, exchange, Catalog, lambda: live)
    editor.listeners.append(runner.on_change)
    return editor, exchange, runner, fake


async def ask(runner: ActionRunner, editor: MemoryEditor, uri: str, needle: str, action: str = "askWorkspace") -> None:
    result = await runner.run_action(action, uri, *editor.range_of(uri, needle))
    task = runner.running[result["id"]].task
    assert task is not None
    await task
    await editor.settle()


APP = "file:///work/src/%E9%85%8D%E7%BD%AE%20config.py"


async def test_the_question_goes_with_labelled_chunks_and_the_reply_gets_links_and_sources() -> None:
    editor, exchange, runner, fake = make("It is parsed in [src/配置 config.py:40-41]", ", see src/配置 config.py:41.")
    uri = "file:///work/q.md"
    editor.open(uri, "Where is the config parsed?\n", "markdown")
    await ask(runner, editor, uri, "Where is the config parsed?")
    req = exchange.requests[0]
    assert "[src/配置 config.py:40-41]\n```\ndef parse_config_file(path):" in req.system_extra
    assert "Cite the excerpts you use by their label" in req.system_extra
    assert req.context.scope == "workspace-index"
    assert [c for c in fake.calls if c[0] != "overlay"][:2] == [
        ("update", None), ("search", "Where is the config parsed?")]
    assert editor.text(uri) == (
        "Where is the config parsed?\n"
        f"It is parsed in [src/配置 config.py:40-41]({APP}#L40), see [src/配置 config.py:41]({APP}#L41).\n\n"
        f"**Sources**\n\n- [src/配置 config.py:40-41]({APP}#L40)\n")
    events = editor.progresses[0].events
    assert "report 1/2 files" in events or "report indexing the workspace" in events
    assert any(e.startswith("report 2 excerpts") for e in events)
    # The second question does not index again; a saved file is indexed again before it searches.
    live = runner.index()
    assert live is not None
    live.changed(["README.md", "src/a.py", "README.md"])
    editor.open("file:///work/r.md", "And the README?\n", "markdown")
    await ask(runner, editor, "file:///work/r.md", "And the README?")
    updates = [c for c in fake.calls if c[0] == "update"]
    assert updates == [("update", None), ("update", ["README.md", "src/a.py"])]
    assert fake.calls.index(updates[1]) < len(fake.calls) - 1 - fake.calls[::-1].index(("search", "And the README?"))


async def test_open_documents_are_overlays_given_once_per_version_and_dropped_when_closed() -> None:
    editor, _, runner, fake = make("ok")
    editor.open("file:///work/q.md", "Question?\n")
    editor.open("file:///work/draft.py", "def draft(): 未保存\n")
    await ask(runner, editor, "file:///work/q.md", "Question?")
    overlays = [c for c in fake.calls if c[0] == "overlay"]
    assert ("overlay", "draft.py", "def draft(): 未保存\n") in overlays
    assert fake.calls.index(overlays[0]) < [c[0] for c in fake.calls].index("search")
    await ask(runner, editor, "file:///work/q.md", "Question?")  # the reply changed q.md, not draft.py
    assert [c[1] for c in fake.calls if c[0] == "overlay"] == ["q.md", "draft.py", "q.md"]
    del editor.seen["file:///work/draft.py"]
    await ask(runner, editor, "file:///work/q.md", "Question?")
    assert fake.calls[-2] == ("overlay", "draft.py", None)


async def test_an_unsearchable_question_is_said_and_asked_without_chunks() -> None:
    fake = FakeIndex(failure=GptLsError("The query has only stop words: add a word to look for."))
    editor, exchange, runner, _ = make("An answer.", index=fake)
    editor.open("file:///work/q.md", "what is it?\n")
    await ask(runner, editor, "file:///work/q.md", "what is it?")
    assert any("only stop words" in m for _, m in editor.messages)
    assert "Cite the excerpts" not in exchange.requests[0].system_extra
    assert editor.text("file:///work/q.md") == "what is it?\nAn answer.\n"


async def test_cancelling_the_question_cancels_the_build_which_runs_again_next_time() -> None:
    fake = FakeIndex(block=threading.Event())
    editor, exchange, runner, _ = make("late", index=fake)
    editor.open("file:///work/q.md", "Question?\n")
    uri = "file:///work/q.md"
    result = await runner.run_action("askWorkspace", uri, *editor.range_of(uri, "Question?"))
    while ("update", None) not in fake.calls:
        await asyncio.sleep(0.01)
    editor.progresses[0].cancel()
    task = runner.running.get(result["id"])
    if task is not None and task.task is not None:
        await task.task
    assert exchange.requests == []
    fake.block = None
    await ask(runner, editor, "file:///work/q.md", "Question?")
    assert [c[0] for c in fake.calls].count("update") == 2 and len(exchange.requests) == 1


async def test_chat_mentions_bring_files_ranges_and_searches_with_notes(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "说明 😀.py").write_text("".join(f"line {i} 行\n" for i in range(1, 21)), encoding="utf-8")
    (tmp_path / ".env.production").write_text("OPENAI_API_KEY=sk-secret\n")
    fake = FakeIndex()
    editor = MemoryEditor(FULL, workspace_root=tmp_path)
    exchange = ScriptedExchange("See [src/说明 😀.py:3-4].")
    live = LiveIndex(tmp_path, lambda: SETTINGS, opener=lambda root, settings: fake)
    runner = ActionRunner(editor, lambda: SETTINGS, exchange, Catalog, lambda: live)
    editor.listeners.append(runner.on_change)
    uri = "file:///work/notes.chat.md"
    editor.open(uri, '## user\n\nExplain @"src/说明 😀.py":3-4 and @missing/file.py, @../outside.txt,\n'
                     "@.env.production\n@search: parse config\n", "markdown")
    result = await runner.send_chat(uri)
    task = runner.running[result["id"]].task
    assert task is not None
    await task
    await editor.settle()
    sent = exchange.requests[0].chat
    assert sent is not None
    content = sent[-1]["content"]
    assert content.startswith('Explain @"src/说明 😀.py":3-4')
    assert "[src/说明 😀.py:3-4]\n```\nline 3 行\nline 4 行\n```" in content
    assert "[src/配置 config.py:40-41]" in content  # from @search:
    assert "@missing/file.py: there is no such file in the workspace." in content
    assert "outside the workspace" in content
    assert "sk-secret" not in content and "@.env.production: .env.production may hold secrets" in content
    notes = [m for _, m in editor.messages]
    assert any("@missing/file.py" in m for m in notes)
    link = (tmp_path / "src" / "说明 😀.py").as_uri()
    assert f"[src/说明 😀.py:3-4]({link}#L3)" in editor.text(uri)


async def test_a_read_only_index_is_searched_as_it_is() -> None:
    class ReadOnly(FakeIndex):
        notice = "The index was damaged; it was moved aside and starts empty."
        built = True

        def update(self, paths: Iterable[str] | None = None, *, progress: Any = None, cancel: Any = None) -> Any:
            self.calls.append(("update", paths))
            raise GptLsError("The index cannot be written: is its disk read-only?")

    fake = ReadOnly()
    editor, exchange, runner, _ = make("Answer.", "Again.", index=fake)
    editor.open("file:///work/q.md", "Where is the config parsed?\n")
    await ask(runner, editor, "file:///work/q.md", "Where is the config parsed?")
    assert "[src/配置 config.py:40-41]" in exchange.requests[0].system_extra
    shown = [m for _, m in editor.messages if "read-only" in m]
    assert shown == ["gpt-ls: The index cannot be written: is its disk read-only? Searching the index as it is."]


async def test_a_damaged_index_s_notice_is_shown_once() -> None:
    class Damaged(FakeIndex):
        notice = "The index was damaged; it was moved aside and is rebuilt."

    editor, _, runner, _ = make("Answer.", index=Damaged())
    editor.open("file:///work/q.md", "Where is the config parsed?\n")
    await ask(runner, editor, "file:///work/q.md", "Where is the config parsed?")
    await ask(runner, editor, "file:///work/q.md", "Where is the config parsed?")
    assert [m for _, m in editor.messages if "damaged" in m] == [
        "gpt-ls: The index was damaged; it was moved aside and is rebuilt."]


@dataclass
class Ranked:
    hits: list[Hit]
    semantic: bool
    notice: str | None = None


@dataclass
class FakeRanker:
    """eval14's SemanticRanker as the server uses it: refresh after a build, search instead of BM25 alone."""

    index: FakeIndex
    calls: list[str] = field(default_factory=list)

    async def refresh(self, settings: Settings, *, cancel: Any = None, progress: Any = None) -> Any:
        self.calls.append(f"refresh {settings.embedding_model}")
        progress(1, 1)
        return Ranked([], False, notice=None)

    async def search(self, query: str, limit: int, settings: Settings) -> Ranked:
        self.calls.append(f"search {query}")
        return Ranked([Hit(Chunk("docs/意义.md", 3, 4, "向量找到的段落\n第二行\n"), 0.9)], True,
                      notice="Embeddings failed (429); BM25 alone for a minute.")


async def test_with_an_embedding_model_the_semantic_ranker_ranks_and_its_failure_is_said() -> None:
    fake = FakeIndex()
    rankers: list[FakeRanker] = []
    settings = Settings(history=False, model="gpt-4", embedding_model="text-embedding-3-small")
    editor = MemoryEditor(FULL, workspace_root=ROOT)
    exchange = ScriptedExchange("ok")
    live = LiveIndex(ROOT, lambda: settings, opener=lambda root, s: fake,
                     ranker=lambda index: rankers.append(FakeRanker(index)) or rankers[-1])
    runner = ActionRunner(editor, lambda: settings, exchange, Catalog, lambda: live)
    editor.listeners.append(runner.on_change)
    editor.open("file:///work/q.md", "意义是什么？\n")
    await ask(runner, editor, "file:///work/q.md", "意义是什么？")
    assert len(rankers) == 1 and rankers[0].index is fake
    assert rankers[0].calls == ["refresh text-embedding-3-small", "search 意义是什么？"]
    assert "[docs/意义.md:3-4]" in exchange.requests[0].system_extra
    assert ("search", "意义是什么？") not in fake.calls
    assert "gpt-ls: Embeddings failed (429); BM25 alone for a minute." in [m for _, m in editor.messages]
    assert "report embedding 1/1 chunks" in editor.progresses[0].events


async def test_a_semantic_ranker_that_breaks_leaves_bm25_and_says_so() -> None:
    class Broken(FakeRanker):
        async def search(self, query: str, limit: int, settings: Settings) -> Ranked:
            raise AttributeError("'WorkspaceIndex' object has no attribute 'chunk_ids_by_hash'")

    fake = FakeIndex()
    settings = Settings(history=False, model="gpt-4", embedding_model="text-embedding-3-small")
    editor = MemoryEditor(FULL, workspace_root=ROOT)
    exchange = ScriptedExchange("ok")
    live = LiveIndex(ROOT, lambda: settings, opener=lambda root, s: fake, ranker=lambda index: Broken(fake))
    runner = ActionRunner(editor, lambda: settings, exchange, Catalog, lambda: live)
    editor.listeners.append(runner.on_change)
    editor.open("file:///work/q.md", "Where is the config parsed?\n")
    await ask(runner, editor, "file:///work/q.md", "Where is the config parsed?")
    assert "[src/配置 config.py:40-41]" in exchange.requests[0].system_extra
    assert "gpt-ls: Semantic ranking failed (AttributeError); this search is BM25 alone." in [
        m for _, m in editor.messages]


async def test_the_request_with_its_chunks_fits_the_window_with_max_tokens_exactly() -> None:
    from gpt_ls import prompts
    from gpt_ls.actions import requests, workspace
    from gpt_ls.index.context import render_source
    from gpt_ls.models import lookup_model
    from gpt_ls.tokens import count_messages, count_text

    body = "".join(f"    value_{i} = compute({i}, '参数 {i} 😀')\n" for i in range(60))
    fake = FakeIndex(hits=[Hit(Chunk(f"src/m{i}.py", 1, 60, body), 1.0) for i in range(30)])
    settings = Settings(history=False, model="gpt-4", max_tokens=1000, context_lines=5)
    editor = MemoryEditor(FULL, workspace_root=ROOT)
    editor.open("file:///work/q.md", "".join(f"line {i} 行\n" for i in range(40)) + "Which module computes?\n")
    live = LiveIndex(ROOT, lambda: settings, opener=lambda root, s: fake)
    runner = ActionRunner(editor, lambda: settings, ScriptedExchange("ok"), Catalog, lambda: live)
    action = runner.action("askWorkspace")
    target = requests.select(editor, action, "file:///work/q.md", *editor.range_of("file:///work/q.md", "Which"))
    req = requests.build_request(editor, action, target, settings, {}, "")
    sent, prepared = await workspace.prepare(live, editor, req, None)
    ctx = sent.context
    messages = prompts.render(sent.action, ctx, ctx.before, ctx.after, [], sent.system_extra)
    used = count_messages(messages, lookup_model("gpt-4"))
    one = count_text(render_source(prepared.sources[-1]), "cl100k_base")  # a hit (the asking file's goes first)
    assert prepared.sources[0].label == "q.md:1-35"  # its lines outside the excerpt (36-46) sent with the question
    assert used <= 8192 - 1000  # it fits with the reply's 1,000 tokens …
    assert 8192 - 1000 - used < one + 64  # … and no other whole chunk would have
    assert 3 <= len(prepared.sources) < 30


async def test_a_code_action_with_workspace_context_gets_chunks_but_no_links_in_its_code() -> None:
    from gpt_ls.actions.catalog import Action, load_actions

    editor, exchange, _, fake = make("x = parse_config_file('a')  # src/配置 config.py:40")
    live = LiveIndex(ROOT, lambda: SETTINGS, opener=lambda root, s: fake)
    catalog = load_actions([("user", {"useConfig": {"title": "GPT: Use the config", "context": "workspace",
                                                    "code": True, "system": "Write code."}})], set())
    assert isinstance(catalog.get("useConfig"), Action)
    runner = ActionRunner(editor, lambda: SETTINGS, exchange, lambda: catalog, lambda: live)
    editor.listeners.append(runner.on_change)
    editor.open("file:///work/a.py", "# load the config\n", "python")
    await ask(runner, editor, "file:///work/a.py", "# load the config", action="useConfig")
    assert "[src/配置 config.py:40-41]" in exchange.requests[0].system_extra
    code = "x = parse_config_file('a')  # src/配置 config.py:40"
    assert editor.text("file:///work/a.py") == f"# load the config\n{code}\n"


async def test_the_asking_document_s_own_excerpt_is_not_sent_twice() -> None:
    question = Hit(Chunk("q.md", 2, 2, "Where is the config parsed?\n"), 9.0)
    far = Hit(Chunk("q.md", 200, 201, "A far section about the parser.\n"), 2.0)
    fake = FakeIndex(hits=[question, Hit(CONFIG, 3.0), far])
    editor, exchange, runner, _ = make("ok", index=fake)
    editor.open("file:///work/q.md", "Intro\nWhere is the config parsed?\n")
    await ask(runner, editor, "file:///work/q.md", "Where is the config parsed?")
    extra = exchange.requests[0].system_extra
    assert "[q.md:2]" not in extra and "[src/配置 config.py:40-41]" in extra and "[q.md:200-201]" in extra


async def test_without_edits_the_reply_document_has_the_links_and_sources() -> None:
    from tests.support.memory_editor import NO_EDITS

    fake = FakeIndex()
    editor = MemoryEditor(NO_EDITS, workspace_root=ROOT)
    exchange = ScriptedExchange("See [README.md:1-2].")
    live = LiveIndex(ROOT, lambda: SETTINGS, opener=lambda root, s: fake)
    runner = ActionRunner(editor, lambda: SETTINGS, exchange, Catalog, lambda: live)
    editor.open("file:///work/q.md", "What is the project?\n")
    result = await runner.run_action("askWorkspace", "file:///work/q.md", *editor.range_of("file:///work/q.md", "What"))
    assert result["status"] == "complete" and result["text"] == "See [README.md:1-2]."  # as the model wrote it
    (saved,) = editor.files.values()
    assert saved.endswith("See [README.md:1-2](file:///work/README.md#L1).\n\n**Sources**\n\n"
                          "- [README.md:1-2](file:///work/README.md#L1)\n")
