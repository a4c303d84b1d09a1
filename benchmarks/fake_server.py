"""``tests/support/fakeopenai.py`` as its own process, stamping when each content chunk goes out.

The benchmarks run the fake API in another process so that its streaming threads never
compete with the measuring client for the GIL. ``GET /_stamps`` returns the
``time.monotonic()`` of every chat request's arrival and of every content chunk sent
so far (the same clock across processes on Linux); ``DELETE /_stamps`` forgets them. Prints its base URL, then serves.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support import fakeopenai

stamps: list[float] = []
requests: list[float] = []
_lock = threading.Lock()
_chunk_json = fakeopenai._chunk_json


def stamped(rid: str, model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    """The fake's chunk encoder, noting when a chunk with text is about to be written."""
    if delta.get("content"):
        with _lock:
            stamps.append(time.monotonic())
    return _chunk_json(rid, model, delta, finish)


class StampingFake(fakeopenai.FakeOpenAI):
    """The fake server, plus ``/_stamps``."""

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


if __name__ == "__main__":
    fakeopenai._chunk_json = stamped
    api = StampingFake().start()
    print(api.url, flush=True)
    sys.stdin.read()  # serve until the benchmark closes our stdin
    api.stop()
