"""Reading the configuration files: bounded, confined, only the user's own; finding the workspace root.

A workspace's ``.gpt-ls.toml`` comes from whoever wrote the repository. It is read only when
it resolves (symlinks included) to a regular file inside the workspace, up to
``files.CONFIG_LIMIT`` bytes and ``MAX_NESTING`` levels of tables and arrays, so ``/dev/zero``
or a 5,000-deep nesting is a problem sentence, not a hang or a traceback. A file that
another user owns, or that group or others may write, is not read at all: anyone could have
put it there. The workspace root search never climbs above the home directory and never
adopts a folder the user does not own or that others may write into (``/tmp``).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from gpt_ls.errors import FileRefused
from gpt_ls.files import CONFIG_LIMIT, foreign_owner_problem, inside, read_limited

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

WORKSPACE_FILE = ".gpt-ls.toml"
USER_FILE = "config.toml"
#: Tables and arrays nested deeper than this are refused (settings need three levels).
MAX_NESTING = 32


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """The user config dir (``GPT_LS_CONFIG_DIR`` moves it)."""
    env = os.environ if env is None else env
    if env.get("GPT_LS_CONFIG_DIR"):
        return Path(env["GPT_LS_CONFIG_DIR"])
    return Path(platformdirs.user_config_dir("gpt-ls"))


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The user data dir for history (``GPT_LS_DATA_DIR`` moves it)."""
    env = os.environ if env is None else env
    if env.get("GPT_LS_DATA_DIR"):
        return Path(env["GPT_LS_DATA_DIR"])
    return Path(platformdirs.user_data_dir("gpt-ls"))


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The cache dir (``GPT_LS_CACHE_DIR`` moves it)."""
    env = os.environ if env is None else env
    if env.get("GPT_LS_CACHE_DIR"):
        return Path(env["GPT_LS_CACHE_DIR"])
    return Path(platformdirs.user_cache_dir("gpt-ls"))


@dataclass(frozen=True)
class ConfigFile:
    """One configuration file as read: its settings, the exact bytes (for trust), problems."""

    path: Path
    values: dict[str, Any]
    content: bytes | None
    problems: list[str]


def nesting_depth(value: Any, limit: int = MAX_NESTING) -> int:
    """How deeply tables and lists nest in ``value`` (counting stops just past ``limit``); iterative."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list, tuple)):
            deepest = max(deepest, depth)
            if depth > limit:
                return depth
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _ignored(path: Path, why: str) -> ConfigFile:
    return ConfigFile(path, {}, None, [f"{path}: {why}; its settings are ignored"])


def parse_toml(path: Path, data: bytes) -> ConfigFile:
    """Parse a settings file's bytes; malformed or too deeply nested content is a problem."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return _ignored(path, "is not UTF-8 text")
    except tomllib.TOMLDecodeError as exc:
        return _ignored(path, f"is not valid TOML ({exc})")
    except RecursionError:
        return _ignored(path, f"nests tables or arrays too deeply (gpt-ls reads at most {MAX_NESTING} levels)")
    if nesting_depth(doc) > MAX_NESTING:
        return _ignored(path, f"nests tables or arrays too deeply (gpt-ls reads at most {MAX_NESTING} levels)")
    # Settings may sit at the top level or under a [gpt-ls] table.
    section = doc.get("gpt-ls")
    if isinstance(section, dict):
        doc = {**{k: v for k, v in doc.items() if k != "gpt-ls"}, **section}
    return ConfigFile(path, doc, data, [])


def read_toml(path: Path, workspace: Path | None = None) -> ConfigFile:
    """Read a settings file: bounded, a regular file, the user's own; confined to ``workspace`` if given.

    A missing file is empty; every refusal is a problem sentence and an empty file.
    """
    try:
        target = inside(workspace, path.name) if workspace is not None else path
        problem = foreign_owner_problem(target)
        if problem is not None:
            return ConfigFile(path, {}, None, [problem])
        data = read_limited(target, CONFIG_LIMIT)
    except (FileNotFoundError, NotADirectoryError):
        return ConfigFile(path, {}, None, [])
    except FileRefused as exc:
        return ConfigFile(path, {}, None, [f"{exc} Its settings are ignored."])
    except OSError as exc:
        return _ignored(path, f"cannot be read ({exc.strerror})")
    return parse_toml(path, data)


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is written, replaced or removed (None: absent): a cheap change check."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


def _home(env: Mapping[str, str] | None = None) -> Path | None:
    home = (os.environ if env is None else env).get("HOME")
    try:
        return Path(home).resolve() if home else Path.home().resolve()
    except (RuntimeError, OSError):
        return None


def adoptable(folder: Path) -> bool:
    """Whether ``folder`` may be a workspace root: the user's own, and not writable by others."""
    try:
        info = folder.stat()
    except OSError:
        return False
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return False
    return not stat.S_IMODE(info.st_mode) & 0o022


def find_workspace_root(start: Path | None = None, home: Path | None = None) -> Path:
    """The CLI's workspace: the nearest ancestor with ``.git`` or ``.gpt-ls.toml``, else start.

    The search stops below the home directory (``~`` itself is never adopted from below)
    and at the first folder the user does not own or others may write into (``/tmp``); a
    ``.gpt-ls.toml`` that another user owns or may change does not mark a workspace: a file
    planted there is never taken for the project's.
    """
    here = (Path.cwd() if start is None else Path(start)).resolve()
    home = _home() if home is None else home.resolve()
    for folder in (here, *here.parents):
        if folder != here and folder == home:
            break
        if not adoptable(folder):
            break
        if (folder / ".git").exists():
            return folder
        if (folder / WORKSPACE_FILE).is_file():
            # Only a configuration the user could have written marks a workspace.
            return folder if foreign_owner_problem(folder / WORKSPACE_FILE) is None else here
    return here
