"""The exchange posts its chat request itself (gpt_ls/api/chat.py): the same request as ``create()``."""

from __future__ import annotations

import json

import openai
import pytest
from openai._utils import async_maybe_transform
from openai.types.chat import completion_create_params

from gpt_ls.api.chat import stream_chat
from gpt_ls.api.http import make_client, model_param
from gpt_ls.models import adapt_messages, model_info, request_options
from gpt_ls.settings import Settings
from tests.support.fakeopenai import FakeOpenAI, Recorded, Reply
from tests.support.netkit import KEY, api_fixture, settings_for  # noqa: F401 - fixtures

MESSAGES = [{"role": "system", "content": "You answer in the user's language. 回答要简洁。"},
            {"role": "user", "content": "def f():\n    return '你好 🙂'\n\nExplain this."},
            {"role": "assistant", "content": "It returns a greeting: 你好 🙂."},
            {"role": "user", "content": "And in English?"}]


def bodies() -> list[dict[str, object]]:
    """Bodies as the exchange builds them, for a chat model, a reasoning model and one without system turns."""
    out = []
    for model, temperature in (("gpt-4", 0.3), ("o3-mini", None), ("o1-mini", None), ("gpt-4o", None)):
        info = model_info(Settings(model=model))
        out.append({"model": model, "messages": adapt_messages(info, MESSAGES), "stream": True,
                    "stream_options": {"include_usage": True}, **request_options(info, temperature, 512)})
    return out


@pytest.mark.parametrize("body", bodies(), ids=lambda b: str(b["model"]))
async def test_the_sdks_transform_leaves_the_exchanges_bodies_unchanged(body: dict[str, object]) -> None:
    """What stream_chat skips would have changed nothing: if the SDK starts rewriting such bodies, this fails."""
    transformed = await async_maybe_transform(body, completion_create_params.CompletionCreateParamsStreaming)
    assert transformed == body
    assert json.dumps(transformed, sort_keys=True) == json.dumps(body, sort_keys=True)


def same_headers(req: Recorded) -> dict[str, str]:
    """The headers of a request, but the per-request idempotency key."""
    return {k.lower(): v for k, v in req.headers.items() if k.lower() != "idempotency-key"}


async def sent_both_ways(api: FakeOpenAI, client: openai.AsyncOpenAI, body: dict[str, object]) -> tuple[str, str]:
    texts = []
    for start in (lambda: client.chat.completions.create(**body), lambda: stream_chat(client, body)):
        api.script(Reply(text="回答 🙂 done", chunk_size=3))
        stream = await start()
        async with stream:
            texts.append("".join([c.choices[0].delta.content or "" async for c in stream if c.choices]))
    return texts[0], texts[1]


async def test_the_request_on_the_wire_is_the_one_create_sends(api: FakeOpenAI) -> None:
    settings = settings_for(api, headers={"X-Team": "docs"}, organization="org-1")
    client = make_client(settings, KEY, env={})
    body = {**bodies()[0], "model": model_param(settings)}
    assert await sent_both_ways(api, client, body) == ("回答 🙂 done", "回答 🙂 done")
    by_create, by_post = api.chat_requests()
    assert (by_post.method, by_post.path, by_post.body) == (by_create.method, by_create.path, by_create.body)
    assert same_headers(by_post) == same_headers(by_create)
    assert same_headers(by_post)["authorization"] == f"Bearer {KEY}"
    assert same_headers(by_post)["x-team"] == "docs"
    await client.close()


async def test_azure_gets_the_same_deployment_path_and_key_header(api: FakeOpenAI) -> None:
    settings = Settings(azure_endpoint=api.url.removesuffix("/v1"), azure_deployment="my-gpt4o",
                        azure_api_version="2024-10-21", api_key=KEY, max_retries=0)
    client = make_client(settings, KEY, env={})
    body = {**bodies()[0], "model": model_param(settings)}
    for start in (lambda: client.chat.completions.create(**body), lambda: stream_chat(client, body)):
        with pytest.raises(openai.APIStatusError):  # the fake knows no Azure paths; what was sent is what matters
            await start()
    by_create, by_post = api.requests
    assert by_post.path == by_create.path == "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
    assert same_headers(by_post) == same_headers(by_create)
    assert same_headers(by_post)["api-key"] == KEY
    assert by_post.body == by_create.body
    await client.close()

