"""The API key: ``apiKey`` (or ``OPENAI_API_KEY``), else the output of ``apiKeyCommand``.

The command runs without a shell, once per process (concurrent first requests share the
run); its key is cached until a 401/403 rejects it, and registered as a secret so it is
masked wherever it could appear.
"""

from __future__ import annotations

import asyncio
import os
import shlex

from gpt_ls.errors import KeyCommandFailed, NoApiKey
from gpt_ls.secrets import add_secret
from gpt_ls.settings import Settings

NO_KEY_MESSAGE = (
    "No API key: set OPENAI_API_KEY, or apiKey / apiKeyCommand in the settings "
    "(editor settings, .gpt-ls.toml in the workspace or config.toml in the user config dir)"
)

_KEY_CACHE: dict[str, str] = {}
_KEY_TASKS: dict[str, asyncio.Task[str]] = {}


def forget_api_key_command(command: str | None = None) -> None:
    """Drop cached command output: one command's (its key was rejected), or every one."""
    if command is not None:
        _KEY_CACHE.pop(command, None)
        return
    _KEY_CACHE.clear()
    _KEY_TASKS.clear()


def _split_command(command: str) -> list[str]:
    """Shell-like splitting without a shell; on Windows backslashes in paths are kept."""
    if os.name != "nt":
        return shlex.split(command)
    return [
        a[1:-1] if len(a) >= 2 and a[0] == a[-1] and a[0] in "\"'" else a
        for a in shlex.split(command, posix=False)
    ]


async def _run_key_command(command: str, timeout: float) -> str:
    """Run ``apiKeyCommand`` without a shell; its first output line is the key."""
    try:
        argv = _split_command(command)
    except ValueError as exc:
        raise KeyCommandFailed(
            f"apiKeyCommand cannot be parsed ({exc}): check its quoting"
        ) from None
    if not argv:
        raise KeyCommandFailed("apiKeyCommand is empty: give a program that prints the API key")
    prog = argv[0]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,  # the server's stdin is the LSP wire
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise KeyCommandFailed(
            f"apiKeyCommand program {prog!r} not found: check its name or give its full path"
        ) from None
    except OSError as exc:
        raise KeyCommandFailed(
            f"apiKeyCommand program {prog!r} cannot be started ({exc.strerror})"
        ) from None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise KeyCommandFailed(
            f"apiKeyCommand ({prog}) did not finish within {timeout:g} s: it must print the key "
            "without waiting for input (raise apiKeyCommandTimeout if it is only slow)"
        ) from None
    if proc.returncode != 0:
        raise KeyCommandFailed(
            f"apiKeyCommand ({prog}) failed with exit status {proc.returncode}: "
            "run it in a terminal to see why"
        )
    lines = out.decode("utf-8", "replace").strip().splitlines()
    key = lines[0].strip() if lines else ""
    if not key:
        raise KeyCommandFailed(
            f"apiKeyCommand ({prog}) printed nothing: it must print the API key on its first line"
        )
    return key


def _usable(key: str, origin: str) -> str:
    """HTTP headers carry only printable ASCII: catch pasted full-width or curly characters."""
    if key.isascii() and key.isprintable() and " " not in key:
        return key
    raise NoApiKey(
        f"The API key from {origin} contains spaces or characters an API key cannot have "
        "(non-ASCII, e.g. full-width or curly quotes): copy it again"
    )


async def resolve_api_key(settings: Settings) -> str:
    """The key to use: ``apiKey`` > ``apiKeyCommand`` (run once per process) > none."""
    if settings.api_key:
        return _usable(settings.api_key, "apiKey / OPENAI_API_KEY")
    command = settings.api_key_command
    if not command:
        raise NoApiKey(NO_KEY_MESSAGE)
    if command in _KEY_CACHE:
        return _KEY_CACHE[command]
    task = _KEY_TASKS.get(command)
    if task is None or task.get_loop() is not asyncio.get_running_loop():
        # Concurrent first requests share one run of the command.
        task = asyncio.ensure_future(_run_key_command(command, settings.api_key_command_timeout))
        _KEY_TASKS[command] = task
    try:
        key = await asyncio.shield(task)
    finally:
        if task.done():
            _KEY_TASKS.pop(command, None)
    add_secret(key)
    _KEY_CACHE[command] = _usable(key, "apiKeyCommand")
    return key
