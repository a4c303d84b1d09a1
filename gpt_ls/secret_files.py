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

#: Always skipped, whatever the settings say.
SECRET_PATTERNS: tuple[str, ...] = (
    ".env", ".env.*", "*.env", ".envrc", ".netrc", ".npmrc", ".pypirc", ".pgpass", ".git-credentials",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx", "*.gpg", "*.asc",
    "id_*", "*.ppk", "known_hosts", "authorized_keys", "credentials", "credentials.*", "secrets.*",
    "*.secret", "*.secrets", "*.tfstate", "*.tfvars", ".htpasswd", "service-account*.json",
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
    """Whether a file is one whose text must never be sent: a secret, or excluded by ``extra``."""
    return matches(relative, SECRET_PATTERNS) or matches(relative, extra)
