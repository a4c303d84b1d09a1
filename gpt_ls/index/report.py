"""What an update did and what the index holds, as counts and one sentence (pure data)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

#: Why a file is not in the index, in the order the summary names them.
SKIP_REASONS = {
    "ignored": "ignored",
    "secret": "secret",
    "binary": "binary",
    "too_large": "over 1 MB",
    "unreadable": "unreadable",
    "outside": "outside the workspace",
    "over_limit": "over the indexMaxFiles limit",
    "vanished": "deleted while indexing",
}


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


@dataclass
class IndexReport:
    """The counts of one update: files indexed, unchanged, removed, skipped by reason."""

    indexed: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    invalid_utf8: int = 0
    chunks: int = 0
    files: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    notice: str | None = None

    def skip(self, reason: str, count: int = 1) -> None:
        """Count ``count`` files skipped for ``reason`` (a key of ``SKIP_REASONS``)."""
        self.skipped[reason] = self.skipped.get(reason, 0) + count

    def summary(self) -> str:
        """One line: what changed, what was skipped and why, how long it took."""
        head = "Indexing cancelled after" if self.cancelled else "Indexed"
        parts = [f"{head} {_n(self.indexed, 'file')} ({_n(self.chunks, 'chunk')}), "
                 f"{self.unchanged:,} unchanged, {self.removed:,} removed"]
        skipped = [f"{self.skipped[k]:,} {label}" for k, label in SKIP_REASONS.items() if self.skipped.get(k)]
        if skipped:
            parts.append("skipped " + ", ".join(skipped))
        line = "; ".join(parts)
        if self.invalid_utf8:
            line += f"; {_n(self.invalid_utf8, 'file')} with invalid UTF-8 (replaced)"
        line += f"; {_n(self.files, 'file')} in the index ({self.seconds:.1f} s)."
        return f"{self.notice} {line}" if self.notice else line

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexReport:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class IndexStatus:
    """What the index of a workspace holds, where it is, and what its last update did."""

    root: str
    path: str
    built: bool
    files: int = 0
    chunks: int = 0
    size_bytes: int = 0
    updated_at: str | None = None
    readonly: bool = False
    notice: str | None = None
    last: IndexReport | None = None

    def summary(self) -> str:
        """One line about the index."""
        if not self.built:
            line = f"No index yet for {self.root} (it would be stored in {self.path}); run: gpt-ls index"
        else:
            line = (f"Index of {self.root}: {_n(self.files, 'file')}, {_n(self.chunks, 'chunk')}, "
                    f"{self.size_bytes / 1e6:.1f} MB in {self.path}, updated {self.updated_at}")
            if self.readonly:
                line += " (read-only: it cannot be updated)"
        return f"{self.notice} {line}" if self.notice else line
