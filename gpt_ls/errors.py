"""Errors whose text a user can act on.

Every failure that reaches a person (an editor message, a CLI line) is a
``GptLsError``; ``str(err)`` is the whole sentence: what happened and what to do.
The API key never appears in one of these messages.
"""

from __future__ import annotations


class GptLsError(Exception):
    """Base class: ``str(err)`` is the message shown to the user."""

    #: A short label for logs and history rows ("auth", "rate_limit", …).
    kind: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(GptLsError):
    """A setting or a configuration file is wrong."""

    kind = "config"


class NoApiKey(GptLsError):
    """No API key could be found (or the key command failed)."""

    kind = "no_key"


class AuthError(GptLsError):
    """The server rejected the key (401) or the request (403)."""

    kind = "auth"


class ModelNotFound(GptLsError):
    """The model does not exist or the key has no access to it (404)."""

    kind = "model"


class RateLimited(GptLsError):
    """Too many requests (429), or the quota is exhausted."""

    kind = "rate_limit"


class ServerError(GptLsError):
    """The API answered with a 5xx status or an unreadable body."""

    kind = "server"


class BadRequest(GptLsError):
    """The API rejected the request itself (400, 413, 422)."""

    kind = "bad_request"


class ConnectionFailed(GptLsError):
    """The endpoint (or the proxy in front of it) could not be reached."""

    kind = "connection"


class RequestTimeout(GptLsError):
    """The endpoint stopped answering."""

    kind = "timeout"


class StreamInterrupted(GptLsError):
    """The reply stream ended before the reply was complete."""

    kind = "interrupted"


class ContextTooLarge(GptLsError):
    """The request cannot fit into the model's context window."""

    kind = "context"


class HistoryError(GptLsError):
    """The history store failed; the sentence says what happened and what to do."""

    kind = "history"


class ConversationNotFound(HistoryError):
    """No conversation has the id asked for (deleted, pruned, or mistyped)."""


class InvalidRequest(GptLsError):
    """The editor sent something gpt-ls cannot act on (unknown document, bad range…)."""

    kind = "invalid"


class KeyCommandFailed(NoApiKey):
    """``apiKeyCommand`` could not run, failed, timed out or printed nothing."""

    kind = "key_command"


class QuotaExhausted(RateLimited):
    """429 with ``insufficient_quota``: waiting will not help, billing will."""

    kind = "quota"


class ProxyFailed(ConnectionFailed):
    """The proxy could not be reached, refused the connection or could not forward it."""

    kind = "proxy"


class TlsFailed(ConnectionFailed):
    """The TLS handshake failed (usually an untrusted certificate)."""

    kind = "tls"


class SocksUnavailable(ConfigError):
    """A SOCKS proxy is configured but the ``socksio`` package is missing."""

    kind = "socks"


class FileRefused(ConfigError):
    """A file a setting or the workspace names is outside the workspace, not a regular file, or too large."""

    kind = "file"


class ReplyCapped(StreamInterrupted):
    """A cap stopped the reply (``maxReplyChars``, ``maxStreamSeconds``, the stream line limit).

    Like a cut stream, the text received so far is kept and marked unfinished.
    """

    kind = "capped"


class ReplyTooLong(ReplyCapped):
    """The reply reached ``maxReplyChars``."""

    kind = "reply_cap"

    @classmethod
    def at(cls, limit: int, most: float) -> ReplyTooLong:
        return cls(f"The reply reached maxReplyChars ({limit:,} characters) and was stopped; the text "
                   f"received so far is kept. To allow longer replies, raise maxReplyChars (up to {most:,.0f}).")


class StreamTooLong(ReplyCapped):
    """The reply stream ran for ``maxStreamSeconds``."""

    kind = "time_cap"

    @classmethod
    def at(cls, limit: float, most: float) -> StreamTooLong:
        return cls(f"The reply stream ran for maxStreamSeconds ({limit:g} s) and was stopped; the text "
                   f"received so far is kept. To allow longer replies, raise maxStreamSeconds (up to {most:,.0f} s).")


class LineTooLong(ReplyCapped):
    """The endpoint sent a line longer than any reply needs (an endless line eats the memory)."""

    kind = "line_cap"


class RedirectRefused(GptLsError):
    """The endpoint answered with a redirect (3xx): gpt-ls never follows one."""

    kind = "redirect"


class ProtocolViolation(GptLsError):
    """The client broke LSP's framing (a bad or oversized header, HTTP on the LSP port): the connection closes."""

    kind = "protocol"


class ListenRefused(ConfigError):
    """``--tcp`` or ``--socket`` asks for an address or a path gpt-ls will not serve on."""

    kind = "listen"


class WorkspaceIndexError(GptLsError):
    """The workspace index cannot be opened, written or searched; the sentence says why and what to do."""

    kind = "index"


class QueryUnsearchable(WorkspaceIndexError):
    """A search query has nothing to look for (only stop words, punctuation or symbols)."""

    kind = "query"


class EmbeddingsFailed(GptLsError):
    """Embedding chunks or a question failed: search ranks by words alone (BM25) meanwhile."""

    kind = "embeddings"
    #: The kind of the failure underneath ("auth", "model", "rate_limit", …).
    cause_kind: str = "error"
