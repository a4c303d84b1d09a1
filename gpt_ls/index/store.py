"""``WorkspaceIndex``: the one object the server, the CLI and the benchmarks use.

It owns one SQLite connection (shared by threads under a lock), the overlays (unsaved open
documents) and the rules for this workspace's settings. Every ``sqlite3`` error leaves as a
``WorkspaceIndexError`` sentence; a database found damaged while in use is moved aside and
started afresh (the sentence says so, and the next update rebuilds it).
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from gpt_ls.errors import WorkspaceIndexError
from gpt_ls.index import db
from gpt_ls.index.chunks import Chunk as Chunk
from gpt_ls.index.indexer import Indexer, Progress
from gpt_ls.index.report import IndexReport as IndexReport
from gpt_ls.index.report import IndexStatus as IndexStatus
from gpt_ls.index.search import Hit as Hit
from gpt_ls.index.search import search, search_file
from gpt_ls.index.walk import Rules
from gpt_ls.settings import Settings

T = TypeVar("T")
#: Largest unsaved document taken as an overlay (the size limit of indexed files).
MAX_OVERLAY_CHARS = 1024 * 1024


@dataclass(frozen=True)
class ChunkText:
    """What an embedder needs of a chunk: its id, the hash of its text, the text, and where it is."""

    id: int
    hash: str
    text: str
    path: str
    start_line: int
    end_line: int


def _chunk_rows(conn: sqlite3.Connection, after: int, batch: int) -> list[Any]:
    return conn.execute(
        "SELECT c.id, c.hash, c.text, f.path, c.start_line, c.end_line FROM chunks c "
        "JOIN files f ON f.id = c.file_id WHERE c.id > ? ORDER BY c.id LIMIT ?", (after, batch)).fetchall()


class WorkspaceIndex:
    """The search index of one workspace root."""

    def __init__(self, root: Path, settings: Settings, path: Path, conn: sqlite3.Connection,
                 notice: str | None, readonly: bool) -> None:
        self.root = root
        self.settings = settings
        self.path = path
        self.notice = notice
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()
        self._overlays: dict[str, str] = {}
        self._total: tuple[int, int] | None = None  # (data_version, chunk count)
        self._counts: dict[str, int] = {}  # term -> chunks holding it (bounded), while _total[0] holds

    @classmethod
    def open(cls, root: Path, settings: Settings, env: Mapping[str, str] | None = None) -> WorkspaceIndex:
        """Open (creating, or rebuilding when damaged or outdated) the index of ``root``."""
        root = Path(root).resolve()
        path = db.index_file(root, env)
        conn, notice, readonly = db.open_connection(path)
        return cls(root, settings, path, conn, notice, readonly)

    # -- connection ---------------------------------------------------------------------------

    def _use(self, work: Callable[[sqlite3.Connection], T], write: bool = False) -> T:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise WorkspaceIndexError("The workspace index is closed.")
            if write and self.readonly:
                raise WorkspaceIndexError(f"{self.notice} It cannot be updated until its folder is writable.")
            try:
                if write:
                    conn.execute("BEGIN IMMEDIATE")
                result = work(conn)
                if write:
                    conn.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                if write and conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise self._failure(exc) from exc
            except BaseException:
                if write and conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _failure(self, exc: sqlite3.Error) -> WorkspaceIndexError:
        if not db.damaged(exc) or self.readonly:
            if "readonly" in str(exc).lower():
                return WorkspaceIndexError(f"The index {self.path} cannot be written ({exc}); is its disk "
                                           "read-only? Set GPT_LS_DATA_DIR to a writable folder.")
            return WorkspaceIndexError(f"Workspace index error ({self.path}): {exc}")
        assert self._conn is not None
        self._conn.close()
        self._conn = None
        try:
            moved = db.move_aside(self.path)
            self._conn, _, _ = db.open_connection(self.path)
        except (OSError, sqlite3.Error, WorkspaceIndexError) as again:
            return WorkspaceIndexError(f"The index {self.path} is damaged ({exc}) and could not be replaced "
                                       f"({again}); delete it and run: gpt-ls index")
        self.notice = (f"The index {self.path} was damaged ({exc}); it was moved to {moved} and starts "
                       "empty: it is rebuilt by the next update (gpt-ls index).")
        return WorkspaceIndexError(self.notice)

    def _read(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        return self._use(work)

    def _write(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        return self._use(work, write=True)

    # -- updating -----------------------------------------------------------------------------

    def rules(self) -> Rules:
        return Rules(self.root, self.settings.index_include, self.settings.index_exclude)

    def relative(self, path: str) -> str:
        """A workspace-relative POSIX path for ``path`` (absolute, or relative already)."""
        candidate = Path(path)
        if candidate.is_absolute():
            try:
                candidate = candidate.resolve().relative_to(self.root) if candidate.exists() \
                    else candidate.relative_to(self.root)
            except ValueError:
                return "../" + candidate.name  # outside: refused by the rules
        return candidate.as_posix().lstrip("/")

    def update(self, paths: Iterable[str] | None = None, *, progress: Progress | None = None,
               cancel: threading.Event | None = None, jobs: int = 1) -> IndexReport:
        """Bring the index up to date: the whole workspace, or only ``paths`` (absolute or relative).

        ``jobs`` > 1 examines files in that many forked processes, only from a single-threaded
        process (the worker, the CLI); the server itself runs with 1.
        """
        indexer = Indexer(self.root, self.rules(), self.settings.index_max_files, self._overlays,
                          self._write, self._read)
        indexer.jobs = jobs
        if self.readonly:
            self._write(lambda c: None)  # raises the read-only sentence
        if paths is None:
            report = indexer.update_all(self.settings.index_include, self.settings.index_exclude, progress, cancel)
        else:
            report = indexer.update_paths([self.relative(p) for p in paths], progress, cancel)
        report.files = self._read(lambda c: c.execute("SELECT count(*) FROM files").fetchone()[0])
        report.notice, self.notice = self.notice, None
        key = "built_at" if paths is None and not report.cancelled else "updated_at"
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._write(lambda c: c.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                            [(key, now), ("updated_at", now), ("last_report", report.to_json())]))
        return report

    def set_overlay(self, path: str, text: str | None) -> None:
        """An unsaved open document's text takes the place of its file (None: the file again)."""
        rel = self.relative(path)
        if text is None:
            if self._overlays.pop(rel, None) is not None:
                self.update([rel])
            return
        if len(text) > MAX_OVERLAY_CHARS:
            self._overlays.pop(rel, None)
            return
        self._overlays[rel] = text
        self.update([rel])

    def apply_overlays(self) -> IndexReport:
        """Re-index the overlays (after another process rebuilt the index from the files)."""
        return self.update(list(self._overlays))

    # -- reading ------------------------------------------------------------------------------

    def total_chunks(self) -> int:
        def count(conn: sqlite3.Connection) -> int:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if self._total is None or self._total[0] != version:
                self._total = (version, conn.execute("SELECT count(*) FROM chunks").fetchone()[0])
                self._counts = {}
            return self._total[1]
        return int(self._read(count))

    def search(self, query: str, limit: int = 20) -> list[Hit]:
        """The best chunks for ``query``, best first; ``QueryUnsearchable`` when it has no searchable word."""
        total = self.total_chunks()
        if len(self._counts) > 10_000:
            self._counts = {}
        return list(self._read(lambda c: search(c, query, limit, total, self._counts)))

    def search_file(self, query: str, path: str, limit: int = 2) -> list[Hit]:
        """The chunks of one indexed file that best match ``query`` (its first ones when none does)."""
        total = self.total_chunks()
        if len(self._counts) > 10_000:
            self._counts = {}
        return list(self._read(lambda c: search_file(c, query, path, limit, total, self._counts)))

    def files(self) -> list[str]:
        """Every indexed path (workspace-relative, POSIX), sorted: for @-mention completion."""
        return [r[0] for r in self._read(lambda c: c.execute("SELECT path FROM files ORDER BY path").fetchall())]

    def chunk_texts(self, batch: int = 500) -> Iterator[ChunkText]:
        """Every chunk with its id and content hash, in id order, read in batches (for embedding)."""
        last = 0
        while True:
            rows = self._read(functools.partial(_chunk_rows, after=last, batch=batch))
            if not rows:
                return
            yield from (ChunkText(*row) for row in rows)
            last = rows[-1][0]

    def chunk_ids_by_hash(self, hashes: Iterable[str]) -> dict[str, list[int]]:
        """The ids of the chunks whose text has these hashes (semantic ranking's vectors are kept by hash)."""
        wanted = list(dict.fromkeys(hashes))[:10_000]
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self._read(lambda c: c.execute(
            f"SELECT hash, id FROM chunks WHERE hash IN ({marks}) ORDER BY id", wanted).fetchall())
        out: dict[str, list[int]] = {}
        for h, i in rows:
            out.setdefault(h, []).append(i)
        return out

    def chunks(self, ids: Iterable[int]) -> dict[int, Chunk]:
        """The chunks with these ids (missing ones left out)."""
        wanted = list(dict.fromkeys(ids))[:10_000]
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self._read(lambda c: c.execute(
            f"SELECT c.id, f.path, c.start_line, c.end_line, c.text FROM chunks c JOIN files f ON f.id = c.file_id "
            f"WHERE c.id IN ({marks})", wanted).fetchall())
        return {r[0]: Chunk(r[1], r[2], r[3], r[4]) for r in rows}

    @property
    def built(self) -> bool:
        """Has a full update ever completed (else search would find nothing)?"""
        return bool(self._read(lambda c: c.execute("SELECT 1 FROM meta WHERE key = 'built_at'").fetchone()))

    def status(self) -> IndexStatus:
        """What the index holds and what its last update did."""
        def read(conn: sqlite3.Connection) -> IndexStatus:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            files = conn.execute("SELECT count(*) FROM files").fetchone()[0]
            chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
            size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
            last = IndexReport.from_dict(json.loads(meta["last_report"])) if "last_report" in meta else None
            return IndexStatus(str(self.root), str(self.path), "built_at" in meta, files, chunks, size,
                               meta.get("updated_at"), self.readonly, self.notice, last)
        return self._read(read)  # type: ignore[no-any-return]

    def clear(self) -> None:
        """Forget everything indexed (the file stays, empty)."""
        def wipe(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO fts(fts) VALUES('delete-all')")
            conn.execute("DELETE FROM chunks")
            conn.execute("DELETE FROM files")
            conn.execute("DELETE FROM meta")
        self._write(wipe)
        self._read(lambda c: c.execute("VACUUM"))

    def close(self) -> None:
        """Close the connection (later calls raise ``WorkspaceIndexError``)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> WorkspaceIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
