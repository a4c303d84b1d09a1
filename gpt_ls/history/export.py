"""A stored conversation as a document: Markdown to read, JSON with the exact requests sent."""

from __future__ import annotations

import json
from dataclasses import asdict

from gpt_ls.history.store import Conversation, Message

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
