"""Exchanges and the history they leave: retention per workspace, "New conversation" without empty rows.

Real exchanges against the fake OpenAI server, with history on, in two workspaces.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest
import pytest_asyncio

from gpt_ls.actions.catalog import ASK, CONTINUE
from gpt_ls.actions.conversations import history_overview, new_conversation
from gpt_ls.exchange import Exchange, ExchangeRequest
from gpt_ls.history.store import HistoryStore, workspace_key
from gpt_ls.prompts import SelectionContext
from gpt_ls.settings import Settings
from tests.support.fakeopenai import FakeOpenAI, Reply
from tests.support.memory_editor import MemoryEditor

pytestmark = pytest.mark.timeout(30)


@pytest_asyncio.fixture
async def exchange() -> AsyncIterator[Exchange]:
    ex = Exchange()
    yield ex
    await ex.aclose()


def settings(api: FakeOpenAI, **kw: object) -> Settings:
    return Settings(base_url=api.url, api_key="sk-test-key-0123456789", **kw)  # type: ignore[arg-type]


async def ask(exchange: Exchange, settings: Settings, workspace: str, question: str, follow_up: bool = False) -> int:
    """One exchange in ``workspace``; the id of the conversation it was recorded in."""
    action = CONTINUE if follow_up else ASK
    context = SelectionContext("file:///w/a.md", "markdown", question)
    req = ExchangeRequest(action, context, settings, workspace=workspace)
    reply = await exchange.run(req, lambda _: None)
    assert reply.status == "complete", reply.error
    assert reply.conversation_id is not None
    return reply.conversation_id


def titles(store: HistoryStore, workspace: str) -> list[str]:
    return [c.title for c in store.list_conversations(workspace, limit=100)]


async def test_max_conversations_keeps_exactly_n_in_this_workspace_only(api: FakeOpenAI, exchange: Exchange) -> None:
    unlimited = settings(api)
    for i in range(3):
        await ask(exchange, unlimited, "/other", f"其他 {i} 😀")
    limited = settings(api, history_max_conversations=2)
    for i in range(4):
        await ask(exchange, limited, "/mine", f"mine {i} 一")
        assert len(titles(exchange.store(), "/mine")) == min(i + 1, 2)
    assert titles(exchange.store(), "/mine") == ["mine 3 一", "mine 2 一"]
    assert titles(exchange.store(), "/other") == ["其他 2 😀", "其他 1 😀", "其他 0 😀"]


async def test_retention_days_forget_only_this_workspaces_old_conversations(
    api: FakeOpenAI, exchange: Exchange
) -> None:
    store = exchange.store()
    for workspace in ("/mine", "/other"):
        old = store.new_conversation(workspace, f"old in {workspace}")
        store.add_message(old, "user", "旧 question")
        with closing(sqlite3.connect(store.path)) as raw, raw:  # age it by hand
            raw.execute("UPDATE conversations SET updated = '2020-01-01T00:00:00.000000Z' WHERE id = ?", (old,))
    await ask(exchange, settings(api, history_retention_days=30), "/mine", "new 新")
    assert titles(store, "/mine") == ["new 新"]
    assert titles(store, "/other") == ["old in /other"]


async def test_new_conversation_leaves_no_empty_entries_and_continue_starts_fresh(
    api: FakeOpenAI, exchange: Exchange, tmp_path: Path
) -> None:
    root = tmp_path / "ws 工作区"
    root.mkdir()
    port = MemoryEditor(workspace_root=root)
    workspace = workspace_key(root)
    s = settings(api)
    first = await ask(exchange, s, workspace, "first 一")
    assert await ask(exchange, s, workspace, "follow-up 二", follow_up=True) == first
    assert new_conversation(exchange, port, s) == {"status": "fresh"}
    assert new_conversation(exchange, port, s) == {"status": "fresh"}
    listed = history_overview(exchange, port, s)["conversations"]
    assert [(c["title"], c["messages"]) for c in listed] == [("first 一", 4)]  # no empty entries
    fresh = await ask(exchange, s, workspace, "after new 三", follow_up=True)  # Continue after New: fresh
    assert fresh != first
    assert [m["role"] for m in api.chat_requests()[-1].body["messages"]] == ["system", "user"]
    assert await ask(exchange, s, workspace, "then 四", follow_up=True) == fresh  # and it continues from there
    listed = history_overview(exchange, port, s)["conversations"]
    assert [(c["title"], c["messages"]) for c in listed] == [("after new 三", 4), ("first 一", 4)]
    assert port.messages == [("info", "gpt-ls: new conversation started.")] * 2


async def test_new_conversation_in_one_workspace_leaves_the_other_continuing(
    api: FakeOpenAI, exchange: Exchange, tmp_path: Path
) -> None:
    s = settings(api)
    other = await ask(exchange, s, "/other", "other 他")
    mine = tmp_path / "mine"
    mine.mkdir()
    await ask(exchange, s, workspace_key(mine), "mine 我")
    new_conversation(exchange, MemoryEditor(workspace_root=mine), s)
    assert await ask(exchange, s, "/other", "still other", follow_up=True) == other


async def test_a_new_conversation_is_sent_before_the_store_opens(api: FakeOpenAI, exchange: Exchange,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Ask starts a conversation: its request need not wait for the store (tens of ms on first use)."""
    real_open = HistoryStore.open
    waited: list[bool] = []

    def open_after_the_request(path: Path | None = None) -> HistoryStore:
        deadline = time.monotonic() + 3
        while not api.chat_requests() and time.monotonic() < deadline:
            time.sleep(0.005)
        waited.append(bool(api.chat_requests()))
        return real_open(path)

    monkeypatch.setattr(HistoryStore, "open", staticmethod(open_after_the_request))
    api.script(Reply(text="Paris 巴黎 🙂"))
    conv_id = await ask(exchange, settings(api), "/mine", "capital of France?")
    assert waited == [True]
    assert exchange.store().turns(conv_id) == [{"role": "user", "content": "capital of France?"},
                                               {"role": "assistant", "content": "Paris 巴黎 🙂"}]

async def test_a_damaged_store_is_reported_by_the_first_exchange(api: FakeOpenAI, exchange: Exchange,
                                                                  isolated: Path) -> None:
    from gpt_ls.settings import data_dir

    data_dir().mkdir(parents=True, mode=0o700, exist_ok=True)
    (data_dir() / "history.db").write_bytes(b"not a database \x00\xff" * 100)
    context = SelectionContext("file:///w/a.md", "markdown", "question 问题")
    reply = await exchange.run(ExchangeRequest(ASK, context, settings(api), workspace="/mine"), lambda _: None)
    assert reply.status == "complete", reply.error
    assert any("could not be read" in n and "fresh history" in n for n in reply.notices), reply.notices
