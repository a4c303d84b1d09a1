"""Building the openai client: key, endpoint, proxy, timeouts, retries; and errors users can act on.

One ``AsyncOpenAI`` (with its connection pool) is reused while the settings that shape a
connection stay the same; a change in the editor builds a new one for the next request.

Proxies are chosen here, per request, by one function (:func:`choose_proxy`) that both
routes the traffic and reports what ``gpt-ls check`` shows, so the two cannot disagree:
the ``proxy`` setting wins ("" = no proxy); unset, the standard ``HTTPS_PROXY`` /
``HTTP_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` variables apply (lower case first).

Retries are the SDK's: they happen only before a response starts (connection errors,
timeouts, 429 and 5xx); a stream cut after text arrived is never retried, so no text is
ever duplicated.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import shlex
import socket
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai

from gpt_ls.errors import (
    AuthError,
    BadRequest,
    ConnectionFailed,
    ContextTooLarge,
    GptLsError,
    KeyCommandFailed,
    ModelNotFound,
    NoApiKey,
    ProxyFailed,
    QuotaExhausted,
    RateLimited,
    RequestTimeout,
    ServerError,
    SocksUnavailable,
    StreamInterrupted,
    TlsFailed,
)
from gpt_ls.settings import PROXY_SCHEMES, Settings, redact_url

__all__ = [
    "ClientCache",
    "ProxyChoice",
    "choose_proxy",
    "describe_error",
    "endpoint_url",
    "make_client",
    "model_param",
    "proxy_for",
    "redact_url",
    "resolve_api_key",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_AZURE_API_VERSION = "2024-10-21"
NO_KEY_MESSAGE = (
    "No API key: set OPENAI_API_KEY, or apiKey / apiKeyCommand in the settings "
    "(editor settings, .gpt-ls.toml in the workspace or config.toml in the user config dir)"
)
# Modest pool: an editor makes a handful of concurrent requests at most.
LIMITS = httpx2.Limits(max_connections=20, max_keepalive_connections=5, keepalive_expiry=30.0)


# --------------------------------------------------------------------------- endpoint


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


# --------------------------------------------------------------------------- API key

_KEY_CACHE: dict[str, str] = {}
_KEY_TASKS: dict[str, asyncio.Task[str]] = {}


def _known_keys(settings: Settings | None) -> list[str]:
    """Every key gpt-ls may hold, so they can be scrubbed from any text shown."""
    keys = list(_KEY_CACHE.values())
    if settings is not None and settings.api_key:
        keys.append(settings.api_key)
    return [k for k in keys if len(k) >= 4]


def forget_api_key_command() -> None:
    """Drop cached command output (e.g. after a 401, so a rotated key is fetched again)."""
    _KEY_CACHE.clear()
    _KEY_TASKS.clear()


def _split_command(command: str) -> list[str]:
    """Shell-like splitting without a shell; on Windows backslashes in paths are kept."""
    if os.name != "nt":
        return shlex.split(command)
    return [
        a[1:-1] if len(a) >= 2 and a[0] == a[-1] and a[0] in "\"'" else a
        for a in shlex.split(command, posix=False)
    ]


async def _run_key_command(command: str, timeout: float) -> str:
    """Run ``apiKeyCommand`` without a shell; its first output line is the key."""
    try:
        argv = _split_command(command)
    except ValueError as exc:
        raise KeyCommandFailed(
            f"apiKeyCommand cannot be parsed ({exc}): check its quoting"
        ) from None
    if not argv:
        raise KeyCommandFailed("apiKeyCommand is empty: give a program that prints the API key")
    prog = argv[0]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,  # the server's stdin is the LSP wire
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise KeyCommandFailed(
            f"apiKeyCommand program {prog!r} not found: check its name or give its full path"
        ) from None
    except OSError as exc:
        raise KeyCommandFailed(
            f"apiKeyCommand program {prog!r} cannot be started ({exc.strerror})"
        ) from None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise KeyCommandFailed(
            f"apiKeyCommand ({prog}) did not finish within {timeout:g} s: it must print the key "
            "without waiting for input (raise apiKeyCommandTimeout if it is only slow)"
        ) from None
    if proc.returncode != 0:
        raise KeyCommandFailed(
            f"apiKeyCommand ({prog}) failed with exit status {proc.returncode}: "
            "run it in a terminal to see why"
        )
    lines = out.decode("utf-8", "replace").strip().splitlines()
    key = lines[0].strip() if lines else ""
    if not key:
        raise KeyCommandFailed(
            f"apiKeyCommand ({prog}) printed nothing: it must print the API key on its first line"
        )
    return key


def _usable(key: str, origin: str) -> str:
    """HTTP headers carry only printable ASCII: catch pasted full-width or curly characters."""
    if key.isascii() and key.isprintable() and " " not in key:
        return key
    raise NoApiKey(
        f"The API key from {origin} contains spaces or characters an API key cannot have "
        "(non-ASCII, e.g. full-width or curly quotes): copy it again"
    )


async def resolve_api_key(settings: Settings) -> str:
    """The key to use: ``apiKey`` > ``apiKeyCommand`` (run once per process) > none."""
    if settings.api_key:
        return _usable(settings.api_key, "apiKey / OPENAI_API_KEY")
    command = settings.api_key_command
    if not command:
        raise NoApiKey(NO_KEY_MESSAGE)
    if command in _KEY_CACHE:
        return _KEY_CACHE[command]
    task = _KEY_TASKS.get(command)
    if task is None or task.get_loop() is not asyncio.get_running_loop():
        # Concurrent first requests share one run of the command.
        task = asyncio.ensure_future(_run_key_command(command, settings.api_key_command_timeout))
        _KEY_TASKS[command] = task
    try:
        key = await asyncio.shield(task)
    finally:
        if task.done():
            _KEY_TASKS.pop(command, None)
    _KEY_CACHE[command] = _usable(key, "apiKeyCommand")
    return key


# --------------------------------------------------------------------------- proxies


@dataclass(frozen=True)
class ProxyChoice:
    """The proxy for one URL (``None`` = direct) and why, for ``gpt-ls check`` and errors."""

    url: str | None
    source: str

    @property
    def shown(self) -> str:
        """The proxy URL with its password redacted."""
        return redact_url(self.url) if self.url else "none (direct)"


def _env_proxies(env: Mapping[str, str]) -> dict[str, str]:
    """``{"https": url, "no": "a,b"}`` from ``*_proxy`` variables; lower case wins, like urllib."""
    found: dict[str, str] = {}
    for name, value in env.items():
        if value and name.upper() == name and name.lower().endswith("_proxy"):
            found[name[:-6].lower()] = value
    for name, value in env.items():
        if value and name.lower() == name and name.endswith("_proxy"):
            found[name[:-6]] = value
    return found


def _host_port(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return (parts.hostname or "").lower(), port


def _no_proxy_entry(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address -> (host, port or None)."""
    bracketed = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", entry)
    if bracketed:
        return bracketed.group(1), int(bracketed.group(2)) if bracketed.group(2) else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        return name, int(port) if port.isdigit() else None
    return entry, None


def no_proxy_matches(host: str, port: int | None, no_proxy: str) -> bool:
    """Does ``NO_PROXY`` exclude this host? Names match subdomains; IPs, CIDR and ports work."""
    host = host.strip("[]").lower()
    try:
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return True
        name, want_port = _no_proxy_entry(entry)
        if not name or (want_port is not None and want_port != port):
            continue
        if addr is not None:
            try:
                if addr in ipaddress.ip_network(name, strict=False):
                    return True
                continue
            except ValueError:
                pass
        name = name.removeprefix("*").removeprefix(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def choose_proxy(
    settings: Settings, url: str, env: Mapping[str, str] | None = None
) -> ProxyChoice:
    """The proxy a request to ``url`` goes through, and where that choice came from."""
    if settings.proxy is not None:
        if settings.proxy == "":
            return ProxyChoice(None, "setting proxy = \"\" (proxies off)")
        return ProxyChoice(settings.proxy, "setting proxy")
    proxies = _env_proxies(os.environ if env is None else env)
    scheme = urlsplit(url).scheme.lower()
    for key in (scheme, "all"):
        value = proxies.get(key)
        if not value:
            continue
        var = f"{key.upper()}_PROXY"
        host, port = _host_port(url)
        if proxies.get("no") and no_proxy_matches(host, port, proxies["no"]):
            return ProxyChoice(None, f"NO_PROXY excludes {host}")
        return ProxyChoice(value if "://" in value else f"http://{value}", var)
    return ProxyChoice(None, "no proxy configured")


def proxy_for(settings: Settings, url: str, env: Mapping[str, str] | None = None) -> str | None:
    """The proxy used for ``url`` (None = direct); show it through ``redact_url``."""
    return choose_proxy(settings, url, env).url


_SSL_CONTEXTS: dict[tuple[str, str], ssl.SSLContext] = {}


def _ssl_context() -> ssl.SSLContext:
    """One verifying context per SSL_CERT_FILE / SSL_CERT_DIR: loading CAs costs ~25 ms each."""
    key = (os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""))
    if key not in _SSL_CONTEXTS:
        _SSL_CONTEXTS[key] = httpx2.create_ssl_context(trust_env=True)
    return _SSL_CONTEXTS[key]


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
                raise _socks_missing(proxy) from None
        return self._via[proxy]

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await self.transport(str(request.url)).handle_async_request(request)

    async def aclose(self) -> None:
        await self._direct.aclose()
        for transport in self._via.values():
            await transport.aclose()


def _socks_missing(proxy: str) -> SocksUnavailable:
    return SocksUnavailable(
        f"The proxy {redact_url(proxy)} is a SOCKS proxy but SOCKS support is not installed: "
        "run `pip install socksio` in gpt-ls's Python environment, or use an http:// proxy"
    )


# --------------------------------------------------------------------------- client


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
        event_hooks={"response": [_no_retry_when_quota_is_gone]},
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


# --------------------------------------------------------------------------- errors

_SK = re.compile(r"\b(sk-[A-Za-z0-9]{0,4})[A-Za-z0-9_*\-.]{8,}")
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")
_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^@\s/]*@", re.IGNORECASE)


def scrub(text: str, settings: Settings | None = None) -> str:
    """Remove anything key-like (and URL passwords) from text that will be shown or logged."""
    for key in sorted(_known_keys(settings), key=len, reverse=True):
        text = text.replace(key, "***")
    text = _SK.sub(r"\1***", text)
    text = _BEARER.sub(r"\1***", text)
    return _URL_PASSWORD.sub(r"\1***@", text)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes, outermost first (cycle-safe)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _find(exc: BaseException, *types: type[BaseException]) -> BaseException | None:
    return next((e for e in _chain(exc) if isinstance(e, types)), None)


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    msg: Any = None
    if isinstance(body, Mapping):
        msg = body.get("message")
        inner = body.get("error")
        if msg is None and isinstance(inner, Mapping):
            msg = inner.get("message")
    if not isinstance(msg, str) or not msg.strip():
        msg = exc.response.text if exc.response.text.strip() else exc.response.reason_phrase
    text = " ".join(str(msg).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _retries(exc: openai.APIStatusError) -> str:
    count = exc.response.request.headers.get("x-stainless-retry-count", "0")
    if count in ("", "0"):
        return ""
    return f", after {count} {'retry' if count == '1' else 'retries'}"


def _reason(exc: BaseException) -> str:
    """The innermost readable reason ("Connection refused", "Name or service not known")."""
    texts = []
    for e in _chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError) and e.verify_message:
            return e.verify_message
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, socket.gaierror):
            return e.strerror or str(e)
        text = str(e).strip()
        if text and text not in ("Connection error.", "Request timed out."):
            texts.append(text)
    return texts[-1] if texts else type(exc).__name__


def describe_error(
    exc: BaseException,
    settings: Settings,
    *,
    during_stream: bool = False,
    env: Mapping[str, str] | None = None,
) -> GptLsError:
    """Turn any failure into one sentence naming the cause and the next step.

    ``during_stream``: the exception came while iterating a stream after text had
    arrived, so a dropped connection or a stall is an interrupted reply. A 401/403 also
    forgets the cached output of ``apiKeyCommand``, so a rotated key is picked up.
    """
    err = _classify(exc, settings, during_stream, env)
    if isinstance(err, AuthError) and settings.api_key_command and not settings.api_key:
        # A rejected key from the command is stale: run the command again next time.
        _KEY_CACHE.pop(settings.api_key_command, None)
    err.message = scrub(err.message, settings)
    err.args = (err.message,)
    return err


def _classify(
    exc: BaseException,
    settings: Settings,
    during_stream: bool,
    env: Mapping[str, str] | None,
) -> GptLsError:
    if isinstance(exc, GptLsError):
        return exc
    where = redact_url(endpoint_url(settings))
    request_url = endpoint_url(settings)
    if isinstance(exc, openai.APIError):
        try:
            request_url = str(exc.request.url)
        except RuntimeError:
            pass
    choice = choose_proxy(settings, request_url, env)
    via = f"the proxy {choice.shown} (from {choice.source})"
    # Where the request went, naming the proxy on the way: it may be the one answering.
    where_via = f"{where} via the proxy {choice.shown}" if choice.url else where
    if isinstance(exc, ImportError) and "socks" in str(exc).lower():
        return _socks_missing(choice.url or settings.proxy or "socks5://")
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc, settings, where_via, via)
    if isinstance(exc, openai.APITimeoutError) or (
        isinstance(exc, httpx2.TimeoutException | asyncio.TimeoutError | TimeoutError)
    ):
        if _find(exc, httpx2.ConnectTimeout):
            if choice.url:
                return ProxyFailed(
                    f"Cannot reach {via}: no connection within {settings.connect_timeout:g} s; "
                    "check that the proxy is running and the proxy setting is right"
                )
            return ConnectionFailed(
                f"Cannot connect to {where} within {settings.connect_timeout:g} s "
                "(connectTimeout): the network may block it; if you need a proxy, set the proxy "
                "setting or HTTPS_PROXY"
            )
        if during_stream:
            return StreamInterrupted(
                f"The reply from {where_via} stalled for {settings.read_timeout:g} s (readTimeout) "
                "and was cut off; the reply is incomplete: ask again to get the rest"
            )
        return RequestTimeout(
            f"No answer from {where_via} within {settings.read_timeout:g} s (readTimeout): "
            "the server may be overloaded; try again, or raise readTimeout"
        )
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError | OSError):
        return _connection_error(
            exc, settings, during_stream, where, where_via, request_url, choice, via
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return ServerError(
            f"{where} sent a response gpt-ls cannot read: is baseUrl an OpenAI-compatible API?"
        )
    if isinstance(exc, openai.OpenAIError) and "api_key" in str(exc):
        return NoApiKey(NO_KEY_MESSAGE)
    return GptLsError(f"Unexpected error talking to {where}: {type(exc).__name__}: {exc}")


# How OpenAI-compatible servers (vLLM, DeepSeek, Ollama, …) word these without an error code.
_TOO_LONG = re.compile(r"maximum context length|context length exceeded|context_length", re.I)
_UNKNOWN_MODEL = re.compile(
    r"\bmodel\b.*\b(not exist|does ?n[o']?t exist|not found|unknown|not supported)"
    r"|\b(unknown|invalid|unsupported) model\b",
    re.I,
)


def _status_error(
    exc: openai.APIStatusError, settings: Settings, where: str, via: str
) -> GptLsError:
    status = exc.status_code
    said = _server_message(exc)
    code = exc.code or ""
    model = model_param(settings)
    if status == 401:
        return AuthError(
            f"API key rejected (401) by {where}: check apiKey / apiKeyCommand / OPENAI_API_KEY "
            "(the key may be wrong, revoked, or meant for another service)"
        )
    if status == 403:
        return AuthError(
            f"Access denied (403) by {where}: {said} — the key may lack access to model "
            f"{model!r}, to this organization or project, or the region may be unsupported"
        )
    if status == 404:
        hint = "azureDeployment" if settings.azure_endpoint else "the model setting"
        return ModelNotFound(
            f"Model {model!r} not found (404) at {where}: check {hint}; if the model exists, "
            "check baseUrl (many servers need the /v1 suffix)"
        )
    if status == 407:
        return ProxyFailed(
            f"{via[0].upper()}{via[1:]} requires a login (407): write user:password@ before the "
            "host in the proxy URL"
        )
    if status == 429:
        if code == "insufficient_quota":
            return QuotaExhausted(
                f"Quota exhausted (429 insufficient_quota) at {where}: add credit or raise the "
                "spending limit in your account's billing settings; retrying will not help"
            )
        after = exc.response.headers.get("retry-after")
        wait = f"; the server asks to wait {after} s" if after else ""
        return RateLimited(
            f"Rate limit reached (429) at {where}{_retries(exc)}{wait}: wait a moment and try again"
        )
    if status == 402:
        return QuotaExhausted(
            f"Payment required (402) at {where}: {said} — add credit to your account; retrying "
            "will not help"
        )
    if code == "context_length_exceeded" or _TOO_LONG.search(said):
        return ContextTooLarge(
            f"The request is too long for model {model!r} ({where}): select less text or start "
            "a new conversation"
        )
    if status in (400, 422) and (code in ("model_not_found", "invalid_model")
                                 or _UNKNOWN_MODEL.search(said)):
        hint = "azureDeployment" if settings.azure_endpoint else "the model setting"
        return ModelNotFound(
            f"Model {model!r} is not available at {where} ({status}: {said}): check {hint}"
        )
    if status in (400, 413, 422):
        return BadRequest(f"{where} rejected the request ({status}): {said}")
    if status >= 500:
        return ServerError(
            f"{where} had a server error ({status}{_retries(exc)}): {said} — try again later; "
            "if it persists, check the service's status page"
        )
    return GptLsError(f"{where} answered {status}: {said}")


def _tls_error(
    tls: BaseException, reason: str, settings: Settings, request_url: str, choice: ProxyChoice
) -> TlsFailed:
    """Name the TLS peer: the endpoint, or the https:// proxy in front of it."""
    host = urlsplit(request_url).hostname or redact_url(endpoint_url(settings))
    proxy_tls = urlsplit(choice.url or "").scheme.lower() == "https"
    if proxy_tls and urlsplit(request_url).scheme.lower() != "https":
        peer = f"the proxy {choice.shown}"
    elif proxy_tls:
        peer = f"{host} or the proxy {choice.shown}"
    else:
        peer = host
    if isinstance(tls, ssl.SSLCertVerificationError):
        return TlsFailed(
            f"TLS certificate of {peer} could not be verified ({reason}): if your network or "
            "proxy uses its own certificate authority, set SSL_CERT_FILE to a CA bundle "
            "(PEM file) that includes it"
        )
    if proxy_tls:
        return TlsFailed(
            f"TLS handshake with {peer} failed ({reason}): if the proxy is a plain HTTP proxy, "
            "write its URL with http://, not https://"
        )
    return TlsFailed(
        f"TLS handshake with {host} failed ({reason}): check that baseUrl uses https:// only "
        "for a TLS server; to trust an extra CA, set SSL_CERT_FILE"
    )


def _connection_error(
    exc: BaseException,
    settings: Settings,
    during_stream: bool,
    where: str,
    where_via: str,
    request_url: str,
    choice: ProxyChoice,
    via: str,
) -> GptLsError:
    reason = _reason(exc)
    if during_stream:
        return StreamInterrupted(
            f"The connection to {where_via} was cut mid-reply ({reason}); the reply is incomplete: "
            "ask again to get the rest"
        )
    tls = _find(exc, ssl.SSLError)
    if tls is not None:
        return _tls_error(tls, reason, settings, request_url, choice)
    if choice.url:
        if _find(exc, httpx2.ProxyError):
            return ProxyFailed(
                f"{via[0].upper()}{via[1:]} refused to connect to {where} ({reason}): check the "
                "proxy's address, login and rules"
            )
        if _find(exc, httpx2.ConnectError, ConnectionRefusedError, socket.gaierror):
            return ProxyFailed(
                f"Cannot reach {via} ({reason}): check that the proxy is running and that the "
                "proxy setting (or HTTPS_PROXY / ALL_PROXY) is right"
            )
        return ProxyFailed(
            f"{via[0].upper()}{via[1:]} dropped the request to {where} ({reason}): it may refuse "
            "this destination or be unable to reach it"
        )
    if _find(exc, socket.gaierror):
        name = urlsplit(endpoint_url(settings)).hostname
        return ConnectionFailed(
            f"Cannot resolve the host name {name!r} of {where} (DNS failure: {reason}): check "
            "baseUrl and your network; behind a firewall, set a proxy"
        )
    if _find(exc, ConnectionRefusedError):
        return ConnectionFailed(
            f"Connection refused by {where}: nothing is listening there; check baseUrl and that "
            "the server is running"
        )
    if _find(exc, httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.WriteError):
        return ConnectionFailed(
            f"{where} closed the connection without a complete answer ({reason}): try again; if "
            "it keeps happening, a firewall or proxy may be cutting the connection"
        )
    return ConnectionFailed(
        f"Cannot connect to {where} ({reason}): check your network, baseUrl and proxy settings"
    )
