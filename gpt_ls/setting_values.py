"""Checking one setting's value: its type, its range, its URL scheme; and how a bad value is shown.

Pure functions over plain values, used by ``settings.parse_layer``: a wrong value raises
ValueError with the end of a sentence ("must be from 0 to 2"), never anything else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from gpt_ls.secrets import redact_url

#: Bounds on list settings (``indexExclude``, ``indexInclude``): every input has a size limit.
MAX_LIST_ITEMS = 256
MAX_ITEM_CHARS = 1_000


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def coerce(hint: Any, value: Any) -> Any:
    """Check ``value`` against the type ``hint``; return it (normalised) or raise ValueError."""
    args = get_args(hint)
    optional = type(None) in args
    if value is None:
        if optional:
            return None
        raise ValueError("must not be empty")
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    origin = get_origin(base)
    if origin is Literal:
        choices = get_args(base)
        if value not in choices:
            raise ValueError("must be one of " + ", ".join(repr(c) for c in choices))
        return value
    if base is bool:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be a whole number")
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("must be a number")
        if not math.isfinite(value) or value < 0:
            raise ValueError("must be a non-negative number")
        return float(value)
    if base is str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return value
    if origin is tuple:  # a list of strings, e.g. indexExclude
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of strings")
        if len(value) > MAX_LIST_ITEMS or any(len(v) > MAX_ITEM_CHARS for v in value):
            raise ValueError(f"must be at most {MAX_LIST_ITEMS} strings of at most {MAX_ITEM_CHARS} characters")
        return tuple(value)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError("must be a table (an object of key = value)")
        _key_t, val_t = get_args(base)
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError("keys must be strings")
            if val_t is str:
                if not isinstance(v, str):
                    raise ValueError(f"value of {k!r} must be a string")
                out[k] = v
            else:  # prices: {model: {input: float, output: float}}
                if not isinstance(v, Mapping) or not all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) for x in v.values()
                ):
                    raise ValueError(f"value of {k!r} must be a table of numbers")
                out[k] = {str(a): float(b) for a, b in v.items()}
        return out
    raise ValueError("has an unsupported type")  # pragma: no cover


PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")

#: Sane bounds for numbers, inclusive: a value outside them is a problem, never a hang (``readTimeout = inf``),
#: a retry storm (``maxRetries = 1000000000``) or a window the budget would trust (``contextWindow = 1e11``).
RANGES: dict[str, tuple[float, float, str]] = {
    "api_key_command_timeout": (0.1, 300, " seconds"),
    "connect_timeout": (0.1, 300, " seconds"),
    "read_timeout": (0.1, 3600, " seconds"),
    "max_retries": (0, 10, ""),
    "max_reply_chars": (1_000, 20_000_000, " characters"), "max_stream_seconds": (10, 86_400, " seconds"),
    "temperature": (0, 2, ""),
    "max_tokens": (1, 1_000_000, " tokens"),
    "context_lines": (0, 100_000, " lines"),
    "context_window": (256, 10_000_000, " tokens"),
    "max_output_tokens": (1, 1_000_000, " tokens"),
    "history_retention_days": (1, 36_500, " days"),
    "history_max_conversations": (1, 10_000_000, " conversations"),
    "index_max_files": (1, 1_000_000, " files"),
    "completion_debounce_ms": (0, 5_000, " milliseconds"),
    "completion_max_per_minute": (1, 1_000, " requests"),
    "completion_max_tokens": (1, 4_096, " tokens"),
    "completion_context_tokens": (64, 100_000, " tokens"),
}


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else f"{value:,}"


def _check_url(value: str, schemes: tuple[str, ...], what: str) -> None:
    """Raise ValueError unless ``value`` is an absolute URL with one of ``schemes``."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"is not a valid {what} URL ({exc})") from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        wanted = ", ".join(f"{s}://" for s in schemes)
        raise ValueError(f"must be a {what} URL starting with {wanted}")


def validate(name: str, value: Any) -> None:
    """Checks beyond the type: URL schemes, positive timeouts."""
    if value is None:
        return
    if name == "proxy" and value != "":
        _check_url(value, PROXY_SCHEMES, "proxy")
    elif name in ("base_url", "azure_endpoint"):
        _check_url(value, ("http", "https"), "http(s)")
    elif name in ("connect_timeout", "read_timeout", "api_key_command_timeout") and value == 0:
        raise ValueError("must be more than 0 seconds")
    elif name in RANGES and not RANGES[name][0] <= value <= RANGES[name][1]:
        low, high, unit = RANGES[name]
        raise ValueError(f"must be from {_number(low)} to {_number(high)}{unit}")
    elif name == "api_key_command" and not value.strip():
        raise ValueError("must not be empty")
    elif name == "headers":
        for key, text in value.items():
            if not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", key):
                raise ValueError(f"has an invalid header name {key!r}")
            if not text.isascii() or any(ord(c) < 32 and c != "\t" for c in text):
                raise ValueError(
                    f"value of {key!r} must be plain ASCII text (HTTP headers cannot carry "
                    "other characters)"
                )


def shown(name: str, value: Any, *, secret: bool) -> str:
    """How a rejected value appears in a problem: secrets hidden, URL passwords redacted."""
    if secret:
        return "(hidden)"
    if name == "headers":
        return "(a table)"
    if isinstance(value, str) and "://" in value:
        return _describe(redact_url(value))
    return _describe(value)
