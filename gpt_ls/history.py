"""The conversation store: one SQLite file per user, conversations kept apart by workspace.

The model remembers nothing, so a conversation continues only if its earlier turns are
sent again; this module keeps every exchange on disk, durably and privately:

* one database (stdlib ``sqlite3``) at ``settings.data_dir() / "history.db"``
  (``GPT_LS_DATA_DIR`` moves it), created 0600 inside a 0700 directory;
* WAL journal, ``synchronous=NORMAL`` and a busy timeout, and every write in its own
  ``BEGIN IMMEDIATE`` transaction, so the language server, a second editor window and the
  CLI can write at the same moment and a killed process never leaves a torn row;
* named migrations recorded in ``_migrations``, applied in order on open;
* a database that cannot be read is moved aside (renamed with a timestamp) and a fresh
  one started; the sentence explaining it is ``store.notice``.

Every failure reaches callers as ``HistoryError`` (a ``GptLsError``), never as a raw
``sqlite3`` exception, so the server can show it and carry on without history.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from gpt_ls import settings
from gpt_ls.errors import GptLsError

DB_NAME = "history.db"
STATUSES = ("complete", "partial", "cancelled", "error")
ROLES = ("system", "user", "assistant")
BUSY_TIMEOUT_MS = 10_000

# Primary SQLite result codes (the low byte of an extended code).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_READONLY, _SQLITE_IOERR = 3, 5, 8, 10
_SQLITE_CORRUPT, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 14, 26
_DAMAGED = {_SQLITE_CORRUPT, _SQLITE_NOTADB}
_UNREADABLE = {_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CANTOPEN}


class HistoryError(GptLsError):
    """The history store failed; the sentence says what happened and what to do."""

    kind = "history"


class ConversationNotFound(HistoryError):
    """No conversation has the id asked for (deleted, pruned, or mistyped)."""


@dataclass
class Message:
    """One stored message; ``request`` is the exact message list sent for its exchange."""

    id: int
    conversation_id: int
    role: str
    content: str
    action: str | None
    uri: str | None
    range: dict[str, Any] | None
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    duration_ms: int | None
    status: str
    created: str
    updated: str
    request: list[dict[str, Any]] | None = None


@dataclass
class Conversation:
    """A conversation's header; its messages come from ``get_conversation``."""

    id: int
    workspace: str
    title: str
    model: str | None
    system: str | None
    created: str
    updated: str
    message_count: int


# --------------------------------------------------------------------------- migrations

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def _migration(fn: Migration) -> Migration:
    """Register a migration; its function name is the name recorded in ``_migrations``."""
    MIGRATIONS.append(fn)
    return fn


@_migration
def m001_initial(db: sqlite3.Connection) -> None:
    """Conversations and their messages (the v1 schema)."""
    db.execute(
        """CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            workspace TEXT NOT NULL,
            title TEXT NOT NULL,
            model TEXT,
            system TEXT,
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL
                REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            action TEXT,
            uri TEXT,
            range_json TEXT,
            model TEXT,
            request_json TEXT,
            status TEXT NOT NULL DEFAULT 'complete',
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            duration_ms INTEGER,
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX messages_by_conversation ON messages(conversation_id, id)")


@_migration
def m002_recency_indexes(db: sqlite3.Connection) -> None:
    """Finding a workspace's latest conversation must not scan the table."""
    db.execute("CREATE INDEX conversations_by_workspace ON conversations(workspace, updated)")
    db.execute("CREATE INDEX conversations_by_updated ON conversations(updated)")


#: Keep messages_fts in step with messages (an external-content FTS5 table).
FTS_TRIGGERS = {
    "messages_fts_insert": """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END""",
    "messages_fts_delete": """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content)
            VALUES ('delete', old.id, old.content);
    END""",
    "messages_fts_update": """CREATE TRIGGER messages_fts_update
        AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content)
            VALUES ('delete', old.id, old.content);
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END""",
}


@_migration
def m003_message_search(db: sqlite3.Connection) -> None:
    """Full-text search over message content; trigram so Chinese text matches mid-sentence."""
    db.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5("
        "content, content='messages', content_rowid='id', tokenize='trigram')"
    )
    # (executescript would commit the migration's transaction half-way, so one by one.)
    for name, sql in FTS_TRIGGERS.items():
        db.execute(f"DROP TRIGGER IF EXISTS {name}")
        db.execute(sql)
    # Rows stored before this migration are indexed too.
    db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


#: Migrations that need an SQLite feature some builds lack; without it they are skipped
#: (and retried on a later open) and search falls back to LIKE.
OPTIONAL_MIGRATIONS = frozenset({"m003_message_search"})


def applied_migrations(db: sqlite3.Connection) -> list[str]:
    """Names of the migrations recorded in this database, in the order applied."""
    rows = db.execute("SELECT name FROM _migrations ORDER BY rowid").fetchall()
    return [r[0] for r in rows]


def _pending(db: sqlite3.Connection) -> list[Migration]:
    exists = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'"
    ).fetchone()
    done = set(applied_migrations(db)) if exists else set()
    return [fn for fn in MIGRATIONS if fn.__name__ not in done]


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply every pending migration and record it, all in one write transaction."""
    if not _pending(db):
        return []
    ran: list[str] = []
    # IMMEDIATE: a second process opening at the same moment waits, then finds them done.
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)"
        )
        for fn in _pending(db):
            name = fn.__name__
            db.execute(f"SAVEPOINT {name}")
            try:
                fn(db)
            except sqlite3.OperationalError:
                db.execute(f"ROLLBACK TO {name}")
                db.execute(f"RELEASE {name}")
                if name in OPTIONAL_MIGRATIONS:
                    continue
                raise
            db.execute(f"RELEASE {name}")
            db.execute("INSERT INTO _migrations (name, applied) VALUES (?, ?)", (name, now()))
            ran.append(name)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return ran


# --------------------------------------------------------------------------- helpers


def stamp(moment: datetime) -> str:
    """A time as fixed-width ISO-8601 UTC, so that text order is time order."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now() -> str:
    """The current time as stored in the database."""
    return stamp(datetime.now(timezone.utc))


def workspace_key(root: str | Path | None) -> str:
    """The key a workspace's conversations are filed under; "" is the no-workspace bucket."""
    if root is None or str(root) == "":
        return ""
    text = str(root)
    if text.startswith("file:"):
        text = unquote(urlparse(text).path)
    path = Path(text).expanduser()
    try:
        path = path.resolve()
    except OSError:
        path = path.absolute()
    return os.path.normcase(str(path))


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


def _prepare_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does; tighten one that is wider."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
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


def _has_fts(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'"
    ).fetchone()
    return row is not None


def _fts_query(text: str) -> str | None:
    """Each word as a quoted trigram phrase (substring match); None when a word is too short."""
    words = text.split()
    if not words or any(len(w) < 3 for w in words):
        return None
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def _like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_CONVERSATION_SQL = """
    SELECT c.id, c.workspace, c.title, c.model, c.system, c.created, c.updated,
           (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count
    FROM conversations c
"""
_MESSAGE_COLUMNS = (
    "m.id, m.conversation_id, m.role, m.content, m.action, m.uri, m.range_json, m.model, "
    "m.prompt_tokens, m.completion_tokens, m.duration_ms, m.status, m.created, m.updated"
)


def _conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        workspace=row["workspace"],
        title=row["title"],
        model=row["model"],
        system=row["system"],
        created=row["created"],
        updated=row["updated"],
        message_count=row["message_count"],
    )


def _message(row: sqlite3.Row) -> Message:
    keys = row.keys()
    request = row["request_json"] if "request_json" in keys else None
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        role=row["role"],
        content=row["content"],
        action=row["action"],
        uri=row["uri"],
        range=json.loads(row["range_json"]) if row["range_json"] else None,
        model=row["model"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        duration_ms=row["duration_ms"],
        status=row["status"],
        created=row["created"],
        updated=row["updated"],
        request=json.loads(request) if request else None,
    )


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")


# --------------------------------------------------------------------------- the store


class HistoryStore:
    """Conversations and messages in one SQLite file; safe to share between processes."""

    def __init__(self, path: Path, conn: sqlite3.Connection, notice: str | None = None) -> None:
        self.path = path
        self.notice = notice
        self._conn: sqlite3.Connection | None = conn
        # The server may call from worker threads; one connection, one caller at a time.
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: Path | None = None) -> HistoryStore:
        """Open (creating and migrating) the store; a damaged file is moved aside."""
        path = Path(path) if path is not None else settings.data_dir() / DB_NAME
        _prepare_dir(path.parent)
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

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
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

    # -- conversations

    def current_conversation(self, workspace: str) -> Conversation | None:
        """The workspace's most recently updated conversation: the one a follow-up continues."""
        with self._db() as db:
            row = db.execute(
                _CONVERSATION_SQL + " WHERE c.workspace = ? ORDER BY c.updated DESC, c.id DESC"
                " LIMIT 1",
                (workspace,),
            ).fetchone()
        return _conversation(row) if row else None

    def new_conversation(
        self, workspace: str, title: str, model: str | None = None, system: str | None = None
    ) -> int:
        """Start a conversation; being the newest, it becomes the workspace's current one."""
        at = now()
        with self._db(write=True) as db:
            cur = db.execute(
                "INSERT INTO conversations (workspace, title, model, system, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (workspace, title, model, system, at, at),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def list_conversations(
        self, workspace: str | None = None, limit: int = 20
    ) -> list[Conversation]:
        """Recent conversations, newest first; all workspaces when ``workspace`` is None."""
        where, params = (
            ("WHERE c.workspace = ?", [workspace]) if workspace is not None else ("", [])
        )
        with self._db() as db:
            rows = db.execute(
                f"{_CONVERSATION_SQL} {where} ORDER BY c.updated DESC, c.id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_conversation(r) for r in rows]

    def count_conversations(self, workspace: str | None = None) -> int:
        """How many conversations a workspace (or, with None, the whole store) holds."""
        where, params = ("WHERE workspace = ?", (workspace,)) if workspace is not None else ("", ())
        with self._db() as db:
            row = db.execute(f"SELECT count(*) FROM conversations {where}", params).fetchone()
        return int(row[0])

    def get_conversation(self, conversation_id: int) -> tuple[Conversation, list[Message]]:
        """A conversation with all its messages in order; unknown ids raise ConversationNotFound."""
        with self._db() as db:
            head = db.execute(_CONVERSATION_SQL + " WHERE c.id = ?", (conversation_id,)).fetchone()
            rows = db.execute(
                f"SELECT {_MESSAGE_COLUMNS}, m.request_json FROM messages m"
                " WHERE m.conversation_id = ? ORDER BY m.id",
                (conversation_id,),
            ).fetchall()
        if head is None:
            raise ConversationNotFound(f"No conversation with id {conversation_id}")
        return _conversation(head), [_message(r) for r in rows]

    def clear(self, workspace: str | None = None) -> int:
        """Forget conversations (all, or one workspace's) and scrub them from disk."""
        with self._db(write=True) as db:
            fts = _has_fts(db)
            if workspace is not None:
                cur = db.execute("DELETE FROM conversations WHERE workspace = ?", (workspace,))
            else:
                # Emptying the index at once beats un-indexing every row (0.5 s, not 13 s,
                # for 100,000 messages); the trigger comes back in the same transaction.
                if fts:
                    db.execute("DROP TRIGGER messages_fts_delete")
                cur = db.execute("DELETE FROM conversations")
                if fts:
                    db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('delete-all')")
                    db.execute(FTS_TRIGGERS["messages_fts_delete"])
        if cur.rowcount:
            if fts and workspace is not None:
                self._merge_index()
            with self._db() as db:
                # TRUNCATE empties the WAL, which still holds the deleted pages.
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return max(cur.rowcount, 0)

    def _merge_index(self) -> None:
        """Merge the search index into one segment, so deleted words leave the file too.

        The same work as FTS5 'optimize' (5 s for 100,000 messages), done in steps of
        at most ~0.2 s, each its own transaction, so a reply streaming in another
        process is never held up for long.
        """
        while True:
            with self._db() as db:
                before = db.total_changes
                db.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('merge', -500)")
                if db.total_changes - before < 2:  # FTS5's sign that nothing was left to do
                    return

    def prune(self, retention_days: int | None, max_conversations: int | None) -> int:
        """Apply the retention settings (None or 0 means no limit); returns how many went."""
        removed = 0
        with self._db(write=True) as db:
            if retention_days:
                cutoff = datetime.now(timezone.utc) - timedelta(days=retention_days)
                removed += db.execute(
                    "DELETE FROM conversations WHERE updated < ?",
                    (stamp(cutoff),),
                ).rowcount
            if max_conversations:
                removed += db.execute(
                    "DELETE FROM conversations WHERE id NOT IN (SELECT id FROM conversations"
                    " ORDER BY updated DESC, id DESC LIMIT ?)",
                    (max_conversations,),
                ).rowcount
        return removed

    # -- messages

    def add_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        *,
        action: str | None = None,
        uri: str | None = None,
        range: dict[str, Any] | None = None,
        model: str | None = None,
        request: list[dict[str, Any]] | None = None,
        status: str = "complete",
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        duration_ms: int | None = None,
    ) -> int:
        """Append a message (and bump the conversation to current); returns its id."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        _check_status(status)
        at = now()
        with self._db(write=True) as db:
            found = db.execute(
                "UPDATE conversations SET updated = ? WHERE id = ?", (at, conversation_id)
            ).rowcount
            if not found:
                raise ConversationNotFound(f"No conversation with id {conversation_id}")
            cur = db.execute(
                "INSERT INTO messages (conversation_id, role, content, action, uri, range_json,"
                " model, request_json, status, prompt_tokens, completion_tokens, duration_ms,"
                " created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    role,
                    content,
                    action,
                    uri,
                    json.dumps(range, ensure_ascii=False) if range is not None else None,
                    model,
                    json.dumps(request, ensure_ascii=False) if request is not None else None,
                    status,
                    prompt_tokens,
                    completion_tokens,
                    duration_ms,
                    at,
                    at,
                ),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def update_message(
        self,
        message_id: int,
        *,
        content: str | None = None,
        status: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        duration_ms: int | None = None,
    ) -> None:
        """Record a streaming reply's progress; a message deleted meanwhile is ignored."""
        fields: dict[str, object] = {}
        if content is not None:
            fields["content"] = content
        if status is not None:
            _check_status(status)
            fields["status"] = status
        if prompt_tokens is not None:
            fields["prompt_tokens"] = prompt_tokens
        if completion_tokens is not None:
            fields["completion_tokens"] = completion_tokens
        if duration_ms is not None:
            fields["duration_ms"] = duration_ms
        if not fields:
            return
        fields["updated"] = now()
        assignments = ", ".join(f"{name} = ?" for name in fields)  # names are ours, not input
        with self._db(write=True) as db:
            db.execute(
                f"UPDATE messages SET {assignments} WHERE id = ?", (*fields.values(), message_id)
            )

    def turns(self, conversation_id: int) -> list[dict[str, str]]:
        """The user/assistant turns to resend, oldest first; empty replies are left out."""
        with self._db() as db:
            rows = db.execute(
                "SELECT role, content FROM messages WHERE conversation_id = ?"
                " AND (role = 'user' OR (role = 'assistant' AND content != ''))"
                " ORDER BY id",
                (conversation_id,),
            ).fetchall()
        return [{"role": r["role"], "content": r["content"]} for r in rows]

    def search(self, text: str, workspace: str | None = None, limit: int = 50) -> list[Message]:
        """Messages containing every word of ``text`` (case-insensitive), newest first."""
        words = text.split()
        if not words:
            return []
        scope, scope_params = (
            ("AND c.workspace = ?", [workspace])
            if workspace is not None
            else (
                "",
                [],
            )
        )
        join = "JOIN conversations c ON c.id = m.conversation_id"
        with self._db() as db:
            query = _fts_query(text) if _has_fts(db) else None
            if query is not None:
                rows = db.execute(
                    f"SELECT {_MESSAGE_COLUMNS} FROM messages_fts f JOIN messages m"
                    f" ON m.id = f.rowid {join} WHERE messages_fts MATCH ? {scope}"
                    # f.rowid, not m.id: FTS5 then walks its index newest first and stops
                    # at the limit (0.5 ms instead of 300 ms for a word in every message).
                    " ORDER BY f.rowid DESC LIMIT ?",
                    (query, *scope_params, limit),
                ).fetchall()
            else:  # no FTS5, or a word under three characters (trigrams cannot match it)
                likes = " AND ".join("m.content LIKE ? ESCAPE '\\'" for _ in words)
                rows = db.execute(
                    f"SELECT {_MESSAGE_COLUMNS} FROM messages m {join} WHERE {likes} {scope}"
                    " ORDER BY m.id DESC LIMIT ?",
                    (*[_like_pattern(w) for w in words], *scope_params, limit),
                ).fetchall()
        return [_message(r) for r in rows]

    def usage_totals(self, workspace: str) -> dict[str, int]:
        """Tokens spent in a workspace: prompt_tokens, completion_tokens, total_tokens."""
        with self._db() as db:
            row = db.execute(
                "SELECT coalesce(sum(m.prompt_tokens), 0), coalesce(sum(m.completion_tokens), 0)"
                " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
                " WHERE c.workspace = ?",
                (workspace,),
            ).fetchone()
        prompt, completion = int(row[0]), int(row[1])
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def usage_by_model(self, workspace: str) -> dict[str, tuple[int, int]]:
        """Prompt and completion tokens spent in a workspace, per model (for cost estimates)."""
        with self._db() as db:
            rows = db.execute(
                "SELECT coalesce(m.model, ''), coalesce(sum(m.prompt_tokens), 0),"
                " coalesce(sum(m.completion_tokens), 0)"
                " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
                " WHERE c.workspace = ? AND m.role = 'assistant' GROUP BY m.model",
                (workspace,),
            ).fetchall()
        return {str(r[0]): (int(r[1]), int(r[2])) for r in rows}

    def migrations(self) -> list[str]:
        """Names of the migrations applied to this database, oldest first."""
        with self._db() as db:
            return applied_migrations(db)


def _describe_failure(exc: sqlite3.Error) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] if text else type(exc).__name__


def _worth_moving_aside(exc: sqlite3.Error, path: Path) -> bool:
    """Damage, or a file SQLite cannot use; never a busy lock or a missing directory."""
    code = _error_code(exc)
    if code in _DAMAGED:
        return True
    return code in _UNREADABLE and path.is_file()


# --------------------------------------------------------------------------- export

_STATUS_NOTES = {
    "partial": "partial reply: the stream was interrupted",
    "cancelled": "cancelled: the reply was stopped before it finished",
    "error": "failed: the request ended with an error",
}


def to_markdown(conv: Conversation, messages: list[Message]) -> str:
    """The conversation as a Markdown document any editor can show."""
    lines = [f"# {conv.title or '(untitled)'}", ""]
    lines.append(f"- Conversation: {conv.id}")
    lines.append(f"- Workspace: {conv.workspace or '(no workspace)'}")
    if conv.model:
        lines.append(f"- Model: {conv.model}")
    lines.append(f"- Started: {conv.created}")
    lines.append(f"- Updated: {conv.updated}")
    if conv.system:
        lines += ["", "**System prompt:**", ""]
        lines += [f"> {line}" if line else ">" for line in conv.system.splitlines()]
    for msg in messages:
        where = f" · {msg.uri}" if msg.uri else ""
        action = f" · {msg.action}" if msg.action else ""
        lines += ["", f"## {msg.role.capitalize()} · {msg.created}{action}{where}", ""]
        if msg.status in _STATUS_NOTES:
            lines += [f"*({_STATUS_NOTES[msg.status]})*", ""]
        lines.append(msg.content if msg.content else "*(empty)*")
        usage = []
        if msg.model:
            usage.append(msg.model)
        if msg.prompt_tokens is not None or msg.completion_tokens is not None:
            usage.append(
                f"{msg.prompt_tokens or 0} prompt + {msg.completion_tokens or 0} completion tokens"
            )
        if msg.duration_ms is not None:
            usage.append(f"{msg.duration_ms / 1000:.1f} s")
        if usage:
            lines += ["", f"<sub>{' · '.join(usage)}</sub>"]
    return "\n".join(lines) + "\n"


def to_json(conv: Conversation, messages: list[Message]) -> str:
    """The conversation and every message (with the exact requests sent) as JSON."""
    doc = {**asdict(conv), "messages": [asdict(m) for m in messages]}
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
