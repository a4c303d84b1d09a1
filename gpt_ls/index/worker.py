"""Cold builds and rebuilds in a child process, so the server's event loop keeps its GIL.

A CPU-bound thread holds the GIL in 5 ms slices: a cold build in the server's process would
stall its requests. ``await build(root, settings, ...)`` runs ``python -m gpt_ls.index.worker``
at a lower priority; the child reads its job as JSON on stdin, writes the database (WAL: the
server keeps reading it) and reports on stdout in JSON lines::

    {"progress": [done, total, "path"]}      at most ten a second
    {"report": {...IndexReport...}}          at the end
    {"error": "sentence"}                    when the index cannot be used

Cancelling (the ``cancel`` event, or cancelling the awaiting task) sends SIGTERM: the child
stops after the batch it is writing, and everything written so far stays. Overlays live in the
server: call ``WorkspaceIndex.apply_overlays()`` after a build (``build(..., index=idx)`` does).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from gpt_ls.errors import GptLsError, WorkspaceIndexError
from gpt_ls.index.report import IndexReport
from gpt_ls.index.store import WorkspaceIndex
from gpt_ls.settings import Settings

Progress = Callable[[int, int, str], None]
#: How long a cancelled child may take to finish its batch before it is killed.
STOP_GRACE_SECONDS = 5.0
NICENESS = 10
_STDERR_KEEP = 4096


def job(root: Path, settings: Settings, rebuild: bool = False) -> dict[str, Any]:
    """The JSON job a worker runs: the root and the index settings the server resolved."""
    return {"root": str(root), "rebuild": rebuild, "include": list(settings.index_include),
            "exclude": list(settings.index_exclude), "max_files": settings.index_max_files}


async def build(root: Path, settings: Settings, env: Mapping[str, str] | None = None, *, rebuild: bool = False,
                progress: Progress | None = None, cancel: threading.Event | asyncio.Event | None = None,
                index: WorkspaceIndex | None = None) -> IndexReport:
    """Build or update the index of ``root`` in a child process; the report of what it did.

    Raises ``WorkspaceIndexError`` when the child cannot index (its sentence) or dies.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gpt_ls.index.worker", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ if env is None else env))
    assert proc.stdin and proc.stdout and proc.stderr
    proc.stdin.write(json.dumps(job(root, settings, rebuild)).encode() + b"\n")
    await proc.stdin.drain()
    proc.stdin.close()
    errors = asyncio.ensure_future(proc.stderr.read())
    report: IndexReport | None = None
    failure: str | None = None
    stopping = False
    try:
        while True:
            if cancel is not None and cancel.is_set() and not stopping:
                stopping = True
                _signal(proc, signal.SIGTERM)
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), 0.1)
            except asyncio.TimeoutError:
                continue
            if not line:
                break
            message = _parse(line)
            if "progress" in message and progress is not None:
                done, total, path = message["progress"]
                progress(int(done), int(total), str(path))
            elif "report" in message:
                report = IndexReport.from_dict(message["report"])
            elif "error" in message:
                failure = str(message["error"])
        code = await proc.wait()
    except BaseException:
        await _stop(proc)
        errors.cancel()
        raise
    stderr = (await errors)[-_STDERR_KEEP:].decode("utf-8", "replace").strip()
    if failure:
        raise WorkspaceIndexError(failure)
    if report is None and stopping:
        report = IndexReport(cancelled=True)  # stopped before it could report
    if report is None:
        last = stderr.splitlines()[-1] if stderr else "no output"
        raise WorkspaceIndexError(f"The indexing process stopped (exit code {code}: {last}); the index keeps "
                                  "what it wrote. Run `gpt-ls index` to see the error.")
    if stopping:
        report = replace(report, cancelled=True)
    if index is not None:
        await asyncio.to_thread(index.apply_overlays)
    return report


def _parse(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _signal(proc: asyncio.subprocess.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM, a grace period to finish the batch, then SIGKILL."""
    if proc.returncode is not None:
        return
    _signal(proc, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), STOP_GRACE_SECONDS)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        _signal(proc, signal.SIGKILL)
        await proc.wait()


# -- the child -------------------------------------------------------------------------------

def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def main() -> int:
    """The worker process: one job from stdin, JSON lines on stdout."""
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    try:
        os.nice(NICENESS)
    except OSError:
        pass
    try:
        spec = json.loads(sys.stdin.readline())
        settings = Settings(index_include=tuple(spec.get("include", ())), index_exclude=tuple(spec.get("exclude", ())),
                            index_max_files=int(spec.get("max_files", Settings.index_max_files)))
        shown = [0.0]

        def progress(done: int, total: int, path: str) -> None:
            now = time.monotonic()
            if now - shown[0] >= 0.1 or done == total:
                shown[0] = now
                _emit({"progress": [done, total, path]})

        with WorkspaceIndex.open(Path(spec["root"]), settings) as index:
            if spec.get("rebuild"):
                index.clear()
            report = index.update(progress=progress, cancel=cancel, jobs=os.cpu_count() or 1)
        _emit({"report": json.loads(report.to_json())})
        return 0
    except GptLsError as exc:
        _emit({"error": str(exc)})
        return 1


if __name__ == "__main__":
    sys.exit(main())
