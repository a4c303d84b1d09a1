"""The workspace's project instructions (``.gpt-ls.md`` or the ``instructionsFile`` setting), read from disk.

They join every system message; ``prompts`` stays pure and receives them as text.
"""

from __future__ import annotations

from pathlib import Path

#: Project instructions longer than this are cut (they join every request).
INSTRUCTIONS_LIMIT = 20_000


def project_instructions(root: Path | None, name: str) -> str:
    """The text of the workspace's instructions file, ready to join a system message ("" if none)."""
    if root is None or not name:
        return ""
    try:
        text = (root / name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
    text = text.strip()[:INSTRUCTIONS_LIMIT]
    return f"Project instructions (from {name}):\n{text}" if text else ""
