"""Issue 16: start-up and memory of gpt-ls beside bare pygls and its peers, copilot-language-server included.

Each server is spawned, sent ``initialize`` over raw JSON-RPC (timed until its whole
response is read), then ``initialized``; its resident memory is read 2 s later (idle),
then 3 s after ``didOpen`` of the 10,000-line Python document. Memory is VmRSS summed over
the server's process tree (copilot-language-server runs workers). Runs are interleaved,
figures are medians. The peers are jedi-language-server and python-lsp-server (pip, in
``$TMPDIR/gpt-ls-bench-peers``) and GitHub's copilot-language-server (npm, its native
linux-x64 binary, in ``$TMPDIR/gpt-ls-bench-copilot``); each is skipped with a note when
it cannot be installed.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from benchmarks.peers import copilot_command, peer_commands
from benchmarks.results import Results
from benchmarks.session import long_document
from benchmarks.startup import BARE_PYGLS, frame
from tests.support.lsp_editor import server_env


def tree_rss(pid: int) -> float:
    """VmRSS of ``pid`` and all its descendants, in MB."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def read_message(out: IO[bytes]) -> dict[str, Any]:
    length = 0
    while True:
        line = out.readline()
        if not line:
            raise RuntimeError("the server exited")
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
        elif line == b"\r\n" and length:
            return json.loads(out.read(length))  # type: ignore[no-any-return]


def measure(cmd: list[str], env: dict[str, str], root: Path, text: str) -> tuple[float, float, float]:
    """(ms to the initialize response, MB idle 2 s after initialized, MB 3 s after opening ``text``)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env, cwd=root)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": None, "rootUri": root.as_uri(), "capabilities": {},
            "clientInfo": {"name": "gpt-ls-bench", "version": "0"}}}))
        proc.stdin.flush()
        while "id" not in (msg := read_message(proc.stdout)) or msg.get("id") != 1:
            pass
        took = (time.monotonic() - t0) * 1000
        stdout = proc.stdout
        threading.Thread(target=lambda: [None for _ in iter(lambda: stdout.read(65536), b"")], daemon=True).start()
        proc.stdin.write(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        proc.stdin.flush()
        time.sleep(2.0)
        idle = tree_rss(proc.pid)
        uri = (root / "long.py").as_uri()
        proc.stdin.write(frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": text}}}))
        proc.stdin.flush()
        time.sleep(3.0)
        return took, idle, tree_rss(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def figures(res: Results, runs: int, peers: bool) -> None:
    """Median start-up and memory of each server."""
    print("10. start-up and memory beside the peers", flush=True)
    text = long_document(10_000)
    with tempfile.TemporaryDirectory(prefix="gpt-ls-bench-") as tmp:
        env = server_env("http://127.0.0.1:9/v1", tmp)
        root = Path(tmp) / "project"
        root.mkdir()
        (root / "long.py").write_text(text)
        servers = {"bare pygls": BARE_PYGLS, "gpt-ls": [sys.executable, "-m", "gpt_ls"]}
        if peers:
            servers.update(peer_commands(install=True))
            copilot = copilot_command(install=True)
            if copilot is not None:
                servers["copilot-language-server"] = copilot
        samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in servers}
        for i in range(runs + 1):  # the first run warms the page cache and the .pyc files
            for name, cmd in servers.items():
                try:
                    got = measure(cmd, env, root, text)
                except Exception as exc:
                    print(f"  note: {name}: {exc}", flush=True)
                    continue
                if i:
                    samples[name].append(got)
    for name, values in samples.items():
        if not values:
            continue
        start, idle, opened = (statistics.median(v[k] for v in values) for k in range(3))
        limit = 100 if name == "gpt-ls" else None
        res.add("footprint", f"{name}: spawn → initialize response (median of {len(values)})", start, "ms")
        res.add("footprint", f"{name}: RSS 2 s after initialized", idle, "MB", limit=limit)
        res.add("footprint", f"{name}: RSS 3 s after opening 10,000 lines", opened, "MB", limit=limit)
