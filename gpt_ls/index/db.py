"""The index database of one workspace: where it lives, its schema, and what happens when it breaks.

* ``data_dir / "index" / <folder name>-<hash of the workspace key>.sqlite``: one per workspace,
  created 0600 in 0700 folders, never opened through a symlink (the file, -wal or -shm);
* WAL with a busy timeout, so the worker process writes while the server reads;
* ``PRAGMA user_version`` is the schema version: an index built by another version, or one
  SQLite calls damaged, is moved aside (``<name>.old``, one slot: it is derived data) and a
  fresh one started, with a notice; never a failure;
* a data folder that cannot be written opens what exists read-only (``readonly``), or says why not.

The text lives once, in ``chunks``; ``fts`` is an FTS5 external-content table over it with
BM25 column weights: the path and the names a chunk defines count more than its body. Words
are stemmed (Porter: prompts/prompt, colored/color find each other; CJK bigrams are left be).
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import stat
from collections.abc import Mapping
from pathlib import Path

from gpt_ls.config_files import data_dir
from gpt_ls.errors import WorkspaceIndexError
from gpt_ls.history.store import workspace_key

SCHEMA_VERSION = 3
BUSY_TIMEOUT_MS = 10_000
#: BM25 weights of the FTS columns: path_terms, names, text, extra.
WEIGHTS = (4.0, 8.0, 1.0, 1.0)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, hash TEXT NOT NULL, invalid_utf8 INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL, start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL, hash TEXT NOT NULL, path_terms TEXT NOT NULL, names TEXT NOT NULL,
    text TEXT NOT NULL, extra TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(hash);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    path_terms, names, text, extra, content='chunks', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE IF NOT EXISTS vocab USING fts5vocab(fts, 'row');
INSERT INTO fts(fts, rank) VALUES('rank', 'bm25({", ".join(map(str, WEIGHTS))})');
PRAGMA user_version = {SCHEMA_VERSION};
"""


def index_file(root: Path, env: Mapping[str, str] | None = None) -> Path:
    """Where the index of ``root`` is stored (``GPT_LS_DATA_DIR`` moves it)."""
    key = workspace_key(root)
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(key).name)[:40] or "root"
    return data_dir(env) / "index" / f"{name}-{digest}.sqlite"


def _sidecars(path: Path) -> tuple[Path, Path, Path]:
    return path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _refuse_links(path: Path) -> None:
    for file in _sidecars(path):
        if file.is_symlink():
            raise WorkspaceIndexError(
                f"The index file {file} is a symbolic link; gpt-ls does not open its index through one. "
                "Remove it (the index is rebuilt), or set GPT_LS_DATA_DIR to another folder."
            )


def _writable_dir(folder: Path) -> bool:
    """Create the folder owner-only if needed; False when it cannot be created or written."""
    try:
        for part in (folder.parent, folder):
            if not part.is_dir():
                part.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(part, 0o700)
        return os.access(folder, os.W_OK | os.X_OK)
    except OSError:
        return False


def _prepare_file(path: Path) -> None:
    """Create the file 0600 before SQLite does (never through a symlink); tighten a wider one."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"journal mode stays {mode!r}")
    conn.execute("PRAGMA synchronous = NORMAL")


def _ensure_schema(conn: sqlite3.Connection) -> str | None:
    """Create the schema on a fresh file; "outdated" when it holds another version's."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return None
    if version != 0:
        return "outdated"
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:  # another process may have won
            for statement in filter(str.strip, SCHEMA.split(";\n")):
                conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return None


def probe(conn: sqlite3.Connection) -> None:
    """Touch every table, so a damaged file fails at open, not later."""
    conn.execute("SELECT count(*) FROM meta").fetchone()
    conn.execute("SELECT max(id), max(size) FROM files").fetchone()
    conn.execute("SELECT max(id), max(file_id) FROM chunks").fetchone()
    conn.execute("SELECT rowid FROM fts WHERE fts MATCH 'gptlsprobe' LIMIT 1").fetchall()


def _connect(path: Path) -> sqlite3.Connection:
    _prepare_file(path)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    try:
        configure(conn)
        if _ensure_schema(conn) == "outdated":
            raise _Outdated()
        probe(conn)
    except BaseException:
        conn.close()
        raise
    return conn


class _Outdated(Exception):
    pass


def move_aside(path: Path) -> Path:
    """Rename the database (and its -wal/-shm) to ``<name>.old``, replacing an older one."""
    target = path.with_name(path.name + ".old")
    for file, moved in zip(_sidecars(path), _sidecars(target), strict=True):
        if file.exists():
            os.replace(file, moved)
        elif moved.exists():
            moved.unlink()
    return target


def damaged(exc: BaseException) -> bool:
    """Is this the error of a damaged database file (not a lock, not a full disk)?"""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and any(
        word in text for word in ("malformed", "not a database", "corrupt"))


def _read_only(path: Path, why: str) -> sqlite3.Connection:
    """Open an existing index read-only (the data folder cannot be written)."""
    if not path.is_file():
        raise WorkspaceIndexError(
            f"The index folder {path.parent} cannot be written ({why}) and holds no index for this "
            "workspace yet; set GPT_LS_DATA_DIR to a writable folder to build one."
        )
    for query in ("mode=ro", "immutable=1"):
        try:
            conn = sqlite3.connect(f"{path.as_uri()}?{query}", uri=True, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                conn.close()
                break
            probe(conn)
            return conn
        except sqlite3.Error:
            continue
    raise WorkspaceIndexError(
        f"The index {path} cannot be read, and its folder cannot be written ({why}) to rebuild it; "
        "set GPT_LS_DATA_DIR to a writable folder."
    )


def open_connection(path: Path) -> tuple[sqlite3.Connection, str | None, bool]:
    """The connection, a notice (the index was rebuilt, or is read-only), and whether it is read-only."""
    _refuse_links(path)
    if not _writable_dir(path.parent) or (path.exists() and not os.access(path, os.W_OK)):
        conn = _read_only(path, "permission denied")
        notice = f"The index {path} is read-only (its folder or file cannot be written); it is searched as it is."
        return conn, notice, True
    try:
        return _connect(path), None, False
    except _Outdated:
        reason = "it was built by another version of gpt-ls"
    except sqlite3.DatabaseError as exc:
        if not damaged(exc):
            raise WorkspaceIndexError(f"Cannot open the index {path}: {exc}; run: gpt-ls index --clear") from exc
        reason = f"it is damaged ({exc})"
    except OSError as exc:
        raise WorkspaceIndexError(f"Cannot create the index {path} ({exc.strerror}); set GPT_LS_DATA_DIR "
                                  "to a writable folder.") from exc
    try:
        moved = move_aside(path)
        conn = _connect(path)
    except (OSError, sqlite3.Error) as exc:
        raise WorkspaceIndexError(f"The index {path} cannot be used ({reason}) nor replaced ({exc}); "
                                  "delete it and run: gpt-ls index") from exc
    return conn, f"The index {path} could not be used ({reason}); it was moved to {moved} and is rebuilt.", False
