"""Figure 1, start-up: process start until the ``initialize`` response, gpt-ls against bare pygls and peers.

Raw JSON-RPC over pipes, runs interleaved so that a burst of load hits every server alike;
reported as a ratio to bare pygls (``bare_pygls.py``), which survives a noisy machine.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.peers import peer_commands
from benchmarks.results import Results
from tests.support.lsp_editor import server_env

BARE_PYGLS = [sys.executable, str(Path(__file__).resolve().parent / "bare_pygls.py")]


def frame(obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


INITIALIZE = frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "processId": None, "rootUri": None, "capabilities": {}}})


def time_initialize(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds from spawning ``cmd`` to reading its whole ``initialize`` response."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(INITIALIZE)
        proc.stdin.flush()
        length = 0
        while True:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{cmd[-1]} exited before answering initialize")
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            elif line == b"\r\n" and length:
                break
        body = json.loads(proc.stdout.read(length))
        took = time.monotonic() - t0
        if "result" not in body:
            raise RuntimeError(f"{cmd[-1]} answered initialize with {body}")
        return took
    finally:
        proc.kill()
        proc.wait()


def figures(res: Results, runs: int, peers: bool) -> None:
    """Median start-up of each server, and gpt-ls's ratio to bare pygls."""
    print("1. start-up", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpt-ls-bench-") as tmp:
        env = server_env("http://127.0.0.1:9/v1", tmp)
        servers = {"bare pygls": BARE_PYGLS, "gpt-ls": [sys.executable, "-m", "gpt_ls"]}
        servers.update(peer_commands(install=peers) if peers else {})
        for cmd in servers.values():  # warm the page cache and the .pyc files
            time_initialize(cmd, env)
        samples: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(runs):  # interleaved, so that a burst of load hits every server alike
            for name, cmd in servers.items():
                samples[name].append(time_initialize(cmd, env))
    bare = statistics.median(samples["bare pygls"])
    for name, values in samples.items():
        ms = statistics.median(values) * 1000
        res.add("start-up", f"{name}: spawn → initialize response (median of {runs})", ms, "ms",
                note=f"{ms / 1000 / bare:.2f}× bare pygls")
    ratio = statistics.median(samples["gpt-ls"]) / bare
    fastest = min(samples["gpt-ls"]) / min(samples["bare pygls"])
    res.add("start-up", "gpt-ls / bare pygls (medians)", ratio, "×", limit=1.15,
            note=f"fastest runs: {fastest:.2f}×")
