"""LSP's base protocol, read strictly: ``Content-Length`` headers, bounded, and never HTTP.

pygls reads leniently: it skips any line until a ``Content-Length``, so an HTTP request
with a JSON body (a browser's or a proxy's ``POST / HTTP/1.1``) is taken for LSP, and a
bad or missing length leaves the connection silent. Here every header line must be
``Content-Length`` or ``Content-Type``, the length must be a decimal number up to
:data:`MAX_MESSAGE_BYTES`, and anything else is a :class:`ProtocolViolation`: the
connection is closed (stdio: the server exits) with a line that says why.

Pure (stdlib only): the transports (``lsp/transport.py``) feed it bytes.
"""

from __future__ import annotations

from typing import Protocol

from gpt_ls.errors import ProtocolViolation

#: The largest JSON-RPC message accepted: 64 MiB. A document of tens of megabytes still
#: fits (JSON escaping can double it); a bigger Content-Length closes the connection.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: The longest header line (``Content-Type: application/vscode-jsonrpc; charset=utf-8`` is 54).
MAX_HEADER_LINE = 1024
#: Header lines per message (LSP defines two).
MAX_HEADER_LINES = 8
#: The two headers LSP defines; any other header line closes the connection.
KNOWN_HEADERS = ("content-length", "content-type")
#: How an HTTP request (or response) starts; none of them is an LSP header.
HTTP_STARTS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"OPTIONS ", b"CONNECT ", b"DELETE ", b"PATCH ",
               b"TRACE ", b"PRI ", b"HTTP/")


class ByteReader(Protocol):
    """What a transport offers: a line (with its ``\\n``, at most ``limit`` bytes) and exact reads.

    ``readline`` returns b"" at the end of the stream; ``readexactly`` returns fewer bytes
    than asked only at the end of the stream.
    """

    async def readline(self, limit: int) -> bytes: ...

    async def readexactly(self, n: int) -> bytes: ...


def _shown(line: bytes) -> str:
    """A header line as a log can show it: short, printable."""
    text = line[:60].decode("ascii", "replace").rstrip("\r\n")
    return repr(text + ("…" if len(line) > 60 else ""))


def header_field(line: bytes) -> tuple[str, str]:
    """``(name, value)`` of one header line (with its CRLF); a ProtocolViolation for anything else."""
    if line.upper().startswith(HTTP_STARTS):
        raise ProtocolViolation(f"the client sent HTTP ({_shown(line)}), not LSP: closing the connection. "
                                "This port speaks only LSP; point an editor's LSP client at it.")
    if len(line) > MAX_HEADER_LINE:
        raise ProtocolViolation(f"a header line is longer than {MAX_HEADER_LINE} bytes ({_shown(line)}): "
                                "closing the connection.")
    if not line.endswith(b"\r\n"):
        raise ProtocolViolation(f"a header line does not end with CRLF ({_shown(line)}): closing the connection.")
    name, sep, value = line[:-2].partition(b":")
    if not sep or name.strip().lower().decode("ascii", "replace") not in KNOWN_HEADERS or name != name.strip():
        raise ProtocolViolation(f"unexpected header line {_shown(line)}: LSP has only Content-Length and "
                                "Content-Type; closing the connection.")
    return name.decode("ascii").lower(), value.strip().decode("ascii", "replace")


def content_length(value: str) -> int:
    """The body's size from a ``Content-Length`` value: decimal digits, at most MAX_MESSAGE_BYTES."""
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise ProtocolViolation(f"Content-Length {value[:20]!r} is not a byte count: closing the connection.")
    length = int(value)
    if length > MAX_MESSAGE_BYTES:
        raise ProtocolViolation(
            f"a message of {length:,} bytes is larger than gpt-ls accepts ({MAX_MESSAGE_BYTES:,} bytes, "
            "MAX_MESSAGE_BYTES): closing the connection.")
    return length


async def read_frame(reader: ByteReader) -> bytes | None:
    """The next message's body; None at a clean end of the stream (between messages)."""
    length: int | None = None
    for count in range(MAX_HEADER_LINES + 1):
        line = await reader.readline(MAX_HEADER_LINE + 1)
        if not line:
            if count == 0:
                return None
            raise ProtocolViolation("the stream ended inside a message header: closing the connection.")
        if line == b"\r\n":
            break
        if count == MAX_HEADER_LINES:
            raise ProtocolViolation(f"more than {MAX_HEADER_LINES} header lines: closing the connection.")
        name, value = header_field(line)
        if name == "content-length":
            if length is not None:
                raise ProtocolViolation("two Content-Length headers in one message: closing the connection.")
            length = content_length(value)
    if length is None:
        raise ProtocolViolation("a message has no Content-Length header: closing the connection.")
    body = await reader.readexactly(length)
    if len(body) < length:
        raise ProtocolViolation(f"the stream ended inside a message ({len(body)} of {length} bytes): "
                                "closing the connection.")
    return body
