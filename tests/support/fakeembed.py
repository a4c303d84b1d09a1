"""Deterministic embeddings for the fake OpenAI server's ``/v1/embeddings``.

:func:`hashed` turns a text into a vector by hashing its words (identifiers split:
``parseConfigFile`` → parse, config, file) into ``dim`` buckets, so texts sharing words are
close and the vectors never change between runs. A test may give the server its own
``embedder`` instead (for example one that maps chosen texts to chosen directions).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from collections.abc import Callable
from typing import Any

Embedder = Callable[[str], list[float]]

_WORD = re.compile(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])|\d+|[^\W\d_A-Za-z]", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-case words, identifiers split at case changes and underscores, CJK per character."""
    return [w.lower() for w in _WORD.findall(text)]


def hashed(text: str, dim: int = 64) -> list[float]:
    """A unit vector: each word adds ±1 to a bucket chosen by its SHA-1."""
    vec = [0.0] * dim
    for w in words(text) or ["(empty)"]:
        digest = hashlib.sha1(w.encode()).digest()
        vec[digest[0] % dim] += 1.0 if digest[1] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def response(body: Any, embedder: Embedder) -> dict[str, Any]:
    """The JSON body answering an embeddings request (``float`` or ``base64`` encoding)."""
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    data = []
    for i, text in enumerate(texts):
        vec = embedder(str(text))
        emb: Any = vec
        if body.get("encoding_format") == "base64":
            emb = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
        data.append({"object": "embedding", "index": i, "embedding": emb})
    tokens = sum(len(words(str(t))) for t in texts)
    return {"object": "list", "data": data, "model": str(body.get("model")),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
