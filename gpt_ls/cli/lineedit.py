"""Line editing for ``gpt-ls chat`` on a terminal: GNU readline and a persistent input history.

With the ``readline`` module imported, ``input()`` edits the line (arrow keys, Home/End,
Ctrl-R, Backspace by whole characters in a UTF-8 locale) instead of sending escape
sequences to the model. The input history lives in the user's data dir (``chat_history``,
owner-only 0600, at most ``HISTORY_LENGTH`` entries) so Up finds the last session's lines.
Over a pipe none of this is loaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from types import ModuleType

from gpt_ls.files import private_dir
from gpt_ls.settings import data_dir

log = logging.getLogger(__name__)

HISTORY_FILE = "chat_history"
HISTORY_LENGTH = 1000


def history_path() -> Path:
    """Where ``gpt-ls chat`` keeps what was typed (``GPT_LS_DATA_DIR`` moves it)."""
    return data_dir() / HISTORY_FILE


class LineEditor:
    """Readline set up with the persistent history; ``save()`` after each message."""

    def __init__(self, path: Path | None = None, length: int = HISTORY_LENGTH) -> None:
        self.path = path or history_path()
        self.readline: ModuleType | None = None
        try:
            import readline
        except ImportError:  # Windows without pyreadline: plain input()
            return
        self.readline = readline
        readline.set_history_length(length)
        with contextlib.suppress(OSError):
            if self.path.exists():
                os.chmod(self.path, 0o600)
                readline.read_history_file(str(self.path))

    def save(self) -> None:
        """Write the input history (owner-only, bounded); a failure only loses the history."""
        if self.readline is None:
            return
        try:
            private_dir(self.path.parent)
            # Create it owner-only first: readline would create it with the umask.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
            os.chmod(self.path, 0o600)
            self.readline.write_history_file(str(self.path))
        except OSError as exc:
            log.warning("could not save the chat input history to %s: %s", self.path, exc)
