"""Ranked search over the index: BM25 through FTS5's ``ORDER BY rank LIMIT k``, kept fast.

A term found in most chunks ("self", "return", a project's own name) adds almost nothing to
BM25 but makes FTS5 score every chunk holding it. So terms found in more than
``COMMON_SHARE`` of the chunks are dropped from a query that has rarer ones; when every term
is that common, only the rarest ``KEEP_WHEN_ALL_COMMON`` are searched.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gpt_ls.index.chunks import Chunk
from gpt_ls.index.terms import match_expression, query_terms

COMMON_SHARE = 0.08
KEEP_WHEN_ALL_COMMON = 2
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Hit:
    """A chunk found by a query and its score (higher is better; BM25, so only comparable within a query)."""

    chunk: Chunk
    score: float
    chunk_id: int = 0


def document_counts(conn: sqlite3.Connection, terms: list[str]) -> dict[str, int]:
    """How many chunks hold each (non-prefix) term, from the FTS5 vocabulary."""
    plain = [t for t in terms if not t.endswith("*")]
    counts = dict.fromkeys(plain, 0)
    for term in plain:
        row = conn.execute("SELECT doc FROM vocab WHERE term = ?", (term,)).fetchone()
        if row:
            counts[term] = row[0]
    return counts


def selective_terms(terms: list[str], counts: dict[str, int], total: int) -> list[str]:
    """The terms worth searching: absent ones dropped, very common ones dropped when rarer ones exist."""
    prefixes = [t for t in terms if t.endswith("*")]
    present = [t for t in terms if counts.get(t, 0) > 0]
    if not present:
        return prefixes or terms
    limit = max(50, COMMON_SHARE * total)
    rare = [t for t in present if counts[t] <= limit]
    if rare or prefixes:
        return rare + prefixes
    return sorted(present, key=lambda t: counts[t])[:KEEP_WHEN_ALL_COMMON]


def search(conn: sqlite3.Connection, query: str, limit: int, total: int) -> list[Hit]:
    """The best ``limit`` chunks for the query; ``total`` is the number of chunks in the index."""
    limit = max(1, min(limit, MAX_LIMIT))
    terms = query_terms(query)
    terms = selective_terms(terms, document_counts(conn, terms), total)
    ranked = conn.execute("SELECT rowid, rank FROM fts WHERE fts MATCH ? ORDER BY rank LIMIT ?",
                          (match_expression(terms), limit)).fetchall()
    if not ranked:
        return []
    ids = [row[0] for row in ranked]
    marks = ",".join("?" * len(ids))
    rows = conn.execute(
        f"SELECT c.id, f.path, c.start_line, c.end_line, c.text FROM chunks c JOIN files f ON f.id = c.file_id "
        f"WHERE c.id IN ({marks})", ids).fetchall()
    found = {r[0]: Chunk(r[1], r[2], r[3], r[4]) for r in rows}
    return [Hit(found[i], -rank, i) for i, rank in ranked if i in found]
