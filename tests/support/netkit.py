"""Network helpers for the connection tests: real proxies, odd ports, shared fixtures.

Real proxies: ``pproxy`` run as a subprocess on 127.0.0.1.

``with Pproxy("http") as proxy:`` (or ``"socks5"``, optionally ``auth="user:pass"``)
starts ``python -m pproxy -l SCHEME://127.0.0.1:PORT -v``; ``proxy.url`` is what a client
is given and ``proxy.log()`` is pproxy's verbose output, where every connection it relays
appears as ``http 127.0.0.1:CLIENT -> HOST:PORT``.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from gpt_ls.api.chat import stream_chat
from gpt_ls.api.keys import forget_api_key_command
from gpt_ls.settings import Settings
from tests.support.fakeopenai import FakeOpenAI

#: The key the fake server demands; tests assert it never shows up anywhere.
KEY = "sk-test-NETKIT-SECRET-0123456789abcdef"


@pytest.fixture(name="api")
def api_fixture() -> Iterator[FakeOpenAI]:
    """A fake OpenAI server that insists on ``KEY``."""
    with FakeOpenAI(api_key=KEY) as server:
        yield server


@pytest.fixture(name="fresh_key_cache")
def fresh_key_cache_fixture() -> Iterator[None]:
    """Each test runs apiKeyCommand afresh (its output is cached per process)."""
    forget_api_key_command()
    yield
    forget_api_key_command()


def settings_for(api: FakeOpenAI, **kw: object) -> Settings:
    """Settings pointing at ``api`` with its key, no retries unless asked."""
    base: dict[str, object] = {"base_url": api.url, "api_key": KEY, "model": "gpt-4o-mini",
                               "max_retries": 0}
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture(name="cert", scope="session")
def cert_fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (cert.pem, key.pem)."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-subj", "/CN=gpt-ls test",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return d / "cert.pem", d / "key.pem"


@pytest.fixture(name="tls_api")
def tls_api_fixture(cert: tuple[Path, Path]) -> Iterator[FakeOpenAI]:
    """The fake OpenAI server speaking HTTPS with the self-signed ``cert``."""
    server = FakeOpenAI()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    httpd = server._httpd  # the test server's listening socket, wrapped for TLS
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    with server:
        yield server


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

    def __init__(
        self, scheme: str = "http", auth: str | None = None, tls: tuple[Path, Path] | None = None
    ) -> None:
        self.scheme = scheme
        self.auth = auth
        self.tls = tls  # (cert, key): an https:// proxy
        self.port = free_port()
        self._logfile = Path(tempfile.mkstemp(prefix="pproxy-", suffix=".log")[1])
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        cred = f"{self.auth}@" if self.auth else ""
        scheme = "https" if self.tls else self.scheme
        return f"{scheme}://{cred}127.0.0.1:{self.port}"

    def start(self) -> Pproxy:
        scheme = f"{self.scheme}+ssl" if self.tls else self.scheme
        listen = f"{scheme}://127.0.0.1:{self.port}" + (f"#{self.auth}" if self.auth else "")
        argv = [sys.executable, "-u", "-m", "pproxy", "-l", listen, "-v"]
        if self.tls:
            argv += ["--ssl", f"{self.tls[0]},{self.tls[1]}"]
        with self._logfile.open("wb") as out:
            self._proc = subprocess.Popen(
                argv,
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


class RefusingProxy:
    """A minimal HTTP proxy that answers every request (CONNECT included) with one status line.

    Real proxies such as squid answer a CONNECT they will not or cannot make with 403 or 502;
    pproxy just hangs up, so this stands in for them.
    """

    def __init__(self, status: bytes = b"502 Bad Gateway") -> None:
        self.status = status
        self.requests: list[bytes] = []
        self._srv = socket.socket()
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(8)
        self.port = int(self._srv.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:  # read the whole request: closing on unread data resets
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                self.requests.append(head.split(b"\r\n", 1)[0])
                extra = b'Proxy-Authenticate: Basic realm="proxy"\r\n' if self.status.startswith(b"407") else b""
                conn.sendall(b"HTTP/1.1 " + self.status + b"\r\n" + extra + b"Content-Length: 0\r\n\r\n")

    def __enter__(self) -> RefusingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._srv.close()


async def stream_into(
    client: openai.AsyncOpenAI, received: list[str], text: str = "x", model: str = "gpt-4o-mini"
) -> None:
    """Stream one reply, appending each piece of text to ``received`` as it arrives."""
    stream = await stream_chat(client, {"model": model, "messages": [{"role": "user", "content": text}],
                                        "stream": True})  # as the exchange sends it
    async with stream:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
