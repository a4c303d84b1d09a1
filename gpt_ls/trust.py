"""Which workspace configuration files the user trusts, as direnv's ``allow`` does it.

A workspace's ``.gpt-ls.toml`` may shape prompts, but its restricted settings (where requests
go, which credentials, headers and programs, what is deleted) apply only once the user has
trusted that exact file: ``gpt-ls trust`` records the file's absolute path and the SHA-256
of its content in an owner-only file of the user's data directory. A trusted file whose
content changes is untrusted again until the user trusts it anew.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from gpt_ls.errors import ConfigError
from gpt_ls.files import CONFIG_LIMIT, private_dir, read_limited, write_private

log = logging.getLogger(__name__)

TRUST_FILE = "trusted.json"
#: At most this many trusted files are remembered (the list is read at every settings load).
MAX_ENTRIES = 10_000


def digest(content: bytes) -> str:
    """The SHA-256 of a file's content, as recorded in the trust list."""
    return hashlib.sha256(content).hexdigest()


class TrustList:
    """The trust list in one data directory (``GPT_LS_DATA_DIR`` moves it with the history)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / TRUST_FILE

    def load(self) -> dict[str, str]:
        """The trusted files: absolute path -> SHA-256. A missing or damaged list trusts nothing."""
        try:
            raw = json.loads(read_limited(self.path, 256 * MAX_ENTRIES).decode("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, ConfigError) as exc:
            log.warning("the trust list %s cannot be read (%s): no workspace file is trusted", self.path, exc)
            return {}
        entries = raw.get("trusted") if isinstance(raw, dict) else None
        if not isinstance(entries, dict):
            return {}
        return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, str)}

    def _save(self, entries: dict[str, str]) -> None:
        private_dir(self.path.parent)
        tmp = self.path.with_name(f".{TRUST_FILE}.{os.getpid()}.tmp")
        write_private(tmp, json.dumps({"trusted": dict(sorted(entries.items()))}, indent=1) + "\n")
        os.replace(tmp, self.path)

    def is_trusted(self, file: Path, content: bytes) -> bool:
        """Whether the user trusted this file with exactly this content."""
        return self.load().get(str(file.resolve())) == digest(content)

    def trust(self, file: Path) -> str:
        """Trust ``file`` as it is now; return its SHA-256."""
        file = file.resolve()
        try:
            content = read_limited(file, CONFIG_LIMIT)
        except FileNotFoundError:
            raise ConfigError(f"{file} does not exist: there is nothing to trust.") from None
        except OSError as exc:
            raise ConfigError(f"{file} cannot be read ({exc.strerror}).") from None
        entries = self.load()
        if len(entries) >= MAX_ENTRIES and str(file) not in entries:
            raise ConfigError(f"{self.path} already lists {MAX_ENTRIES} files: untrust some first.")
        entries[str(file)] = digest(content)
        self._save(entries)
        return entries[str(file)]

    def untrust(self, file: Path) -> bool:
        """Forget ``file``; False when it was not trusted."""
        entries = self.load()
        if entries.pop(str(file.resolve()), None) is None:
            return False
        self._save(entries)
        return True
