"""Real proxies for the tests: ``pproxy`` run as a subprocess on 127.0.0.1.

``with Pproxy("http") as proxy:`` (or ``"socks5"``, optionally ``auth="user:pass"``)
starts ``python -m pproxy -l SCHEME://127.0.0.1:PORT -v``; ``proxy.url`` is what a client
is given and ``proxy.log()`` is pproxy's verbose output, where every connection it relays
appears as ``http 127.0.0.1:CLIENT -> HOST:PORT``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_port() -> int:
    """A port that refuses connections (bound, never listening, kept for the process)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _KEEP.append(s)
    return int(s.getsockname()[1])


_KEEP: list[socket.socket] = []


class Pproxy:
    """An HTTP or SOCKS5 proxy process; stopped (and its log kept) on exit."""

    def __init__(self, scheme: str = "http", auth: str | None = None) -> None:
        self.scheme = scheme
        self.auth = auth
        self.port = free_port()
        self._logfile = Path(tempfile.mkstemp(prefix="pproxy-", suffix=".log")[1])
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        cred = f"{self.auth}@" if self.auth else ""
        return f"{self.scheme}://{cred}127.0.0.1:{self.port}"

    def start(self) -> Pproxy:
        listen = f"{self.scheme}://127.0.0.1:{self.port}" + (f"#{self.auth}" if self.auth else "")
        with self._logfile.open("wb") as out:
            self._proc = subprocess.Popen(
                [sys.executable, "-u", "-m", "pproxy", "-l", listen, "-v"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"pproxy exited: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"pproxy did not start: {self.log()}")

    def log(self) -> str:
        return self._logfile.read_text("utf-8", "replace")

    def relayed(self, port: int) -> int:
        """How many connections pproxy relayed to 127.0.0.1:``port``."""
        return self.log().count(f" -> 127.0.0.1:{port}\n")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> Pproxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def blackhole_port() -> int:
    """A port whose connections hang in the handshake (a full backlog): a connect timeout."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = int(srv.getsockname()[1])
    _KEEP.append(srv)
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        _KEEP.append(c)
    time.sleep(0.1)
    return port
