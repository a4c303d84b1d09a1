"""A real OpenAI-compatible HTTP server on 127.0.0.1 for the tests.

It speaks just enough of ``POST /v1/chat/completions`` (streaming SSE with a final
usage chunk, or a plain JSON body), ``POST /v1/completions`` (fill-in-the-middle: ``prompt``
and ``suffix``, streamed or not) and ``GET /v1/models`` for the openai SDK to talk
to it over real HTTP.  Tests queue *behaviours* (a reply, an error status, a stall, a
cut stream, raw bytes); with nothing queued it answers with an echo of the last user
message, so editor tests that do not care about the text still get a reply.

Every request is recorded (path, headers, JSON body) so tests can assert exactly what
gpt-ls sent.  It can also run as a process (``python -m tests.support.fakeopenai --port N``);
then ``POST /_script`` with a JSON list of behaviours queues them and
``GET /_requests`` returns what was recorded. ``POST /_resume`` resumes a held reply, for
scripts running inside an editor. *Rules* (``rule()``, ``POST /_rules``) answer every request
whose body contains a text, as often as asked: completions as you type ask an unknown number
of times.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.support import fakeembed


@dataclass
class Reply:
    """A successful completion, streamed in ``chunks`` (or split into ``chunk_size``)."""

    text: str = "Hello from the fake model."
    chunks: list[str] | None = None
    chunk_size: int = 8
    first_delay: float = 0.0
    delay: float = 0.0
    usage: bool = True
    finish_reason: str | None = "stop"
    done: bool = True
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    #: Send this many pieces, then hold the rest until ``FakeOpenAI.resume()`` (``held`` is set
    #: meanwhile): a test can act while the reply is provably still streaming.
    hold_after: int | None = None
    kind: str = "reply"

    def pieces(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        size = max(1, self.chunk_size)
        return [self.text[i : i + size] for i in range(0, len(self.text), size)]


@dataclass
class Error:
    """An HTTP error status with an OpenAI-style JSON error body (or a raw ``body``)."""

    status: int = 500
    message: str = "The server had an error while processing your request."
    code: str | None = None
    type: str = "server_error"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    content_type: str = "application/json"
    kind: str = "error"


@dataclass
class Stall:
    """Stream ``text`` in chunks, then stop sending (keep the socket open) for ``seconds``."""

    text: str = ""
    chunk_size: int = 8
    seconds: float = 30.0
    before_headers: bool = False
    kind: str = "stall"


@dataclass
class Cut:
    """Stream ``text`` in chunks, then close the connection without finishing."""

    text: str = "Partial"
    chunk_size: int = 8
    kind: str = "cut"


@dataclass
class Raw:
    """Send these exact bytes as the whole HTTP response (status line included)."""

    data: bytes = b""
    kind: str = "raw"


@dataclass
class Endless:
    """Stream ``piece`` forever (every ``delay`` seconds), until the client hangs up."""

    piece: str = "endless "
    delay: float = 0.0
    kind: str = "endless"


@dataclass
class GiantLine:
    """Start an SSE stream (``before`` as a first delta), then ``size`` bytes of one line without a newline."""

    size: int = 64 * 1024 * 1024
    before: str = ""
    kind: str = "giant"


@dataclass
class Redirect:
    """Answer ``status`` with ``Location: location``."""

    location: str = "http://127.0.0.2:9/v1/chat/completions"
    status: int = 307
    kind: str = "redirect"


Behaviour = Reply | Error | Stall | Cut | Raw | Endless | GiantLine | Redirect
KINDS: dict[str, type] = {"reply": Reply, "error": Error, "stall": Stall, "cut": Cut, "raw": Raw,
                          "endless": Endless, "giant": GiantLine, "redirect": Redirect}


def _behaviour(item: dict[str, Any]) -> Behaviour:
    """A behaviour from its JSON form (``kind`` and the fields), as ``/_script`` and ``/_rules`` take it."""
    cls = KINDS[item.pop("kind", "reply")]
    if cls is Raw:
        item["data"] = item.get("data", "").encode()
    behaviour: Behaviour = cls(**item)
    return behaviour


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []


def rough_tokens(text: str) -> int:
    """A stand-in token count for the usage chunk (tests assert what the server says)."""
    return max(1, len(text.split())) if text else 0


def _chunk_json(rid: str, model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    obj = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


def _fim_chunk_json(rid: str, model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    """A ``/v1/completions`` stream event carrying the same delta as ``_chunk_json``."""
    obj = {
        "id": rid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": delta.get("content", ""), "finish_reason": finish, "logprobs": None}],
    }
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


def is_fim(path: str) -> bool:
    """A legacy completions request (``/v1/completions``), not a chat one."""
    p = urlsplit(path).path.rstrip("/")
    return p.endswith("/completions") and not p.endswith("/chat/completions")


class _Chunked:
    """HTTP/1.1 chunked transfer encoding, as the real API streams: a cut is detectable."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def write(self, data: bytes) -> None:
        if data:
            self.raw.write(b"%x\r\n%s\r\n" % (len(data), data))

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        self.raw.write(b"0\r\n\r\n")
        self.raw.flush()


class FakeOpenAI:
    """Start with ``with FakeOpenAI() as api:``; ``api.url`` is the base URL (``…/v1``)."""

    def __init__(self, port: int = 0, api_key: str | None = None) -> None:
        self.requests: list[Recorded] = []
        self.queue: deque[Behaviour] = deque()
        #: Behaviours for ``/v1/embeddings`` (an Error, a Stall, Raw bytes; a Reply answers normally);
        #: the vectors come from ``embedder``.
        self.embedding_queue: deque[Behaviour] = deque()
        self.embedder: fakeembed.Embedder = fakeembed.hashed
        self.rules: list[tuple[str, Behaviour]] = []
        self.api_key = api_key
        self.connections = 0
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._resume = threading.Event()
        #: Set while a ``Reply(hold_after=…)`` holds its stream.
        self.held = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours; each request takes the next one."""
        with self._lock:
            self.queue.extend(behaviours)

    def rule(self, needle: str, behaviour: Behaviour) -> None:
        """Answer every request whose JSON body contains ``needle`` with ``behaviour`` (never used up).

        Rules come before the queue; the first matching rule wins.
        """
        with self._lock:
            self.rules.append((needle, behaviour))

    def release_stalls(self) -> None:
        """Let every stalled response finish (close) now."""
        self._release.set()

    def resume(self) -> None:
        """Let a held reply (``Reply(hold_after=…)``) send the rest (or the next one pass its hold)."""
        self._resume.set()

    def script_embeddings(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next embeddings requests (vectors otherwise)."""
        with self._lock:
            self.embedding_queue.extend(behaviours)

    def embedding_requests(self) -> list[Recorded]:
        return [r for r in self.requests if urlsplit(r.path).path.endswith("/embeddings")]

    def embedded_texts(self) -> list[str]:
        """Every input of every embeddings request, in order."""
        out: list[str] = []
        for r in self.embedding_requests():
            inputs = r.body.get("input") if isinstance(r.body, dict) else None
            out.extend([inputs] if isinstance(inputs, str) else list(inputs or []))
        return out

    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if urlsplit(r.path).path.endswith("/chat/completions")]

    def fim_requests(self) -> list[Recorded]:
        """The ``/v1/completions`` (fill-in-the-middle) requests."""
        return [r for r in self.requests if is_fim(r.path)]

    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._resume.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next(self, body: Any) -> Behaviour:
        with self._lock:
            if self.rules:
                text = json.dumps(body, ensure_ascii=False)
                for needle, behaviour in self.rules:
                    if needle in text:
                        return behaviour
            if self.queue:
                return self.queue.popleft()
        last = ""
        if isinstance(body, dict) and isinstance(body.get("prompt"), str):
            return Reply(text="Echo: " + body["prompt"][-200:])
        if isinstance(body, dict):
            for m in body.get("messages", []):
                if m.get("role") == "user" and isinstance(m.get("content"), str):
                    last = m["content"]
        return Reply(text="Echo: " + last[-200:])

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake.connections += 1

            def _read_body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    return json.loads(raw) if raw else None
                except ValueError:
                    return raw.decode("utf-8", "replace")

            def _record(self, body: Any) -> None:
                rec = Recorded(self.command, self.path, dict(self.headers.items()), body)
                with fake._lock:
                    fake.requests.append(rec)

            def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(obj, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._record(None)
                if urlsplit(self.path).path.rstrip("/").endswith("/_requests"):
                    self._send_json(200, [asdict(r) for r in fake.requests])
                    return
                if urlsplit(self.path).path.rstrip("/").endswith("/models"):
                    self._send_json(200, {"object": "list", "data": [
                        {"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "fake"}]})
                    return
                self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

            def do_POST(self) -> None:
                body = self._read_body()
                if urlsplit(self.path).path.rstrip("/").endswith("/_resume"):
                    # For an editor's test script: resume a held reply (FakeOpenAI.resume()).
                    fake.resume()
                    self._send_json(200, {"resumed": True})
                    return
                if urlsplit(self.path).path.rstrip("/").endswith("/_rules"):
                    # Replace the rules: [{"needle": ..., "kind": ..., behaviour fields}, ...].
                    rules = [(str(item.pop("needle")), _behaviour(item))
                             for item in (dict(i) for i in (body if isinstance(body, list) else [body]))]
                    with fake._lock:
                        fake.rules = rules
                    self._send_json(200, {"rules": len(rules)})
                    return
                if urlsplit(self.path).path.rstrip("/").endswith("/_script"):
                    items = body if isinstance(body, list) else [body]
                    for item in items:
                        fake.script(_behaviour(dict(item)))
                    self._send_json(200, {"queued": len(items)})
                    return
                self._record(body)
                if fake.api_key is not None:
                    auth = self.headers.get("Authorization", "")
                    if auth != f"Bearer {fake.api_key}":
                        self._send_json(401, {"error": {
                            "message": "Incorrect API key provided.",
                            "type": "invalid_request_error", "code": "invalid_api_key"}})
                        return
                if urlsplit(self.path).path.rstrip("/").endswith("/embeddings"):
                    with fake._lock:
                        queued = fake.embedding_queue.popleft() if fake.embedding_queue else None
                    try:
                        if queued is None or isinstance(queued, Reply):  # a Reply: answer normally
                            self._send_json(200, fakeembed.response(body, fake.embedder))
                        else:
                            self._serve(queued, {})
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                if not urlsplit(self.path).path.rstrip("/").endswith("/completions"):
                    self._send_json(404, {"error": {"message": "unknown path", "type": "invalid_request_error"}})
                    return
                b = fake._next(body)
                try:
                    self._serve(b, body if isinstance(body, dict) else {})
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _serve(self, b: Behaviour, body: dict[str, Any]) -> None:
                model = str(body.get("model", "gpt-4o-mini"))
                fim = is_fim(self.path)
                # Looked up at each call: the benchmarks' fake replaces _chunk_json to stamp chunks.
                def encode(rid: str, model: str, delta: dict[str, Any], finish: str | None) -> bytes:
                    return (_fim_chunk_json if fim else _chunk_json)(rid, model, delta, finish)

                stream = bool(body.get("stream"))
                if isinstance(b, Raw):
                    self.wfile.write(b.data)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if isinstance(b, Error):
                    if b.body is not None:
                        data = b.body.encode()
                        self.send_response(b.status)
                        self.send_header("Content-Type", b.content_type)
                        self.send_header("Content-Length", str(len(data)))
                        for k, v in b.headers.items():
                            self.send_header(k, v)
                        self.end_headers()
                        self.wfile.write(data)
                        return
                    self._send_json(b.status, {"error": {
                        "message": b.message, "type": b.type, "code": b.code, "param": None}}, b.headers)
                    return
                if isinstance(b, Redirect):
                    self.send_response(b.status)
                    self.send_header("Location", b.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if isinstance(b, Endless | GiantLine):
                    self._serve_unbounded(b, model)
                    return
                if isinstance(b, Stall) and b.before_headers:
                    fake._release.wait(b.seconds)
                    self.close_connection = True
                    return
                text = b.text if not isinstance(b, Reply) else "".join(b.pieces())
                prompt_tokens = sum(rough_tokens(str(m.get("content", ""))) for m in body.get("messages", []))
                if fim:
                    prompt_tokens = sum(rough_tokens(str(body.get(k, ""))) for k in ("prompt", "suffix"))
                if isinstance(b, Reply) and b.prompt_tokens is not None:
                    prompt_tokens = b.prompt_tokens
                completion_tokens = rough_tokens(text)
                if isinstance(b, Reply) and b.completion_tokens is not None:
                    completion_tokens = b.completion_tokens
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                         "total_tokens": prompt_tokens + completion_tokens}
                rid = "chatcmpl-fake"
                if not stream:
                    if isinstance(b, Reply) and b.first_delay:
                        time.sleep(b.first_delay)
                    if fim:
                        self._send_json(200, {
                            "id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
                            "model": model, "usage": usage, "choices": [
                                {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}]})
                        return
                    self._send_json(200, {
                        "id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                     "finish_reason": "stop", "logprobs": None}],
                        "usage": usage})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                # Said, since it is so: a client that pooled the connection would send its next
                # request into a socket being closed (an APIConnectionError under load).
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                w = _Chunked(self.wfile)
                if isinstance(b, Reply):
                    if b.first_delay:
                        time.sleep(b.first_delay)
                    w.write(encode(rid, model, {"role": "assistant", "content": ""}, None))
                    pieces = b.pieces()
                    for i, piece in enumerate(pieces):
                        if i == b.hold_after:
                            fake.held.set()
                            fake._resume.wait(60)
                            fake._resume.clear()  # one resume() lets one held reply go on
                            fake.held.clear()
                        if i and b.delay:
                            time.sleep(b.delay)
                        w.write(encode(rid, model, {"content": piece}, None))
                        w.flush()
                    if b.finish_reason is not None:
                        w.write(encode(rid, model, {}, b.finish_reason))
                    if b.usage and b.done:
                        obj = {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()),
                               "model": model, "choices": [], "usage": usage}
                        w.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
                    if b.done:
                        w.write(b"data: [DONE]\n\n")
                    w.flush()
                    w.close()
                    return
                size = max(1, b.chunk_size)
                w.write(encode(rid, model, {"role": "assistant", "content": ""}, None))
                for i in range(0, len(b.text), size):
                    w.write(encode(rid, model, {"content": b.text[i : i + size]}, None))
                w.flush()
                if isinstance(b, Stall):
                    fake._release.wait(b.seconds)
                # Cut (or a stall that ran out): drop the connection mid-stream.
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _serve_unbounded(self, b: Endless | GiantLine, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                w = _Chunked(self.wfile)
                w.write(_chunk_json("chatcmpl-fake", model, {"role": "assistant", "content": ""}, None))
                if isinstance(b, GiantLine):
                    if b.before:
                        w.write(_chunk_json("chatcmpl-fake", model, {"content": b.before}, None))
                    w.write(b'data: {"id": "chatcmpl-fake", "choices": [{"index": 0, "delta": {"content": "')
                    block = b"x" * 65536
                    for _ in range(b.size // len(block)):
                        w.write(block)
                    w.flush()
                    return
                event = _chunk_json("chatcmpl-fake", model, {"content": b.piece}, None)
                while True:  # until the client hangs up (BrokenPipeError)
                    w.write(event)
                    w.flush()
                    if b.delay:
                        time.sleep(b.delay)

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    api = FakeOpenAI(port=args.port, api_key=args.api_key).start()
    print(api.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        api.stop()


if __name__ == "__main__":
    main()
