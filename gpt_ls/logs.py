"""Logging to stderr or a file, with every known secret masked.

stdout carries the LSP wire, so nothing here ever writes to it. pygls logs whole
JSON-RPC messages at debug level (``initializationOptions`` may hold ``apiKey``), so
masking happens in a filter on our handler, over the final text of every record.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from pathlib import Path

MASK = "[REDACTED]"
_secrets: set[str] = set()
_lock = threading.Lock()


def add_secret(value: str | None) -> None:
    """Remember a value that must never appear in a log line."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


#: Secrets recognised by their shape, for text logged before gpt-ls could learn them (pygls
#: logs ``initialize`` params and ``workspace/configuration`` results before any handler runs).
_SHAPES = [
    (re.compile(r"""(?i)(["']?(?:api_?key|password|secret)["']?\s*[:=]\s*["'])[^"']+"""), r"\1" + MASK),
    (re.compile(r"(?i)([a-z][a-z0-9+.\-]*://[^/\s:@'\"]*:)(?!\*\*\*@)[^@\s/'\"]+@"), r"\1" + MASK + "@"),
    (re.compile(r"(?i)\b((?:bearer|basic)\s+)[A-Za-z0-9+/=._\-]{8,}"), r"\1" + MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"), MASK),
]


def mask(text: str) -> str:
    """``text`` with every known secret, and anything shaped like one, replaced."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


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
