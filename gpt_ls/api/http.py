"""The openai client: endpoint, TLS, proxy routing, timeouts, retries; one reused per settings.

One ``AsyncOpenAI`` (with its connection pool) is reused while the settings that shape a
connection stay the same; a change in the editor builds a new one for the next request.
Each request is routed direct or through its proxy by :func:`gpt_ls.api.proxy.choose_proxy`.

Retries are the SDK's: they happen only before a response starts (connection errors,
timeouts, 429 and 5xx); a stream cut after text arrived is never retried, so no text is
ever duplicated.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai

from gpt_ls.api.keys import resolve_api_key
from gpt_ls.api.proxy import choose_proxy, socks_missing
from gpt_ls.errors import LineTooLong, ProxyFailed, ServerError
from gpt_ls.secrets import redact_url
from gpt_ls.setting_values import PROXY_SCHEMES
from gpt_ls.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_AZURE_API_VERSION = "2024-10-21"
# Modest pool: an editor makes a handful of concurrent requests at most.
LIMITS = httpx2.Limits(max_connections=20, max_keepalive_connections=5, keepalive_expiry=30.0)


def endpoint_url(settings: Settings) -> str:
    """The URL requests go to (Azure endpoint, ``baseUrl`` or OpenAI's), unredacted."""
    if settings.azure_endpoint:
        return settings.azure_endpoint
    return settings.base_url or DEFAULT_BASE_URL


def model_param(settings: Settings) -> str:
    """What to send as ``model``: on Azure the deployment name, elsewhere the model."""
    if settings.azure_endpoint:
        return settings.azure_deployment or settings.model
    return settings.model


_SSL_CONTEXTS: dict[tuple[str, str], ssl.SSLContext] = {}


#: What the first streamed request would otherwise import on the event loop (~50 ms of CPU).
FIRST_REQUEST_MODULES = ("openai.resources.chat.chat", "openai.resources.chat.completions.completions",
                         "openai.lib.streaming.chat", "anyio._backends._asyncio", "jiter")


_warm_lock = threading.Lock()
_warmed = False


def warm_up() -> None:
    """Build the TLS context, import what the first request needs and rehearse it, once (in a thread).

    The server's background warm-up and the first exchange both call it: the exchange
    then waits for the warm-up instead of doing the same work again on the event loop.
    """
    global _warmed
    import importlib

    with _warm_lock:
        if _warmed:
            return
        _ssl_context()
        for name in FIRST_REQUEST_MODULES:
            try:
                importlib.import_module(name)
            except ImportError as exc:  # another SDK version: the first request imports what it needs
                log.info("warm-up: %s", exc)
        from gpt_ls.api.rehearsal import rehearse

        rehearse()  # the SDK's first-request work, done here (gpt_ls/api/rehearsal.py)
        _warmed = True


def _ssl_context() -> ssl.SSLContext:
    """One verifying context per SSL_CERT_FILE / SSL_CERT_DIR: loading CAs costs ~25 ms each."""
    key = (os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""))
    if key not in _SSL_CONTEXTS:
        _SSL_CONTEXTS[key] = httpx2.create_ssl_context(trust_env=True)
    return _SSL_CONTEXTS[key]


def line_limit(settings: Settings) -> int:
    """The most bytes a response may send without ending a line and an SSE event.

    The SDK holds an event in memory until it ends, so an endless line would eat all of it. No
    event needs more than the whole reply allowed (``maxReplyChars``), JSON-escaped
    (``\\uXXXX``, 6 bytes a character), plus room for the rest of the event.
    """
    return 6 * settings.max_reply_chars + 64 * 1024


#: Where an SSE event ends (a blank line), in each line-ending style.
_EVENT_ENDS = (b"\n\n", b"\r\r", b"\n\r\n", b"\r\n\r")


class _Bounded(httpx2.AsyncByteStream):
    """A response body that stops (raising :class:`LineTooLong`) at a line or event over ``limit`` bytes."""

    def __init__(self, inner: Any, limit: int, where: str, encoding: str) -> None:
        self._inner, self._limit, self._where = inner, limit, where
        self._encoding = encoding.strip().lower()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._encoding not in ("", "identity"):
            raise ServerError(
                f"{self._where} sent a compressed answer ({self._encoding}) although gpt-ls asked "
                "for none; is baseUrl an OpenAI-compatible API?")
        line = event = 0  # bytes since the last line end / event end
        tail = b""
        async for chunk in self._inner:
            seen = tail + chunk
            ends = [seen.rfind(e) + len(e) for e in _EVENT_ENDS if e in seen]
            event = len(seen) - max(ends) if ends else event + len(chunk)
            cut = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
            line = len(chunk) - cut - 1 if cut >= 0 else line + len(chunk)
            if max(line, event) > self._limit:
                raise LineTooLong(
                    f"{self._where} sent a line longer than {self._limit:,} bytes (or an event that "
                    "long), which no reply needs; the reply was stopped and the text received so "
                    "far is kept. If the endpoint is right, raise maxReplyChars: this limit grows "
                    "with it.")
            tail = seen[-3:]
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class _ProxyRouter(httpx2.AsyncBaseTransport):
    """Send each request direct or through its proxy, as :func:`choose_proxy` decides."""

    def __init__(self, settings: Settings, env: Mapping[str, str]) -> None:
        self._settings = settings
        self._env = dict(env)
        self._ssl = _ssl_context()
        self._direct = httpx2.AsyncHTTPTransport(verify=self._ssl, limits=LIMITS)
        self._via: dict[str, httpx2.AsyncHTTPTransport] = {}

    def transport(self, url: str) -> httpx2.AsyncBaseTransport:
        """The pool for ``url``; building a SOCKS one without socksio raises SocksUnavailable."""
        proxy = choose_proxy(self._settings, url, self._env).url
        if proxy is None:
            return self._direct
        if proxy not in self._via:
            scheme = urlsplit(proxy).scheme.lower()
            if scheme not in PROXY_SCHEMES:
                raise ProxyFailed(
                    f"The proxy {redact_url(proxy)} has an unsupported scheme {scheme!r}: "
                    "use http://, https://, socks5:// or socks5h://"
                )
            try:
                self._via[proxy] = httpx2.AsyncHTTPTransport(
                    verify=self._ssl, proxy=proxy, limits=LIMITS
                )
            except ImportError:
                raise socks_missing(proxy) from None
        return self._via[proxy]

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        # Uncompressed, so that the line limit counts the bytes the SDK will hold.
        request.headers["Accept-Encoding"] = "identity"
        response = await self.transport(str(request.url)).handle_async_request(request)
        where = redact_url(endpoint_url(self._settings))
        response.stream = _Bounded(response.stream, line_limit(self._settings), where,
                                   response.headers.get("content-encoding", ""))
        return response

    async def aclose(self) -> None:
        await self._direct.aclose()
        for transport in self._via.values():
            await transport.aclose()


_ENV_CONNECTION_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR")


def _connection_env(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The part of the environment that changes how connections are made."""
    return tuple(
        sorted(
            (k, v)
            for k, v in env.items()
            if k.lower().endswith("_proxy") or k in _ENV_CONNECTION_VARS
        )
    )


async def _log_request_body(request: httpx2.Request) -> None:
    """At -vv only (debug), the request as sent: the prompt, with the document text in it."""
    if log.isEnabledFor(logging.DEBUG):
        body = request.content.decode("utf-8", "replace") if request.content else ""
        log.debug("request %s %s: %s", request.method, redact_url(str(request.url)), body)


async def _no_retry_when_quota_is_gone(response: httpx2.Response) -> None:
    """A 429 ``insufficient_quota`` will not heal by waiting: tell the SDK not to retry it."""
    if response.status_code != 429:
        return
    await response.aread()  # a short JSON error; the SDK reads it again from memory
    if b"insufficient_quota" in response.content:
        response.headers["x-should-retry"] = "false"


def make_client(
    settings: Settings, api_key: str, env: Mapping[str, str] | None = None
) -> openai.AsyncOpenAI:
    """A new client for these settings; prefer :class:`ClientCache` to reuse connections."""
    env = os.environ if env is None else env
    router = _ProxyRouter(settings, env)
    router.transport(endpoint_url(settings))  # a missing socksio fails now, not mid-request
    timeout = httpx2.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    http_client = openai.DefaultAsyncHttpxClient(
        transport=router,
        timeout=timeout,
        event_hooks={"request": [_log_request_body], "response": [_no_retry_when_quota_is_gone]},
        # A redirect would carry the prompt, the key and the headers to another address:
        # a 3xx is reported instead (api/failures.py), naming where it pointed.
        follow_redirects=False,
    )
    common: dict[str, Any] = {
        "api_key": api_key,
        "organization": settings.organization,
        "project": settings.project,
        "default_headers": dict(settings.headers) or None,
        "timeout": timeout,
        "max_retries": settings.max_retries,
        "http_client": http_client,
    }
    log.debug(
        "new openai client: endpoint=%s proxy=%s timeouts=%g/%g s retries=%d",
        redact_url(endpoint_url(settings)),
        choose_proxy(settings, endpoint_url(settings), env).shown,
        settings.connect_timeout,
        settings.read_timeout,
        settings.max_retries,
    )
    if settings.azure_endpoint:
        return openai.AsyncAzureOpenAI(
            azure_endpoint=settings.azure_endpoint,
            api_version=settings.azure_api_version or DEFAULT_AZURE_API_VERSION,
            **common,
        )
    return openai.AsyncOpenAI(base_url=settings.base_url or DEFAULT_BASE_URL, **common)


class ClientCache:
    """One client per connection-relevant settings; a change builds a new one."""

    #: Replaced clients kept open (a stream may still be using one) before being closed.
    KEEP_RETIRED = 4

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = env
        self._key: tuple[Any, ...] | None = None
        self._client: openai.AsyncOpenAI | None = None
        self._retired: list[openai.AsyncOpenAI] = []

    def _signature(self, settings: Settings, api_key: str) -> tuple[Any, ...]:
        env = os.environ if self._env is None else self._env
        return (
            api_key,
            settings.base_url,
            settings.organization,
            settings.project,
            tuple(sorted(settings.headers.items())),
            settings.azure_endpoint,
            settings.azure_api_version,
            settings.proxy,
            settings.connect_timeout,
            settings.read_timeout,
            settings.max_retries,
            _connection_env(env),
        )

    async def get(self, settings: Settings) -> openai.AsyncOpenAI:
        """The client for ``settings``: the cached one if nothing relevant changed."""
        api_key = await resolve_api_key(settings)
        key = self._signature(settings, api_key)
        if self._client is None or key != self._key:
            client = make_client(settings, api_key, self._env)
            if self._client is not None:
                self._retired.append(self._client)
                while len(self._retired) > self.KEEP_RETIRED:
                    await self._retired.pop(0).close()
            self._client, self._key = client, key
        return self._client

    async def aclose(self) -> None:
        """Close every client (at shutdown)."""
        for client in [*self._retired, *([self._client] if self._client else [])]:
            await client.close()
        self._retired.clear()
        self._client, self._key = None, None
