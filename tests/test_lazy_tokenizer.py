"""A tokenizer is loaded only when an exact count is needed (issue 16, section 2).

Ordinary actions (``contextLines`` around a selection) fit by their byte size, a proven
upper bound of their tokens, and never load an encoding; a request near the window or a
conversation that must be trimmed is counted exactly, and still fits.
"""

from __future__ import annotations

import pytest

from gpt_ls import budget, tokens
from gpt_ls.actions.catalog import ASK, Catalog
from gpt_ls.actions.runner import ActionRunner
from gpt_ls.exchange import Exchange, ExchangeRequest
from gpt_ls.models import model_info
from gpt_ls.prompts import SelectionContext, render
from gpt_ls.settings import Settings
from tests.support.fakeopenai import FakeOpenAI, Reply
from tests.support.memory_editor import MemoryEditor

pytestmark = pytest.mark.timeout(30)

KEY = "sk-test-key-0123456789"
URI = "file:///work/long.py"


def long_document(lines: int = 10_000) -> str:
    """Mixed scripts, as in benchmarks/session.py, with findable lines."""
    body = [f"def function_{i}(x):  # 第 {i} 行 🙂 return x * {i}" for i in range(lines)]
    return "\n".join(body) + "\n"


async def test_ordinary_actions_on_a_long_document_load_no_encoding(api: FakeOpenAI) -> None:
    tokens.reset()
    api.script(Reply(text="答案 🙂"), Reply(text="Again."), Reply(text="It multiplies."),
               Reply(text="Dear team,"))
    settings = Settings(base_url=api.url, api_key=KEY)  # the defaults: gpt-4.1-mini, contextLines 40, history
    editor = MemoryEditor()
    exchange = Exchange()
    runner = ActionRunner(editor, lambda: settings, exchange, Catalog)
    editor.listeners.append(runner.on_change)
    editor.open(URI, long_document(), "python")
    try:
        for action, line in [("ask", 5_000), ("continue", 7_000), ("explain", 2), ("draftEmail", 9_999)]:
            needle = f"def function_{line}(x):"
            result = await runner.run_action(action, URI, *editor.range_of(URI, needle))
            run = runner.running.get(result.get("id", -1))
            if run is not None and run.task is not None:
                await run.task
            await editor.settle()
    finally:
        await exchange.aclose()
    assert tokens._loaded == {}
    sent = api.chat_requests()
    assert len(sent) == 4
    # The excerpt around the selection went whole (41 lines before the selection's line).
    assert "def function_4960(x):" in sent[0].messages[-1]["content"]
    # "Continue conversation" sent the first exchange along, uncounted.
    assert "答案 🙂" in [m["content"] for m in sent[1].messages]
    assert "答案 🙂" in editor.text(URI) and "Dear team," in editor.text(URI)
    # The reply budget is the model's whole output, as an exact count would have chosen.
    assert {r.body["max_tokens"] for r in sent} == {32_768}


def _ask(api: FakeOpenAI, selection: str, before: str = "", **settings: object) -> ExchangeRequest:
    return ExchangeRequest(ASK, SelectionContext("file:///a.md", "markdown", selection, before=before),
                           Settings(base_url=api.url, api_key=KEY, history=False, **settings))  # type: ignore[arg-type]


async def test_a_request_near_the_window_is_counted_and_fits_exactly(api: FakeOpenAI) -> None:
    tokens.reset()
    api.script(Reply(text="ok"))
    # About 3,000 bytes of English before the selection: more bytes than the window
    # leaves, though far fewer tokens.
    before = "".join(f"Line {i} of the notes says something ordinary.\n" for i in range(60))
    req = _ask(api, "What do the notes say?", before, model="gpt-4o", context_window=2_600, max_tokens=200)
    exchange = Exchange()
    try:
        reply = await exchange.run(req, lambda _: None)
    finally:
        await exchange.aclose()
    assert reply.status == "complete"
    assert sorted(tokens._loaded) == ["o200k_base"] and tokens._loaded["o200k_base"] is not None
    info = model_info(req.settings)
    sent = api.chat_requests()[0]
    assert "Line 0 of the notes" in sent.messages[-1]["content"]  # all of it fitted, once counted
    assert tokens.count_messages(sent.messages, info) + sent.body["max_tokens"] <= 2_600


async def test_a_long_conversation_is_counted_and_trimmed_to_fit_exactly(api: FakeOpenAI) -> None:
    tokens.reset()
    api.script(Reply(text="ok"))
    turns = []
    for i in range(40):
        turns += [{"role": "user", "content": f"Question {i}: " + "what about this? " * 20},
                  {"role": "assistant", "content": f"Answer {i}: " + "it depends. " * 20}]
    chat = [*turns, {"role": "user", "content": "And the last question?"}]
    req = _ask(api, "", model="gpt-4o", context_window=4_000)
    req.chat = chat
    exchange = Exchange()
    try:
        reply = await exchange.run(req, lambda _: None)
    finally:
        await exchange.aclose()
    assert reply.status == "complete"
    assert sorted(tokens._loaded) == ["o200k_base"] and tokens._loaded["o200k_base"] is not None
    info = model_info(req.settings)
    sent = api.chat_requests()[0].messages
    assert sent[-1]["content"] == "And the last question?"
    assert sent[1]["content"].startswith("Question ")  # oldest turns dropped, a question first
    assert "Question 0:" not in [m["content"][:11] for m in sent]
    assert tokens.count_messages(sent, info) + api.chat_requests()[0].body["max_tokens"] <= 4_000
    assert api.chat_requests()[0].body["max_tokens"] == 4_000 - tokens.count_messages(sent, info)


@pytest.mark.parametrize("model", ["gpt-4.1-mini", "gpt-4o", "gpt-4-turbo", "llama3"])
@pytest.mark.parametrize("max_tokens", [None, 500])
def test_fit_by_bound_agrees_with_the_exact_fit_whenever_it_answers(model: str, max_tokens: int | None) -> None:
    info = model_info(Settings(model=model))
    line = "def function(x):  # 第 1 行 🙂 return x\n"
    history = [{"role": "user", "content": "你好 👋"}, {"role": "assistant", "content": "Hello!"}]
    answered = 0
    for lines in (0, 40, 400, 4_000):
        before, after = line * lines, line * (lines // 2)

        def r(b: str, a: str, h: list[dict[str, str]]) -> list[dict[str, str]]:
            return render(ASK, SelectionContext("file:///a.py", "python", "x = 1"), b, a, h)

        quick = budget.fit_by_bound(r, before, after, history, info, max_tokens)
        if quick is None:
            continue
        answered += 1
        exact = budget.fit(r, before, after, history, info, max_tokens)
        assert (quick.messages, quick.reply_budget) == (exact.messages, exact.reply_budget)
        assert (quick.trimmed_context, quick.dropped_turns) == (exact.trimmed_context, exact.dropped_turns)
        assert quick.prompt_tokens >= exact.prompt_tokens and quick.exact is False
    assert answered >= 2  # the short excerpts always fit by their size in these windows


def test_byte_bound_is_never_below_the_count() -> None:
    for text in ["", "a", "🙂🙂🙂", "第 1 行", " \n\n  x", "a" * 5_000, "😀" * 3_000, "ab" * 4_000]:
        for encoding in ("o200k_base", "cl100k_base"):
            assert budget.byte_bound(text) >= tokens.count_text(text, encoding)


def test_a_document_without_lone_surrogates_is_not_copied() -> None:
    from gpt_ls.exchange import valid_unicode

    text = long_document(2_000)
    assert valid_unicode(text) is text
    assert valid_unicode("好\ud800 🙂 \udfff") == "好\ufffd 🙂 \ufffd"
