"""Asking the embeddings endpoint for vectors: bounded batches through the chat's own client.

The client is the one chat uses (``api/http.py``: the same key, endpoint, proxy, TLS and
timeouts), so the ``embeddingModel`` request goes exactly where chat requests go, and
restricted-setting rules apply to it the same way. A failure becomes one
:class:`~gpt_ls.errors.EmbeddingsFailed` sentence with the key scrubbed out.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from gpt_ls.errors import EmbeddingsFailed, GptLsError, ModelNotFound

#: Inputs per request (OpenAI accepts 2,048; a small batch keeps one failure cheap).
MAX_BATCH_INPUTS = 64
#: Characters per request: well under OpenAI's 300,000 tokens a request.
MAX_BATCH_CHARS = 200_000
#: Characters of one input: a token is at least one byte, so this stays under 8,192 tokens.
MAX_INPUT_CHARS = 8_000
#: Chunks embedded by one refresh; the rest wait for the next one (and are counted).
MAX_PER_REFRESH = 20_000


#: The most bytes one vector may take in a response: 3,072 dimensions as JSON floats.
RESPONSE_BYTES_PER_INPUT = 3_072 * 20


def inputs_per_batch(settings: Any) -> int:
    """Inputs a request may carry so that its response fits the client's line limit.

    An embeddings response is one JSON line, and ``api/http.py`` stops any line over
    ``line_limit`` (which grows with ``maxReplyChars``): a batch is sized to stay under it.
    """
    from gpt_ls.api.http import line_limit

    return max(1, min(MAX_BATCH_INPUTS, line_limit(settings) // RESPONSE_BYTES_PER_INPUT))


def clip(text: str) -> str:
    """One input as sent: at most ``MAX_INPUT_CHARS``, never empty (the API refuses "")."""
    text = text[:MAX_INPUT_CHARS]
    return text if text.strip() else "(empty)"


def batches(texts: Sequence[str], *, max_inputs: int | None = None,
            max_chars: int | None = None) -> Iterator[range]:
    """Index ranges of ``texts`` (already clipped) for one request each, in order."""
    max_inputs = max_inputs or MAX_BATCH_INPUTS
    max_chars = max_chars or MAX_BATCH_CHARS
    start = size = 0
    for i, text in enumerate(texts):
        if i > start and (i - start >= max_inputs or size + len(text) > max_chars):
            yield range(start, i)
            start, size = i, 0
        size += len(text)
    if start < len(texts):
        yield range(start, len(texts))


def _vectors(response: Any, count: int) -> list[list[float]]:
    """The vectors of an embeddings response, in input order; ValueError if it is not one."""
    data = list(getattr(response, "data", None) or [])
    if len(data) != count:
        raise ValueError(f"{len(data)} embeddings for {count} inputs")
    by_index = sorted(data, key=lambda d: int(getattr(d, "index", 0)))
    vectors = [list(d.embedding) for d in by_index]
    dims = {len(v) for v in vectors}
    if len(dims) != 1 or not all(isinstance(x, float | int) for x in vectors[0][:8]):
        raise ValueError("embeddings of different lengths, or not numbers")
    return vectors


async def embed(client: Any, model: str, texts: Sequence[str]) -> list[list[float]]:
    """One request: the vectors of ``texts`` (each clipped), in order. Raises what the SDK raises."""
    response = await client.embeddings.create(model=model, input=[clip(t) for t in texts])
    return _vectors(response, len(texts))


def failure(exc: BaseException, settings: Any, env: Mapping[str, str] | None = None) -> EmbeddingsFailed:
    """Any failure of an embeddings request as one sentence naming ``embeddingModel``.

    ``settings`` is the user's; the sentence comes from ``api/failures.describe_error`` (so the
    endpoint, proxy and status are named and every secret scrubbed) with the embeddings model
    in place of the chat model.
    """
    from gpt_ls.api.failures import describe_error
    from gpt_ls.secrets import scrub

    model = settings.embedding_model or ""
    if isinstance(exc, sqlite3.Error):
        result = EmbeddingsFailed(scrub(
            f"Semantic ranking is off for now: the vectors cannot be kept in the index database ({exc}); "
            "check that the data directory is writable (gpt-ls index --status shows it). Workspace search "
            "ranks by words alone (BM25) meanwhile", settings))
        result.cause_kind = "index"
        return result
    if isinstance(exc, ValueError):
        return EmbeddingsFailed(scrub(
            f"The embeddings endpoint sent an answer gpt-ls cannot use ({exc}): check embeddingModel "
            f"({model!r}); workspace search ranks by words alone meanwhile", settings))
    as_embedding = dataclasses.replace(settings, model=model, azure_deployment=None)
    err: GptLsError = describe_error(exc, as_embedding, env=env)
    said = err.message
    if isinstance(err, ModelNotFound):
        said = said.replace("the model setting", "embeddingModel").replace("azureDeployment", "embeddingModel")
    result = EmbeddingsFailed(scrub(
        f"Semantic ranking is off for now: {said}. Workspace search ranks by words alone (BM25) "
        "meanwhile", settings))
    result.cause_kind = err.kind
    return result
