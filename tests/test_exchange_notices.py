"""An exchange that can only estimate tokens (tokenizer data missing) says so, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpt_ls import tokens
from gpt_ls.actions.catalog import ASK
from gpt_ls.exchange import Exchange, ExchangeRequest
from gpt_ls.exchange import Reply as ExchangeReply
from gpt_ls.prompts import SelectionContext
from gpt_ls.settings import Settings
from tests.support.fakeopenai import FakeOpenAI, Reply

NOTICE = ("Token counts for cl100k_base are estimates: its tokenizer data could not be loaded "
          "(FileNotFoundError:")


async def ask(api: FakeOpenAI, times: int = 1, model: str = "gpt-4") -> list[ExchangeReply]:
    """Ask "你好 👋" ``times`` times through one exchange."""
    # gpt-4's reply budget is what its prompt leaves: the request is counted.
    settings = Settings(base_url=api.url, api_key="sk-test-key-0123456789", history=False, model=model)
    req = ExchangeRequest(ASK, SelectionContext("file:///a.md", "markdown", "你好 👋"), settings)
    exchange = Exchange()
    try:
        return [await exchange.run(req, lambda _: None) for _ in range(times)]
    finally:
        await exchange.aclose()


async def test_an_approximate_tokenizer_is_noticed_once(
    api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.script(Reply(text="一"), Reply(text="二"))
    monkeypatch.setenv(tokens.ENCODINGS_DIR_ENV, str(tmp_path))
    tokens.reset()
    try:
        first, second = await ask(api, 2)
    finally:
        monkeypatch.delenv(tokens.ENCODINGS_DIR_ENV)
        tokens.reset()
    assert (first.status, first.text, second.text) == ("complete", "一", "二")
    assert [n.startswith(NOTICE) for n in first.notices if "Token counts" in n] == [True]
    assert first.usage is not None and first.usage.exact  # the API's own counts are still exact
    assert second.notices == []


async def test_an_exact_tokenizer_has_no_notice(api: FakeOpenAI) -> None:
    api.script(Reply(text="好"))
    tokens.reset()
    [reply] = await ask(api)
    assert (reply.text, reply.notices) == ("好", [])
