"""The history schema: named migrations applied in order, and the time format stored.

Each migration is a function registered with ``@_migration``; its name is recorded in
``_migrations`` when it has run, so a database of any age is brought up to date on open
and a migration that has shipped is never edited: a change is a new migration.
``stamp``/``now`` live here, below the connection and the store, because the text order of
stored times is part of the schema (the indexes sort by it) and ``_migrations`` records them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone


def stamp(moment: datetime) -> str:
    """A time as fixed-width ISO-8601 UTC, so that text order is time order."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now() -> str:
    """The current time as stored in the database."""
    return stamp(datetime.now(timezone.utc))


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


@_migration
def m004_fresh_starts(db: sqlite3.Connection) -> None:
    """Workspaces whose next exchange starts a new conversation ("New conversation" in the editor).

    A mark, not an empty conversation: a conversation row appears only when something is asked.
    """
    db.execute("CREATE TABLE fresh_starts (workspace TEXT PRIMARY KEY, created TEXT NOT NULL)")


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


def has_fts(db: sqlite3.Connection) -> bool:
    """Whether the optional search index (``m003_message_search``) exists in this database."""
    row = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'"
    ).fetchone()
    return row is not None
