"""An exchange that needs a count loads the tokenizer without holding up the event loop."""

import asyncio
import threading

from gpt_ls import tokens
from gpt_ls.actions.catalog import ASK
from gpt_ls.exchange import Exchange, ExchangeRequest
from gpt_ls.prompts import SelectionContext
from gpt_ls.settings import Settings
from tests.support.fakeopenai import FakeOpenAI, Reply


async def test_event_loop_keeps_running_while_the_tokenizer_loads(api: FakeOpenAI):
    api.script(Reply(text="你好 👋"))
    tokens.reset()
    # gpt-4's reply budget is what its prompt leaves: only an exact count can tell it.
    settings = Settings(base_url=api.url, api_key="sk-test-key-0123456789", history=False, model="gpt-4")
    req = ExchangeRequest(ASK, SelectionContext("file:///a.md", "markdown", "Say hello"), settings)
    engine = Exchange()
    # Another thread is loading the tokenizer (as the warm-up does) and holds its lock.
    tokens._lock.acquire()
    release = threading.Timer(1.5, tokens._lock.release)
    release.start()
    try:
        task = asyncio.create_task(engine.run(req, lambda _: None))
        await asyncio.sleep(0.2)
        # Had the engine waited for the lock on the event loop, this coroutine would
        # only resume after the timer released it.
        assert tokens._lock.locked()
        assert not task.done()
    finally:
        release.join()
    outcome = await task
    assert (outcome.status, outcome.text) == ("complete", "你好 👋")
    assert sorted(tokens._loaded) == ["cl100k_base"]
