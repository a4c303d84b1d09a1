"""Where ``gpt-ls --tcp`` / ``--socket`` may listen, and the token of this start.

* ``--tcp HOST:PORT`` binds loopback only; another address needs ``--allow-remote``
  (which warns: the traffic is not encrypted, and the token is then all that protects it).
* Every TCP start has a secret token (``secrets.token_urlsafe``), written owner-only to a
  file whose path is printed, never the token itself; or the user's own in ``GPT_LS_TCP_TOKEN``.
* ``--socket PATH`` (recommended) is a Unix socket created 0600 in a directory only the
  user may enter; a path that is anything but a stale socket of ours is refused.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gpt_ls.errors import FileRefused, ListenRefused
from gpt_ls.files import private_dir, write_private

#: The environment variable that supplies a token of the user's choosing (nothing is written then).
TOKEN_ENV = "GPT_LS_TCP_TOKEN"
#: A token of the user's choosing must be at least this long.
MIN_TOKEN_LENGTH = 16
#: Host names that mean loopback without asking a resolver.
LOOPBACK_NAMES = {"localhost": "127.0.0.1", "": "127.0.0.1"}


@dataclass(frozen=True)
class TcpAddress:
    host: str
    port: int
    remote: bool  # not a loopback address (only with --allow-remote)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8 and ::1 (by address: a name other than ``localhost`` is not trusted to resolve)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_tcp(value: str, allow_remote: bool = False) -> TcpAddress:
    """``HOST:PORT`` -> where to bind; a ListenRefused sentence for a bad or non-loopback address."""
    host, _, port = value.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise ListenRefused(f"--tcp takes HOST:PORT, such as 127.0.0.1:2087 (got {value!r}).")
    host = host.strip("[]")
    loopback = is_loopback(host)
    if not loopback and not allow_remote:
        raise ListenRefused(
            f"--tcp {value}: gpt-ls listens on loopback only (127.0.0.1 or ::1), because whoever connects "
            "can run actions with your key. To listen on another address anyway, add --allow-remote.")
    return TcpAddress(LOOPBACK_NAMES.get(host, host), int(port), not loopback)


def remote_warning(host: str, port: int) -> str:
    """What ``--allow-remote`` prints."""
    return (f"gpt-ls: warning: listening on {host}:{port}, which other hosts may reach "
            "(--allow-remote). The traffic (your code, the replies) is not encrypted and the token is all "
            "that keeps others out; prefer --socket or an SSH tunnel to 127.0.0.1.")


def default_token_file(data: Path, port: int) -> Path:
    """``<data dir>/tcp/PORT.token``."""
    return data / "tcp" / f"{port}.token"


def choose_token(env: Mapping[str, str]) -> str:
    """The token of this start: the user's own (``GPT_LS_TCP_TOKEN``), or a new random one."""
    mine = env.get(TOKEN_ENV)
    if mine is None:
        return secrets.token_urlsafe(32)
    if len(mine) < MIN_TOKEN_LENGTH:
        raise ListenRefused(f"{TOKEN_ENV} is shorter than {MIN_TOKEN_LENGTH} characters; use a long random "
                            "value (python3 -c 'import secrets; print(secrets.token_urlsafe())').")
    return mine


def write_token(path: Path, token: str) -> Path:
    """Write the token owner-only (0600), never through a symlink; the directory is created 0700."""
    private_dir(path.parent)
    try:
        return write_private(path, token + "\n")
    except FileRefused as exc:
        raise ListenRefused(f"--token-file: {exc}") from None


def _ours_and_private(folder: Path) -> str | None:
    """Why ``folder`` may not hold the socket, or None."""
    info = folder.stat()
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"{folder} belongs to another user"
    if stat.S_IMODE(info.st_mode) & 0o077:
        return f"{folder} is open to other users (mode {stat.S_IMODE(info.st_mode):o}; run: chmod 700 {folder})"
    return None


def prepare_socket(path: Path) -> Path:
    """Make ``path`` ready to bind: a private directory, and no file there but a stale socket of ours."""
    folder = path.parent
    if not folder.exists():
        private_dir(folder)
    problem = _ours_and_private(folder)
    if problem:
        raise ListenRefused(f"--socket {path}: {problem}; put the socket in a directory only you can enter, "
                            "such as $XDG_RUNTIME_DIR/gpt-ls/.")
    try:
        info = path.lstat()
    except FileNotFoundError:
        return path
    if not stat.S_ISSOCK(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        raise ListenRefused(f"--socket {path}: something that is not a gpt-ls socket is there already; "
                            "gpt-ls does not replace it. Choose another path or remove it.")
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:  # nobody listens: a socket left by a gpt-ls that died
            path.unlink()
            return path
    raise ListenRefused(f"--socket {path}: a server is listening there already (another gpt-ls?).")
