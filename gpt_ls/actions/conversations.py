"""The history commands in the editor: start a conversation, list them, open one as Markdown."""

from __future__ import annotations

from typing import Any

from gpt_ls.actions.editor import EditorPort, show_markdown
from gpt_ls.budget import usage_summary
from gpt_ls.errors import ConversationNotFound, GptLsError, InvalidRequest
from gpt_ls.exchange import Exchange
from gpt_ls.history.export import to_markdown
from gpt_ls.history.store import workspace_key
from gpt_ls.settings import Settings


def new_conversation(exchange: Exchange, port: EditorPort, settings: Settings) -> dict[str, Any]:
    """Start a fresh conversation in this workspace: the next exchange begins it, Continue follows it.

    Nothing is written but a mark: the conversation appears in the history when something
    is asked in it, so "New conversation" never leaves an empty entry behind.
    """
    if not settings.history:
        raise InvalidRequest("History is turned off (setting 'history'): there is no conversation to start.")
    exchange.store().start_fresh(workspace_key(port.workspace_root))
    port.show_message("gpt-ls: new conversation started.", "info")
    return {"status": "fresh"}


def history_overview(exchange: Exchange, port: EditorPort, settings: Settings, limit: int = 20) -> dict[str, Any]:
    """Recent conversations of this workspace, opened as one Markdown document."""
    store = exchange.store()
    workspace = workspace_key(port.workspace_root)
    conversations = store.list_conversations(workspace, limit=limit)
    used = usage_summary(store.usage_by_model(workspace), settings.prices)
    lines = [f"# gpt-ls history: {workspace or '(no workspace)'}", "", f"Tokens used here: {used}", ""]
    if not conversations:
        lines.append("No conversations yet.")
    for conv in conversations:
        lines.append(f"- **{conv.title or '(untitled)'}** · {conv.message_count} messages · "
                     f"{conv.updated} · id {conv.id}")
    lines += ["", "Open one with the command `gpt-ls.openConversation` and its id "
              "(or `gpt-ls history show ID` in a terminal)."]
    uri = show_markdown(port, "history.md", "\n".join(lines) + "\n")
    return {"uri": uri, "conversations": [{"id": c.id, "title": c.title, "updated": c.updated,
                                           "messages": c.message_count} for c in conversations]}


def open_conversation(exchange: Exchange, port: EditorPort, conversation_id: int) -> dict[str, Any]:
    """One conversation of this workspace as a Markdown document (another workspace's is refused)."""
    workspace = workspace_key(port.workspace_root)
    # One sentence for an unknown id and another workspace's: nothing about other workspaces leaks.
    refused = InvalidRequest(f"No conversation {conversation_id} in this workspace ({workspace or 'no workspace'}); "
                             "gpt-ls.showHistory lists this workspace's conversations.")
    try:
        conv, messages = exchange.store().get_conversation(conversation_id)
    except ConversationNotFound:
        raise refused from None
    except GptLsError as exc:
        raise InvalidRequest(str(exc)) from None
    if conv.workspace != workspace:
        raise refused
    uri = show_markdown(port, f"conversation-{conv.id}.md", to_markdown(conv, messages))
    return {"uri": uri, "id": conv.id}
