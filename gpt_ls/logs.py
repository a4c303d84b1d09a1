"""Logging to stderr or a file, with every known secret masked.

stdout carries the LSP wire, so nothing here ever writes to it. pygls logs whole
JSON-RPC messages at debug level (``initializationOptions`` may hold ``apiKey``), so
masking happens in a filter on our handler, over the final text of every record.
"""

from __future__ import annotations

import logging
import os
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


#: Values of key-like fields, masked even before the key is known (pygls logs the
#: ``initialize`` request, ``initializationOptions`` included, before any handler runs).
_KEY_FIELDS = re.compile(
    r"""(?P<name>["']?(?:apiKey|api_key|api-key|OPENAI_API_KEY|Authorization|password)["']?\s*[:=]\s*"""
    r"""["']?(?:Bearer\s+)?)(?P<value>[^"',\s}\]]+)""",
    re.IGNORECASE,
)
#: Credentials inside URLs: scheme://user:password@host.
_URL_PASSWORD = re.compile(r"(?P<name>[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<value>[^@\s/]+)(?=@)", re.IGNORECASE)


def mask(text: str) -> str:
    """``text`` with every known secret, key-like field and URL password replaced."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _KEY_FIELDS.sub(lambda m: m.group("name") + MASK, text)
    return _URL_PASSWORD.sub(lambda m: m.group("name") + MASK, text)


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
