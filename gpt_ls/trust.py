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
from dataclasses import dataclass
from pathlib import Path
from shlex import quote
from typing import Protocol

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

    def trust(self, file: Path, expected: str | None = None) -> str:
        """Trust ``file`` as it is now (only if its SHA-256 is still ``expected``, when given); return it."""
        file = file.resolve()
        try:
            content = read_limited(file, CONFIG_LIMIT)
        except FileNotFoundError:
            raise ConfigError(f"{file} does not exist: there is nothing to trust.") from None
        except OSError as exc:
            raise ConfigError(f"{file} cannot be read ({exc.strerror}).") from None
        if expected is not None and digest(content) != expected:
            raise ConfigError(f"{file} changed since gpt-ls showed it: read it again, then trust it.")
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


@dataclass(frozen=True)
class UntrustedFile:
    """A workspace file whose restricted settings were ignored, and why."""

    path: Path
    #: The SHA-256 of the content that was read: "Trust" trusts exactly that.
    digest: str
    #: The restricted settings it sets (wire names), ignored.
    keys: tuple[str, ...]
    #: The editor said the workspace is untrusted (VS Code's Restricted Mode): no Trust choice.
    editor_untrusted: bool = False

    def message(self) -> str:
        """The one message: the file, the keys ignored, how to trust it."""
        keys = ", ".join(self.keys)
        head = f"{self.path} sets {keys}, which only your own settings or a trusted workspace file may set"
        if self.editor_untrusted:
            return f"{head}; they are ignored because the editor says this workspace is not trusted."
        folder = quote(str(self.path.parent))
        return f"{head}; they are ignored. If you trust this repository, run: gpt-ls trust {folder}"


class Chooser(Protocol):
    """The one editor call the trust offer needs (``EditorPort.ask_choice``)."""

    async def ask_choice(self, prompt: str, choices: list[str]) -> str | None: ...


TRUST_CHOICE = "Trust"
NOT_NOW = "Not now"


async def offer_trust(editor: Chooser, untrusted: UntrustedFile, trusted: TrustList) -> bool:
    """Ask the user once; on "Trust", trust exactly the content shown. True when trusted."""
    if await editor.ask_choice(untrusted.message(), [TRUST_CHOICE, NOT_NOW]) != TRUST_CHOICE:
        return False
    trusted.trust(untrusted.path, expected=untrusted.digest)
    return True
