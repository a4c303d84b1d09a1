"""The vector search's fast path: bit-sliced sketches, the shortlist, exact scoring in C, kept current.

Seeded random data; every fast answer is compared with the plain one (Hamming distances
counted one by one, cosine by ``vectors.dot`` over every vector).
"""

from __future__ import annotations

import math
import random
import sqlite3
from pathlib import Path

import pytest

from gpt_ls.index import sketches, vectors
from gpt_ls.index.sketches import SketchIndex


def brute_shortlist(sks: list[int], live: set[int], query: int, k: int) -> list[int]:
    return sorted(sorted(live), key=lambda i: (sks[i] ^ query).bit_count())[:k]


@pytest.mark.parametrize("bits", [1, 5, 64, 384])
def test_shortlist_is_the_hamming_nearest_with_ties_to_earlier_lanes(bits: int) -> None:
    rng = random.Random(bits)
    sks = [rng.getrandbits(bits) for _ in range(700)]
    index = SketchIndex(bits)
    index.add([(1000 + i, s) for i, s in enumerate(sks[:300])])
    index.add([(1000 + i, s) for i, s in enumerate(sks[300:], start=300)])  # appended later
    assert len(index) == 700 and index.ids([0, 699]) == [1000, 1699]
    for _ in range(5):
        q = rng.getrandbits(bits)
        ones = (1 << index.size) - 1
        counter = sketches.distance_counter(index.planes, q, ones)
        lane = rng.randrange(700)
        assert sum(((p >> lane) & 1) << j for j, p in enumerate(counter)) == (sks[lane] ^ q).bit_count()
        assert sorted(index.shortlist(q, 37)) == sorted(brute_shortlist(sks, set(range(700)), q, 37))
    gone = {3, 50, 301, 699}
    assert index.remove([1000 + i for i in gone] + [5]) == 4
    q = rng.getrandbits(bits)
    live = set(range(700)) - gone
    assert sorted(index.shortlist(q, 37)) == sorted(brute_shortlist(sks, live, q, 37))
    assert sorted(index.shortlist(q, 10_000)) == sorted(live)  # fewer live lanes than asked: all of them


def test_sketch_bits_and_folding() -> None:
    assert sketches.sketch([0.5, -1.0, 0.0, 2.0]) == 0b1001  # set where positive (0 is not)
    assert sketches.sketch([-1.0]) == 0 and sketches.sketch([1.0]) == 1
    vec = [1.0] * 384 + [-3.0] * 384  # 768 dims fold onto 384: each bit is the sign of v[k] + v[k + 384]
    assert sketches.bits_for(768) == 384 and sketches.sketch(vec) == 0
    assert sketches.sketch([1.0] * 384 + [-0.5] * 384) == (1 << 384) - 1
    assert sketches.bits_for(vectors.MAX_DIM) == 384
    assert sketches.sketch([1.0] * vectors.MAX_DIM).bit_length() == 384
    assert sketches.sketch([1.0] * 1536).bit_length() == 384


def planted(rng: random.Random, dim: int, n: int) -> tuple[list[tuple[str, list[float]]], list[float]]:
    """``n`` random vectors, five of them close to a base that the query is close to as well."""
    base = [rng.gauss(0, 1) for _ in range(dim)]
    items = [(f"r{i}", [rng.gauss(0, 1) for _ in range(dim)]) for i in range(n - 5)]
    items += [(f"near{j}", [v + rng.gauss(0, 0.2 + 0.1 * j) for v in base]) for j in range(5)]
    rng.shuffle(items)
    return items, [v + rng.gauss(0, 0.1) for v in base]


def exact(items: list[tuple[str, list[float]]], query: list[float], k: int) -> list[tuple[str, float]]:
    q = vectors.normalise(query)
    scored = [(h, vectors.dot(q, vectors.normalise(v))) for h, v in items]
    return sorted(scored, key=lambda x: -x[1])[:k]


@pytest.mark.parametrize("dim", [2, 64, 384, 1536])
def test_the_fast_path_returns_the_exact_top_hits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dim: int) -> None:
    monkeypatch.setattr(vectors, "EXACT_BELOW", 10)
    monkeypatch.setattr(vectors, "SHORTLIST", 40)
    rng = random.Random(dim)
    items, query = planted(rng, dim, 300)
    store = vectors.VectorStore(tmp_path / "v.sqlite")
    store.put("m", items)
    got = store.nearest("m", query, 5)
    want = exact(items, query, 5)
    assert [h for h, _ in got] == [h for h, _ in want]  # below MIN_SKETCH_DIM: every vector scored exactly
    if dim > 2:
        assert {h for h, _ in got} == {f"near{j}" for j in range(5)}
    assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-6)
    store.close()


def test_one_dimension_and_the_limits_of_a_vector(tmp_path: Path) -> None:
    store = vectors.VectorStore(tmp_path / "v.sqlite")
    store.put("m", [("up", [2.0]), ("down", [-0.5])])
    assert store.nearest("m", [3.0], 2) == [("up", pytest.approx(1.0)), ("down", pytest.approx(-1.0))]
    with pytest.raises(ValueError, match="1 to 8192"):
        store.put("m", [("long", [1.0] * (vectors.MAX_DIM + 1))])
    store.put("m", [("longest", [1.0] * vectors.MAX_DIM)])
    assert store.nearest("m", [1.0] * vectors.MAX_DIM, 1) == [("longest", pytest.approx(1.0))]
    store.close()


def test_similarity_in_c_agrees_with_the_plain_dot_product() -> None:
    rng = random.Random(7)
    for dim in (1, 384, 1536):
        a = vectors.normalise([rng.gauss(0, 1) for _ in range(dim)])
        b = vectors.normalise([rng.gauss(0, 1) for _ in range(dim)])
        assert vectors.similarity(a.tolist(), b) == pytest.approx(vectors.dot(a, b), abs=1e-6)
    assert vectors.similarity([1.0, 0.0], [1.0]) == -1.0
    assert math.isclose(vectors.similarity([0.6, 0.8], [0.6, 0.8]), 1.0, abs_tol=1e-9)


def test_sketches_follow_puts_and_prunes_and_another_connections_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors, "EXACT_BELOW", 10)
    monkeypatch.setattr(vectors, "SHORTLIST", 20)
    monkeypatch.setattr(vectors, "CENTRE_FROM", 50)  # the centre is fixed by the first 100
    rng = random.Random(3)
    items, query = planted(rng, 64, 200)
    store = vectors.VectorStore(tmp_path / "v.sqlite")
    store.put("m", items[:100])
    store.nearest("m", query, 5)  # loads the sketches
    loaded = store._cache
    store.put("m", items[100:])
    assert store._cache is not None and loaded is not None and store._cache[2] is loaded[2]  # added, not reloaded
    assert [h for h, _ in store.nearest("m", query, 5)] == [h for h, _ in exact(items, query, 5)]
    keep = {h for h, _ in items} - {"near0"}
    assert store.prune("m", keep) == 1
    assert "near0" not in {h for h, _ in store.nearest("m", query, 5)}
    assert store._cache is not None and store._cache[2] is loaded[2]

    other = vectors.VectorStore(tmp_path / "v.sqlite")  # another process's writes: a reload
    other.put("m", [("twin", query)])
    assert store.nearest("m", query, 1) == [("twin", pytest.approx(1.0))]
    assert store._cache is not None and store._cache[2] is not loaded[2]
    other.close()
    store.close()


def test_vectors_of_the_older_table_are_moved_and_sketched_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors, "EXACT_BELOW", 1)
    monkeypatch.setattr(vectors, "SHORTLIST", 1)
    path = tmp_path / "v.sqlite"
    rng = random.Random(5)
    items = [(f"h{i}", vectors.normalise([rng.gauss(0, 1) for _ in range(768)])) for i in range(3)]
    with sqlite3.connect(path) as conn:  # as gpt-ls kept them before: keyed rows, a sketch bit per dimension
        conn.execute("CREATE TABLE embeddings (model TEXT NOT NULL, hash TEXT NOT NULL, dim INTEGER NOT NULL, "
                     "vec BLOB NOT NULL, sketch BLOB NOT NULL, PRIMARY KEY (model, hash)) WITHOUT ROWID")
        conn.executemany("INSERT INTO embeddings VALUES ('m', ?, 768, ?, ?)",
                         [(h, vectors.pack(v), ((1 << 768) - 1).to_bytes(96, "little")) for h, v in items])
    store = vectors.VectorStore(path)
    assert store.count("m") == 3
    assert store.nearest("m", items[1][1], 1) == [("h1", pytest.approx(1.0))]
    with sqlite3.connect(path) as conn:
        assert {len(s) for (s,) in conn.execute("SELECT sketch FROM vectors")} == {48}
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'embeddings'").fetchall()
    store.close()


def test_sketches_are_taken_around_the_centre_of_anisotropic_vectors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors, "EXACT_BELOW", 10)
    monkeypatch.setattr(vectors, "SHORTLIST", 20)
    monkeypatch.setattr(vectors, "CENTRE_FROM", 100)
    rng = random.Random(9)
    items, query = planted(rng, 64, 300)
    # every vector shares one large direction, as embeddings do: the raw signs are nearly all set
    items = [(h, [v + 4.0 for v in vec]) for h, vec in items]
    query = [v + 4.0 for v in query]
    store = vectors.VectorStore(tmp_path / "v.sqlite")
    store.put("m", items[:150])
    centre, based_on = store._centre("m", 64)
    assert based_on == 100 and centre is not None
    store.put("m", items[150:])  # the centre stays: the sketches already stored stay valid
    assert store._centre("m", 64) == (centre, 100)
    assert [h for h, _ in store.nearest("m", query, 5)] == [h for h, _ in exact(items, query, 5)]
    store.close()
