"""Bringing the index up to date: a cold build, an incremental update, or a few named files.

A file is re-read only when its size or mtime changed, and re-chunked only when its content
hash changed. Files are read and chunked outside any transaction, then written in batches
(one short write transaction each), so readers and other writers wait little and a cancelled
or killed build keeps every batch it finished. Unsaved open documents (*overlays*) take the
place of their files. A file that vanishes, turns unreadable or binary while it is indexed is
counted, and its old chunks go; nothing here raises for one file.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gpt_ls.index.chunks import chunk_text, definition_names
from gpt_ls.index.report import IndexReport
from gpt_ls.index.terms import extra_terms, path_terms
from gpt_ls.index.walk import MAX_FILE_BYTES, Candidate, Rules, confined, stat_file, walk

Progress = Callable[[int, int, str], None]
#: What a batch may hold before it is written.
BATCH_FILES = 256
BATCH_BYTES = 8 * 1024 * 1024
#: Fewer files than this are examined in the process itself (a pool costs more than it saves).
POOL_MIN_FILES = 200
_NOFOLLOW = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)

#: Skipped as binary without being read.
BINARY_SUFFIXES = frozenset("""
.png .jpg .jpeg .gif .bmp .ico .webp .tif .tiff .psd .heic .avif .mp3 .mp4 .m4a .wav .ogg .flac .avi .mov
.mkv .webm .zip .gz .tgz .bz2 .xz .zst .7z .rar .tar .jar .war .whl .egg .pdf .doc .docx .xls .xlsx .ppt
.pptx .odt .exe .dll .so .dylib .a .o .obj .lib .class .pyc .pyo .wasm .bin .dat .db .sqlite .sqlite3
.woff .woff2 .ttf .otf .eot .iso .dmg .img .deb .rpm .npy .npz .pkl .pickle .pt .onnx .parquet
""".split())
#: Share of replacement characters above which undecodable text counts as binary.
BINARY_REPLACEMENTS = 0.25


@dataclass(frozen=True)
class Prepared:
    """One file ready to write: its text cut into chunk rows, or the reason it is not indexed."""

    rel: str
    size: int
    mtime_ns: int
    hash: str
    invalid_utf8: bool
    rows: list[tuple[int, int, str, str, str, str, str]]


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read_file(candidate: Candidate) -> tuple[bytes, int, int]:
    """The bytes, size and mtime of a file, checked on the open file (never a FIFO, never a link)."""
    fd = os.open(candidate.path, _NOFOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise IsADirectoryError(candidate.rel)
        if info.st_size > MAX_FILE_BYTES:
            raise _TooLarge()
        os.set_blocking(fd, True)
        data = os.read(fd, MAX_FILE_BYTES + 1)
        while len(data) <= MAX_FILE_BYTES and (more := os.read(fd, MAX_FILE_BYTES + 1 - len(data))):
            data += more
        if len(data) > MAX_FILE_BYTES:
            raise _TooLarge()
        return data, info.st_size, info.st_mtime_ns
    finally:
        os.close(fd)


class _TooLarge(Exception):
    pass


def decode(data: bytes) -> tuple[str | None, bool]:
    """The text (None when binary) and whether invalid UTF-8 was replaced."""
    if b"\x00" in data:
        return None, False
    try:
        return data.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
        if text.count("\ufffd") > BINARY_REPLACEMENTS * max(1, len(text)):
            return None, False
        return text, True


def examine(item: Candidate, old_hash: str | None) -> tuple[str, object]:
    """What a file is now: ("new", Prepared), ("same", (size, mtime_ns)) or ("skip", reason). Runs in a pool."""
    if PurePosixPath(item.rel).suffix.lower() in BINARY_SUFFIXES:
        return "skip", "binary"
    try:
        data, size, mtime = read_file(item)
    except FileNotFoundError:
        return "skip", "vanished"
    except _TooLarge:
        return "skip", "too_large"
    except OSError:
        return "skip", "unreadable"
    file_hash = digest(data)
    if file_hash == old_hash:
        return "same", (size, mtime)
    decoded, invalid = decode(data)
    if decoded is None:
        return "skip", "binary"
    return "new", prepare(item.rel, decoded, size, mtime, file_hash, invalid)


def examine_text(rel: str, text: str, old_hash: str | None) -> tuple[str, object]:
    """The same for an overlay (an unsaved document): it has no size or mtime on disk."""
    file_hash = digest(text.encode("utf-8", "surrogatepass"))
    if file_hash == old_hash:
        return "same", (-1, -1)
    return "new", prepare(rel, text, -1, -1, file_hash, False)


def _can_fork() -> bool:
    """Forking is safe only from a process with a single thread (the worker, the CLI), never the server."""
    return hasattr(os, "fork") and threading.active_count() == 1


def prepare(rel: str, text: str, size: int, mtime_ns: int, file_hash: str, invalid: bool) -> Prepared:
    """Chunk a file's text and compute every column the index stores."""
    where = path_terms(rel)
    rows = []
    for chunk in chunk_text(rel, text):
        names = definition_names(chunk.text, rel)
        rows.append((chunk.start_line, chunk.end_line, digest(chunk.text.encode("utf-8", "surrogatepass")),
                     where, f"{names} {extra_terms(names)}".strip(), chunk.text, extra_terms(chunk.text)))
    return Prepared(rel, size, mtime_ns, file_hash, invalid, rows)


class Indexer:
    """Updates one index database; ``write`` runs a callable in one write transaction (the store's lock)."""

    def __init__(self, root: Path, rules: Rules, max_files: int, overlays: Mapping[str, str],
                 write: Callable[[Callable[[sqlite3.Connection], object]], object],
                 read: Callable[[Callable[[sqlite3.Connection], object]], object]) -> None:
        self.root = root
        self.rules = rules
        self.max_files = max_files
        self.overlays = dict(overlays)
        self._write = write
        self._read = read
        self._touched: list[tuple[int, int, int]] = []
        self.jobs = 1  # (size, mtime_ns, id): same content, new stat

    def known(self, paths: list[str] | None = None) -> dict[str, tuple[int, int, int, str]]:
        """path -> (id, size, mtime_ns, hash) of every indexed file (or of those of ``paths``)."""
        def rows(conn: sqlite3.Connection) -> list[tuple[str, int, int, int, str]]:
            query = "SELECT path, id, size, mtime_ns, hash FROM files"
            if paths is None:
                return conn.execute(query).fetchall()
            return [row for p in paths for row in conn.execute(query + " WHERE path = ?", (p,)).fetchall()]
        found = self._read(rows)
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in found}  # type: ignore[attr-defined]

    def overlay_refused(self, rel: str) -> str | None:
        """Why an unsaved document is not indexed: the rules, or a path that leads outside (a symlink)."""
        reason = self.rules.check_path(rel)
        if reason is None and confined(self.root, rel) is None:
            reason = "outside"
        return reason

    def count(self) -> int:
        found = self._read(lambda c: c.execute("SELECT count(*) FROM files").fetchone()[0])
        return found if isinstance(found, int) else 0

    def update_all(self, include: Iterable[str], exclude: Iterable[str], progress: Progress | None,
                   cancel: threading.Event | None) -> IndexReport:
        """Walk the workspace; index what changed, drop what is gone."""
        started = time.monotonic()
        report = IndexReport()
        walked = walk(self.root, include, exclude, self.max_files)
        for reason, count in walked.skipped.items():
            report.skip(reason, count)
        known = self.known()
        todo: list[Candidate | str] = []
        seen = set()
        for cand in walked.files:
            seen.add(cand.rel)
            row = known.get(cand.rel)
            if cand.rel not in self.overlays and row and row[1] == cand.size and row[2] == cand.mtime_ns:
                report.unchanged += 1
            else:
                todo.append(cand)
        todo += [rel for rel in self.overlays if rel not in seen and not self.overlay_refused(rel)]
        gone = [rel for rel in known if rel not in seen and rel not in self.overlays]
        if gone:
            def drop(conn: sqlite3.Connection) -> None:
                for rel in gone:
                    _remove(conn, known[rel][0])
            self._write(drop)
            report.removed += len(gone)
        self._run(todo, known, report, progress, cancel)
        report.seconds = time.monotonic() - started
        return report

    def update_paths(self, paths: Iterable[str], progress: Progress | None,
                     cancel: threading.Event | None) -> IndexReport:
        """Re-check a few files (saved, created, deleted): each by the same rules as a full walk."""
        started = time.monotonic()
        report = IndexReport()
        wanted = list(dict.fromkeys(paths))
        known = self.known(wanted)
        indexed = None
        todo: list[Candidate | str] = []
        for rel in wanted:
            reason = self.rules.check_path(rel)
            cand = None
            if reason is None and rel not in self.overlays:
                cand, reason = stat_file(self.root, rel)
            elif reason is None:
                reason = self.overlay_refused(rel)
            if reason is None and rel not in known:
                indexed = self.count() if indexed is None else indexed
                if indexed >= self.max_files:
                    reason = "over_limit"
            if reason is None:
                todo.append(cand or rel)
                continue
            if reason != "vanished":
                report.skip(reason)
            if rel in known:
                self._write(_remover(known[rel][0]))
                report.removed += 1
        self._run(todo, known, report, progress, cancel)
        report.seconds = time.monotonic() - started
        return report

    def _run(self, todo: list[Candidate | str], known: Mapping[str, tuple[int, int, int, str]],
             report: IndexReport, progress: Progress | None, cancel: threading.Event | None) -> None:
        batch: list[Prepared] = []
        size = 0
        if progress:
            progress(0, len(todo), "")
        done = 0
        results = self._outcomes(todo, known)
        try:
            for rel, kind, value in results:
                done += 1
                row = known.get(rel)
                if kind == "new":
                    assert isinstance(value, Prepared)
                    report.invalid_utf8 += value.invalid_utf8
                    batch.append(value)
                    size += value.size
                elif kind == "same":
                    report.unchanged += 1
                    if row and isinstance(value, tuple) and value[0] >= 0:
                        self._touched.append((value[0], value[1], row[0]))
                else:
                    report.skip(str(value))
                    if row:
                        self._write(_remover(row[0]))
                        report.removed += 1
                if len(batch) >= BATCH_FILES or size >= BATCH_BYTES:
                    self._flush(batch, report)
                    batch, size = [], 0
                if progress:
                    progress(done, len(todo), rel)
                if cancel is not None and cancel.is_set() and done < len(todo):
                    report.cancelled = True
                    break
        finally:
            results.close()
        self._flush(batch, report)

    def _outcomes(self, todo: list[Candidate | str],
                  known: Mapping[str, tuple[int, int, int, str]]) -> Generator[tuple[str, str, object], None, None]:
        """Each item's outcome, in order; files are examined by a pool of processes when that pays."""
        def old(rel: str) -> str | None:
            row = known.get(rel)
            return row[3] if row else None

        overlays = [item for item in todo if isinstance(item, str) or item.rel in self.overlays]
        files = [item for item in todo if not isinstance(item, str) and item.rel not in self.overlays]
        for item in overlays:
            rel = item if isinstance(item, str) else item.rel
            yield (rel, *examine_text(rel, self.overlays[rel], old(rel)))
        if self.jobs > 1 and len(files) >= POOL_MIN_FILES and _can_fork():
            pool = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("fork"))
            try:
                outcomes = pool.map(examine, files, [old(c.rel) for c in files], chunksize=8)
                for cand, outcome in zip(files, outcomes, strict=True):
                    yield (cand.rel, *outcome)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        else:
            for cand in files:
                yield (cand.rel, *examine(cand, old(cand.rel)))

    def _flush(self, batch: list[Prepared], report: IndexReport) -> None:
        touched, self._touched = self._touched, []
        if not batch and not touched:
            return

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", touched)
            for item in batch:
                _store(conn, item)

        self._write(write)
        report.indexed += len(batch)
        report.chunks += sum(len(item.rows) for item in batch)


def _remove(conn: sqlite3.Connection, file_id: int) -> None:
    """Drop a file's chunks (from the FTS index first: it is external-content) and its row."""
    conn.execute("INSERT INTO fts(fts, rowid, path_terms, names, text, extra) "
                 "SELECT 'delete', id, path_terms, names, text, extra FROM chunks WHERE file_id = ?", (file_id,))
    conn.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,))
    conn.execute("DELETE FROM files WHERE id = ?", (file_id,))


def _remover(file_id: int) -> Callable[[sqlite3.Connection], None]:
    return lambda conn: _remove(conn, file_id)


def _store(conn: sqlite3.Connection, item: Prepared) -> None:
    """Replace a file's row and chunks (looked up again: another writer may have changed them)."""
    old = conn.execute("SELECT id FROM files WHERE path = ?", (item.rel,)).fetchone()
    if old is not None:
        _remove(conn, old[0])
    cur = conn.execute("INSERT INTO files (path, size, mtime_ns, hash, invalid_utf8) VALUES (?, ?, ?, ?, ?)",
                       (item.rel, item.size, item.mtime_ns, item.hash, int(item.invalid_utf8)))
    new_id = cur.lastrowid
    conn.executemany(
        "INSERT INTO chunks (file_id, start_line, end_line, hash, path_terms, names, text, extra) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(new_id, *row) for row in item.rows])
    conn.execute("INSERT INTO fts(rowid, path_terms, names, text, extra) "
                 "SELECT id, path_terms, names, text, extra FROM chunks WHERE file_id = ?", (new_id,))
