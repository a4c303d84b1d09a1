"""Secrets and privacy: the API keys and a proxy password never appear anywhere a user or
another program can read them; history is owner-only; workspaces never see each other's data.

Everything runs for real: the server at ``-vv`` with ``--log-file``, every byte it sends
to the client recorded, a pproxy that wants a password, error bodies that echo the key,
the CLI's ``check``, ``ask`` and ``history export`` as processes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import subprocess
from pathlib import Path

from lsprotocol import types

from gpt_ls.secrets import mask
from gpt_ls.trust import TrustList
from tests.reliability import figures
from tests.reliability.harness import (
    KEY,
    QUICK,
    Trace,
    cli,
    close_editor,
    open_editor,
    stored,
)
from tests.reliability.test_faults import cli_env
from tests.support.fakeopenai import Error, FakeOpenAI, Reply
from tests.support.lsp_editor import EditorConfig
from tests.support.netkit import Pproxy

EDITOR_KEY = "sk-proj-EDITORsecret0123456789abcdefXYZ"
PROXY_USER, PROXY_PASSWORD = "alice", "Pr0xy-pa55-s3cret"
SECRETS = {
    "environment API key": KEY,
    "editor API key": EDITOR_KEY,
    "proxy password": PROXY_PASSWORD,
    "proxy Basic credentials": base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode(),
}


def find_secrets(data: str | bytes) -> list[str]:
    """Which secrets ``data`` holds (as text, or as raw bytes of a file)."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "replace")
    return [name for name, value in SECRETS.items() if value.encode() in raw]


def leaks(where: str, data: str | bytes) -> list[str]:
    """``find_secrets``, counted in the figures."""
    figures.add("leak checks")
    found = [f"{name} in {where}" for name in find_secrets(data)]
    figures.add("leaks found", len(found))
    return found


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def run_cli(args: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60)


async def test_no_secret_in_logs_trace_messages_history_exports_or_check(api: FakeOpenAI, tmp_path: Path) -> None:
    problems: list[str] = []
    log_file = tmp_path / "logs" / "gpt-ls.log"
    trace = Trace()
    with Pproxy("http", auth=f"{PROXY_USER}:{PROXY_PASSWORD}") as proxy:
        options = {**QUICK, "apiKey": EDITOR_KEY, "proxy": proxy.url}
        editor = await open_editor(
            api.url, tmp_path, EditorConfig(initialization_options=options),
            args=("--log-file", str(log_file), "-vv"), trace=trace)
        try:
            uri = "file:///secrets/notes.md"
            editor.open(uri, "Ask me 问题\nExplain me\n")
            api.script(Reply(text="Through the proxy 🙂."))
            await editor.action("gpt-ls.ask", uri, "Ask me 问题")
            assert proxy.relayed(api.port) == 1
            assert lower(api.chat_requests()[0].headers)["authorization"] == f"Bearer {EDITOR_KEY}"
            # Error bodies that echo the key and the proxy credentials back.
            api.script(Error(401, f"Incorrect API key provided: {EDITOR_KEY}", code="invalid_api_key"))
            await editor.action("gpt-ls.explain", uri, "Explain me")
            basic = SECRETS["proxy Basic credentials"]
            echo = f"upstream {EDITOR_KEY} via {proxy.url} Proxy-Authorization: Basic {basic}"
            api.script(Error(500, echo), Error(500, echo))
            await editor.action("gpt-ls.draftEmail", uri, "Explain me")
            # Settings the server must complain about without repeating them.
            editor.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={
                "gpt-ls": {"proxy": f"ftp://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:1", "apiKey": 12345,
                           "baseUrl": f"http://user:{PROXY_PASSWORD}@", "headers": {"Authorization": EDITOR_KEY}}}))
            editor.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={
                "gpt-ls": {"proxy": proxy.url, "baseUrl": api.url, "headers": {}}}))
            check = await editor.run("gpt-ls.check")
            assert check["ok"] is True, check
            history = await editor.run("gpt-ls.showHistory")
            await editor.run("gpt-ls.openConversation", history["conversations"][0]["id"])
            api.script(Reply(text="Done."))
            await editor.action("gpt-ls.continue", uri, "Ask me 问题")
        finally:
            await close_editor(editor)
        assert editor.message_texts(), "the faults above must have produced messages"
        problems += leaks("messages", "\n".join(editor.message_texts()))
        problems += leaks("LSP trace", bytes(trace.data))
        assert b'"newText": "Through ' in trace.data  # the trace is the real one (the reply streams in pieces)
        log = log_file.read_text("utf-8")
        assert " DEBUG " in log and "workspace/executeCommand" in log  # -vv really logs the wire
        problems += leaks("log file at -vv", log)
        for path in files_under(tmp_path / "data") + files_under(tmp_path / "cache"):
            problems += leaks(f"{path.relative_to(tmp_path)}", path.read_bytes())

        # The CLI: export, check, ask (with an error echoing the key), from the same workspace.
        env, ws = cli_env(tmp_path, api.url, {"baseUrl": api.url, "proxy": proxy.url})
        env["OPENAI_API_KEY"] = EDITOR_KEY
        conv_id = stored(tmp_path / "data" / "history.db")[0].conversation_id
        for fmt in ("json", "md"):
            out = run_cli(["history", "export", str(conv_id), "--format", fmt], env, ws)
            assert out.returncode == 0, out.stderr
            assert "Through the proxy" in out.stdout
            problems += leaks(f"history export --format {fmt}", out.stdout + out.stderr)
        exported = tmp_path / "export.json"
        out = run_cli(["history", "export", str(conv_id), "--format", "json", "-o", str(exported)], env, ws)
        assert out.returncode == 0, out.stderr
        assert stat.S_IMODE(exported.stat().st_mode) == 0o600
        out = run_cli(["check"], env, ws)
        assert out.returncode == 0, out.stdout + out.stderr
        problems += leaks("gpt-ls check", out.stdout + out.stderr)
        api.script(Error(401, f"Incorrect API key provided: {EDITOR_KEY}", code="invalid_api_key"))
        out = run_cli(["ask", "hello"], env, ws)
        assert out.returncode == 1
        problems += leaks("gpt-ls ask", out.stdout + out.stderr)
        out = run_cli(["chat"], env, ws, stdin="one\n")
        problems += leaks("gpt-ls chat", out.stdout + out.stderr)
    assert problems == [], "\n".join(problems)


async def test_crash_output_of_a_killed_server_holds_no_secret(api: FakeOpenAI, tmp_path: Path) -> None:
    """The server's own stderr at -vv (where logs go without --log-file), up to a SIGKILL."""
    err = Trace()
    pulled = {"apiKey": EDITOR_KEY, "proxy": f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:9"}
    editor = await open_editor(api.url, tmp_path, EditorConfig(configuration=pulled), args=("-vv",), stderr=err)
    uri = "file:///secrets/crash.md"
    editor.open(uri, "question\n")
    api.script(Error(401, f"Incorrect API key provided: {EDITOR_KEY}", code="invalid_api_key"))
    editor.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={
        "gpt-ls": {"proxy": "", "apiKey": EDITOR_KEY}}))
    await editor.action("gpt-ls.ask", uri, "question")
    proc = editor.client._server
    proc.kill()
    await proc.wait()
    await asyncio.sleep(0.2)
    await editor.client.stop()
    assert "workspace/configuration" in err.text() and "401" in err.text()
    assert leaks("server stderr at -vv until SIGKILL", bytes(err.data)) == []


def test_history_files_are_owner_only(tmp_path: Path, api: FakeOpenAI) -> None:
    """The store, its WAL, its folder, and the documents made from history."""
    env, ws = cli_env(tmp_path, api.url, {"baseUrl": api.url})
    out = run_cli(["ask", "private 私密"], env, ws)
    assert out.returncode == 0, out.stderr
    data = tmp_path / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = files_under(data)
    assert "history.db" in {p.name for p in files}
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {p.name: "0o600" for p in files}


async def test_documents_made_from_history_are_owner_only(api: FakeOpenAI, tmp_path: Path) -> None:
    """Replies and conversations opened as Markdown documents live in the cache dir: private too."""
    editor = await open_editor(api.url, tmp_path, EditorConfig(apply_edit=False))
    try:
        uri = "file:///secrets/private.md"
        editor.open(uri, "private question 私密\n")
        api.script(Reply(text="private answer 私密"))
        await editor.action("gpt-ls.ask", uri, "private question 私密")
        history = await editor.run("gpt-ls.showHistory")
        await editor.run("gpt-ls.openConversation", history["conversations"][0]["id"])
    finally:
        await close_editor(editor)
    files = files_under(tmp_path / "cache")
    assert len(files) == 3  # the reply, the history overview, the conversation
    assert {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {
        str(p.relative_to(tmp_path)): "0o600" for p in files}
    folders = {p.parent for p in files}
    assert {str(f): oct(stat.S_IMODE(f.stat().st_mode)) for f in folders} == {str(f): "0o700" for f in folders}


async def test_one_workspace_never_reaches_another(api: FakeOpenAI, tmp_path: Path) -> None:
    """Two workspaces share one store; the CLI and the server only ever send their own data."""
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    for ws in (alpha, beta):
        ws.mkdir()
        (ws / ".git").mkdir()
    (alpha / ".gpt-ls.toml").write_text('headers = { "X-Alpha" = "ALPHA-HEADER" }\n', encoding="utf-8")
    TrustList(tmp_path / "data").trust(alpha / ".gpt-ls.toml")  # headers are restricted
    (beta / "not-open.txt").write_text("DISK-ONLY-MARKER\n", encoding="utf-8")
    a = await open_editor(api.url, tmp_path, root=alpha)
    b = await open_editor(api.url, tmp_path, root=beta)
    try:
        a.open(alpha.as_uri() + "/a.md", "ALPHA-SECRET 甲 question\n")
        await a.action("gpt-ls.ask", alpha.as_uri() + "/a.md", "ALPHA-SECRET 甲 question")
        await a.action("gpt-ls.continue", alpha.as_uri() + "/a.md", "ALPHA-SECRET 甲 question")
        b.open(beta.as_uri() + "/other.md", "OTHER-DOC-MARKER\n")
        b.open(beta.as_uri() + "/b.md", "beta question 乙\n")
        sent_by_alpha = len(api.chat_requests())
        await b.action("gpt-ls.continue", beta.as_uri() + "/b.md", "beta question 乙")
        await b.action("gpt-ls.ask", beta.as_uri() + "/b.md", "beta question 乙")
    finally:
        await close_editor(a)
        await close_editor(b)
    env = {**os.environ, "HOME": str(tmp_path), "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": api.url,
           "GPT_LS_DATA_DIR": str(tmp_path / "data"), "GPT_LS_CONFIG_DIR": str(tmp_path / "config"),
           "NO_PROXY": "127.0.0.1"}
    out = run_cli(["ask", "-c", "beta follow-up"], env, beta)
    assert out.returncode == 0, out.stderr
    requests = api.chat_requests()
    assert len(requests) == sent_by_alpha + 3
    alpha_sent = json.dumps([r.body for r in requests[:sent_by_alpha]], ensure_ascii=False)
    assert alpha_sent.count("ALPHA-SECRET") >= 3  # the continue re-sent the first turn
    assert all(lower(r.headers).get("x-alpha") == "ALPHA-HEADER" for r in requests[:sent_by_alpha])
    for r in requests[sent_by_alpha:]:
        body = json.dumps(r.body, ensure_ascii=False)
        found = [m for m in ("ALPHA-SECRET", "甲", "DISK-ONLY-MARKER", "OTHER-DOC-MARKER") if m in body]
        figures.add("leak checks")
        figures.add("leaks found", len(found) + ("x-alpha" in lower(r.headers)))
        assert found == [] and "x-alpha" not in lower(r.headers), (found, r.headers)
    assert "beta question 乙" in json.dumps(requests[-1].body, ensure_ascii=False)  # -c continued beta's


async def test_only_the_selection_and_its_document_are_sent(api: FakeOpenAI, tmp_path: Path) -> None:
    """No hidden reads: what the request holds comes from the open document the action names."""
    ws = tmp_path / "workspace"
    ws.mkdir()
    (ws / "README.md").write_text("DISK-README-MARKER\n", encoding="utf-8")
    editor = await open_editor(api.url, tmp_path, EditorConfig(initialization_options={"contextLines": 1}))
    try:
        editor.open(ws.as_uri() + "/other.py", "OTHER-OPEN-MARKER = 1\n", "python")
        uri = ws.as_uri() + "/main.md"
        lines = [f"line {i} FAR-MARKER" for i in range(10)] + ["near 1", "the question?", "near 2"] + [
            f"after {i} FAR-MARKER" for i in range(10)]
        editor.open(uri, "\n".join(lines) + "\n", "markdown")
        idle = editor.idle_count
        await editor.run("gpt-ls.ask", uri, editor.range_of(uri, "the question?"))
        await editor.wait_idle(idle)
    finally:
        await close_editor(editor)
    (request,) = api.chat_requests()
    body = json.dumps(request.body, ensure_ascii=False)
    assert "the question?" in body and "near 1" in body and "near 2" in body
    found = [m for m in ("DISK-README-MARKER", "OTHER-OPEN-MARKER", "FAR-MARKER") if m in body]
    figures.add("leak checks")
    figures.add("leaks found", len(found))
    assert found == []


def test_the_reliability_suite_knows_every_secret_shape() -> None:
    """The scanner itself finds each secret, raw and inside JSON (no check that cannot fail)."""
    for name, value in SECRETS.items():
        assert find_secrets(json.dumps({"x": f"..{value}.."})) == [name]


def test_log_masking_by_shape_before_the_server_knows_the_secret() -> None:
    """pygls logs ``initialize`` params and configuration results before any handler runs."""
    line = ("initialization_options={'apiKey': 'sk-proj-NEVERSEEN0123456789', 'proxy': "
            "'http://alice:pw-123@127.0.0.1:8080'} \"apiKey\": \"k-abcdef\" Proxy-Authorization: Basic "
            "YWxpY2U6cHctMTIz already http://bob:***@h:1 max_tokens=5 'token': 'progress-1'")
    assert mask(line) == (
        "initialization_options={'apiKey': '[REDACTED]', 'proxy': 'http://alice:[REDACTED]@127.0.0.1:8080'} "
        "\"apiKey\": \"[REDACTED]\" Proxy-Authorization: Basic [REDACTED] already http://bob:[REDACTED]@h:1 "
        "max_tokens=5 'token': 'progress-1'")
