"""Every rule that keeps a secret out of what gpt-ls shows, logs or stores, in one place.

One set of rules, five views:

- :func:`mask`: a log line. Known secrets and every key-like shape become ``[REDACTED]``.
- :func:`scrub`: an error sentence the user sees. The same rules, shown as ``***``.
- :func:`redact`: a secret setting displayed on purpose (``gpt-ls check``): ``sk-…wxyz``.
- :func:`redact_url`: a URL displayed on purpose: ``scheme://user:***@host``.
- :func:`redact_headers`: the ``headers`` setting displayed, credential-like values hidden.

The texts masked here come from servers, proxies and documents, so every pattern must
run in linear time on any input. Each one starts at a literal (``://``, a field name,
``sk-``, ``bearer``), never at a character class such as a URL scheme: a pattern that
starts with a class is tried again at every position of a long run of such characters,
scanning the rest of the run each time (a 50 KB reply of letters took 13-17 s that way).
tests/test_masking.py holds every function to that.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

#: What a secret becomes in a log line.
MASK = "[REDACTED]"
#: What a secret becomes in an error sentence.
HIDDEN = "***"

_known: set[str] = set()
_lock = threading.Lock()


class HoldsKey(Protocol):
    """Anything that may carry an API key (the settings)."""

    @property
    def api_key(self) -> str | None: ...


def add_secret(value: str | None) -> None:
    """Remember a value that must never appear in a log line or an error sentence."""
    if value and len(value) >= 4:
        with _lock:
            _known.add(value)


#: Values of key-like fields, masked even before the key is known (pygls logs the
#: ``initialize`` request, ``initializationOptions`` included, before any handler runs).
_KEY_FIELD = re.compile(
    r"""(?P<keep>["']?(?:apiKey|api_key|api-key|OPENAI_API_KEY|Authorization|password)["']?\s*[:=]\s*"""
    r"""["']?(?:(?:Bearer|Basic)\s+)?)[^"',\s}\]]+""",
    re.IGNORECASE,
)
#: OpenAI-style keys (``sk-…``, ``sk-proj-…``, ``sk-ant-…``): the first characters stay.
_SK_KEY = re.compile(r"\b(?P<keep>sk-[A-Za-z0-9]{0,4})[A-Za-z0-9_*\-.]{8,}")
#: HTTP credentials: ``Bearer <token>``, ``Basic <base64>``.
_CREDENTIALS = re.compile(r"(?P<keep>(?:bearer|basic)\s+)\S+", re.IGNORECASE)
#: The password in ``scheme://user:password@host``. It starts at ``://`` (preceded by a
#: scheme character), not at the scheme itself: that is what keeps it linear.
_URL_PASSWORD = re.compile(r"(?<=[a-z0-9+.\-])(?P<keep>://[^/\s:@]*:)[^@\s/]*(?=@)", re.IGNORECASE)

#: The ``headers`` setting as JSON or a Python repr (pygls logs ``initialize`` and the
#: configuration whole, before gpt-ls has read them): every value in it is masked, since
#: any custom header may carry a credential. Starts at the literal name and stops at the
#: next brace: linear.
_HEADERS_TABLE = re.compile(r"""(?<=["'])(?P<keep>headers["']\s*[:=]\s*\{)[^{}]*(?=\})""", re.IGNORECASE)

#: Header names whose values are credentials.
_SENSITIVE_HEADER = re.compile(r"auth|key|token|secret|cookie|session", re.IGNORECASE)

#: Applied in this order: a key field first, so ``Authorization: Bearer x`` is masked whole.
_SHAPES = (_KEY_FIELD, _SK_KEY, _CREDENTIALS, _URL_PASSWORD)


def _hide(text: str, token: str, extra: str | None = None) -> str:
    """``text`` with every known secret (and ``extra``) and every secret shape as ``token``."""
    with _lock:
        known = set(_known)
    if extra and len(extra) >= 4:
        known.add(extra)
    for secret in sorted(known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, token)
    for shape in _SHAPES:
        text = shape.sub(lambda m: m.group("keep") + token, text)
    return _HEADERS_TABLE.sub(lambda m: m.group("keep") + token, text) if "eaders" in text else text


def mask(text: str) -> str:
    """A log line with every known secret, key-like field, key and URL password masked."""
    return _hide(text, MASK)


def scrub(text: str, settings: HoldsKey | None = None) -> str:
    """An error sentence with anything key-like (and the settings' key) replaced by ``***``."""
    return _hide(text, HIDDEN, settings.api_key if settings is not None else None)


def redact(value: str | None) -> str:
    """Show a secret as its first three and last four characters."""
    if not value:
        return "(not set)"
    if len(value) <= 10:
        return "*" * len(value)
    return f"{value[:3]}…{value[-4:]}"


def redact_url(url: str) -> str:
    """Hide the password in ``scheme://user:password@host`` so a URL can be shown or logged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{HIDDEN}@{host}"))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers to display: the value of any credential-like header (auth, key, token, …) hidden."""
    return {k: (HIDDEN if _SENSITIVE_HEADER.search(k) else v) for k, v in headers.items()}
