"""The history database file: where it lives, how it is opened, and what happens when it breaks.

* ``settings.data_dir() / "history.db"`` (``GPT_LS_DATA_DIR`` moves it), one stdlib
  ``sqlite3`` connection per process;

* created 0600 inside a 0700 directory (the conversations are private);
* WAL journal, ``synchronous=NORMAL`` and a busy timeout, and every write in its own
  ``BEGIN IMMEDIATE`` transaction, so the language server, a second editor window and the
  CLI can write at the same moment and a killed process never leaves a torn row;
* a database that cannot be read is moved aside (renamed with a timestamp) and a fresh one
  started; the sentence explaining it is ``Database.notice``.

``sqlite3`` errors leave this module only as ``HistoryError``.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from gpt_ls import settings
from gpt_ls.errors import HistoryError
from gpt_ls.history.schema import migrate

DB_NAME = "history.db"
BUSY_TIMEOUT_MS = 10_000

# Primary SQLite result codes (the low byte of an extended code).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_READONLY, _SQLITE_IOERR = 3, 5, 8, 10
_SQLITE_CORRUPT, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 14, 26
_DAMAGED = {_SQLITE_CORRUPT, _SQLITE_NOTADB}
_UNREADABLE = {_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CANTOPEN}


def _error_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(exc).lower()  # Python 3.10 has no sqlite_errorcode
    if "malformed" in text or "not a database" in text:
        return _SQLITE_CORRUPT
    if "unable to open" in text:
        return _SQLITE_CANTOPEN
    if "locked" in text:
        return _SQLITE_BUSY
    return None


def _is_damaged(exc: sqlite3.Error) -> bool:
    return _error_code(exc) in _DAMAGED


def _prepare_dir(folder: Path) -> None:
    """Create the data directory readable by its owner only (an existing one is left be)."""
    if folder.is_dir():
        return
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
    except OSError as exc:
        raise HistoryError(
            f"Cannot create the history directory {folder} ({exc.strerror}); "
            "set GPT_LS_DATA_DIR to a writable directory or turn history off"
        ) from exc


def _refuse_links(path: Path) -> None:
    """A database (or its -wal, -shm) that is a symlink is refused: history is never written through one."""
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.is_symlink():
            raise HistoryError(
                f"The history file {file} is a symbolic link; gpt-ls does not open history through "
                f"one. Replace it with the file it points to (or remove it to start a fresh "
                "history), or set GPT_LS_DATA_DIR to another directory."
            )


def _prepare_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does; tighten one that is wider."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | getattr(os, "O_NOFOLLOW", 0), 0o600)
        os.close(fd)
    except OSError:
        return  # SQLite reports it, and open() decides whether to move it aside
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)
    except OSError:
        pass


def _connect(path: Path) -> sqlite3.Connection:
    """Open, configure, migrate and probe; any failure closes the connection and raises."""
    _prepare_file(path)
    # Autocommit (isolation_level=None): transactions are explicit BEGIN IMMEDIATE, because a
    # deferred read-then-write transaction in WAL mode can fail with SQLITE_BUSY at once.
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _enable_wal(conn)
        # NORMAL in WAL: a killed process loses nothing committed; a power cut may lose the
        # last transactions but never corrupts the file.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Deleted history is overwritten, not left in free pages.
        conn.execute("PRAGMA secure_delete = ON")
        migrate(conn)
        # Touch every table the store reads, so a damaged file fails here, not later.
        conn.execute("SELECT count(*) FROM _migrations").fetchone()
        conn.execute("SELECT max(id) FROM conversations").fetchone()
        conn.execute("SELECT max(id) FROM messages").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, retrying while another process switches the same new file."""
    # On a brand-new file SQLite can answer SQLITE_BUSY at once, without calling its busy
    # handler (found by test_processes_creating_the_same_fresh_store_at_once).
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.002
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as exc:
            if _error_code(exc) != _SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"journal mode stays {mode!r}")


def _move_aside(path: Path) -> Path:
    """Rename the database (and its -wal/-shm) to ``history.db.corrupt-<UTC time>``."""
    when = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{when}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{when}-{n}")
    os.replace(path, target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    return target


def _describe_failure(exc: sqlite3.Error) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] if text else type(exc).__name__


def _worth_moving_aside(exc: sqlite3.Error, path: Path) -> bool:
    """Damage, or a file SQLite cannot use; never a busy lock or a missing directory."""
    code = _error_code(exc)
    if code in _DAMAGED:
        return True
    return code in _UNREADABLE and path.is_file()


class Database:
    """One connection shared by the store's callers; safe to share the file between processes."""

    def __init__(self, path: Path, conn: sqlite3.Connection, notice: str | None = None) -> None:
        self.path = path
        self.notice = notice
        self._conn: sqlite3.Connection | None = conn
        # The server may call from worker threads; one connection, one caller at a time.
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: Path | None = None) -> Database:
        """Open (creating and migrating) the database; a damaged file is moved aside."""
        path = Path(path) if path is not None else settings.data_dir() / DB_NAME
        _prepare_dir(path.parent)
        _refuse_links(path)
        try:
            return cls(path, _connect(path))
        except sqlite3.Error as exc:
            reason = _describe_failure(exc)
            if not _worth_moving_aside(exc, path):
                raise HistoryError(f"Cannot open the history database {path}: {reason}") from exc
        try:
            moved = _move_aside(path)
        except OSError as exc:
            raise HistoryError(
                f"The history database {path} cannot be read ({reason}) and cannot be moved "
                f"aside ({exc.strerror}); move or delete it yourself"
            ) from exc
        notice = (
            f"The history database {path} could not be read ({reason}); "
            f"it was moved to {moved} and a fresh history was started."
        )
        try:
            return cls(path, _connect(path), notice)
        except sqlite3.Error as exc:
            raise HistoryError(
                f"{notice} But the fresh database cannot be opened either: {_describe_failure(exc)}"
            ) from exc

    def close(self) -> None:
        """Close the connection; later calls raise ``HistoryError``."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One read, or one write transaction; sqlite3 errors become ``HistoryError``."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise HistoryError("The history store is closed")
            try:
                if write:
                    conn.execute("BEGIN IMMEDIATE")
                yield conn
                if write:
                    conn.execute("COMMIT")
            except BaseException as exc:
                if write and conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                if isinstance(exc, sqlite3.Error):
                    raise self._failure(exc) from exc
                raise

    def _failure(self, exc: sqlite3.Error) -> HistoryError:
        """Turn an SQLite error into a sentence; a damaged file is replaced at once."""
        if isinstance(exc, sqlite3.IntegrityError):
            return HistoryError(f"History refused the change: {exc}")
        if not _is_damaged(exc):
            return HistoryError(f"History database error ({self.path}): {_describe_failure(exc)}")
        assert self._conn is not None
        self._conn.close()
        self._conn = None
        try:
            moved = _move_aside(self.path)
            self._conn = _connect(self.path)
        except (OSError, sqlite3.Error) as again:
            return HistoryError(
                f"The history database {self.path} is damaged ({exc}) and could not be "
                f"replaced ({again}); history is off until it is moved away"
            )
        self.notice = (
            f"The history database {self.path} was damaged ({exc}); it was moved to "
            f"{moved} and a fresh history was started."
        )
        return HistoryError(self.notice)
