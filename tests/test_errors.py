"""Every failure becomes one sentence naming the cause and the next step; never the key.

Each case goes through the real SDK over real HTTP (tests/support/fakeopenai.py), a real TLS
server, a refused port or a port that never completes the TCP handshake.
"""

from __future__ import annotations

import logging
from pathlib import Path

import openai
import pytest

from gpt_ls.api.failures import describe_error
from gpt_ls.api.http import ClientCache
from gpt_ls.api.keys import resolve_api_key
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
    RequestTimeout,
    ServerError,
    TlsFailed,
)
from gpt_ls.secrets import scrub
from gpt_ls.settings import Settings
from tests.support.fakeopenai import Error, FakeOpenAI, Reply, Stall
from tests.support.netkit import (  # noqa: F401 - fixtures
    KEY,
    api_fixture,
    blackhole_port,
    cert_fixture,
    dead_port,
    settings_for,
    tls_api_fixture,
)


async def fail(settings: Settings, *, stream: bool = False) -> GptLsError:
    """Make one request that must fail, and describe its error as the engine will."""
    cache = ClientCache(env={})
    try:
        client = await cache.get(settings)
        with pytest.raises(Exception) as info:
            if stream:
                s = await client.chat.completions.create(
                    model=settings.model, messages=[{"role": "user", "content": "x"}], stream=True
                )
                async with s:
                    async for _ in s:
                        pass
            else:
                await client.chat.completions.create(
                    model=settings.model, messages=[{"role": "user", "content": "x"}]
                )
        return describe_error(info.value, settings, env={})
    finally:
        await cache.aclose()


async def test_no_key() -> None:
    with pytest.raises(NoApiKey) as info:
        await resolve_api_key(Settings())
    assert str(info.value) == (
        "No API key: set OPENAI_API_KEY, or apiKey / apiKeyCommand in the settings (editor "
        "settings, .gpt-ls.toml in the workspace or config.toml in the user config dir)"
    )


@pytest.mark.parametrize("key", ["sk-abc\u3000def", "\u201csk-abcdef\u201d", "sk-ａｂｃ", "sk abc"])
async def test_a_key_no_header_can_carry(key: str) -> None:
    with pytest.raises(NoApiKey) as info:
        await resolve_api_key(Settings(api_key=key))
    assert str(info.value) == (
        "The API key from apiKey / OPENAI_API_KEY contains spaces or characters an API key "
        "cannot have (non-ASCII, e.g. full-width or curly quotes): copy it again"
    )


def test_sdk_missing_credentials_is_no_key() -> None:
    exc = openai.OpenAIError("The api_key client option must be set ... OPENAI_API_KEY")
    assert isinstance(describe_error(exc, Settings()), NoApiKey)


async def test_401_even_when_the_server_echoes_the_key(api: FakeOpenAI) -> None:
    api.script(Error(status=401, code="invalid_api_key", type="invalid_request_error",
                     message=f"Incorrect API key provided: {KEY}. Bearer {KEY}"))
    err = await fail(settings_for(api))
    assert isinstance(err, AuthError)
    assert str(err) == (
        f"API key rejected (401) by {api.url}: check apiKey / apiKeyCommand / OPENAI_API_KEY "
        "(the key may be wrong, revoked, or meant for another service)"
    )


async def test_401_from_a_wrong_key(api: FakeOpenAI) -> None:
    err = await fail(settings_for(api, api_key="sk-wrong-key-0000000000"))
    assert isinstance(err, AuthError)
    assert str(err).startswith(f"API key rejected (401) by {api.url}")


async def test_403(api: FakeOpenAI) -> None:
    api.script(Error(status=403, type="invalid_request_error", code="unsupported_country",
                     message=f"Country not supported (key {KEY})."))
    err = await fail(settings_for(api))
    assert isinstance(err, AuthError)
    assert str(err) == (
        f"Access denied (403) by {api.url}: Country not supported (key ***). — the key may "
        "lack access to model 'gpt-4o-mini', to this organization or project, or the region "
        "may be unsupported"
    )


async def test_404_names_the_model(api: FakeOpenAI) -> None:
    api.script(Error(status=404, code="model_not_found", type="invalid_request_error",
                     message="The model `gpt-9` does not exist or you do not have access to it."))
    err = await fail(settings_for(api, model="gpt-9"))
    assert isinstance(err, ModelNotFound)
    assert str(err) == (
        f"Model 'gpt-9' not found (404) at {api.url}: check the model setting; if the model "
        "exists, check baseUrl (many servers need the /v1 suffix)"
    )


async def test_404_on_azure_names_the_deployment() -> None:
    api = FakeOpenAI().start()  # Azure sends the key as api-key, which this fake does not check
    api.script(Error(status=404, code="DeploymentNotFound", type="invalid_request_error",
                     message="The API deployment for this resource does not exist."))
    s = Settings(azure_endpoint=api.url.removesuffix("/v1"), azure_deployment="prod-4o",
                 api_key=KEY, max_retries=0)
    err = await fail(s)
    api.stop()
    assert str(err) == (
        f"Model 'prod-4o' not found (404) at {api.url.removesuffix('/v1')}: check "
        "azureDeployment; if the model exists, check baseUrl (many servers need the /v1 suffix)"
    )


async def test_429_rate_limit(api: FakeOpenAI) -> None:
    api.script(Error(status=429, code="rate_limit_exceeded", type="requests",
                     message="Rate limit reached", headers={"Retry-After": "20"}))
    err = await fail(settings_for(api))
    assert type(err) is RateLimited
    assert str(err) == (
        f"Rate limit reached (429) at {api.url}; the server asks to wait 20 s: wait a moment "
        "and try again"
    )


async def test_429_rate_limit_after_retries(api: FakeOpenAI) -> None:
    api.script(*[Error(status=429, code="rate_limit_exceeded", headers={"Retry-After": "0"})] * 3)
    err = await fail(settings_for(api, max_retries=2))
    assert str(err) == (
        f"Rate limit reached (429) at {api.url}, after 2 retries; the server asks to wait 0 s: "
        "wait a moment and try again"
    )
    assert len(api.chat_requests()) == 3


async def test_429_quota_exhausted(api: FakeOpenAI) -> None:
    api.script(Error(status=429, code="insufficient_quota", type="insufficient_quota",
                     message="You exceeded your current quota."))
    err = await fail(settings_for(api))
    assert isinstance(err, QuotaExhausted)
    assert str(err) == (
        f"Quota exhausted (429 insufficient_quota) at {api.url}: add credit or raise the "
        "spending limit in your account's billing settings; retrying will not help"
    )


async def test_quota_exhausted_is_not_retried(api: FakeOpenAI) -> None:
    api.script(*[Error(status=429, code="insufficient_quota", type="insufficient_quota",
                       headers={"Retry-After": "0"})] * 3)
    err = await fail(settings_for(api, max_retries=2))
    assert isinstance(err, QuotaExhausted)
    assert len(api.chat_requests()) == 1  # waiting will not bring credit back


async def test_quota_exhausted_while_streaming(api: FakeOpenAI) -> None:
    api.script(*[Error(status=429, code="insufficient_quota", type="insufficient_quota",
                       headers={"Retry-After": "0"})] * 3)
    err = await fail(settings_for(api, max_retries=2), stream=True)
    assert isinstance(err, QuotaExhausted)
    assert len(api.chat_requests()) == 1


async def test_5xx_after_a_retry(api: FakeOpenAI) -> None:
    api.script(Error(status=503, message="Overloaded", headers={"Retry-After": "0"}),
               Error(status=502, message="Bad gateway", headers={"Retry-After": "0"}))
    err = await fail(settings_for(api, max_retries=1))
    assert isinstance(err, ServerError)
    assert str(err) == (
        f"{api.url} had a server error (502, after 1 retry): Bad gateway — try again later; "
        "if it persists, check the service's status page"
    )


async def test_5xx_with_an_html_body(api: FakeOpenAI) -> None:
    api.script(Error(status=500, body="<html><h1>Internal   Server Error</h1></html>",
                     content_type="text/html"))
    err = await fail(settings_for(api))
    assert str(err) == (
        f"{api.url} had a server error (500): <html><h1>Internal Server Error</h1></html> — "
        "try again later; if it persists, check the service's status page"
    )


async def test_context_too_long(api: FakeOpenAI) -> None:
    api.script(Error(status=400, code="context_length_exceeded", type="invalid_request_error",
                     message="This model's maximum context length is 128000 tokens."))
    err = await fail(settings_for(api))
    assert isinstance(err, ContextTooLarge)
    assert str(err) == (
        f"The request is too long for model 'gpt-4o-mini' ({api.url}): select less text or "
        "start a new conversation"
    )


async def test_402_payment_required(api: FakeOpenAI) -> None:
    api.script(Error(status=402, message="Insufficient Balance", type="unknown_error"))
    err = await fail(settings_for(api))
    assert isinstance(err, QuotaExhausted)
    assert str(err) == (
        f"Payment required (402) at {api.url}: Insufficient Balance — add credit to your "
        "account; retrying will not help"
    )


@pytest.mark.parametrize(
    ("status", "message"),
    [(400, "Model Not Exist"), (400, "The model `deepseek-chatt` does not exist"),
     (422, "Unknown model: qwen-maxx"), (400, "invalid model ID")],
)
async def test_unknown_model_worded_by_compatible_servers(
    api: FakeOpenAI, status: int, message: str
) -> None:
    api.script(Error(status=status, message=message, type="invalid_request_error"))
    err = await fail(settings_for(api, model="deepseek-chatt"))
    assert isinstance(err, ModelNotFound)
    assert str(err) == (
        f"Model 'deepseek-chatt' is not available at {api.url} ({status}: {message}): check "
        "the model setting"
    )


async def test_parameter_not_supported_by_the_model_is_not_an_unknown_model(
    api: FakeOpenAI
) -> None:
    message = ("Unsupported parameter: 'max_tokens' is not supported with this model. Use "
               "'max_completion_tokens' instead.")
    api.script(Error(status=400, type="invalid_request_error", code="unsupported_parameter",
                     message=message))
    err = await fail(settings_for(api))
    assert type(err) is BadRequest
    assert str(err) == f"{api.url} rejected the request (400): {message}"


async def test_context_too_long_without_a_code(api: FakeOpenAI) -> None:
    api.script(Error(status=400, type="BadRequestError", message=(
        "This model's maximum context length is 4096 tokens. However, you requested 5000.")))
    assert isinstance(await fail(settings_for(api)), ContextTooLarge)


async def test_400(api: FakeOpenAI) -> None:
    api.script(Error(status=400, type="invalid_request_error", code=None,
                     message="Unsupported parameter: 'max_tokens'."))
    err = await fail(settings_for(api))
    assert isinstance(err, BadRequest)
    assert str(err) == (
        f"{api.url} rejected the request (400): Unsupported parameter: 'max_tokens'."
    )


async def test_connection_refused() -> None:
    port = dead_port()
    err = await fail(Settings(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0))
    assert type(err) is ConnectionFailed
    assert str(err) == (
        f"Connection refused by http://127.0.0.1:{port}/v1: nothing is listening there; check "
        "baseUrl and that the server is running"
    )


async def test_dns_failure() -> None:
    err = await fail(Settings(base_url="http://no-such-host.invalid/v1", api_key=KEY,
                              max_retries=0))
    assert type(err) is ConnectionFailed
    assert str(err) == (
        "Cannot resolve the host name 'no-such-host.invalid' of http://no-such-host.invalid/v1 "
        "(DNS failure: Name or service not known): check baseUrl and your network; behind a "
        "firewall, set a proxy"
    )


async def test_connect_timeout() -> None:
    port = blackhole_port()
    s = Settings(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0,
                 connect_timeout=0.3)
    err = await fail(s)
    assert type(err) is ConnectionFailed
    assert str(err) == (
        f"Cannot connect to http://127.0.0.1:{port}/v1 within 0.3 s (connectTimeout): the "
        "network may block it; if you need a proxy, set the proxy setting or HTTPS_PROXY"
    )


async def test_proxy_connect_timeout(api: FakeOpenAI) -> None:
    port = blackhole_port()
    err = await fail(settings_for(api, proxy=f"http://u:pw@127.0.0.1:{port}", connect_timeout=0.3))
    assert isinstance(err, ProxyFailed)
    assert str(err) == (
        f"Cannot reach the proxy http://u:***@127.0.0.1:{port} (from setting proxy): no "
        "connection within 0.3 s; check that the proxy is running and the proxy setting is right"
    )


async def test_read_timeout_before_the_reply(api: FakeOpenAI) -> None:
    api.script(Stall(before_headers=True, seconds=10))
    err = await fail(settings_for(api, read_timeout=0.4))
    api.release_stalls()
    assert isinstance(err, RequestTimeout)
    assert str(err) == (
        f"No answer from {api.url} within 0.4 s (readTimeout): the server may be overloaded; "
        "try again, or raise readTimeout"
    )


# --------------------------------------------------------------------------- TLS


async def test_tls_failure_names_ssl_cert_file(
    tls_api: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    url = f"https://127.0.0.1:{tls_api.port}/v1"
    err = await fail(Settings(base_url=url, api_key=KEY, max_retries=0))
    assert isinstance(err, TlsFailed)
    assert str(err) == (
        "TLS certificate of 127.0.0.1 could not be verified (self-signed certificate): if your "
        "network or proxy uses its own certificate authority, set SSL_CERT_FILE to a CA bundle "
        "(PEM file) that includes it"
    )


async def test_ssl_cert_file_is_the_fix(
    tls_api: FakeOpenAI, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    url = f"https://127.0.0.1:{tls_api.port}/v1"
    cache = ClientCache()
    client = await cache.get(Settings(base_url=url, api_key=KEY))
    reply = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "TLS ok"}]
    )
    assert reply.choices[0].message.content == "Echo: TLS ok"
    await cache.aclose()


async def test_tls_to_a_plain_http_server(api: FakeOpenAI) -> None:
    url = f"https://127.0.0.1:{api.port}/v1"
    err = await fail(Settings(base_url=url, api_key=KEY, max_retries=0))
    assert isinstance(err, TlsFailed)
    assert str(err).startswith("TLS handshake with 127.0.0.1 failed (")
    assert str(err).endswith(
        "): check that baseUrl uses https:// only for a TLS server; to trust an extra CA, set "
        "SSL_CERT_FILE"
    )


# --------------------------------------------------------------------------- secrecy


def test_scrub() -> None:
    s = Settings(api_key="abcd-custom-key-1234")
    text = "key abcd-custom-key-1234 sk-ant-0123456789abcdef Bearer xyz http://u:pw@h:1/"
    assert scrub(text, s) == "key *** sk-ant*** Bearer *** http://u:***@h:1/"


async def test_the_key_never_appears_in_messages_or_debug_logs(
    api: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"Incorrect API key provided: {KEY} (Authorization: Bearer {KEY})"
    cases = [
        Error(status=401, code="invalid_api_key", message=echo),
        Error(status=403, message=echo),
        Error(status=404, message=echo),
        Error(status=429, message=echo),
        Error(status=429, code="insufficient_quota", message=echo),
        Error(status=400, message=echo),
        Error(status=400, code="context_length_exceeded", message=echo),
        Error(status=500, body=echo, content_type="text/plain"),
        Error(status=418, message=echo),
        Stall(before_headers=True, seconds=5),
    ]
    messages = []
    for case in cases:
        api.script(case)
        messages.append(str(await fail(settings_for(api, read_timeout=0.3))))
    api.release_stalls()
    api.script(Reply(text=f"model says {KEY}"))  # even a reply echoing it leaves logs clean
    cache = ClientCache(env={})
    client = await cache.get(settings_for(api))
    await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    await cache.aclose()
    messages.append(str(await fail(Settings(base_url=f"http://127.0.0.1:{dead_port()}/v1",
                                            api_key=KEY, max_retries=0))))
    assert len(messages) == 11
    assert all(KEY not in m for m in messages), messages
    assert all(KEY[8:20] not in m for m in messages)
    logged = "\n".join(
        r.getMessage() + repr(r.args) + str(r.__dict__) for r in caplog.records
    )
    assert any(r.name.startswith("openai") for r in caplog.records)
    assert KEY not in logged
