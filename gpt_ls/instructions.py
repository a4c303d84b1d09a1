"""The workspace's project instructions (``.gpt-ls.md`` or the ``instructionsFile`` setting), read from disk.

They join every system message; ``prompts`` stays pure and receives them as text. The file
is read like every file a workspace names (``files.read_workspace_file``): it must resolve,
symlinks included, to a regular file inside the workspace, of at most
``files.INSTRUCTIONS_LIMIT_BYTES``. ``instructionsFile = "../../home/u/.ssh/id_rsa"``, an
absolute path or a committed ``.gpt-ls.md -> /proc/self/environ`` never reaches a request.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gpt_ls.errors import FileRefused
from gpt_ls.files import INSTRUCTIONS_LIMIT_BYTES, read_workspace_file

log = logging.getLogger(__name__)

#: Project instructions longer than this are cut (they join every request).
INSTRUCTIONS_LIMIT = 20_000


def read_instructions(root: Path | None, name: str) -> tuple[str, str | None]:
    """The instructions joined to a system message ("" if none), and why the file was refused (or None)."""
    if root is None or not name:
        return "", None
    try:
        text = read_workspace_file(root, name, INSTRUCTIONS_LIMIT_BYTES)
    except FileRefused as exc:
        return "", f"the project instructions are not used: {exc}"
    text = (text or "").strip()[:INSTRUCTIONS_LIMIT]
    return (f"Project instructions (from {name}):\n{text}" if text else ""), None


def project_instructions(root: Path | None, name: str) -> str:
    """The text of the workspace's instructions file, ready to join a system message ("" if none)."""
    text, problem = read_instructions(root, name)
    if problem is not None:
        log.warning("%s", problem)
    return text
