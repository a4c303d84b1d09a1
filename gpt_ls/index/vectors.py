"""Embedding vectors: stored compactly in the index database, searched by cosine similarity.

Each vector is kept once per (embeddings model, content hash of the chunk text), so a
chunk whose text did not change is never embedded again, and two files holding the same
text share one vector. Vectors are normalised to unit length and stored as little-endian
float32 blobs, with a sign-bit *sketch* beside each one.

Search needs no numpy: the query's sketch is compared with every stored sketch by
Hamming distance (an XOR and a popcount on one Python int each, ~0.3 µs), and only the
closest few hundred are scored exactly by their float vectors. Up to ``EXACT_BELOW``
vectors everything is scored exactly. ``benchmarks/semantic_search.py`` measures both.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import operator
import sqlite3
import sys
import threading
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote

#: Below this many vectors, every one is scored exactly (no sketch shortlist).
EXACT_BELOW = 2_000
#: The shortlist scored exactly after the sketch pass: at least this many, or 4 × limit.
SHORTLIST = 256
#: Longest vector accepted from a server (text-embedding-3-large has 3,072 dimensions).
MAX_DIM = 8_192

SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL,
    hash TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vec BLOB NOT NULL,
    sketch BLOB NOT NULL,
    PRIMARY KEY (model, hash)
) WITHOUT ROWID
"""


def content_hash(text: str) -> str:
    """The key a chunk's vector is cached under: SHA-256 of its text."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def normalise(values: Sequence[float]) -> array[float]:
    """A unit-length float32 copy; ValueError for an empty, zero, too long or non-finite vector."""
    if not values or len(values) > MAX_DIM:
        raise ValueError(f"an embedding must have 1 to {MAX_DIM} dimensions, not {len(values)}")
    norm = math.sqrt(math.fsum(v * v for v in values))
    if not math.isfinite(norm) or norm == 0.0:
        raise ValueError("an embedding must be finite and not all zeros")
    return array("f", [v / norm for v in values])


def pack(vec: array[float]) -> bytes:
    """float32 little-endian bytes."""
    if sys.byteorder == "little":
        return vec.tobytes()
    copy = array("f", vec)
    copy.byteswap()
    return copy.tobytes()


def unpack(blob: bytes) -> array[float]:
    """The inverse of :func:`pack`."""
    vec = array("f")
    vec.frombytes(blob)
    if sys.byteorder != "little":
        vec.byteswap()
    return vec


def sketch(vec: Sequence[float]) -> int:
    """One bit per dimension, set where the value is positive."""
    bits = 0
    for i, v in enumerate(vec):
        if v > 0:
            bits |= 1 << i
    return bits


def _sketch_bytes(vec: Sequence[float]) -> bytes:
    return sketch(vec).to_bytes((len(vec) + 7) // 8, "little")


def dot(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two unit vectors (a list ``a`` is the fastest: ~40 µs at 1,536 dims)."""
    return sum(map(operator.mul, a, b)) if len(a) == len(b) else -1.0


class VectorStore:
    """The ``embeddings`` table of one index database; safe to use from one thread at a time."""

    def __init__(self, db_path: Path) -> None:
        # uri=True for the read-only ATTACH below; a plain path (no "file:") is still a path.
        self._conn = sqlite3.connect(str(db_path), timeout=10.0, check_same_thread=False, uri=True)
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._conn.execute(SCHEMA)
        self._conn.commit()
        self._adopt(db_path.with_name(db_path.name + ".old"))
        self._lock = threading.Lock()
        self._version = 0  # bumped by every write through this object
        self._cache: tuple[tuple[str, int, int], list[str], list[int]] | None = None

    def _adopt(self, old: Path) -> None:
        """Take over the vectors of the index this one replaced (moved aside as ``….old``).

        An index rebuilt after a gpt-ls upgrade, or because it was damaged, keeps its chunks'
        hashes for unchanged text: their vectors are reused instead of sending the workspace to
        the API again. Vectors no chunk needs any more are dropped by the next refresh.
        """
        if not old.is_file() or self._conn.execute("SELECT 1 FROM embeddings LIMIT 1").fetchone():
            return
        try:
            self._conn.execute("ATTACH DATABASE ? AS old", (f"file:{quote(str(old))}?mode=ro",))
        except sqlite3.Error:
            return
        try:
            with self._conn:
                self._conn.execute("INSERT OR IGNORE INTO embeddings SELECT model, hash, dim, vec, sketch "
                                   "FROM old.embeddings")
        except sqlite3.Error:  # damaged, or never had vectors
            pass
        finally:
            self._conn.execute("DETACH DATABASE old")

    def close(self) -> None:
        self._conn.close()

    def hashes(self, model: str) -> set[str]:
        """The content hashes that have a vector for ``model``."""
        with self._lock:
            return {h for (h,) in self._conn.execute("SELECT hash FROM embeddings WHERE model = ?", (model,))}

    def missing(self, model: str, hashes: Iterable[str]) -> list[str]:
        """Those of ``hashes`` with no vector for ``model`` yet (in the order given, once each)."""
        have = self.hashes(model)
        out: list[str] = []
        seen: set[str] = set()
        for h in hashes:
            if h not in have and h not in seen:
                seen.add(h)
                out.append(h)
        return out

    def put(self, model: str, items: Iterable[tuple[str, Sequence[float]]]) -> int:
        """Store (normalised) vectors by content hash; returns how many."""
        rows = []
        for h, values in items:
            vec = normalise(values)
            rows.append((model, h, len(vec), pack(vec), _sketch_bytes(vec)))
        with self._lock, self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)", rows)
            self._version += 1
        return len(rows)

    def prune(self, model: str, live: set[str]) -> int:
        """Forget the vectors of ``model`` whose text no chunk holds any more."""
        with self._lock:
            stale = [h for (h,) in self._conn.execute("SELECT hash FROM embeddings WHERE model = ?", (model,))
                     if h not in live]
            if stale:
                with self._conn:
                    self._conn.executemany("DELETE FROM embeddings WHERE model = ? AND hash = ?",
                                           [(model, h) for h in stale])
                self._version += 1
        return len(stale)

    def count(self, model: str) -> int:
        with self._lock:
            row = self._conn.execute("SELECT count(*) FROM embeddings WHERE model = ?", (model,)).fetchone()
        return int(row[0])

    def _sketches(self, model: str, dim: int) -> tuple[list[str], list[int]]:
        """Every (hash, sketch) of ``model``, cached until this or another connection writes."""
        data_version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        key = (model, self._version, data_version)
        if self._cache is None or self._cache[0] != key:
            hashes: list[str] = []
            sketches: list[int] = []
            for h, sk in self._conn.execute(
                    "SELECT hash, sketch FROM embeddings WHERE model = ? AND dim = ?", (model, dim)):
                hashes.append(h)
                sketches.append(int.from_bytes(sk, "little"))
            self._cache = (key, hashes, sketches)
        return self._cache[1], self._cache[2]

    def _vectors(self, model: str, hashes: Sequence[str]) -> dict[str, array[float]]:
        out: dict[str, array[float]] = {}
        for start in range(0, len(hashes), 500):
            part = hashes[start:start + 500]
            marks = ",".join("?" * len(part))
            for h, blob in self._conn.execute(
                    f"SELECT hash, vec FROM embeddings WHERE model = ? AND hash IN ({marks})", (model, *part)):
                out[h] = unpack(blob)
        return out

    def nearest(self, model: str, query: Sequence[float], limit: int) -> list[tuple[str, float]]:
        """The ``limit`` content hashes most similar to ``query`` (cosine, best first)."""
        q = normalise(query)
        with self._lock:
            hashes, sketches = self._sketches(model, len(q))
            if len(hashes) > EXACT_BELOW:
                qs = sketch(q)
                dists = [(qs ^ s).bit_count() for s in sketches]
                keep = heapq.nsmallest(max(SHORTLIST, 4 * limit), range(len(hashes)), key=dists.__getitem__)
                hashes = [hashes[i] for i in keep]
            vectors = self._vectors(model, hashes)
        qlist = q.tolist()
        scored = ((h, dot(qlist, v)) for h, v in vectors.items())
        return heapq.nlargest(limit, scored, key=operator.itemgetter(1))
