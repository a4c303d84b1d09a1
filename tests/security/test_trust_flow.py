"""Workspace trust end to end: untrusted -> one message -> ``gpt-ls trust`` -> applies -> file changes -> untrusted.

In the CLI (in-process), in the server's state against an in-memory editor (fast), and once
through a real LSP connection (slow).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from lsprotocol import types

from gpt_ls.actions.editor import ClientFeatures
from gpt_ls.cli import main
from gpt_ls.lsp.state import GptLanguageServer
from gpt_ls.settings import FIELDS, OPEN_FIELDS, RESTRICTED_FIELDS, load_settings
from gpt_ls.trust import TRUST_CHOICE, TrustList
from tests.support.fakeopenai import FakeOpenAI, Reply
from tests.support.lsp_editor import EditorConfig, server_env, start_editor
from tests.support.memory_editor import MemoryEditor
from tests.support.netkit import fresh_key_cache_fixture  # noqa: F401 - a fixture

pytestmark = pytest.mark.usefixtures("fresh_key_cache")

USER_KEY = "sk-user-own-key-0123456789"


@pytest.fixture
def company() -> Iterator[FakeOpenAI]:
    """The endpoint a repository the user trusts names (a company gateway, say)."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo 项目"
    (root / ".git").mkdir(parents=True)
    return root


def test_every_setting_is_classified_restricted_or_open() -> None:
    # A new setting must be put in one of the two sets (settings.py says which kind is which).
    assert set(FIELDS) == RESTRICTED_FIELDS | OPEN_FIELDS
    assert not RESTRICTED_FIELDS & OPEN_FIELDS
    assert {"api_key", "api_key_command", "api_key_command_timeout", "base_url", "azure_endpoint",
            "azure_api_version", "azure_deployment", "proxy", "headers", "organization", "project",
            "history_retention_days", "history_max_conversations"} <= RESTRICTED_FIELDS
    assert {"model", "temperature", "max_tokens", "context_lines", "explain_output", "translate_to",
            "persona", "instructions_file"} <= OPEN_FIELDS


def test_restricted_settings_apply_from_the_users_own_layers(repo: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.toml").write_text('proxy = "http://127.0.0.1:3128"\norganization = "org-user"\n',
                                        encoding="utf-8")
    (repo / ".gpt-ls.toml").write_text('organization = "org-repo"\nproject = "proj-repo"\nmodel = "gpt-4o"\n',
                                       encoding="utf-8")
    env = {"GPT_LS_CONFIG_DIR": str(config), "GPT_LS_DATA_DIR": str(tmp_path / "data"),
           "OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}
    loaded = load_settings({"headers": {"X-User": "1"}}, repo, env)
    s = loaded.settings
    assert (s.proxy, s.organization, s.project, s.base_url, s.headers, s.model) == (
        "http://127.0.0.1:3128", "org-user", None, "http://127.0.0.1:1/v1", {"X-User": "1"}, "gpt-4o")
    assert loaded.untrusted is not None and loaded.untrusted.keys == ("organization", "project")
    # The editor says the workspace is untrusted: a trusted file's restricted keys are ignored too.
    TrustList(tmp_path / "data").trust(repo / ".gpt-ls.toml")
    assert load_settings(None, repo, env).settings.organization == "org-repo"
    restricted = load_settings(None, repo, env, workspace_trusted=False)
    assert restricted.settings.organization == "org-user"
    assert restricted.untrusted is not None and restricted.untrusted.editor_untrusted
    assert restricted.untrusted.message().endswith("ignored because the editor says this workspace is not trusted.")


def ask(cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd)
    status = main(["ask", "hello"])
    out, err = capsys.readouterr()
    return status, out, err


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(args)
    out, err = capsys.readouterr()
    return status, out, err


def test_the_trust_flow_in_the_cli(
    api: FakeOpenAI, company: FakeOpenAI, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", USER_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", api.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    config = repo / ".gpt-ls.toml"
    config.write_text(f'baseUrl = "{company.url}"\n[headers]\nX-Team = "blue"\n', encoding="utf-8")
    sub = repo / "src"
    sub.mkdir()
    api.script(Reply(text="from the user's endpoint"), Reply(text="again the user's"))
    company.script(Reply(text="from the company"), Reply(text="trusted anew"))

    # 1. Untrusted: the user's endpoint, one message that says how to trust.
    status, out, err = ask(sub, monkeypatch, capsys)
    assert (status, out) == (0, "from the user's endpoint\n")
    assert err.count("gpt-ls trust") == 1 and "baseUrl, headers" in err

    # 2. gpt-ls trust (the default is the current workspace): the settings apply.
    monkeypatch.chdir(sub)
    status, out, _ = run(["trust"], capsys)
    assert status == 0
    assert f"Trusted {config.resolve()}" in out and "Its restricted settings now apply: baseUrl, headers." in out
    status, out, err = ask(sub, monkeypatch, capsys)
    assert (status, out, err) == (0, "from the company\n", "")
    assert company.chat_requests()[0].headers["x-team"] == "blue"
    assert run(["trust", "--list"], capsys)[1] == f"{config.resolve()}  (trusted)\n"

    # 3. The file changes: untrusted again until trusted anew.
    config.write_text(f'baseUrl = "{company.url}"\napiKeyCommand = "touch {tmp_path}/pwned"\n', encoding="utf-8")
    status, out, err = ask(sub, monkeypatch, capsys)
    assert (status, out) == (0, "again the user's\n")
    assert "sets baseUrl, apiKeyCommand" in err and not (tmp_path / "pwned").exists()
    assert run(["trust", "--list"], capsys)[1] == f"{config.resolve()}  (changed since trusted)\n"
    config.write_text(f'baseUrl = "{company.url}"\n', encoding="utf-8")
    assert run(["trust", str(repo)], capsys)[0] == 0
    assert ask(sub, monkeypatch, capsys)[1] == "trusted anew\n"

    # 4. gpt-ls untrust: back to the user's own settings.
    status, out, _ = run(["untrust", str(repo)], capsys)
    assert (status, out) == (0, f"Untrusted {config.resolve()}: its restricted settings no longer apply.\n")
    assert run(["untrust", str(repo)], capsys)[0] == 1
    assert run(["trust", "--list"], capsys)[1] == "No workspace file is trusted.\n"
    assert [len(api.chat_requests()), len(company.chat_requests())] == [2, 2]


def test_trust_refuses_what_gpt_ls_would_not_read(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["trust", str(repo)], capsys)[0] == 1  # nothing to trust
    (repo / ".gpt-ls.toml").write_text("baseUrl = 'http://127.0.0.1:9/v1'\n", encoding="utf-8")
    (repo / ".gpt-ls.toml").chmod(0o666)
    status, _, err = run(["trust", str(repo)], capsys)
    assert status == 1 and "can be changed by other users" in err
    assert TrustList(Path(os.environ["GPT_LS_DATA_DIR"])).load() == {}


# -- the server, in-process -----------------------------------------------------------


def server_in(repo: Path, monkeypatch: pytest.MonkeyPatch, features: ClientFeatures,
              choice: str | None) -> tuple[GptLanguageServer, MemoryEditor]:
    server = GptLanguageServer()
    editor = MemoryEditor(features, workspace_root=repo)
    editor.choice = choice
    server.editor = editor  # type: ignore[assignment]
    server.features = features
    monkeypatch.setattr(GptLanguageServer, "workspace_root", property(lambda self: repo))
    return server, editor


async def settle(server: GptLanguageServer) -> None:
    for _ in range(50):
        if server._trust_offer is None:
            return
        await asyncio.sleep(0.01)


async def test_the_server_offers_a_trust_choice_that_applies_at_once(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = repo / ".gpt-ls.toml"
    config.write_text('baseUrl = "http://127.0.0.1:9/v1"\nmodel = "gpt-4o"\n', encoding="utf-8")
    server, editor = server_in(repo, monkeypatch, ClientFeatures(show_message_request=True), None)
    server.take_initialization_options({"gpt-ls": {}})
    await settle(server)
    assert server.settings.base_url is None and server.settings.model == "gpt-4o"
    ((prompt, choices),) = editor.choices_asked
    assert choices == [TRUST_CHOICE, "Not now"] and "sets baseUrl" in prompt and "gpt-ls trust" in prompt
    server.reload_settings()  # the same file again: no second message
    assert len(editor.choices_asked) == 1 and editor.messages == []
    # The file changes: asked again; this time the user picks Trust, and it applies at once.
    config.write_text('baseUrl = "http://127.0.0.1:10/v1"\n', encoding="utf-8")
    editor.choice = TRUST_CHOICE
    server.reload_settings()
    await settle(server)
    assert server.settings.base_url == "http://127.0.0.1:10/v1"
    assert editor.messages == [("info", f"gpt-ls: {config.resolve()} is trusted; its settings apply.")]


async def test_a_file_changed_while_the_user_decides_is_not_trusted(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = repo / ".gpt-ls.toml"
    config.write_text('baseUrl = "http://127.0.0.1:9/v1"\n', encoding="utf-8")
    server, editor = server_in(repo, monkeypatch, ClientFeatures(show_message_request=True), TRUST_CHOICE)
    original = editor.ask_choice

    async def slow_user(prompt: str, choices: list[str]) -> str | None:
        config.write_text('apiKeyCommand = "touch /tmp/x"\n', encoding="utf-8")  # swapped meanwhile
        return await original(prompt, choices)

    editor.ask_choice = slow_user  # type: ignore[method-assign]
    server.reload_settings()
    await settle(server)
    assert TrustList(Path(os.environ["GPT_LS_DATA_DIR"])).load() == {}
    assert server.settings.api_key_command is None
    assert editor.messages[-1][1].endswith("changed since gpt-ls showed it: read it again, then trust it.")


async def test_the_server_follows_the_trust_list_and_the_file_on_disk(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = repo / ".gpt-ls.toml"
    config.write_text('baseUrl = "http://127.0.0.1:9/v1"\n', encoding="utf-8")
    server, editor = server_in(repo, monkeypatch, ClientFeatures(), None)
    server.take_initialization_options({})
    assert server.settings.base_url is None and len(editor.messages) == 1
    TrustList(Path(os.environ["GPT_LS_DATA_DIR"])).trust(config)  # gpt-ls trust, in a terminal
    assert server.settings.base_url == "http://127.0.0.1:9/v1"  # the next request, no restart
    config.write_text('baseUrl = "http://127.0.0.1:10/v1"\n', encoding="utf-8")  # a git pull
    assert server.settings.base_url is None
    assert len(editor.messages) == 2 and "gpt-ls trust" in editor.messages[-1][1]


@pytest.mark.parametrize("case", ["editor says untrusted", "no message requests"])
async def test_a_plain_message_when_no_trust_choice_can_be_offered(
    repo: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    config = repo / ".gpt-ls.toml"
    config.write_text('proxy = "http://127.0.0.1:9"\n', encoding="utf-8")
    untrusted_editor = case == "editor says untrusted"
    if untrusted_editor:
        TrustList(Path(os.environ["GPT_LS_DATA_DIR"])).trust(config)  # even a trusted file
    features = ClientFeatures(show_message_request=untrusted_editor)
    server, editor = server_in(repo, monkeypatch, features, TRUST_CHOICE)
    server.take_initialization_options({"workspaceTrusted": False} if untrusted_editor else None)
    if not untrusted_editor:
        server.reload_settings()
    await settle(server)
    assert server.settings.proxy is None and editor.choices_asked == []
    ((kind, text),) = editor.messages
    assert kind == "warning" and f"{config.resolve()} sets proxy" in text
    # workspaceTrusted is not a setting: no "unknown setting" problem, and a later change cannot set it.
    server.set_editor_settings({"workspaceTrusted": True})
    assert server.workspace_trusted is not untrusted_editor and len(editor.messages) == 1


# -- the server over LSP ------------------------------------------------------------------


@pytest.mark.slow
async def test_the_trust_flow_in_the_server(
    api: FakeOpenAI, company: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "workspace"
    (repo / ".git").mkdir(parents=True)
    marker = tmp_path / "pwned"
    config = repo / ".gpt-ls.toml"
    config.write_text(f'baseUrl = "{company.url}"\napiKeyCommand = "touch {marker}"\n', encoding="utf-8")
    env = server_env(api.url, str(tmp_path))
    monkeypatch.setenv("GPT_LS_DATA_DIR", env["GPT_LS_DATA_DIR"])  # gpt-ls trust, in this process
    asked: list[str] = []
    answers = ["Not now", TRUST_CHOICE]

    def choose(params: types.ShowMessageRequestParams) -> str | None:
        asked.append(params.message)
        return answers.pop(0)

    editor = await start_editor(env, EditorConfig(choose=choose), repo.as_uri())
    new_model = types.DidChangeConfigurationParams(settings={"model": "gpt-4o"})
    try:
        uri = repo.as_uri() + "/notes.md"
        editor.open(uri, "question 问题\n")
        api.script(Reply(text="user endpoint"))
        await editor.action("gpt-ls.ask", uri, "question 问题")
        assert not marker.exists() and len(api.chat_requests()) == 1
        assert len(asked) == 1 and "sets baseUrl, apiKeyCommand" in asked[0] and "gpt-ls trust" in asked[0]

        # gpt-ls trust in a terminal: the next request uses the file's settings, no restart.
        config.write_text(f'baseUrl = "{company.url}"\n', encoding="utf-8")
        assert main(["trust", str(repo)]) == 0
        company.script(Reply(text="company endpoint"))
        await editor.action("gpt-ls.ask", uri, "question 问题")
        assert len(company.chat_requests()) == 1
        editor.client.workspace_did_change_configuration(new_model)  # the editor's settings still apply
        company.script(Reply(text="company endpoint"))
        await editor.action("gpt-ls.ask", uri, "question 问题")
        assert company.chat_requests()[1].body["model"] == "gpt-4o"

        # The file changes: untrusted again, asked again at the next request; Trust applies at once.
        trusted = TrustList(Path(env["GPT_LS_DATA_DIR"]))
        config.write_text(f'baseUrl = "{company.url}"\nheaders = {{ X-Team = "blue" }}\n', encoding="utf-8")
        await editor.code_actions(uri, editor.range_of(uri, "question"))
        for _ in range(100):
            if trusted.is_trusted(config, config.read_bytes()):
                break
            await asyncio.sleep(0.05)
        assert len(asked) == 2 and "sets baseUrl, headers" in asked[1]
        company.script(Reply(text="trusted in the editor"))
        await editor.action("gpt-ls.ask", uri, "question 问题")
        assert company.chat_requests()[-1].headers["x-team"] == "blue"
        assert len(api.chat_requests()) == 1 and not marker.exists()
    finally:
        await editor.client.shutdown_session()
