"""``gpt-ls trust [DIR]``, ``untrust [DIR]``, ``trust --list``: which workspace files may set restricted settings.

As ``direnv allow`` does it: the file's absolute path and the SHA-256 of its content go into
an owner-only list in the data directory (``trust.TrustList``). A trusted file whose content
changes is untrusted again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gpt_ls.config_files import WORKSPACE_FILE, read_toml
from gpt_ls.errors import GptLsError
from gpt_ls.files import CONFIG_LIMIT, read_limited
from gpt_ls.settings import RESTRICTED_FIELDS, camel, data_dir, field_name, find_workspace_root
from gpt_ls.trust import TrustList, digest


def workspace_file(folder: str | None) -> Path:
    """The ``.gpt-ls.toml`` of DIR (a folder, or the file itself), or of the current workspace."""
    if folder is None:
        return find_workspace_root(Path.cwd()) / WORKSPACE_FILE
    path = Path(folder).expanduser().absolute()
    return path if path.name == WORKSPACE_FILE else path / WORKSPACE_FILE


def run_trust(args: argparse.Namespace) -> int:
    """Trust a workspace file as it is now (or list the trusted ones)."""
    trusted = TrustList(data_dir())
    if args.list:
        return list_trusted(trusted)
    path = workspace_file(args.dir)
    loaded = read_toml(path, path.parent)
    if loaded.content is None:
        why = "; ".join(loaded.problems) or f"{path} does not exist: there is nothing to trust."
        print(f"gpt-ls: {why}", file=sys.stderr)
        return 1
    try:
        trusted.trust(path, expected=digest(loaded.content))
    except GptLsError as exc:
        print(f"gpt-ls: {exc}", file=sys.stderr)
        return 1
    keys = [camel(name) for k in loaded.values if (name := field_name(k)) in RESTRICTED_FIELDS]
    print(f"Trusted {path.resolve()} (sha256 {digest(loaded.content)[:16]}…).")
    if keys:
        print(f"Its restricted settings now apply: {', '.join(keys)}.")
    print("If the file changes, it is untrusted again until you run gpt-ls trust anew.")
    return 0


def list_trusted(trusted: TrustList) -> int:
    """Each trusted file, and whether it still has the content that was trusted."""
    entries = trusted.load()
    if not entries:
        print("No workspace file is trusted.")
    for name, sha in entries.items():
        try:
            state = "trusted" if digest(read_limited(Path(name), CONFIG_LIMIT)) == sha else "changed since trusted"
        except FileNotFoundError:
            state = "missing"
        except (OSError, GptLsError):
            state = "cannot be read"
        print(f"{name}  ({state})")
    return 0


def run_untrust(args: argparse.Namespace) -> int:
    """Forget a workspace file."""
    path = workspace_file(args.dir)
    if TrustList(data_dir()).untrust(path):
        print(f"Untrusted {path.resolve()}: its restricted settings no longer apply.")
        return 0
    print(f"gpt-ls: {path.resolve()} was not trusted.", file=sys.stderr)
    return 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``trust`` and ``untrust`` to the ``gpt-ls`` command line."""
    trust = sub.add_parser(
        "trust", help="let a workspace's .gpt-ls.toml set restricted settings (endpoints, keys, programs)",
        description="Record DIR/.gpt-ls.toml (default: the current workspace's) and the SHA-256 of its "
                    "content as trusted: its restricted settings apply until the file changes.")
    trust.add_argument("dir", nargs="?", metavar="DIR", help="the workspace folder (default: the current one)")
    trust.add_argument("--list", action="store_true", help="list the trusted files")
    trust.set_defaults(func=run_trust)
    untrust = sub.add_parser("untrust", help="stop trusting a workspace's .gpt-ls.toml")
    untrust.add_argument("dir", nargs="?", metavar="DIR", help="the workspace folder (default: the current one)")
    untrust.set_defaults(func=run_untrust)
