"""Which proxy a request goes through, decided per URL by one function.

:func:`choose_proxy` both routes the traffic (``gpt_ls.api.http``) and reports what
``gpt-ls check`` and the error sentences show, so the two cannot disagree: the ``proxy``
setting wins ("" = no proxy); unset, the standard ``HTTPS_PROXY`` / ``HTTP_PROXY`` /
``ALL_PROXY`` / ``NO_PROXY`` variables apply (lower case first).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from gpt_ls.errors import SocksUnavailable
from gpt_ls.secrets import redact_url
from gpt_ls.settings import Settings


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


def socks_missing(proxy: str) -> SocksUnavailable:
    """The error for a SOCKS proxy when ``socksio`` is not installed."""
    return SocksUnavailable(
        f"The proxy {redact_url(proxy)} is a SOCKS proxy but SOCKS support is not installed: "
        "run `pip install socksio` in gpt-ls's Python environment, or use an http:// proxy"
    )
