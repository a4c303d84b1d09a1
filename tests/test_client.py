"""The client against a real OpenAI-compatible HTTP server on 127.0.0.1 (tests/support/fakeopenai.py)."""

from __future__ import annotations

import time

import openai
import pytest

from gpt_ls.api.failures import describe_error
from gpt_ls.api.http import ClientCache, make_client, model_param
from gpt_ls.errors import StreamInterrupted
from gpt_ls.settings import Settings
from tests.support.fakeopenai import Cut, Error, FakeOpenAI, Recorded, Reply, Stall
from tests.support.netkit import KEY, api_fixture, settings_for, stream_into  # noqa: F401 - fixtures

NO_PROXY_ENV: dict[str, str] = {}


def headers(req: Recorded) -> dict[str, str]:
    """Header names as sent, case-insensitively."""
    return {k.lower(): v for k, v in req.headers.items()}


async def ask(client: openai.AsyncOpenAI, settings: Settings, text: str = "hi") -> str:
    out: list[str] = []
    await stream_into(client, out, text, model=model_param(settings))
    return "".join(out)


async def test_streams_a_reply_with_chinese_and_emoji(api: FakeOpenAI) -> None:
    s = settings_for(api)
    api.script(Reply(text="你好，世界 👋 done", chunk_size=3))
    cache = ClientCache(env=NO_PROXY_ENV)
    assert await ask(await cache.get(s), s) == "你好，世界 👋 done"
    assert headers(api.chat_requests()[0])["authorization"] == f"Bearer {KEY}"
    await cache.aclose()


async def test_cache_reuses_client_until_connection_settings_change(api: FakeOpenAI) -> None:
    cache = ClientCache(env=NO_PROXY_ENV)
    s = settings_for(api)
    first = await cache.get(s)
    assert await cache.get(settings_for(api)) is first
    # The model and prompt-related settings do not shape the connection.
    assert await cache.get(settings_for(api, model="gpt-4.1", temperature=0.2)) is first
    changed = await cache.get(settings_for(api, read_timeout=7.0))
    assert changed is not first
    assert await cache.get(settings_for(api, read_timeout=7.0)) is changed
    assert await cache.get(settings_for(api, proxy="")) is not changed
    await cache.aclose()


async def test_one_connection_is_reused_across_requests(api: FakeOpenAI) -> None:
    cache = ClientCache(env=NO_PROXY_ENV)
    s = settings_for(api)
    client = await cache.get(s)
    for _ in range(3):
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert len(api.chat_requests()) == 3
    assert api.connections == 1
    await cache.aclose()


async def test_editor_change_applies_on_next_request(api: FakeOpenAI) -> None:
    cache = ClientCache(env=NO_PROXY_ENV)
    await ask(await cache.get(settings_for(api)), settings_for(api))
    s2 = settings_for(api, headers={"X-Team": "docs"}, organization="org-1", project="proj-1")
    await ask(await cache.get(s2), s2)
    first, second = (headers(r) for r in api.chat_requests())
    assert "x-team" not in first
    assert second["x-team"] == "docs"
    assert second["openai-organization"] == "org-1"
    assert second["openai-project"] == "proj-1"
    await cache.aclose()


async def test_base_url_path_prefix_is_kept(api: FakeOpenAI) -> None:
    s = settings_for(api, base_url=api.url.replace("/v1", "/proxy/openai/v1"))
    client = make_client(s, KEY, env=NO_PROXY_ENV)
    await ask(client, s)
    assert api.chat_requests()[0].path == "/proxy/openai/v1/chat/completions"
    await client.close()


async def test_azure_uses_deployment_path_version_and_api_key_header(api: FakeOpenAI) -> None:
    endpoint = api.url.removesuffix("/v1")
    s = Settings(
        azure_endpoint=endpoint,
        azure_deployment="my-gpt4o",
        azure_api_version="2024-10-21",
        api_key=KEY,
    )
    assert model_param(s) == "my-gpt4o"
    client = make_client(s, KEY, env=NO_PROXY_ENV)
    with pytest.raises(openai.APIStatusError):
        await ask(client, s)  # the fake knows no Azure paths; what was sent is what matters
    (req,) = api.requests
    assert req.path == "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
    assert headers(req)["api-key"] == KEY
    assert req.body["model"] == "my-gpt4o"
    await client.close()


async def test_retries_5xx_and_429_before_the_stream_starts(api: FakeOpenAI) -> None:
    api.script(
        Error(status=500),
        Error(status=429, message="Rate limit", code="rate_limit_exceeded",
              headers={"Retry-After": "0"}),
        Reply(text="third time lucky"),
    )
    s = settings_for(api, max_retries=2)
    client = make_client(s, KEY, env=NO_PROXY_ENV)
    assert await ask(client, s) == "third time lucky"
    retries = [headers(r).get("x-stainless-retry-count") for r in api.chat_requests()]
    assert retries == ["0", "1", "2"]
    await client.close()


async def test_stream_cut_midway_is_not_retried(api: FakeOpenAI) -> None:
    api.script(Cut(text="Partial answer", chunk_size=4), Reply(text="SHOULD NOT BE SENT"))
    s = settings_for(api, max_retries=2)
    client = make_client(s, KEY, env=NO_PROXY_ENV)
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError) as info:
        await stream_into(client, received)
    assert "".join(received) == "Partial answer"
    assert len(api.chat_requests()) == 1  # no second request: nothing duplicated
    err = describe_error(info.value, s, during_stream=True)
    assert isinstance(err, StreamInterrupted)
    assert str(err) == (
        f"The connection to {api.url} was cut mid-reply (peer closed connection without sending "
        "complete message body (incomplete chunked read)); the reply is incomplete: ask again "
        "to get the rest"
    )
    await client.close()


async def test_read_timeout_is_per_read_and_configurable(api: FakeOpenAI) -> None:
    api.script(Stall(text="Slow start", seconds=10))
    s = settings_for(api, read_timeout=0.5, max_retries=2)
    client = make_client(s, KEY, env=NO_PROXY_ENV)
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError) as info:
        await stream_into(client, received)
    assert time.monotonic() - started < 5
    assert "".join(received) == "Slow start"
    assert len(api.chat_requests()) == 1  # a stalled stream is not retried either
    assert str(describe_error(info.value, s, during_stream=True)) == (
        f"The reply from {api.url} stalled for 0.5 s (readTimeout) and was cut off; the reply is "
        "incomplete: ask again to get the rest"
    )
    api.release_stalls()
    await client.close()


async def test_settings_change_does_not_cut_a_stream_in_flight(api: FakeOpenAI) -> None:
    api.script(Reply(text="slow and steady wins", chunk_size=4, delay=0.05), Reply(text="new"))
    cache = ClientCache(env=NO_PROXY_ENV)
    old = await cache.get(settings_for(api))
    stream = await old.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
    )
    got = []
    async with stream:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                got.append(chunk.choices[0].delta.content)
                if len(got) == 1:  # the user edits the settings mid-reply
                    new = await cache.get(settings_for(api, read_timeout=30.0))
                    assert new is not old
    assert "".join(got) == "slow and steady wins"
    assert await ask(new, settings_for(api)) == "new"
    await cache.aclose()
    assert old.is_closed() and new.is_closed()
