"""Logging to stderr or a file, with every known secret masked.

stdout carries the LSP wire, so nothing here ever writes to it. pygls logs whole
JSON-RPC messages at debug level (``initializationOptions`` may hold ``apiKey``), so
masking (:func:`gpt_ls.secrets.mask`) happens in a filter on our handler, over the
final text of every record.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from gpt_ls.secrets import add_secret, mask


class SecretFilter(logging.Filter):
    """Masks secrets in the formatted message and drops the raw arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        record.msg = mask(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def setup_logging(verbosity: int = 0, log_file: str | None = None) -> None:
    """Send logs to ``log_file`` (or stderr): warnings by default, ``-v`` info, ``-vv`` debug."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler: logging.Handler
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    add_secret(os.environ.get("OPENAI_API_KEY"))
