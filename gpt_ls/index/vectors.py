"""Embedding vectors: stored compactly in the index database, searched by cosine similarity.

Each vector is kept once per (embeddings model, content hash of the chunk text), so a
chunk whose text did not change is never embedded again, and two files holding the same
text share one vector. Vectors are normalised to unit length and stored as little-endian
float32 blobs, with a sign-bit *sketch* beside each one (``sketches.py``: at most 384 bits,
longer vectors folded).

Search needs no numpy: the sketches are loaded once into memory, bit-sliced
(:class:`~gpt_ls.index.sketches.SketchIndex`, 4.8 MB at 100,000 vectors), and kept current
by this object's own writes; another connection's write (a generation counter in the
database says so) makes the next search reload them. The query's sketch picks the
``SHORTLIST`` closest by Hamming distance, and only their float vectors are read and scored
exactly. Up to ``EXACT_BELOW`` vectors everything is scored exactly.
``benchmarks/semantic_search.py`` measures speed and the shortlist's recall.
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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from urllib.parse import quote

from gpt_ls.index.sketches import SketchIndex, bits_for, centre_of, sketch

#: Below this many vectors, every one is scored exactly (no sketch shortlist).
EXACT_BELOW = 2_000
#: The shortlist scored exactly after the sketch pass: at least this many, or ``PER_HIT`` × limit.
SHORTLIST = 256
PER_HIT = 4
#: The sketches are taken around the mean of this many of a model's vectors (then it stays fixed).
CENTRE_FROM = 1_000
#: Shorter vectors are always scored exactly: a sketch of a few bits ties too often to shortlist.
MIN_SKETCH_DIM = 32
#: Longest vector accepted from a server (text-embedding-3-large has 3,072 dimensions).
MAX_DIM = 8_192

SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    hash TEXT NOT NULL,
    dim INTEGER NOT NULL,
    sketch BLOB NOT NULL,
    vec BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS vectors_key ON vectors(model, hash);
CREATE INDEX IF NOT EXISTS vectors_sketch ON vectors(model, dim, sketch);
CREATE TABLE IF NOT EXISTS vector_centres (
    model TEXT NOT NULL, dim INTEGER NOT NULL, centre BLOB NOT NULL, based_on INTEGER NOT NULL,
    PRIMARY KEY (model, dim)
);
CREATE TABLE IF NOT EXISTS vectors_generation (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL);
INSERT OR IGNORE INTO vectors_generation VALUES (0, 0);
"""
#: Where gpt-ls kept vectors before (a WITHOUT ROWID table: every read went through overflow pages).
OLD_TABLE = "embeddings"
_BUMP = "UPDATE vectors_generation SET value = value + 1 WHERE id = 0"
_COLUMNS = "model, hash, dim, sketch, vec"


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


def _sketch_bytes(vec: Sequence[float], centre: Sequence[float] | None) -> bytes:
    return sketch(vec, centre).to_bytes((bits_for(len(vec)) + 7) // 8, "little")


def dot(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two unit vectors, the plain way (the reference the tests compare with)."""
    return sum(map(operator.mul, a, b)) if len(a) == len(b) else -1.0


def _by_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine of two unit vectors from their distance, in C (math.dist): 1 − d²/2, within ~1e-7."""
    d = math.dist(a, b)
    return 1.0 - d * d / 2


#: The exact scorer: math.sumprod where there is one (Python 3.12+), else math.dist (~10 × sum(map(mul))).
_exact: Callable[[Sequence[float], Sequence[float]], float] = getattr(math, "sumprod", _by_distance)


def similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two unit vectors, computed in C; -1 when their lengths differ."""
    return _exact(a, b) if len(a) == len(b) else -1.0


class VectorStore:
    """The ``vectors`` table of one index database; safe to use from one thread at a time.

    Rows are read by integer id (a rowid table: a 384-dimension vector is one page, where the
    older keyed table needed two or three reads); the sketches are loaded through a covering
    index, without touching the vectors.
    """

    def __init__(self, db_path: Path) -> None:
        # uri=True for the read-only ATTACH below; a plain path (no "file:") is still a path.
        self._conn = sqlite3.connect(str(db_path), timeout=10.0, check_same_thread=False, uri=True)
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._conn.executescript(SCHEMA)
        self._conn.commit()
        self._take("main")
        self._adopt(db_path.with_name(db_path.name + ".old"))
        self._lock = threading.Lock()
        self._cache: tuple[str, int, SketchIndex] | None = None  # (model, generation, sketches)

    def _take(self, schema: str) -> None:
        """Copy the vectors of ``schema`` (this database, or the one attached as ``old``), old layout or new."""
        tables = {name for (name,) in self._conn.execute(f"SELECT name FROM {schema}.sqlite_master")}
        with self._conn:
            for table in ("vectors", OLD_TABLE):
                if table in tables and (schema, table) != ("main", "vectors"):
                    self._conn.execute(f"INSERT OR IGNORE INTO vectors ({_COLUMNS}) "
                                       f"SELECT {_COLUMNS} FROM {schema}.{table}")
                    self._conn.execute(_BUMP)
            if schema != "main" and "vector_centres" in tables:  # the sketches copied were taken around these
                self._conn.execute(f"INSERT OR IGNORE INTO vector_centres SELECT * FROM {schema}.vector_centres")
            if schema == "main" and OLD_TABLE in tables:
                self._conn.execute(f"DROP TABLE {OLD_TABLE}")

    def _adopt(self, old: Path) -> None:
        """Take over the vectors of the index this one replaced (moved aside as ``….old``).

        An index rebuilt after a gpt-ls upgrade, or because it was damaged, keeps its chunks'
        hashes for unchanged text: their vectors are reused instead of sending the workspace to
        the API again. Vectors no chunk needs any more are dropped by the next refresh.
        """
        if not old.is_file() or self._conn.execute("SELECT 1 FROM vectors LIMIT 1").fetchone():
            return
        try:
            self._conn.execute("ATTACH DATABASE ? AS old", (f"file:{quote(str(old))}?mode=ro",))
        except sqlite3.Error:
            return
        try:
            self._take("old")
        except sqlite3.Error:  # damaged, or never had vectors
            pass
        finally:
            self._conn.execute("DETACH DATABASE old")

    def close(self) -> None:
        self._conn.close()

    def _generation(self) -> int:
        return int(self._conn.execute("SELECT value FROM vectors_generation WHERE id = 0").fetchone()[0])

    def hashes(self, model: str) -> set[str]:
        """The content hashes that have a vector for ``model``."""
        with self._lock:
            return {h for (h,) in self._conn.execute("SELECT hash FROM vectors WHERE model = ?", (model,))}

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
        vecs = [(h, normalise(values)) for h, values in items]
        with self._lock:
            before = self._generation()
            recentred = False
            with self._conn:
                centres: dict[int, list[float] | None] = {}
                for dim in {len(v) for _, v in vecs}:
                    centres[dim], based_on = self._centre(model, dim)
                    if based_on < CENTRE_FROM:  # still learning the centre: every sketch made again
                        centres[dim] = self._recentre(model, dim, [v for _, v in vecs if len(v) == dim])
                        recentred = True
                rows = [(model, h, len(v), _sketch_bytes(v, centres[len(v)]), pack(v)) for h, v in vecs]
                replaced = self._ids(model, [r[1] for r in rows])
                self._conn.executemany(f"INSERT OR REPLACE INTO vectors ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)", rows)
                ids = self._ids(model, [r[1] for r in rows])
                self._conn.execute(_BUMP)
            cache = None if recentred else self._follow(model, before)
            if cache is None:
                self._cache = None
            else:
                cache.remove(replaced.values())
                cache.add([(ids[r[1]], int.from_bytes(r[3], "little")) for r in rows if r[2] == cache.dim])
        return len(rows)

    def _centre(self, model: str, dim: int) -> tuple[list[float] | None, int]:
        row = self._conn.execute("SELECT centre, based_on FROM vector_centres WHERE model = ? AND dim = ?",
                                 (model, dim)).fetchone()
        return (unpack(row[0]).tolist(), int(row[1])) if row else (None, 0)

    def _recentre(self, model: str, dim: int, extra: list[array[float]]) -> list[float]:
        """A new centre from up to ``CENTRE_FROM`` vectors (stored, then ``extra``); every stored sketch redone."""
        pool = [unpack(b) for (b,) in self._conn.execute(
            "SELECT vec FROM vectors WHERE model = ? AND dim = ? LIMIT ?", (model, dim, CENTRE_FROM))]
        pool += extra[:CENTRE_FROM - len(pool)]
        packed = pack(array("f", centre_of(pool)))
        self._conn.execute("INSERT OR REPLACE INTO vector_centres VALUES (?, ?, ?, ?)", (model, dim, packed, len(pool)))
        centre = unpack(packed).tolist()  # float32, as stored: every sketch is taken around the same numbers
        ids = [i for (i,) in self._conn.execute("SELECT id FROM vectors WHERE model = ? AND dim = ?", (model, dim))]
        self._resketch(dim, ids, centre)
        return centre

    def _ids(self, model: str, hashes: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for start in range(0, len(hashes), 500):
            part = hashes[start:start + 500]
            out.update((h, i) for i, h in self._conn.execute(
                f"SELECT id, hash FROM vectors WHERE model = ? AND hash IN ({','.join('?' * len(part))})",
                (model, *part)))
        return out

    def _follow(self, model: str, before: int) -> SketchIndex | None:
        """The cached sketches, moved to the generation just written if they were current before it."""
        if self._cache is None or self._cache[0] != model or self._cache[1] != before:
            self._cache = None
            return None
        cache = self._cache[2]
        if cache.removed > max(1_000, cache.size // 4):  # compact: reload on the next search
            self._cache = None
            return None
        self._cache = (model, before + 1, cache)
        return cache

    def prune(self, model: str, live: set[str]) -> int:
        """Forget the vectors of ``model`` whose text no chunk holds any more."""
        with self._lock:
            stale = [i for i, h in self._conn.execute("SELECT id, hash FROM vectors WHERE model = ?", (model,))
                     if h not in live]
            if stale:
                before = self._generation()
                with self._conn:
                    self._conn.executemany("DELETE FROM vectors WHERE id = ?", [(i,) for i in stale])
                    self._conn.execute(_BUMP)
                cache = self._follow(model, before)
                if cache is not None:
                    cache.remove(stale)
        return len(stale)

    def count(self, model: str) -> int:
        with self._lock:
            row = self._conn.execute("SELECT count(*) FROM vectors WHERE model = ?", (model,)).fetchone()
        return int(row[0])

    def memory(self) -> int:
        """Bytes held by the cached sketches (0 before the first search)."""
        return self._cache[2].memory() if self._cache is not None else 0

    def _sketches(self, model: str, dim: int) -> SketchIndex:
        """The sketches of ``model``'s vectors of ``dim`` dimensions, loaded once and kept current."""
        generation = self._generation()
        cached = self._cache
        if cached is not None and cached[0] == model and cached[1] == generation and cached[2].dim == dim:
            return cached[2]
        centre, _ = self._centre(model, dim)
        if centre is None and self._conn.execute("SELECT 1 FROM vectors WHERE model = ? AND dim = ? LIMIT 1",
                                                 (model, dim)).fetchone():
            with self._conn:  # stored by an older gpt-ls, around zero
                centre = self._recentre(model, dim, [])
                self._conn.execute(_BUMP)
            generation = self._generation()
        index = SketchIndex(dim, centre)
        width = (index.bits + 7) // 8
        batch: list[tuple[int, int]] = []
        stale: list[int] = []  # another sketch width: made again
        for i, sk in self._conn.execute("SELECT id, sketch FROM vectors WHERE model = ? AND dim = ?", (model, dim)):
            if len(sk) != width:
                stale.append(i)
                continue
            batch.append((i, int.from_bytes(sk, "little")))
            if len(batch) >= 4096:
                index.add(batch)
                batch = []
        index.add(batch)
        if stale:
            with self._conn:
                index.add(self._resketch(dim, stale, centre))
        self._cache = (model, generation, index)
        return index

    def _resketch(self, dim: int, ids: list[int], centre: list[float] | None) -> list[tuple[int, int]]:
        """Sketch these vectors again from their floats (500 at a time); the caller commits."""
        width = (bits_for(dim) + 7) // 8
        out: list[tuple[int, int]] = []
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            rows = self._conn.execute(f"SELECT id, vec FROM vectors WHERE id IN ({','.join('?' * len(part))})", part)
            made = [(i, sketch(unpack(blob), centre)) for i, blob in rows.fetchall()]
            self._conn.executemany("UPDATE vectors SET sketch = ? WHERE id = ?",
                                   [(s.to_bytes(width, "little"), i) for i, s in made])
            out += made
        return out

    def _vectors(self, ids: Sequence[int]) -> dict[str, array[float]]:
        out: dict[str, array[float]] = {}
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            for h, blob in self._conn.execute(
                    f"SELECT hash, vec FROM vectors WHERE id IN ({','.join('?' * len(part))})", part):
                out[h] = unpack(blob)
        return out

    def nearest(self, model: str, query: Sequence[float], limit: int) -> list[tuple[str, float]]:
        """The ``limit`` content hashes most similar to ``query`` (cosine, best first)."""
        q = normalise(query)
        with self._lock:
            dim = len(q)
            index = self._sketches(model, dim)
            if len(index) > EXACT_BELOW and dim >= MIN_SKETCH_DIM:
                ids = index.ids(index.shortlist(sketch(q, index.centre), max(SHORTLIST, PER_HIT * limit)))
            else:
                ids = index.live_ids()
            vectors = self._vectors(ids)
        qt = tuple(q.tolist())  # math.dist takes tuples as they are, and a list's floats are made in one go
        scored = ((h, similarity(qt, v.tolist())) for h, v in vectors.items())
        return heapq.nlargest(limit, scored, key=operator.itemgetter(1))
