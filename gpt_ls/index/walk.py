"""Which files of a workspace are indexed: ignore files, settings, secrets, confinement, limits.

* ``.gitignore`` and ``.ignore`` files (nested ones too, gitignore syntax, a deeper file wins)
  and ``.git/info/exclude``; an ignored folder is not entered;
* ``indexExclude`` adds patterns, ``indexInclude`` (when set) limits the set to what it matches;
* secrets are never indexed, whatever the settings say (``SECRET_PATTERNS``);
* VCS folders are skipped; a symlink is followed only when it resolves inside the root
  (a symlinked folder is never entered: no loops, nothing indexed twice);
* files over ``MAX_FILE_BYTES`` are skipped and counted, and so is everything past ``max_files``.

Reading a file and deciding it is binary happens in the indexer; this module only stats.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pathspec import GitIgnoreSpec

from gpt_ls.errors import FileRefused
from gpt_ls.files import inside, read_limited
from gpt_ls.secret_files import SECRET_PATTERNS, is_key_name

#: Files larger than this are not indexed (a 50 MB minified bundle is skipped and counted).
MAX_FILE_BYTES = 1024 * 1024
IGNORE_FILES = (".gitignore", ".ignore")
IGNORE_FILE_LIMIT = 256 * 1024
VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", "_darcs", ".fossil", ".jj", "CVS"})



@dataclass(frozen=True)
class Candidate:
    """A file to index: workspace-relative POSIX path, the real path, and its stat."""

    rel: str
    path: Path
    size: int
    mtime_ns: int


@dataclass
class WalkResult:
    """The files to index and why the others were skipped (reason -> count)."""

    files: list[Candidate] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def _spec(lines: Iterable[str]) -> GitIgnoreSpec | None:
    patterns = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return GitIgnoreSpec.from_lines(patterns) if patterns else None


def _read_ignore(path: Path) -> GitIgnoreSpec | None:
    try:
        data = read_limited(path, IGNORE_FILE_LIMIT)
    except (OSError, FileRefused):
        return None
    return _spec(data.decode("utf-8", "replace").splitlines())


_SECRETS = GitIgnoreSpec.from_lines(SECRET_PATTERNS)


def is_secret(rel: str) -> bool:
    """Is this workspace-relative path a secret (never indexed)? ``id_*`` without an extension counts."""
    return is_key_name(PurePosixPath(rel).name) or _SECRETS.match_file(rel)


class Rules:
    """The ignore decisions for one root: ignore files found on the way down, settings, secrets."""

    def __init__(self, root: Path, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> None:
        self.root = root
        self.include = _spec(include)
        self.exclude = _spec(exclude)
        self._dirs: dict[str, list[GitIgnoreSpec]] = {}
        info = _read_ignore(root / ".git" / "info" / "exclude")
        self._root_extra = [info] if info else []

    def specs(self, rel_dir: str) -> list[GitIgnoreSpec]:
        """The ignore specs found in one folder (cached)."""
        if rel_dir not in self._dirs:
            folder = self.root / rel_dir if rel_dir else self.root
            found = list(self._root_extra) if not rel_dir else []
            found += [s for s in (_read_ignore(folder / name) for name in IGNORE_FILES) if s]
            self._dirs[rel_dir] = found
        return self._dirs[rel_dir]

    def ignored(self, rel: str, is_dir: bool) -> str | None:
        """Why ``rel`` is not indexed ("secret", "ignored"), or None when it is."""
        if not is_dir and is_secret(rel):
            return "secret"
        key = rel + "/" if is_dir else rel
        if self.exclude is not None and self.exclude.match_file(key):
            return "ignored"
        verdict: bool | None = None
        parts = rel.split("/")
        for depth in range(len(parts)):
            base = "/".join(parts[:depth])
            sub = "/".join(parts[depth:]) + ("/" if is_dir else "")
            for spec in self.specs(base):
                result = spec.check_file(sub).include
                if result is not None:
                    verdict = result
        if verdict:
            return "ignored"
        if not is_dir and self.include is not None and not self.include.match_file(rel):
            return "ignored"
        return None

    def check_path(self, rel: str) -> str | None:
        """Why one file (e.g. a saved document) is not indexed, checking its folders too; None when it is."""
        parts = rel.split("/")
        if ".." in parts:
            return "outside"
        if any(part in VCS_DIRS for part in parts[:-1]) or any(p in ("", ".") for p in parts):
            return "ignored"
        for depth in range(1, len(parts)):
            if self.ignored("/".join(parts[:depth]), True):
                return "ignored"
        return self.ignored(rel, False)


def confined(root: Path, rel: str) -> Path | None:
    """The real path of ``rel`` when it resolves inside ``root``, else None."""
    try:
        return inside(root, rel)
    except (FileRefused, OSError, RuntimeError):
        return None


def stat_file(root: Path, rel: str) -> tuple[Candidate | None, str | None]:
    """One file as a candidate, or why not ("outside", "too_large", "unreadable", "vanished")."""
    real = confined(root, rel)
    if real is None:
        return None, "outside"
    try:
        info = os.stat(real)
    except FileNotFoundError:
        return None, "vanished"
    except OSError:
        return None, "unreadable"
    if not stat.S_ISREG(info.st_mode):
        return None, "ignored"
    if info.st_size > MAX_FILE_BYTES:
        return None, "too_large"
    return Candidate(rel, real, info.st_size, info.st_mtime_ns), None


def _entries(folder: Path) -> Iterator[os.DirEntry[str]]:
    with os.scandir(folder) as it:
        yield from sorted(it, key=lambda e: e.name)


def walk(root: Path, include: Iterable[str] = (), exclude: Iterable[str] = (), max_files: int = 50_000) -> WalkResult:
    """Every indexable file under ``root`` (sorted, at most ``max_files``) and the skip counts."""
    root = root.resolve()
    rules = Rules(root, include, exclude)
    result = WalkResult()
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = list(_entries(root / rel_dir if rel_dir else root))
        except OSError:
            result.skipped["unreadable"] += 1
            continue
        subdirs = []
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                result.skipped["unreadable"] += 1
                continue
            if is_dir:
                if entry.name in VCS_DIRS:
                    continue
                if rules.ignored(rel, True):
                    result.skipped["ignored"] += 1
                else:
                    subdirs.append(rel)
                continue
            if is_link and confined(root, rel) is None:
                result.skipped["outside"] += 1
                continue
            reason = rules.ignored(rel, False)
            if reason:
                result.skipped[reason] += 1
                continue
            if len(result.files) >= max_files:
                result.skipped["over_limit"] += 1
                continue
            if is_link:
                candidate, reason = stat_file(root, rel)
                if candidate is None:
                    if reason != "ignored":  # not a regular file (a symlinked folder is never entered)
                        result.skipped[reason or "unreadable"] += 1
                    continue
                result.files.append(candidate)
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                result.skipped["unreadable"] += 1
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            if info.st_size > MAX_FILE_BYTES:
                result.skipped["too_large"] += 1
                continue
            result.files.append(Candidate(rel, Path(entry.path), info.st_size, info.st_mtime_ns))
        stack.extend(reversed(subdirs))
    return result
