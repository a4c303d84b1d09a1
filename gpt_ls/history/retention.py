"""Forgetting conversations: ``gpt-ls history clear`` and the retention settings.

Deleted history must leave the file, not only the tables: the connection sets
``secure_delete``, the search index is merged so deleted words leave its segments, and the
WAL, which still holds the deleted pages, is checkpointed empty.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gpt_ls.history.db import Database
from gpt_ls.history.schema import FTS_TRIGGERS, has_fts, stamp


def clear(database: Database, workspace: str | None = None) -> int:
    """Forget conversations (all, or one workspace's) and scrub them from disk."""
    with database.transaction(write=True) as db:
        fts = has_fts(db)
        if workspace is not None:
            db.execute("DELETE FROM fresh_starts WHERE workspace = ?", (workspace,))
            cur = db.execute("DELETE FROM conversations WHERE workspace = ?", (workspace,))
        else:
            db.execute("DELETE FROM fresh_starts")
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
            _merge_index(database)
        with database.transaction() as db:
            # TRUNCATE empties the WAL, which still holds the deleted pages.
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return max(cur.rowcount, 0)


def _merge_index(database: Database) -> None:
    """Merge the search index into one segment, so deleted words leave the file too.

    The same work as FTS5 'optimize' (5 s for 100,000 messages), done in steps of
    at most ~0.2 s, each its own transaction, so a reply streaming in another
    process is never held up for long.
    """
    while True:
        with database.transaction() as db:
            before = db.total_changes
            db.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('merge', -500)")
            if db.total_changes - before < 2:  # FTS5's sign that nothing was left to do
                return


def prune(database: Database, workspace: str, retention_days: int | None, max_conversations: int | None) -> int:
    """Apply the retention settings to one workspace (None or 0 means no limit); returns how many went.

    Other workspaces' conversations are theirs: each is pruned by its own settings when a conversation starts there.
    """
    if not retention_days and not max_conversations:
        return 0
    removed = 0
    with database.transaction(write=True) as db:
        if retention_days:
            cutoff = datetime.now(timezone.utc) - timedelta(days=retention_days)
            removed += db.execute(
                "DELETE FROM conversations WHERE workspace = ? AND updated < ?",
                (workspace, stamp(cutoff)),
            ).rowcount
        if max_conversations:
            removed += db.execute(
                "DELETE FROM conversations WHERE workspace = ? AND id NOT IN (SELECT id FROM conversations"
                " WHERE workspace = ? ORDER BY updated DESC, id DESC LIMIT ?)",
                (workspace, workspace, max_conversations),
            ).rowcount
    return removed
