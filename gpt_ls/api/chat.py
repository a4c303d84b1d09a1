"""The streamed chat request, posted as the SDK's own ``chat.completions.create`` posts it, minus one step.

``create()`` first walks the whole body against the SDK's TypedDicts (``async_maybe_transform``:
aliases, base64 file fields, ISO dates) and then posts it. gpt-ls's bodies hold only strings,
numbers and plain dicts and lists of them, which that walk returns unchanged; it still cost
0.2-0.8 ms of the event loop at every action's start (``benchmarks.run --only request-start``),
in the same step that builds and sends the request, and an editor request arriving then waits
for it (``docs/benchmarks.md``).

:func:`stream_chat` posts the body through ``client.post``, the SDK's documented way to call
an endpoint with a body of one's own, with the options ``create()`` gives: the same URL
(Azure's deployment path included), headers, key, retries, errors and stream type.
``tests/test_chat_request.py`` checks that the walk leaves gpt-ls's bodies unchanged and that
both ways put the same request on the wire.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import openai
from openai import AsyncStream
from openai.types.chat.chat_completion import ChatCompletion
from openai.types.chat.chat_completion_chunk import ChatCompletionChunk

if TYPE_CHECKING:
    from openai._types import RequestOptions

PATH = "/chat/completions"


def options() -> RequestOptions:
    """As ``create()`` asks, a new dict each time: the bearer key (Azure: its ``api-key`` header), no admin key."""
    return {"security": {"bearer_auth": True}}


async def stream_chat(client: openai.AsyncOpenAI, body: dict[str, Any]) -> AsyncStream[ChatCompletionChunk]:
    """Start a streamed chat completion (``body`` holds ``stream: True``); the SDK's stream of chunks."""
    return await client.post(PATH, body=body, options=options(),
                             cast_to=ChatCompletion, stream=True, stream_cls=AsyncStream[ChatCompletionChunk])
