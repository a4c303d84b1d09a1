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


class NoTraceback(logging.Filter):
    """On stderr (a terminal, or the editor's own log): a failure is one line; its traceback goes only to --log-file."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info or record.exc_text or record.stack_info:
            record.exc_info, record.exc_text, record.stack_info = None, None, None
            record.msg = f"{record.msg} (the traceback is written only to a --log-file)"
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
    if not log_file:
        handler.addFilter(NoTraceback())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    add_secret(os.environ.get("OPENAI_API_KEY"))
