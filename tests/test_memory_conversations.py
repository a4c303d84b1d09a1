"""History off: the exchange keeps the session's conversation in memory (the CLI's and the server's)."""

from __future__ import annotations

from gpt_ls.actions.catalog import ASK, Action
from gpt_ls.actions.conversations import new_conversation
from gpt_ls.exchange import Exchange, ExchangeRequest
from gpt_ls.history.memory import MemoryConversations
from gpt_ls.history.store import workspace_key
from gpt_ls.prompts import SelectionContext
from gpt_ls.settings import Settings, data_dir
from tests.support.fakeopenai import FakeOpenAI, Reply
from tests.support.memory_editor import FULL, MemoryEditor

CHAT = Action("chat", "gpt-ls.chat", "Chat", "Be brief.", template="{selection}", conversation="continue")


def request(api: FakeOpenAI, action: Action, text: str, new: bool = False, workspace: str = "/ws") -> ExchangeRequest:
    settings = Settings(base_url=api.url, api_key="sk-test-key-0123456789", history=False)
    return ExchangeRequest(action, SelectionContext("", "", text), settings, workspace=workspace,
                           new_conversation=new)


def sent(api: FakeOpenAI, index: int) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in api.chat_requests()[index].body["messages"]]


def test_memory_keeps_turns_per_workspace_and_bounds_them() -> None:
    memory = MemoryConversations(max_turns=4)
    memory.record("/a", "q1", "r1", new=True)
    memory.record("/a", "q2", "", new=False)  # an empty reply is left out, as on disk
    memory.record("/b", "other", "x", new=True)
    assert memory.turns("/a") == [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "r1"},
                                  {"role": "user", "content": "q2"}]
    memory.record("/a", "q3", "r3", new=False)
    assert [t["content"] for t in memory.turns("/a")] == ["r1", "q2", "q3", "r3"]
    memory.record("/a", "q4", "r4", new=True)
    assert [t["content"] for t in memory.turns("/a")] == ["q4", "r4"]
    memory.forget("/a")
    assert memory.turns("/a") == []
    assert [t["content"] for t in memory.turns("/b")] == ["other", "x"]


async def test_history_off_resends_earlier_turns_within_the_session(api: FakeOpenAI) -> None:
    api.script(Reply(text="巴黎。"), Reply(text="2.1 million."), Reply(text="fresh"), Reply(text="elsewhere"))
    exchange = Exchange()
    try:
        await exchange.run(request(api, CHAT, "法国的首都？"), lambda _: None)
        await exchange.run(request(api, CHAT, "Population?"), lambda _: None)
        assert [t["content"] for t in exchange.memory.turns("/ws")] == [
            "法国的首都？", "巴黎。", "Population?", "2.1 million."]
        await exchange.run(request(api, CHAT, "Start over", new=True), lambda _: None)
        await exchange.run(request(api, CHAT, "Another workspace", workspace="/other"), lambda _: None)
    finally:
        await exchange.aclose()
    assert sent(api, 0) == [("system", "Be brief."), ("user", "法国的首都？")]
    assert sent(api, 1) == [("system", "Be brief."), ("user", "法国的首都？"), ("assistant", "巴黎。"),
                            ("user", "Population?")]
    assert sent(api, 2) == [("system", "Be brief."), ("user", "Start over")]
    assert sent(api, 3) == [("system", "Be brief."), ("user", "Another workspace")]
    assert not (data_dir() / "history.db").exists()


async def test_new_conversation_in_the_editor_forgets_the_memory(api: FakeOpenAI, tmp_path) -> None:
    api.script(Reply(text="one"))
    editor = MemoryEditor(FULL, workspace_root=tmp_path)
    exchange = Exchange()
    workspace = workspace_key(editor.workspace_root)
    try:
        await exchange.run(request(api, CHAT, "q", workspace=workspace), lambda _: None)
        assert len(exchange.memory.turns(workspace)) == 2
        assert new_conversation(exchange, editor, request(api, ASK, "").settings) == {"status": "fresh"}
        assert exchange.memory.turns(workspace) == []
    finally:
        await exchange.aclose()
    assert editor.messages[-1] == ("info", "gpt-ls: new conversation started (kept in memory only: history is off).")
