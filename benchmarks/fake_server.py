"""``tests.support.fakeopenai`` as its own process, stamping when each content chunk goes out.

The benchmarks run the fake API in another process so that its streaming threads never
compete with the measuring client for the GIL. ``GET /_stamps`` returns the
``time.monotonic()`` of every chat request's arrival and of every content chunk sent
so far (the same clock across processes on Linux); ``DELETE /_stamps`` forgets them.
Run as ``python -m benchmarks.fake_server`` from the repository root, it prints its base
URL, then serves; ``RemoteFake`` starts it that way and scripts it over HTTP.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.support import fakeopenai

ROOT = Path(__file__).resolve().parent.parent

stamps: list[float] = []
requests: list[float] = []
#: A "model" for the completion benchmarks (``POST /_truth``): unscripted chat requests whose last
#: message marks a cursor are answered with the true rest of the line from this text, or a wrong guess.
truth: dict[str, Any] = {"text": "", "delay": 0.0, "right": 60}
_lock = threading.Lock()
_chunk_json = fakeopenai._chunk_json


def stamped(rid: str, model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    """The fake's chunk encoder, noting when a chunk with text is about to be written."""
    if delta.get("content"):
        with _lock:
            stamps.append(time.monotonic())
    return _chunk_json(rid, model, delta, finish)


def continuation(text: str, body: Any, right: int) -> str | None:
    """The rest of the cursor's line (or the next line) in ``text``, for ``right`` % of cursors; else a wrong guess."""
    messages = body.get("messages", []) if isinstance(body, dict) else []
    content = str(messages[-1].get("content", "")) if messages else ""
    if "<CURSOR>" not in content:
        return None
    tail = content.split("<CURSOR>")[0][-160:]
    found = text.find(tail)
    if found < 0:
        return "wrong_guess()"
    pos = found + len(tail)
    if (pos * 2654435761) % 100 >= right:  # deterministic: the same cursor always gets the same answer
        return "wrong_guess()"
    end = text.find("\n", pos + (1 if text.startswith("\n", pos) else 0))
    return text[pos : end if end >= 0 else len(text)]


class StampingFake(fakeopenai.FakeOpenAI):
    """The fake server, plus ``/_stamps`` and ``/_truth``."""

    def _next(self, body: Any) -> fakeopenai.Behaviour:
        with self._lock:
            queued = bool(self.queue)
        guess = continuation(truth["text"], body, truth["right"]) if truth["text"] and not queued else None
        if guess is None:
            return super()._next(body)
        return fakeopenai.Reply(text=guess, chunk_size=4, first_delay=truth["delay"])

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler_class()

        class Handler(base):  # type: ignore[valid-type,misc]
            def do_GET(self) -> None:
                if self.path.endswith("/_stamps"):
                    with _lock:
                        data = json.dumps({"requests": requests, "content": stamps}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                super().do_GET()

            def do_POST(self) -> None:
                if self.path.endswith("/_truth"):
                    length = int(self.headers.get("Content-Length") or 0)
                    truth.update(json.loads(self.rfile.read(length)))
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path.endswith("/chat/completions"):
                    with _lock:
                        requests.append(time.monotonic())
                super().do_POST()

            def do_DELETE(self) -> None:
                with _lock:
                    stamps.clear()
                    requests.clear()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler


class RemoteFake:
    """This module in its own process, scripted over HTTP."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.fake_server"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def script(self, *behaviours: fakeopenai.Reply) -> None:
        """Queue replies; each request takes the next one."""
        self._call("POST", "/_script", [asdict(b) for b in behaviours])

    def stamps(self) -> list[float]:
        """``time.monotonic()`` of each content chunk sent since the last ``clear_stamps``."""
        return list(self._call("GET", "/_stamps")["content"])

    def request_stamps(self) -> list[float]:
        """``time.monotonic()`` of each chat request's arrival since the last ``clear_stamps``."""
        return list(self._call("GET", "/_stamps")["requests"])

    def set_truth(self, text: str, delay: float, right: int = 60) -> None:
        """Answer completion requests from ``text`` after ``delay`` s (right for ``right`` % of cursors)."""
        self._call("POST", "/_truth", {"text": text, "delay": delay, "right": right})

    def clear_stamps(self) -> None:
        self._call("DELETE", "/_stamps")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    fakeopenai._chunk_json = stamped
    api = StampingFake().start()
    print(api.url, flush=True)
    sys.stdin.read()  # serve until the benchmark closes our stdin
    api.stop()
