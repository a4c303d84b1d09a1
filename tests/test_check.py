"""``gpt-ls check``: the report and its one request, in-process and as a real CLI process."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gpt_ls.actions.catalog import ASK, load_actions
from gpt_ls.check import run_check
from gpt_ls.errors import (
    AuthError,
    KeyCommandFailed,
    NoApiKey,
    ProxyFailed,
    QuotaExhausted,
)
from gpt_ls.exchange import Exchange, ExchangeRequest
from gpt_ls.models import MODEL_TABLE
from gpt_ls.prompts import SelectionContext
from gpt_ls.settings import ResolvedSettings, data_dir, load_settings
from gpt_ls.trust import TrustList
from tests.support.fakeopenai import Error, FakeOpenAI
from tests.support.netkit import KEY, Pproxy, api_fixture, dead_port, fresh_key_cache_fixture  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("fresh_key_cache")


def load(tmp_path: Path, env: dict[str, str], **editor: object) -> ResolvedSettings:
    env = {"GPT_LS_CONFIG_DIR": str(tmp_path / "no-config"), **env}
    return load_settings(editor=editor, workspace_root=tmp_path, env=env)


async def test_success_shows_settings_sources_proxy_and_latency(
    api: FakeOpenAI, tmp_path: Path
) -> None:
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": api.url}
    report = await run_check(load(tmp_path, env, model="gpt-4o-mini"), env=env)
    assert report.ok and report.error is None
    assert report.latency_ms is not None and 0 < report.latency_ms < 5000
    assert report.lines[0] == "gpt-ls check"
    assert "  model = gpt-4o-mini  (editor)" in report.lines
    assert f"  baseUrl = {api.url}  (environment (OPENAI_BASE_URL))" in report.lines
    assert "  apiKey = sk-…cdef  (environment (OPENAI_API_KEY))" in report.lines
    assert "  readTimeout = 60  (default)" in report.lines
    assert "Problems: none" in report.lines
    assert f"Endpoint: {api.url}" in report.lines
    assert "Proxy: none (direct) (no proxy configured)" in report.lines
    assert report.lines[-2] == (
        "Request: one chat completion, model 'gpt-4o-mini', at most 5 tokens, no retries"
    )
    assert report.lines[-1] == f"OK: gpt-4o-mini answered in {report.latency_ms:.0f} ms"
    (req,) = api.chat_requests()
    assert req.body["max_tokens"] == 5
    assert "stream" not in req.body
    assert req.body["messages"] == [{"role": "user", "content": "Reply with the single word OK."}]
    assert all(KEY not in line for line in report.lines)


async def test_reasoning_models_get_max_completion_tokens(api: FakeOpenAI, tmp_path: Path) -> None:
    env = {"OPENAI_API_KEY": KEY}
    report = await run_check(load(tmp_path, env, model="o3-mini", baseUrl=api.url), env=env)
    assert report.ok
    body = api.chat_requests()[0].body
    assert (body.get("max_completion_tokens"), "max_tokens" in body) == (5, False)


#: Every row of the model table, and the spellings that reach a row by prefix or suffix.
SPELLINGS = [
    *MODEL_TABLE,
    "openai/o3-mini",
    "ft:o4-mini-2025:org::id",
    "ft:gpt-4o-mini-2024-07-18:org::id",
    "azure/gpt-5-mini",
    "O3-MINI",
    "o3-mini-2025-01-31",
    "gpt-4o-2024-08-06",
    "llama3.1:8b",
]


def request_shape(body: dict[str, Any]) -> dict[str, Any]:
    """What a request asks of the model besides the text: the reply length is only a size."""
    lengths = ("max_tokens", "max_completion_tokens")
    return {
        k: ("<length>" if k in lengths else v)
        for k, v in body.items()
        if k not in ("messages", "stream", "stream_options")
    }


@pytest.mark.parametrize("model", SPELLINGS)
async def test_check_sends_the_parameters_the_actions_send(
    api: FakeOpenAI, tmp_path: Path, model: str
) -> None:
    env = {"OPENAI_API_KEY": KEY}
    for temperature in ({}, {"temperature": 0.3}):
        loaded = load(tmp_path, env, model=model, baseUrl=api.url, history=False, **temperature)
        report = await run_check(loaded, env=env)
        assert report.ok, report.lines
        engine = Exchange()
        context = SelectionContext("file:///a.md", "markdown", "Say hello")
        reply = await engine.run(ExchangeRequest(ASK, context, loaded.settings), lambda _: None)
        await engine.aclose()
        assert reply.status == "complete", reply.error
        checked, asked = (r.body for r in api.chat_requests()[-2:])
        assert request_shape(checked) == request_shape(asked), (model, temperature)
    if model in ("openai/o3-mini", "ft:o4-mini-2025:org::id"):  # check used to send max_tokens
        assert (checked.get("max_completion_tokens"), "max_tokens" in checked) == (5, False)


async def test_shows_problems_and_still_checks(api: FakeOpenAI, tmp_path: Path) -> None:
    env = {"OPENAI_API_KEY": KEY}
    (tmp_path / ".gpt-ls.toml").write_text('readTimeout = "soon"\n', "utf-8")
    report = await run_check(load(tmp_path, env, baseUrl=api.url), env=env)
    assert report.ok
    i = report.lines.index("Problems (these values were ignored):")
    assert report.lines[i + 1] == (
        f"  - {tmp_path / '.gpt-ls.toml'}: setting 'readTimeout' must be a number (got 'soon'); "
        "ignored"
    )


async def test_action_problems_as_the_server_reports_them_and_the_actions_in_force(
    api: FakeOpenAI, tmp_path: Path
) -> None:
    env = {"OPENAI_API_KEY": KEY}
    (tmp_path / ".gpt-ls.toml").write_text(
        '[actions.haiku]\ntitle = "GPT: Haiku"\nsystem = "Reply as a haiku."\n'
        '[actions.broken]\ntitle = "GPT: Broken"\noutput = "sideways"\n', "utf-8")
    loaded = load(tmp_path, env, baseUrl=api.url)
    report = await run_check(loaded, env=env)
    served = load_actions(loaded.action_layers)  # what the server loads
    assert served.problems and "Problems: none" not in report.lines
    i = report.lines.index("Problems (these values were ignored):")
    assert report.lines[i + 1:i + 1 + len(served.problems)] == [f"  - {p}" for p in served.problems]
    assert any("action 'broken'" in p and "'output'" in p for p in served.problems)
    origin = str(tmp_path / ".gpt-ls.toml")
    assert f"  haiku = GPT: Haiku  ({origin})" in report.lines
    assert "  explain = GPT: Explain selection  (built-in)" in report.lines
    assert not any(line.startswith("  broken =") for line in report.lines)
    assert report.ok


async def test_through_a_proxy_with_password(api: FakeOpenAI, tmp_path: Path) -> None:
    with Pproxy("socks5", auth="eve:pw123") as proxy:
        env = {"OPENAI_API_KEY": KEY}
        report = await run_check(load(tmp_path, env, baseUrl=api.url, proxy=proxy.url), env=env)
        assert report.ok, report.lines
        assert f"Proxy: socks5://eve:***@127.0.0.1:{proxy.port} (setting proxy)" in report.lines
        assert f"  proxy = socks5://eve:***@127.0.0.1:{proxy.port}  (editor)" in report.lines
        assert proxy.relayed(api.port) == 1
        assert all("pw123" not in line for line in report.lines)


async def test_proxy_from_environment_and_no_proxy(api: FakeOpenAI, tmp_path: Path) -> None:
    with Pproxy("http") as proxy:
        env = {"OPENAI_API_KEY": KEY, "http_proxy": proxy.url}
        report = await run_check(load(tmp_path, env, baseUrl=api.url), env=env)
        assert f"Proxy: {proxy.url} (HTTP_PROXY)" in report.lines
        assert report.ok and proxy.relayed(api.port) == 1
        env["no_proxy"] = "127.0.0.1"
        report = await run_check(load(tmp_path, env, baseUrl=api.url), env=env)
        assert "Proxy: none (direct) (NO_PROXY excludes 127.0.0.1)" in report.lines
        assert report.ok and proxy.relayed(api.port) == 1


async def test_key_from_command_is_shown_redacted(api: FakeOpenAI, tmp_path: Path) -> None:
    script = tmp_path / "key.py"
    script.write_text(f"print({KEY!r})\n", "utf-8")
    cmd = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    report = await run_check(load(tmp_path, {}, baseUrl=api.url, apiKeyCommand=cmd), env={})
    assert report.ok, report.lines
    assert "  apiKey = sk-…cdef  (printed by apiKeyCommand from editor)" in report.lines


@pytest.mark.parametrize(
    ("behaviour", "kind", "sentence"),
    [
        (Error(status=401, code="invalid_api_key", message=f"Incorrect API key: {KEY}"), AuthError,
         "API key rejected (401) by {url}: check apiKey / apiKeyCommand / OPENAI_API_KEY (the key "
         "may be wrong, revoked, or meant for another service)"),
        (Error(status=429, code="insufficient_quota"), QuotaExhausted,
         "Quota exhausted (429 insufficient_quota) at {url}: add credit or raise the spending "
         "limit in your account's billing settings; retrying will not help"),
    ],
)
async def test_api_errors_give_the_same_sentence(
    api: FakeOpenAI, tmp_path: Path, behaviour: Error, kind: type, sentence: str
) -> None:
    api.script(behaviour)
    env = {"OPENAI_API_KEY": KEY}
    report = await run_check(load(tmp_path, env, baseUrl=api.url), env=env)
    assert not report.ok and isinstance(report.error, kind)
    assert report.lines[-1] == "FAILED: " + sentence.format(url=api.url)
    assert report.latency_ms is None
    assert len(api.chat_requests()) == 1  # check never retries
    assert all(KEY not in line for line in report.lines)


async def test_no_key_skips_the_request(tmp_path: Path) -> None:
    report = await run_check(load(tmp_path, {}), env={})
    assert isinstance(report.error, NoApiKey)
    assert "  apiKey = (none)" in report.lines
    assert report.lines[-1] == (
        "FAILED: No API key: set OPENAI_API_KEY, or apiKey / apiKeyCommand in the settings "
        "(editor settings, .gpt-ls.toml in the workspace or config.toml in the user config dir)"
    )


async def test_failing_key_command(tmp_path: Path) -> None:
    cmd = f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(2)'"
    report = await run_check(load(tmp_path, {}, apiKeyCommand=cmd), env={})
    assert isinstance(report.error, KeyCommandFailed)
    assert report.lines[-1] == (
        f"FAILED: apiKeyCommand ({sys.executable}) failed with exit status 2: run it in a "
        "terminal to see why"
    )


async def test_dead_proxy(api: FakeOpenAI, tmp_path: Path) -> None:
    port = dead_port()
    env = {"OPENAI_API_KEY": KEY, "ALL_PROXY": f"http://me:secret@127.0.0.1:{port}"}
    report = await run_check(load(tmp_path, env, baseUrl=api.url), env=env)
    assert isinstance(report.error, ProxyFailed)
    assert report.lines[-1] == (
        f"FAILED: Cannot reach the proxy http://me:***@127.0.0.1:{port} (from ALL_PROXY) "
        "(connection refused): check that the proxy is running and that the proxy setting (or "
        "HTTPS_PROXY / ALL_PROXY) is right"
    )
    assert all("secret" not in line for line in report.lines)


# --------------------------------------------------------------------------- the CLI process

CLI = """
import argparse, sys
from gpt_ls.cli.check import register
parser = argparse.ArgumentParser(prog="gpt-ls")
register(parser.add_subparsers(required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def run_cli(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    base.pop("OPENAI_API_KEY", None)
    base.pop("OPENAI_BASE_URL", None)
    return subprocess.run(
        [sys.executable, "-c", CLI, "check"], cwd=cwd, env={**base, **env},
        capture_output=True, text=True, timeout=60,
    )


def test_cli_uses_the_workspace_of_the_current_directory(api: FakeOpenAI, tmp_path: Path) -> None:
    ws = tmp_path / "project"
    (ws / "docs" / "zh").mkdir(parents=True)
    (ws / ".gpt-ls.toml").write_text(f'baseUrl = "{api.url}"\nmodel = "gpt-4o-mini"\n', "utf-8")
    TrustList(data_dir()).trust(ws / ".gpt-ls.toml")  # baseUrl is restricted: the user trusts the file
    env = {"OPENAI_API_KEY": KEY, "GPT_LS_CONFIG_DIR": str(tmp_path / "cfg")}
    done = run_cli(ws / "docs" / "zh", env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert f"  baseUrl = {api.url}  ({ws.resolve() / '.gpt-ls.toml'})" in lines
    assert lines[-1].startswith("OK: gpt-4o-mini answered in ")
    assert KEY not in done.stdout + done.stderr


def test_cli_exit_status_1_with_the_error_sentence(tmp_path: Path) -> None:
    port = dead_port()
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
           "GPT_LS_CONFIG_DIR": str(tmp_path / "cfg")}
    done = run_cli(tmp_path, env)
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == (
        f"FAILED: Connection refused by http://127.0.0.1:{port}/v1: nothing is listening there; "
        "check baseUrl and that the server is running"
    )
    assert KEY not in done.stdout + done.stderr


async def test_headers_and_azure_are_shown_safely(tmp_path: Path) -> None:
    with FakeOpenAI() as api:  # Azure sends api-key, which this fake does not check
        endpoint = api.url.removesuffix("/v1")
        loaded = load(
            tmp_path, {}, apiKey=KEY, azureEndpoint=endpoint, azureDeployment="prod-4o",
            headers={"X-Team": "docs", "X-Gateway-Token": "tok-SECRET-123"},
        )
        report = await run_check(loaded, env={})
        assert "  headers = {'X-Team': 'docs', 'X-Gateway-Token': '***'}  (editor)" in report.lines
        assert (
            "Request: one chat completion, model 'prod-4o', at most 5 tokens, no retries"
            in report.lines
        )
        assert all("tok-SECRET-123" not in line and KEY not in line for line in report.lines)
        # The fake serves the Azure deployment path (query string included).
        assert report.ok, report.lines
        assert report.lines[-1].startswith("OK: prod-4o answered in ")
        (req,) = api.requests
        assert req.path == "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"
        assert {k.lower(): v for k, v in req.headers.items()}["x-gateway-token"] == "tok-SECRET-123"
