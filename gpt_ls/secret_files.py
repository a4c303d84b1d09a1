"""Files whose text never leaves the machine: keys, credentials, environment files.

One list, shared by everything that reads workspace files on its own initiative (the
workspace index, completions as you type). Patterns are gitignore-style: a pattern without
a slash matches a file name at any depth, one with a slash matches the path from the
workspace root; ``*`` never crosses a slash, ``**`` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import PurePosixPath

#: Never indexed and never sent, whatever the settings say (the index checks them with pathspec).
SECRET_PATTERNS: tuple[str, ...] = (
    ".env", ".env.*", "*.env", ".envrc",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.keystore", "*.jks", "*.kdbx", "*.ppk", "*.der", "*.crt",
    "*.gpg", "*.asc",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "id_*.pub",
    ".netrc", "_netrc", ".npmrc", ".pypirc", ".git-credentials", ".htpasswd", ".pgpass", ".dockercfg",
    "credentials", "credentials.*", "*.credentials", "*credentials.json", "client_secret*.json",
    "service-account*.json", "secrets.*", "*.secret", "*.secrets", "*.tfstate", "*.tfstate.*", "*.tfvars",
    "known_hosts", "authorized_keys", ".gpt-ls.toml",
    ".ssh/**", ".aws/**", ".gnupg/**", ".docker/config.json", ".kube/config",
)


@lru_cache(maxsize=256)
def _compile(pattern: str) -> tuple[re.Pattern[str], bool]:
    """A gitignore-style pattern as a regex, and whether it is anchored to the root (has a slash)."""
    anchored = "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    out, i = [], 0
    while i < len(body):
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif body[i] == "*":
            out.append("[^/]*")
            i += 1
        elif body[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(body[i]))
            i += 1
    # A pattern naming a folder matches everything under it too.
    return re.compile("".join(out) + "(?:/.*)?", re.IGNORECASE | re.DOTALL), anchored


def matches(relative: str, patterns: Iterable[str]) -> bool:
    """Whether the workspace-relative POSIX path ``relative`` matches one of ``patterns``."""
    parts = PurePosixPath(relative).parts
    for pattern in patterns:
        if not pattern or pattern.startswith("#"):
            continue
        regex, anchored = _compile(pattern)
        if anchored:
            if regex.fullmatch("/".join(parts)):
                return True
        elif any(regex.fullmatch("/".join(parts[i:])) for i in range(len(parts))):
            return True
    return False


def is_secret(relative: str, extra: Iterable[str] = ()) -> bool:
    """Whether a file is one whose text must never be sent: a secret, or excluded by ``extra``.

    A name starting with ``id_`` and without an extension is a key too (``id_work``), but
    ``id_utils.py`` is not.
    """
    return is_key_name(PurePosixPath(relative).name) or matches(relative, SECRET_PATTERNS) or matches(relative, extra)


def is_key_name(name: str) -> bool:
    """``id_work`` (an SSH key's name, no extension) is a key; ``id_utils.py`` is not."""
    return name.startswith("id_") and "." not in name
