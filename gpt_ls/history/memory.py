"""Conversations kept in memory only, for when the ``history`` setting is off.

The model remembers nothing: a conversation continues only if its earlier turns are sent
again. With history off nothing is written to disk, but a session (one ``gpt-ls chat``, one
language server) still remembers its own conversation, one per workspace, until it ends or
a new conversation is started.
"""

from __future__ import annotations

import threading

#: Turns kept per workspace: older ones would be dropped by the window fitting anyway.
MAX_TURNS = 200


class MemoryConversations:
    """The current conversation of each workspace, as the user/assistant turns to resend."""

    def __init__(self, max_turns: int = MAX_TURNS) -> None:
        self._turns: dict[str, list[dict[str, str]]] = {}
        self._lock = threading.Lock()  # the exchange reads it from worker threads
        self.max_turns = max_turns

    def turns(self, workspace: str) -> list[dict[str, str]]:
        """The turns of the workspace's conversation, oldest first (a copy)."""
        with self._lock:
            return [dict(t) for t in self._turns.get(workspace, [])]

    def forget(self, workspace: str) -> None:
        """Start a new conversation in this workspace."""
        with self._lock:
            self._turns.pop(workspace, None)

    def remember(self, workspace: str, question: str, reply: str, complete: bool, new: bool) -> None:
        """Keep one exchange that reached the model (a reply, or ``complete``); ``new``: it starts a conversation."""
        if reply or complete:
            self.record(workspace, question, reply, new)

    def record(self, workspace: str, question: str, reply: str, new: bool) -> None:
        """Add one exchange (``new``: it starts a conversation); an empty reply is left out, as on disk."""
        added = [{"role": "user", "content": question}]
        if reply:
            added.append({"role": "assistant", "content": reply})
        with self._lock:
            turns = [] if new else self._turns.get(workspace, [])
            self._turns[workspace] = (turns + added)[-self.max_turns:]
