"""``gpt-ls check``: show what gpt-ls will use and where each value came from, then try it.

The same report serves the CLI (printed) and the editor (the ``gpt-ls.check`` command),
so a user sees the same lines, and the same error sentence, in both.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gpt_ls.actions.catalog import load_actions
from gpt_ls.api.failures import describe_error
from gpt_ls.api.http import endpoint_url, make_client, model_param
from gpt_ls.api.keys import resolve_api_key
from gpt_ls.api.proxy import choose_proxy
from gpt_ls.errors import GptLsError
from gpt_ls.models import model_info, request_options
from gpt_ls.secrets import redact, redact_headers, redact_url
from gpt_ls.settings import SECRET_FIELDS, ResolvedSettings, Settings, camel

#: The prompt of the one minimal request.
PROBE = "Reply with the single word OK."
PROBE_TOKENS = 5


@dataclass
class CheckReport:
    """What ``check`` found: ``lines`` to show, and the error sentence if it failed."""

    ok: bool
    lines: list[str]
    latency_ms: float | None
    error: GptLsError | None


def _shown_value(name: str, value: Any) -> str:
    """A setting as check prints it: secrets redacted, URL passwords and header values hidden."""
    if value is None:
        return "(not set)"
    if name in SECRET_FIELDS:
        return redact(value)
    if name == "headers":
        shown = redact_headers(value)
        return repr(shown) if shown else "(none)"
    if isinstance(value, str):
        if value == "" and name == "proxy":
            return '"" (proxies off)'
        return redact_url(value) if "://" in value else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def settings_lines(loaded: ResolvedSettings, key_line: str) -> list[str]:
    """``name = value  (source)`` for every setting, the key replaced by ``key_line``."""
    lines = ["Settings (value, then where it came from):"]
    for f in dataclasses.fields(Settings):
        if f.name in SECRET_FIELDS:
            lines.append(f"  {camel(f.name)} = {key_line}")
            continue
        value = getattr(loaded.settings, f.name)
        shown = _shown_value(f.name, value)
        lines.append(f"  {camel(f.name)} = {shown}  ({loaded.sources[f.name]})")
    return lines


def probe_params(settings: Settings) -> dict[str, Any]:
    """The smallest request: a tiny non-streamed completion, with the length and sampling
    parameters the actions send for this model (``models.request_options``)."""
    return {
        "model": model_param(settings),
        "messages": [{"role": "user", "content": PROBE}],
        **request_options(model_info(settings), settings.temperature, PROBE_TOKENS),
    }


async def run_check(loaded: ResolvedSettings, env: Mapping[str, str] | None = None) -> CheckReport:
    """Report the effective settings, problems and proxy, then make one minimal request."""
    env = os.environ if env is None else env
    settings = loaded.settings
    lines = ["gpt-ls check"]
    error: GptLsError | None = None
    key = ""
    try:
        key = await resolve_api_key(settings)
    except GptLsError as exc:
        error = exc
    if settings.api_key:
        key_line = f"{redact(key)}  ({loaded.sources['api_key']})"
    elif settings.api_key_command and key:
        origin = loaded.sources["api_key_command"]
        key_line = f"{redact(key)}  (printed by apiKeyCommand from {origin})"
    else:
        key_line = "(none)"
    lines += settings_lines(loaded, key_line)
    # The actions as the server loads them (same loader), so their problems show here too.
    catalog = load_actions(loaded.action_layers)
    lines.append("Actions (id, title, where it came from):")
    lines += [f"  {a.id} = {a.title}  ({a.origin})" for a in catalog.actions]
    problems = [*loaded.problems, *catalog.problems]
    if problems:
        lines.append("Problems (these values were ignored):")
        lines += [f"  - {p}" for p in problems]
    else:
        lines.append("Problems: none")
    url = endpoint_url(settings)
    choice = choose_proxy(settings, url, env)
    lines.append(f"Endpoint: {redact_url(url)}")
    lines.append(f"Proxy: {choice.shown} ({choice.source})")
    for var in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        if env.get(var):
            lines.append(f"{var}: {env[var]}")
    if error is not None:
        return _failed(lines, error, None)
    params = probe_params(settings)
    lines.append(f"Request: one chat completion, model {params['model']!r}, at most "
                 f"{PROBE_TOKENS} tokens, no retries")
    started = time.perf_counter()
    try:
        client = make_client(dataclasses.replace(settings, max_retries=0), key, env)
        try:
            reply = await client.chat.completions.create(**params)
        finally:
            await client.close()
    except Exception as exc:  # every failure becomes the user's sentence
        return _failed(lines, describe_error(exc, settings, env=env), None)
    latency = (time.perf_counter() - started) * 1000
    served = getattr(reply, "model", None) or params["model"]
    lines.append(f"OK: {served} answered in {latency:.0f} ms")
    return CheckReport(True, lines, latency, None)


def _failed(lines: list[str], error: GptLsError, latency: float | None) -> CheckReport:
    lines.append(f"FAILED: {error}")
    return CheckReport(False, lines, latency, error)
