"""Ranked search over the index: BM25 through FTS5's ``ORDER BY rank LIMIT k``, kept fast.

FTS5 scores every chunk that matches before it sorts, so the cost of a ranked query is the
number of chunks holding its terms. So:

* how many chunks hold each term is counted up to ``POSTINGS_BUDGET`` (a bounded cost, cached
  until the index changes); a term in over half of the chunks weighs nothing in BM25 (FTS5
  clamps its IDF to ~0);
* of the others, the rarest terms are searched until they hold ``POSTINGS_BUDGET`` chunks between
  them (at least one term); the terms left out are the commonest, whose weight is smallest;
* when even the rarest term is in more than ``POSTINGS_BUDGET`` chunks, or every term is in
  most chunks ("config file" in a project about config files), BM25 can barely tell the chunks
  apart: the first ``WINDOW`` chunks (in index order) holding any of the ``COMMON_TERMS`` rarest
  terms are scored, and the best returned (a chunk that defines the name, or whose path holds
  it, first). The cost stays bounded whatever the query.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass

from gpt_ls.errors import QueryUnsearchable
from gpt_ls.index.chunks import Chunk
from gpt_ls.index.terms import match_expression, query_terms, quote

POSTINGS_BUDGET = 6_000
#: Matches scored (in index order) when the query is too common to rank them all.
WINDOW = 300
#: How many of the terms of a too-common query are looked for in the window.
COMMON_TERMS = 3
MAX_LIMIT = 1000
#: ``search_file`` scores a rowid range when it holds at most 4 times the file's chunks plus this many.
RANGE_SLACK = 64
#: ``search_file``: the query terms looked for (in order), and the weight of a chunk that defines one.
FILE_TERMS = 16
NAME_WEIGHT = 2.0


@dataclass(frozen=True)
class Hit:
    """A chunk found by a query and its score (higher is better; BM25, so only comparable within a query)."""

    chunk: Chunk
    score: float
    chunk_id: int = 0


def document_counts(conn: sqlite3.Connection, terms: list[str], cache: dict[str, int] | None = None) -> dict[str, int]:
    """How many chunks hold each (non-prefix) term, counted up to ``POSTINGS_BUDGET + 1`` (bounded cost).

    ``cache`` (term -> count) is the caller's, valid while the index does not change.
    """
    counts = {}
    for term in terms:
        if term.endswith("*"):
            continue
        if cache is not None and term in cache:
            counts[term] = cache[term]
            continue
        counts[term] = conn.execute(
            "SELECT count(*) FROM (SELECT rowid FROM fts WHERE fts MATCH ? LIMIT ?)",
            (quote(term), POSTINGS_BUDGET + 1)).fetchone()[0]
        if cache is not None:
            cache[term] = counts[term]
    return counts


def plans(terms: list[str], counts: dict[str, int], total: int) -> list[tuple[str, bool]]:
    """The FTS5 expression(s) to try, and whether each is ranked in full (else only its first ``WINDOW`` matches)."""
    prefixes = [t for t in terms if t.endswith("*")]
    present = sorted((t for t in terms if counts.get(t, 0) > 0), key=lambda t: counts[t])
    if not present:
        return [(match_expression(prefixes or terms), True)]  # prefixes, or nothing, quickly
    useful = [t for t in present if counts[t] <= min(POSTINGS_BUDGET, total / 2)]
    chosen: list[str] = []
    held = 0
    for term in useful:
        if chosen and held + counts[term] > POSTINGS_BUDGET:
            break
        chosen.append(term)
        held += counts[term]
    if chosen and held <= POSTINGS_BUDGET:
        return [(match_expression(chosen + prefixes), True)]
    return [(match_expression((useful or present)[:COMMON_TERMS] + prefixes), False)]


def search(conn: sqlite3.Connection, query: str, limit: int, total: int,
           cache: dict[str, int] | None = None) -> list[Hit]:
    """The best ``limit`` chunks for the query; ``total`` is the number of chunks in the index."""
    limit = max(1, min(limit, MAX_LIMIT))
    terms = query_terms(query)
    ranked: list[tuple[int, float]] = []
    for expression, in_full in plans(terms, document_counts(conn, terms, cache), total):
        if in_full:
            ranked = conn.execute("SELECT rowid, rank FROM fts WHERE fts MATCH ? ORDER BY rank LIMIT ?",
                                  (expression, limit)).fetchall()
        else:  # no ORDER BY: FTS5 stops after the window, scoring only those
            window = conn.execute("SELECT rowid, rank FROM fts WHERE fts MATCH ? LIMIT ?",
                                  (expression, max(WINDOW, limit))).fetchall()
            ranked = sorted(window, key=lambda row: row[1])[:limit]
        if ranked:
            break
    return _hits(conn, ranked)


def search_file(conn: sqlite3.Connection, query: str, path: str, limit: int, total: int,
                cache: dict[str, int] | None = None) -> list[Hit]:
    """The chunks of one indexed file (``path``) that best match ``query``, best first; its first
    chunks (score 0) when none does or the query has no word to look for; [] when it is not indexed.

    A chunk scores the IDF of each of the first ``FILE_TERMS`` query terms it holds (as FTS5 matches
    them: stems, CJK bigrams, prefixes), ``NAME_WEIGHT`` times when it defines the name. No BM25
    ``rank`` here: FTS5 would count every row holding each term, the whole index for a common one.
    The cost is bounded by the file: two lookups a term within the file's rowids (its chunks are
    written together: one range; else the list of them). ``total``: the chunks in the index.
    """
    limit = max(1, min(limit, MAX_LIMIT))
    ids = [r[0] for r in conn.execute(
        "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = ? ORDER BY c.start_line, c.id",
        (path,))]
    if not ids:
        return []
    try:
        terms = query_terms(query)[:FILE_TERMS]
    except QueryUnsearchable:
        terms = []
    counts = document_counts(conn, terms, cache) if terms else {}
    lo, hi, mine = min(ids), max(ids), set(ids)
    within = ("rowid BETWEEN ? AND ?", (lo, hi)) if hi - lo < 4 * len(ids) + RANGE_SLACK else (
        "rowid IN (SELECT id FROM chunks WHERE file_id = (SELECT id FROM files WHERE path = ?))", (path,))
    scores: dict[int, float] = {}
    for term in terms:
        df = min(counts.get(term, 1), total)
        idf = math.log(1 + (total - df + 0.5) / (df + 0.5))
        for expression, weight in ((quote(term), 1.0), (f"names : {quote(term)}", NAME_WEIGHT)):
            for (rowid,) in conn.execute(f"SELECT rowid FROM fts WHERE fts MATCH ? AND {within[0]}",
                                         (expression, *within[1])):
                if rowid in mine:
                    scores[rowid] = scores.get(rowid, 0.0) + idf * weight
    order = {i: n for n, i in enumerate(ids)}
    ranked = sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))[:limit]
    if not ranked:
        ranked = [(i, 0.0) for i in ids[:limit]]
    return _hits(conn, [(i, -score) for i, score in ranked])


def _hits(conn: sqlite3.Connection, ranked: list[tuple[int, float]]) -> list[Hit]:
    """(chunk id, FTS5 rank) rows as hits, in their order."""
    if not ranked:
        return []
    ids = [row[0] for row in ranked]
    marks = ",".join("?" * len(ids))
    rows = conn.execute(
        f"SELECT c.id, f.path, c.start_line, c.end_line, c.text FROM chunks c JOIN files f ON f.id = c.file_id "
        f"WHERE c.id IN ({marks})", ids).fetchall()
    found = {r[0]: Chunk(r[1], r[2], r[3], r[4]) for r in rows}
    return [Hit(found[i], -rank, i) for i, rank in ranked if i in found]
