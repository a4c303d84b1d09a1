"""What went wrong, in one sentence naming the cause and the next step.

:func:`describe_error` classifies any failure of a request (an SDK status or connection
error, an ``httpx2`` transport error, a TLS or DNS failure, a stream cut mid-reply) into
a :class:`gpt_ls.errors.GptLsError` subclass whose message names the endpoint (and the
proxy on the way), and scrubs every secret from it.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai

from gpt_ls.api.http import endpoint_url, model_param
from gpt_ls.api.keys import NO_KEY_MESSAGE, forget_api_key_command
from gpt_ls.api.proxy import ProxyChoice, choose_proxy, socks_missing
from gpt_ls.errors import (
    AuthError,
    BadRequest,
    ConnectionFailed,
    ContextTooLarge,
    GptLsError,
    ModelNotFound,
    NoApiKey,
    ProxyFailed,
    QuotaExhausted,
    RateLimited,
    RedirectRefused,
    RequestTimeout,
    ServerError,
    StreamInterrupted,
    TlsFailed,
)
from gpt_ls.secrets import redact_url, scrub
from gpt_ls.settings import Settings


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
        forget_api_key_command(settings.api_key_command)
    err.message = scrub(err.message, settings)
    err.args = (err.message,)
    return err


def _classify(
    exc: BaseException,
    settings: Settings,
    during_stream: bool,
    env: Mapping[str, str] | None,
) -> GptLsError:
    inner = _find(exc, GptLsError)  # e.g. a line limit hit while the SDK read a body
    if isinstance(inner, GptLsError):
        return inner
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
        return socks_missing(choice.url or settings.proxy or "socks5://")
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
    if isinstance(exc, json.JSONDecodeError):
        cut = "; the reply is incomplete: ask again to get the rest" if during_stream else ""
        return ServerError(
            f"{where} sent a reply gpt-ls cannot read (a stream event that is not JSON: {exc.msg}){cut}; "
            "is baseUrl an OpenAI-compatible API?"
        )
    if isinstance(exc, openai.APIError):  # an error event inside the stream
        return ServerError(f"{where} reported an error during the reply: {exc.message} — try again later")
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
    if 300 <= status < 400:
        return _redirect(exc, where)
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


def _redirect(exc: openai.APIStatusError, where: str) -> RedirectRefused:
    """A 3xx names its target; following it would send the prompt, key and headers there."""
    location = exc.response.headers.get("location", "")
    try:
        target = redact_url(str(exc.response.request.url.join(location))) if location else ""
    except Exception:  # a Location that is not a URL
        target = location
    target = " ".join(target.split())
    target = target if len(target) <= 200 else target[:197] + "..."
    to = f" to {target}" if target else " without a target (no Location)"
    return RedirectRefused(
        f"{where} answered {exc.status_code} (a redirect){to}; gpt-ls does not follow redirects, so "
        "that the prompt, the key and the headers never go to another address. If the service "
        "has moved there, set baseUrl to the new address."
    )


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
