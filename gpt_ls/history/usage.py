"""Tokens spent, from the usage recorded with each reply (``gpt-ls history usage``)."""

from __future__ import annotations

from gpt_ls.history.db import Database


def usage_totals(database: Database, workspace: str) -> dict[str, int]:
    """Tokens spent in a workspace: prompt_tokens, completion_tokens, total_tokens."""
    with database.transaction() as db:
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


def usage_by_model(database: Database, workspace: str) -> dict[str, tuple[int, int]]:
    """Prompt and completion tokens spent in a workspace, per model (for cost estimates)."""
    with database.transaction() as db:
        rows = db.execute(
            "SELECT coalesce(m.model, ''), coalesce(sum(m.prompt_tokens), 0),"
            " coalesce(sum(m.completion_tokens), 0)"
            " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " WHERE c.workspace = ? AND m.role = 'assistant' GROUP BY m.model",
            (workspace,),
        ).fetchall()
    return {str(r[0]): (int(r[1]), int(r[2])) for r in rows}
