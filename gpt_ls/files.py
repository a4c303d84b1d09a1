"""Files gpt-ls reads on a workspace's word, and files it writes: confined, bounded, owner-only.

A repository the user opens is not the user. A file it names (``instructionsFile``, the
project instructions, its ``.gpt-ls.toml``) is read only when it resolves, symlinks
included, to a regular file inside the workspace, and only up to a size limit: a symlink to
``~/.ssh/id_rsa`` or ``/proc/self/environ`` is refused, and ``/dev/zero`` cannot eat the
memory. Configuration files that another user could have written are not read at all.

Everything gpt-ls creates (logs, exports, reply documents, the trust list) is created
owner-only and without following a symlink planted where the file should be.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from gpt_ls.errors import FileRefused

#: Size limits, in bytes, for the files a workspace provides.
CONFIG_LIMIT = 256 * 1024
INSTRUCTIONS_LIMIT_BYTES = 256 * 1024

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _size(limit: int) -> str:
    return f"{limit // 1024} KB" if limit >= 1024 else f"{limit} bytes"


def read_limited(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ``FileNotFoundError`` if it is absent.

    Opened non-blocking (a FIFO cannot hang the server) and checked on the open file, so
    the file that is checked is the file that is read.
    """
    fd = os.open(path, _READ_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"{path} is not a regular file; gpt-ls reads only regular files there.")
        if info.st_size > limit:
            raise FileRefused(f"{path} is larger than {_size(limit)}; gpt-ls does not read it.")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # grew while it was read
            raise FileRefused(f"{path} is larger than {_size(limit)}; gpt-ls does not read it.")
        return b"".join(chunks)
    finally:
        os.close(fd)


def inside(root: Path, name: str) -> Path:
    """``name`` resolved (symlinks followed) against ``root``; refused unless it stays inside ``root``."""
    base = root.resolve()
    target = (base / name).resolve()
    if target != base and base not in target.parents:
        raise FileRefused(
            f"{name!r} resolves to {target}, outside the workspace {base}: gpt-ls reads only "
            "files inside the workspace (set the file in your own settings to use another)."
        )
    return target


def read_workspace_file(root: Path, name: str, limit: int) -> str | None:
    """A text file of the workspace (confined, bounded, UTF-8); None when it does not exist."""
    target = inside(root, name)
    try:
        data = read_limited(target, limit)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise FileRefused(f"{target} cannot be read ({exc.strerror}).") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise FileRefused(f"{target} is not UTF-8 text; gpt-ls does not read it.") from None


def foreign_owner_problem(path: Path) -> str | None:
    """Why a configuration file must not be trusted to be the user's, or None when it may be."""
    try:
        info = path.stat()
    except OSError:
        return None
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return (f"{path} belongs to another user (uid {info.st_uid}); it is ignored. "
                "Only your own configuration files are read.")
    if stat.S_IMODE(info.st_mode) & 0o022:
        return (f"{path} can be changed by other users (mode {stat.S_IMODE(info.st_mode):o}); it is "
                f"ignored. Run: chmod go-w {path}")
    return None


def private_dir(folder: Path) -> Path:
    """Create ``folder`` (and its parents) owner-only when it does not exist yet."""
    if not folder.is_dir():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
    return folder


def open_private(path: Path, *, append: bool = False) -> BinaryIO:
    """Open a file for writing owner-only (0600, also when it existed), never through a symlink.

    The mode is set on the open file, so an existing 0644 file becomes 0600 before a byte is
    written; a symlink (or a FIFO, a device) planted at ``path`` is refused.
    """
    flags = _WRITE_FLAGS | getattr(os, "O_NONBLOCK", 0) | (os.O_APPEND if append else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if os.path.islink(path):
            raise FileRefused(f"{path} is a symbolic link; gpt-ls does not write through it.") from None
        raise FileRefused(f"{path} cannot be written ({exc.strerror}).") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileRefused(f"{path} is not a regular file; gpt-ls does not write to it.")
        os.set_blocking(fd, True)
        os.fchmod(fd, 0o600)
        if not append:
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "ab" if append else "wb")


def write_private(path: Path, data: str | bytes, *, append: bool = False) -> Path:
    """Write a file owner-only (0600, also when it existed), never through a symlink at ``path``."""
    with open_private(path, append=append) as out:
        out.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path
