"""The conversations and messages: what the server and the CLI read and write.

Conversations are kept apart by workspace (``workspace_key``); a workspace's current
conversation is its most recently updated one. Every method works in transactions of the
``Database`` underneath, so every failure reaches callers as ``HistoryError``. Forgetting
(``clear``, ``prune``) lives in ``retention`` and the token sums in ``usage``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from gpt_ls.errors import ConversationNotFound
from gpt_ls.history import retention, usage
from gpt_ls.history.db import Database
from gpt_ls.history.schema import applied_migrations, has_fts, now

STATUSES = ("complete", "partial", "cancelled", "error")
ROLES = ("system", "user", "assistant")


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


class HistoryStore:
    """Conversations and messages in one SQLite file; safe to share between processes."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @classmethod
    def open(cls, path: Path | None = None) -> HistoryStore:
        """Open (creating and migrating) the store; a damaged file is moved aside."""
        return cls(Database.open(path))

    @property
    def path(self) -> Path:
        """The database file."""
        return self._database.path

    @property
    def notice(self) -> str | None:
        """Why the history started afresh (a damaged file moved aside), else None."""
        return self._database.notice

    def close(self) -> None:
        """Close the connection; later calls raise ``HistoryError``."""
        self._database.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- conversations

    def current_conversation(self, workspace: str) -> Conversation | None:
        """The workspace's most recently updated conversation: the one a follow-up continues.

        None after ``start_fresh``, until the workspace's next conversation is created.
        """
        with self._database.transaction() as db:
            if db.execute("SELECT 1 FROM fresh_starts WHERE workspace = ?", (workspace,)).fetchone():
                return None
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
        with self._database.transaction(write=True) as db:
            cur = db.execute(
                "INSERT INTO conversations (workspace, title, model, system, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (workspace, title, model, system, at, at),
            )
            db.execute("DELETE FROM fresh_starts WHERE workspace = ?", (workspace,))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def start_fresh(self, workspace: str) -> None:
        """The workspace's next exchange starts a new conversation (nothing is created until then)."""
        with self._database.transaction(write=True) as db:
            db.execute("INSERT OR REPLACE INTO fresh_starts (workspace, created) VALUES (?, ?)", (workspace, now()))

    def list_conversations(
        self, workspace: str | None = None, limit: int = 20
    ) -> list[Conversation]:
        """Recent conversations, newest first; all workspaces when ``workspace`` is None."""
        where, params = (
            ("WHERE c.workspace = ?", [workspace]) if workspace is not None else ("", [])
        )
        with self._database.transaction() as db:
            rows = db.execute(
                f"{_CONVERSATION_SQL} {where} ORDER BY c.updated DESC, c.id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_conversation(r) for r in rows]

    def count_conversations(self, workspace: str | None = None) -> int:
        """How many conversations a workspace (or, with None, the whole store) holds."""
        where, params = ("WHERE workspace = ?", (workspace,)) if workspace is not None else ("", ())
        with self._database.transaction() as db:
            row = db.execute(f"SELECT count(*) FROM conversations {where}", params).fetchone()
        return int(row[0])

    def get_conversation(self, conversation_id: int) -> tuple[Conversation, list[Message]]:
        """A conversation with all its messages in order; unknown ids raise ConversationNotFound."""
        with self._database.transaction() as db:
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
        return retention.clear(self._database, workspace)

    def prune(self, workspace: str, retention_days: int | None, max_conversations: int | None) -> int:
        """Apply the retention settings to one workspace (None or 0 means no limit); returns how many went."""
        return retention.prune(self._database, workspace, retention_days, max_conversations)

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
        with self._database.transaction(write=True) as db:
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
        with self._database.transaction(write=True) as db:
            db.execute(
                f"UPDATE messages SET {assignments} WHERE id = ?", (*fields.values(), message_id)
            )

    def turns(self, conversation_id: int) -> list[dict[str, str]]:
        """The user/assistant turns to resend, oldest first; empty replies are left out."""
        with self._database.transaction() as db:
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
        with self._database.transaction() as db:
            query = _fts_query(text) if has_fts(db) else None
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
        return usage.usage_totals(self._database, workspace)

    def usage_by_model(self, workspace: str) -> dict[str, tuple[int, int]]:
        """Prompt and completion tokens spent in a workspace, per model (for cost estimates)."""
        return usage.usage_by_model(self._database, workspace)

    def migrations(self) -> list[str]:
        """Names of the migrations applied to this database, oldest first."""
        with self._database.transaction() as db:
            return applied_migrations(db)
