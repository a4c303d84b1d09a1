"""Fitting a request and counting its usage without holding up the event loop.

Most requests (``contextLines`` around a selection) fit by their UTF-8 size alone
(``budget.fit_by_bound``) and load no tokenizer. The rest (near the window, conversations
to trim, models whose reply budget is what the prompt leaves) are counted exactly by
``budget.fit`` in a thread: loading a tokenizer takes 0.4-0.9 s and 40-80 MB, and counting a
large excerpt tens of ms. Usage the API did not report is counted the same way.
"""

from __future__ import annotations

import asyncio

from gpt_ls import budget
from gpt_ls.models import ModelInfo
from gpt_ls.tokens import count_messages, count_text


async def fit_request(
    render: budget.Render, before: str, after: str, history: budget.Messages, info: ModelInfo,
    max_tokens: int | None, min_reply: int,
) -> budget.Fitted:
    """The request fitted to the window: by its size when that settles it, else counted in a thread."""
    fitted = budget.fit_by_bound(render, before, after, history, info, max_tokens, min_reply)
    if fitted is None:
        fitted = await asyncio.to_thread(budget.fit, render, before, after, history, info, max_tokens, min_reply)
    return fitted


async def counted_usage(messages: budget.Messages, reply: str, info: ModelInfo) -> tuple[int, int]:
    """(prompt, completion) tokens counted here, in a thread (loads the tokenizer)."""
    return await asyncio.to_thread(lambda: (count_messages(messages, info), count_text(reply, info.encoding)))
