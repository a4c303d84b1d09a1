"""Proxies: real pproxy processes (HTTP and SOCKS5, with and without a password) on 127.0.0.1."""

from __future__ import annotations

import base64
import logging
import sys
from pathlib import Path

import openai
import pytest

from gpt_ls.api.failures import describe_error
from gpt_ls.api.http import ClientCache
from gpt_ls.api.proxy import choose_proxy, no_proxy_matches, proxy_for
from gpt_ls.errors import ProxyFailed, SocksUnavailable
from gpt_ls.settings import Settings
from tests.support.fakeopenai import Cut, FakeOpenAI, Raw, Reply
from tests.support.netkit import (  # noqa: F401 - fixtures
    KEY,
    Pproxy,
    RefusingProxy,
    api_fixture,
    cert_fixture,
    dead_port,
    settings_for,
    stream_into,
    tls_api_fixture,
)


async def ask(settings: Settings, env: dict[str, str]) -> str:
    cache = ClientCache(env=env)
    try:
        client = await cache.get(settings)
        reply = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "代理 ok?"}]
        )
        return reply.choices[0].message.content or ""
    finally:
        await cache.aclose()


async def failure(settings: Settings, env: dict[str, str]) -> str:
    """The user's sentence for a request that fails."""
    with pytest.raises(Exception) as info:
        await ask(settings, env)
    return str(describe_error(info.value, settings, env=env))


@pytest.mark.parametrize(
    ("scheme", "auth"),
    [("http", None), ("http", "alice:s3cret"), ("socks5", None), ("socks5", "bob:pa55"),
     ("socks5h", None)],
)
async def test_proxy_setting_carries_the_traffic(
    api: FakeOpenAI, scheme: str, auth: str | None
) -> None:
    listen = "socks5" if scheme == "socks5h" else scheme
    with Pproxy(listen, auth=auth) as proxy:
        url = proxy.url.replace("socks5://", f"{scheme}://")
        api.script(Reply(text="through the proxy"))
        # An environment proxy that would break things proves the setting wins over it.
        env = {"HTTP_PROXY": f"http://127.0.0.1:{dead_port()}"}
        assert await ask(settings_for(api, proxy=url), env) == "through the proxy"
        assert proxy.relayed(api.port) == 1
        assert len(api.chat_requests()) == 1


async def test_http_proxy_from_environment(api: FakeOpenAI) -> None:
    with Pproxy("http") as proxy:
        env = {"HTTP_PROXY": proxy.url}
        assert proxy_for(settings_for(api), api.url, env) == proxy.url
        assert (await ask(settings_for(api), env)).startswith("Echo: ")
        assert proxy.relayed(api.port) == 1


async def test_all_proxy_socks_from_environment_lower_case_wins(api: FakeOpenAI) -> None:
    with Pproxy("socks5") as proxy:
        env = {"all_proxy": proxy.url, "ALL_PROXY": f"socks5://127.0.0.1:{dead_port()}"}
        await ask(settings_for(api), env)
        assert proxy.relayed(api.port) == 1


async def test_no_proxy_is_honoured(api: FakeOpenAI) -> None:
    with Pproxy("http") as proxy:
        env = {"HTTP_PROXY": proxy.url, "NO_PROXY": "example.com, 127.0.0.1"}
        choice = choose_proxy(settings_for(api), api.url, env)
        assert (choice.url, choice.source) == (None, "NO_PROXY excludes 127.0.0.1")
        assert (await ask(settings_for(api), env)).startswith("Echo: ")
        assert proxy.relayed(api.port) == 0
        assert len(api.chat_requests()) == 1


async def test_empty_proxy_setting_turns_environment_proxies_off(api: FakeOpenAI) -> None:
    env = {"HTTP_PROXY": f"http://127.0.0.1:{dead_port()}", "ALL_PROXY": "socks5://127.0.0.1:1"}
    assert proxy_for(settings_for(api, proxy=""), api.url, env) is None
    assert (await ask(settings_for(api, proxy=""), env)).startswith("Echo: ")


async def test_dead_proxy_names_the_proxy_with_password_redacted(api: FakeOpenAI) -> None:
    port = dead_port()
    s = settings_for(api, proxy=f"http://carol:hunter2@127.0.0.1:{port}")
    assert await failure(s, {}) == (
        f"Cannot reach the proxy http://carol:***@127.0.0.1:{port} (from setting proxy) "
        "(connection refused): check that the proxy is running and that the proxy setting "
        "(or HTTPS_PROXY / ALL_PROXY) is right"
    )
    assert len(api.requests) == 0


async def test_dead_socks_proxy_from_environment(api: FakeOpenAI) -> None:
    port = dead_port()
    env = {"ALL_PROXY": f"socks5h://127.0.0.1:{port}"}
    assert await failure(settings_for(api), env) == (
        f"Cannot reach the proxy socks5h://127.0.0.1:{port} (from ALL_PROXY) (connection "
        "refused): check that the proxy is running and that the proxy setting (or HTTPS_PROXY / "
        "ALL_PROXY) is right"
    )


async def test_socks_proxy_rejecting_the_password(api: FakeOpenAI) -> None:
    with Pproxy("socks5", auth="bob:pa55") as proxy:
        s = settings_for(api, proxy=f"socks5://bob:wrong@127.0.0.1:{proxy.port}")
        assert await failure(s, {}) == (
            f"The proxy socks5://bob:***@127.0.0.1:{proxy.port} (from setting proxy) refused to "
            f"connect to {api.url} (Invalid username/password): check the proxy's address, "
            "login and rules"
        )
        assert "Unauthorized SOCKS" in proxy.log()


async def test_http_proxy_asking_for_a_login(api: FakeOpenAI) -> None:
    # pproxy closes with the request body unread after its 407, which resets the connection
    # now and then on a loaded machine; this proxy reads the request first, like squid.
    with RefusingProxy(b"407 Proxy Authentication Required") as proxy:
        s = settings_for(api, proxy=f"http://127.0.0.1:{proxy.port}")
        assert await failure(s, {}) == (
            f"The proxy http://127.0.0.1:{proxy.port} (from setting proxy) requires a login "
            "(407): write user:password@ before the host in the proxy URL"
        )
        assert proxy.requests[0].startswith(b"POST http://127.0.0.1:")


async def test_proxy_that_cannot_reach_the_endpoint(api: FakeOpenAI) -> None:
    target = dead_port()
    with Pproxy("http") as proxy:
        s = settings_for(api, base_url=f"http://127.0.0.1:{target}/v1", proxy=proxy.url)
        assert await failure(s, {}) == (
            f"The proxy {proxy.url} (from setting proxy) dropped the request to "
            f"http://127.0.0.1:{target}/v1 (Server disconnected without sending a response.): it "
            "may refuse this destination or be unable to reach it"
        )
        assert proxy.relayed(target) == 1


async def test_socks_proxy_that_cannot_reach_the_endpoint() -> None:
    target = dead_port()
    with Pproxy("socks5", auth="bob:pa55") as proxy:
        s = Settings(base_url=f"http://127.0.0.1:{target}/v1", api_key=KEY, max_retries=0,
                     proxy=proxy.url)
        sentence = await failure(s, {})
        assert sentence.startswith(
            f"The proxy socks5://bob:***@127.0.0.1:{proxy.port} (from setting proxy) dropped the "
            f"request to http://127.0.0.1:{target}/v1 ("
        )
        assert sentence.endswith("): it may refuse this destination or be unable to reach it")
        assert proxy.relayed(target) == 1


async def test_socks_proxy_without_socksio(
    api: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "socksio", None)  # makes `import socksio` fail
    s = settings_for(api, proxy="socks5://dave:pw@127.0.0.1:1080")
    with pytest.raises(SocksUnavailable) as info:
        await ClientCache(env={}).get(s)
    assert str(info.value) == (
        "The proxy socks5://dave:***@127.0.0.1:1080 is a SOCKS proxy but SOCKS support is not "
        "installed: run `pip install socksio` in gpt-ls's Python environment, or use an "
        "http:// proxy"
    )
    assert describe_error(info.value, s) is info.value


async def test_socks_from_environment_without_socksio(
    api: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "socksio", None)
    with pytest.raises(SocksUnavailable):
        await ClientCache(env={"all_proxy": "socks5://127.0.0.1:1080"}).get(settings_for(api))


async def test_sdk_import_error_for_socks_is_described() -> None:
    exc = ImportError("Using SOCKS proxy, but the 'socksio' package is not installed.")
    s = Settings(proxy="socks5h://127.0.0.1:9050")
    err = describe_error(exc, s)
    assert isinstance(err, SocksUnavailable)
    assert str(err).startswith("The proxy socks5h://127.0.0.1:9050 is a SOCKS proxy")


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({}, "https://api.openai.com/v1", None),
        ({"HTTPS_PROXY": "http://p:3128"}, "https://api.openai.com/v1", "http://p:3128"),
        ({"HTTPS_PROXY": "p:3128"}, "https://api.openai.com/v1", "http://p:3128"),
        # HTTPS_PROXY is for https:// endpoints only; ALL_PROXY covers both.
        ({"HTTPS_PROXY": "http://p:3128"}, "http://localhost:11434/v1", None),
        ({"ALL_PROXY": "socks5h://s:1080"}, "http://localhost:11434/v1", "socks5h://s:1080"),
        ({"HTTP_PROXY": "http://a:1", "ALL_PROXY": "http://b:2"}, "http://h/v1", "http://a:1"),
        ({"https_proxy": "http://low:1", "HTTPS_PROXY": "http://UP:2"}, "https://h/", "http://low:1"),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, "https://api.openai.com/v1", None),
        ({"HTTPS_PROXY": "http://p:1", "no_proxy": "openai.com"}, "https://api.openai.com/", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".openai.com"}, "https://api.openai.com/", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "openai.com"}, "https://notopenai.com/",
         "http://p:1"),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, "http://10.1.2.3:8000/v1", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, "http://11.1.2.3/v1",
         "http://p:1"),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "h:8000"}, "http://h:8000/v1", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "h:8000"}, "http://h:9000/v1", "http://p:1"),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "::1"}, "http://[::1]:8000/v1", None),
        # Loopback is not bypassed on its own (tests rely on that), only when listed.
        ({"HTTP_PROXY": "http://p:1"}, "http://127.0.0.1:8000/v1", "http://p:1"),
    ],
)
def test_proxy_for_environment(env: dict[str, str], url: str, expected: str | None) -> None:
    assert proxy_for(Settings(), url, env) == expected


def test_proxy_setting_beats_environment_and_no_proxy() -> None:
    env = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "*"}
    s = Settings(proxy="socks5://me:pw@127.0.0.1:1080")
    choice = choose_proxy(s, "https://api.openai.com/v1", env)
    assert (choice.url, choice.source, choice.shown) == (
        "socks5://me:pw@127.0.0.1:1080", "setting proxy", "socks5://me:***@127.0.0.1:1080"
    )


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "expected"),
    [
        ("api.openai.com", 443, "", False),
        ("api.openai.com", 443, " , ", False),
        ("api.openai.com", 443, "*.openai.com", True),
        ("openai.com", 443, ".openai.com", True),
        ("192.168.1.5", 80, "192.168.0.0/16", True),
        ("localhost", 80, "LOCALHOST", True),
        ("::1", 8000, "[::1]:8000", True),
        ("::1", 9000, "[::1]:8000", False),
        ("fd00::5", 443, "fd00::/8", True),
        ("10.0.0.7", 8000, "10.0.0.7:8000", True),
        ("10.0.0.7", 8001, "10.0.0.7:8000", False),
        ("10.0.0.7", 80, "10.0.0.0/8:80", True),
        ("api.openai.com", 443, "openai.com:443", True),
        ("api.openai.com", 443, "penai.com", False),
    ],
)
def test_no_proxy_matches(host: str, port: int, no_proxy: str, expected: bool) -> None:
    assert no_proxy_matches(host, port, no_proxy) is expected


async def test_proxy_error_is_not_a_generic_connection_error(api: FakeOpenAI) -> None:
    port = dead_port()
    s = settings_for(api, proxy=f"http://127.0.0.1:{port}")
    cache = ClientCache(env={})
    client = await cache.get(s)
    with pytest.raises(openai.APIConnectionError) as info:
        await client.models.list()
    err = describe_error(info.value, s)
    assert isinstance(err, ProxyFailed)
    assert err.kind == "proxy"
    await cache.aclose()


# --------------------------------------------------------------------------- HTTPS endpoints


async def test_https_endpoint_through_http_proxy_connect(
    tls_api: FakeOpenAI, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The everyday case: api.openai.com over HTTPS_PROXY (a CONNECT tunnel)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    with Pproxy("http", auth="alice:s3cret") as proxy:
        env = {"HTTPS_PROXY": proxy.url, "HTTP_PROXY": f"http://127.0.0.1:{dead_port()}"}
        s = Settings(base_url=f"https://127.0.0.1:{tls_api.port}/v1", api_key=KEY)
        assert (await ask(s, env)).startswith("Echo: ")
        assert proxy.relayed(tls_api.port) == 1


async def test_https_endpoint_behind_proxy_that_cannot_reach_it() -> None:
    target = dead_port()
    with Pproxy("http") as proxy:
        s = Settings(base_url=f"https://127.0.0.1:{target}/v1", api_key=KEY, max_retries=0)
        # pproxy drops a CONNECT it cannot complete (squid would answer 502: "refused to")
        assert await failure(s, {"HTTPS_PROXY": proxy.url}) == (
            f"The proxy {proxy.url} (from HTTPS_PROXY) dropped the request to "
            f"https://127.0.0.1:{target}/v1 (Server disconnected without sending a response.): "
            "it may refuse this destination or be unable to reach it"
        )
        assert proxy.relayed(target) == 1


async def test_https_proxy_with_an_untrusted_certificate(
    api: FakeOpenAI, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with Pproxy("http", tls=cert) as proxy:
        sentence = await failure(settings_for(api, proxy=proxy.url), {})
        assert sentence == (
            f"TLS certificate of the proxy https://127.0.0.1:{proxy.port} could not be verified "
            "(self-signed certificate): if your network or proxy uses its own certificate "
            "authority, set SSL_CERT_FILE to a CA bundle (PEM file) that includes it"
        )
        monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))  # the fix the sentence names
        assert (await ask(settings_for(api, proxy=proxy.url), {})).startswith("Echo: ")
        assert proxy.relayed(api.port) == 1


async def test_https_scheme_for_a_plain_http_proxy(api: FakeOpenAI) -> None:
    with Pproxy("http") as proxy:
        url = proxy.url.replace("http://", "https://")
        sentence = await failure(settings_for(api, proxy=url), {})
        assert sentence.startswith(f"TLS handshake with the proxy {url} failed (")
        assert sentence.endswith(
            "): if the proxy is a plain HTTP proxy, write its URL with http://, not https://"
        )


async def test_server_closing_without_an_answer(api: FakeOpenAI) -> None:
    api.script(Raw(data=b""))
    assert await failure(settings_for(api), {}) == (
        f"{api.url} closed the connection without a complete answer (Server disconnected "
        "without sending a response.): try again; if it keeps happening, a firewall or proxy "
        "may be cutting the connection"
    )


async def test_proxy_refusing_a_connect_tunnel() -> None:
    with RefusingProxy(b"403 Forbidden") as proxy:
        s = Settings(base_url="https://llm.example.invalid/v1", api_key=KEY, max_retries=0,
                     proxy=proxy.url)
        assert await failure(s, {}) == (
            f"The proxy {proxy.url} (from setting proxy) refused to connect to "
            "https://llm.example.invalid/v1 (403 Forbidden): check the proxy's address, login and "
            "rules"
        )
        assert proxy.requests == [b"CONNECT llm.example.invalid:443 HTTP/1.1"]


async def test_api_errors_through_a_proxy_name_it(api: FakeOpenAI) -> None:
    with Pproxy("http", auth="alice:s3cret") as proxy:
        s = settings_for(api, proxy=proxy.url, api_key="sk-wrong-0000000000000")
        assert await failure(s, {}) == (
            f"API key rejected (401) by {api.url} via the proxy "
            f"http://alice:***@127.0.0.1:{proxy.port}: check apiKey / apiKeyCommand / "
            "OPENAI_API_KEY (the key may be wrong, revoked, or meant for another service)"
        )


async def test_stream_cut_through_a_socks_proxy(api: FakeOpenAI) -> None:
    api.script(Cut(text="部分的な回答", chunk_size=2))
    with Pproxy("socks5") as proxy:
        s = settings_for(api, proxy=proxy.url)
        cache = ClientCache(env={})
        got: list[str] = []
        with pytest.raises(openai.APIConnectionError) as info:
            await stream_into(await cache.get(s), got)
        await cache.aclose()
        assert "".join(got) == "部分的な回答"
        assert str(describe_error(info.value, s, during_stream=True, env={})) == (
            f"The connection to {api.url} via the proxy {proxy.url} was cut mid-reply (peer "
            "closed connection without sending complete message body (incomplete chunked "
            "read)); the reply is incomplete: ask again to get the rest"
        )


async def test_proxy_password_stays_out_of_debug_logs(
    api: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Pa55-w0rd-XYZ"
    with Pproxy("http", auth=f"alice:{secret}") as proxy:
        assert (await ask(settings_for(api, proxy=proxy.url), {})).startswith("Echo: ")
        port = dead_port()
        s = settings_for(api, proxy=f"socks5://alice:{secret}@127.0.0.1:{port}")
        sentence = await failure(s, {})
    logged = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert any(r.name.startswith("httpcore2") for r in caplog.records)
    basic = base64.b64encode(f"alice:{secret}".encode()).decode()
    for text in (logged, sentence):
        assert secret not in text and basic not in text and KEY not in text
