"""The one model request of a completion: chat (``/chat/completions``) or FIM (``/v1/completions``).

Same client, key, proxy and TLS as every other request (``api/http.ClientCache``), but
with no SDK retries (a 429 backs the scheduler off instead of waiting while the user types)
and a short read timeout. Streamed, so the reply's end is seen the moment it arrives.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import openai
    from openai import AsyncStream
    from openai.types.chat import ChatCompletionChunk

#: The most characters of a reply kept (``completionMaxTokens`` bounds it far below this).
MAX_REPLY_CHARS = 16_000
#: Seconds to wait for a completion at all: a suggestion later than this is useless.
READ_TIMEOUT = 20.0
#: Back-off after a 429 that names no wait.
DEFAULT_BACKOFF = 30.0
#: Never wait longer than this, whatever Retry-After says.
MAX_BACKOFF = 600.0


@dataclass(frozen=True)
class ModelCall:
    """Everything a completion request sends besides the text."""

    mode: str
    model: str
    max_tokens: int
    stop: list[str]
    options: dict[str, Any]


def _quiet(client: openai.AsyncOpenAI) -> openai.AsyncOpenAI:
    return client.with_options(max_retries=0, timeout=READ_TIMEOUT)


async def chat(client: openai.AsyncOpenAI, call: ModelCall, messages: list[dict[str, str]]) -> str:
    """The text of a streamed chat reply."""
    stream = cast("AsyncStream[ChatCompletionChunk]", await _quiet(client).chat.completions.create(
        model=call.model, messages=messages, stream=True, stop=call.stop, **call.options))  # type: ignore[arg-type]
    parts: list[str] = []
    size = 0
    async with stream:
        async for chunk in stream:
            delta = chunk.choices[0].delta.content if chunk.choices and chunk.choices[0].delta else None
            if delta:
                parts.append(delta)
                size += len(delta)
                if size >= MAX_REPLY_CHARS:
                    break
    return "".join(parts)[:MAX_REPLY_CHARS]


async def fim(client: openai.AsyncOpenAI, call: ModelCall, prompt: str, suffix: str) -> str:
    """The text of a streamed fill-in-the-middle completion."""
    stream = await _quiet(client).completions.create(
        model=call.model, prompt=prompt, suffix=suffix or None, stream=True, stop=call.stop,
        max_tokens=call.max_tokens, temperature=call.options.get("temperature", 0.2))
    parts: list[str] = []
    size = 0
    async with stream:
        async for chunk in stream:
            text = chunk.choices[0].text if chunk.choices else None
            if text:
                parts.append(text)
                size += len(text)
                if size >= MAX_REPLY_CHARS:
                    break
    return "".join(parts)[:MAX_REPLY_CHARS]


def retry_after(exc: BaseException, now: float | None = None) -> float:
    """Seconds a 429 asks to wait (``retry-after-ms``, ``Retry-After`` in seconds or as a date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            return min(MAX_BACKOFF, max(0.0, float(headers["retry-after-ms"]) / 1000))
        value = headers.get("retry-after")
        if value:
            try:
                return min(MAX_BACKOFF, max(0.0, float(value)))
            except ValueError:
                when = email.utils.parsedate_to_datetime(value).timestamp()
                return min(MAX_BACKOFF, max(0.0, when - (now if now is not None else time.time())))
    except (TypeError, ValueError, OverflowError):
        pass
    return DEFAULT_BACKOFF
