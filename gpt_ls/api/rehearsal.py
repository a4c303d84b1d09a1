"""The first streamed request, rehearsed in memory so that the real one finds the SDK ready.

The SDK pays a lot once, on its first request: it inspects the parameter types to transform
the messages (``typing.get_type_hints`` for each TypedDict), builds the pydantic schemas of
the chunk models it deferred at import, computes the platform headers, and imports the SSE
and streaming code. On the event loop that is tens of milliseconds before the first token
(more on a busy machine), during which the editor's requests wait.

:func:`rehearse` runs one chat request and one fill-in-the-middle request end to end through
a throw-away client whose transport answers from memory: no connection, no key, no
address; nothing leaves the process. Everything it warms (the SDK's caches, the built schemas,
the imported modules) is shared with the real clients. It runs in the warm-up thread.
"""

from __future__ import annotations

import asyncio
import json
import logging

import httpx2
import openai

from gpt_ls.api.chat import stream_chat

log = logging.getLogger(__name__)

#: A URL that can never be reached (``.invalid`` is reserved); the transport answers anyway.
NOWHERE = "http://rehearsal.invalid/v1"


def _sse(*events: dict[str, object]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def _answer(request: httpx2.Request) -> httpx2.Response:
    """A two-piece streamed answer with its usage chunk, in the shape of the endpoint asked."""
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    head = {"id": "rehearsal", "created": 0, "model": "rehearsal"}
    if request.url.path.endswith("/chat/completions"):
        head["object"] = "chat.completion.chunk"
        body = _sse({**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"},
                                          "finish_reason": None}]},
                    {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                    {**head, "choices": [], "usage": usage})
    else:
        head["object"] = "text_completion"
        body = _sse({**head, "choices": [{"index": 0, "text": "ok", "finish_reason": "stop", "logprobs": None}]},
                    {**head, "choices": [], "usage": usage})
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)


async def _requests() -> list[str]:
    http_client = openai.DefaultAsyncHttpxClient(transport=httpx2.MockTransport(_answer))
    client = openai.AsyncOpenAI(api_key="rehearsal", base_url=NOWHERE, max_retries=0, http_client=http_client)
    texts = []
    try:
        chat = await stream_chat(client, {  # as the exchange sends it (api/chat.py)
            "model": "gpt-4.1-mini", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
            "stream": True, "stream_options": {"include_usage": True}, "max_completion_tokens": 16, "temperature": 0.5})
        async with chat:
            texts.append("".join([c.choices[0].delta.content or "" async for c in chat if c.choices]))
        fim = await client.completions.create(model="gpt-3.5-turbo-instruct", prompt="p", suffix="s", stream=True,
                                              max_tokens=16, stop=["\n"], temperature=0.2)
        async with fim:
            texts.append("".join([c.choices[0].text async for c in fim if c.choices]))
    finally:
        await client.close()
    return texts


def rehearse() -> bool:
    """Run the rehearsal (in its own event loop, in the calling thread); False if it failed."""
    try:
        return asyncio.run(_requests()) == ["ok", "ok"]
    except Exception as exc:  # another SDK version: the first real request pays instead
        log.info("warm-up: the rehearsed request failed: %s", exc)
        return False
