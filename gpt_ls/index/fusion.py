"""Fusing two rankings of the same chunks: BM25 (words) and cosine similarity (meaning).

Pure functions over keys, so they are tested without an index. Two ways are offered and
measured by ``benchmarks/retrieval.py``:

* reciprocal rank fusion (RRF): ``Σ weight / (k + rank)``; it needs no calibration, since
  only ranks count, and a chunk found by one side alone still ranks;
* a calibrated sum: each side's scores scaled to 0..1 within its own candidates, then
  ``α · words + (1 − α) · meaning``.

``DEFAULT_METHOD`` is RRF, from ``benchmarks/retrieval.py`` on click with e5-small
(docs/benchmarks.md, "Retrieval quality"). On eval14's index RRF sent the definition for
35/40 English questions at 8k and 39/40 Chinese ones at 128k, where the calibrated sum sent
33 and 34: min-max scaling turns BM25's scores for a Chinese question about English code
(noise: a few shared bigrams) into full-range votes. On main's final index (rerun
2026-12-01) that gap closed: both sent 37/40 English at 8k and 39/40 Chinese at 128k, and
the sum sent 17/40 Chinese at 8k against RRF's 13. The choice is close; RRF stays, as it
assumes nothing about either side's scores, until questions the ranker was not looked at
with say otherwise. ``ALPHA`` was not tuned: 0.5, the even split.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal, TypeVar

K = TypeVar("K", bound=Hashable)

Method = Literal["rrf", "sum"]
DEFAULT_METHOD: Method = "rrf"
#: RRF's usual constant: ranks 1 and 2 differ little, rank 1 and 50 a lot.
RRF_K = 60
#: The weight of the words side in the calibrated sum.
ALPHA = 0.5


def rrf(rankings: Sequence[Sequence[K]], *, k: int = RRF_K,
        weights: Sequence[float] | None = None) -> list[tuple[K, float]]:
    """Reciprocal rank fusion of best-first rankings; ties keep the first ranking's order."""
    weights = weights or [1.0] * len(rankings)
    scores: dict[K, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    order = {key: i for i, key in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def _scaled(scored: Sequence[tuple[K, float]]) -> dict[K, float]:
    """Scores mapped onto 0..1 (min-max) within their own list; a single or flat list gives 1."""
    if not scored:
        return {}
    values = [s for _, s in scored]
    low, high = min(values), max(values)
    span = high - low
    return {key: ((s - low) / span if span > 0 else 1.0) for key, s in scored}


def calibrated_sum(words: Sequence[tuple[K, float]], meaning: Sequence[tuple[K, float]], *,
                   alpha: float = ALPHA) -> list[tuple[K, float]]:
    """``alpha · words + (1 − alpha) · meaning``, each side min-max scaled; missing counts 0."""
    w, m = _scaled(words), _scaled(meaning)
    keys = list(dict.fromkeys([*w, *m]))
    order = {key: i for i, key in enumerate(keys)}
    fused = {key: alpha * w.get(key, 0.0) + (1 - alpha) * m.get(key, 0.0) for key in keys}
    return sorted(fused.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def fuse(words: Sequence[tuple[K, float]], meaning: Sequence[tuple[K, float]],
         method: Method = DEFAULT_METHOD) -> list[tuple[K, float]]:
    """Both rankings (best first, with scores, higher better) fused into one, best first."""
    if method == "sum":
        return calibrated_sum(words, meaning)
    return rrf([[key for key, _ in words], [key for key, _ in meaning]])
