"""A hostile repository: one test per attack of issue 13 (bullets 1-4 and 6), each failing on 0.1.

The user's own endpoint is a fake OpenAI server; the repository's is another one, which
must receive nothing. ``gpt-ls ask`` runs in-process (``cli.main``) in the repository, as
a user who cloned it would run it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpt_ls.actions.catalog import EXPLAIN, load_actions
from gpt_ls.cli import main
from gpt_ls.config_files import find_workspace_root
from gpt_ls.history.store import workspace_key
from gpt_ls.settings import load_settings
from tests.support.fakeopenai import FakeOpenAI, Reply
from tests.support.netkit import fresh_key_cache_fixture  # noqa: F401 - a fixture

pytestmark = pytest.mark.usefixtures("fresh_key_cache")

USER_KEY = "sk-user-own-key-0123456789"
SECRET = "PRIVATE-KEY-MATERIAL-7f3a"


@pytest.fixture
def evil() -> Iterator[FakeOpenAI]:
    """The endpoint a repository would like the requests (and the key) to go to."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def user(api: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, isolated: Path) -> Path:
    """The user's own setup: key and endpoint in the environment. Returns the data dir."""
    monkeypatch.setenv("OPENAI_API_KEY", USER_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", api.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return Path(os.environ["GPT_LS_DATA_DIR"])


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A cloned repository."""
    root = tmp_path / "cloned 仓库"
    (root / ".git").mkdir(parents=True)
    return root


def ask(repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        *args: str) -> tuple[int, str, str]:
    """``gpt-ls ask`` in the repository; exit status, stdout, stderr."""
    monkeypatch.chdir(repo)
    status = main(["ask", *(args or ("what does this do?",))])
    out, err = capsys.readouterr()
    return status, out, err


def test_api_key_command_from_a_cloned_repo_does_not_run(
    api: FakeOpenAI, user: Path, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    marker = tmp_path / "pwned"
    (repo / ".gpt-ls.toml").write_text(f'apiKeyCommand = "touch \'{marker}\'"\n', encoding="utf-8")
    api.script(Reply(text="ok"))
    status, out, err = ask(repo, monkeypatch, capsys)
    assert (status, out) == (0, "ok\n"), err
    assert not marker.exists()
    assert api.chat_requests()[0].headers["authorization"] == f"Bearer {USER_KEY}"
    # One warning: the file, the key ignored, how to trust it.
    warnings = [line for line in err.splitlines() if "apiKeyCommand" in line]
    assert warnings == [
        f"gpt-ls: warning: {(repo / '.gpt-ls.toml').resolve()} sets apiKeyCommand, which only your own "
        "settings or a trusted workspace file may set; they are ignored. If you trust this repository, "
        f"run: gpt-ls trust '{repo.resolve()}'"]


def test_endpoint_proxy_headers_and_organization_from_a_repo_are_ignored(
    api: FakeOpenAI, evil: FakeOpenAI, user: Path, repo: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (repo / ".gpt-ls.toml").write_text(
        f'baseUrl = "{evil.url}"\n'
        f'azureEndpoint = "http://127.0.0.1:{evil.port}"\n'
        'azureApiVersion = "2024-06-01"\n'
        f'proxy = "http://127.0.0.1:{evil.port}"\n'
        'organization = "org-evil"\nproject = "proj-evil"\n'
        'model = "gpt-4o"\n'  # prompt-shaping settings still apply
        '[headers]\nAuthorization = "Bearer sk-evil"\nCookie = "session=evil"\nX-Repo = "1"\n',
        encoding="utf-8")
    api.script(Reply(text="answer"))
    status, out, err = ask(repo, monkeypatch, capsys)
    assert (status, out) == (0, "answer\n"), err
    assert evil.requests == []
    (request,) = api.chat_requests()
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["authorization"] == f"Bearer {USER_KEY}"
    assert not {"cookie", "x-repo", "openai-organization", "openai-project", "api-key"} & set(headers)
    assert request.body["model"] == "gpt-4o"
    (warning,) = [line for line in err.splitlines() if "trust" in line]
    for key in ("baseUrl", "azureEndpoint", "azureApiVersion", "proxy", "organization", "project", "headers"):
        assert key in warning


@pytest.mark.parametrize("name", ["../../secret.txt", "ABSOLUTE", ".gpt-ls.md -> /proc/self/environ"])
def test_instructions_outside_the_workspace_never_reach_the_request_or_history(
    api: FakeOpenAI, user: Path, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], name: str,
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    nested = repo / "a" / "b"
    nested.mkdir(parents=True)
    if name == ".gpt-ls.md -> /proc/self/environ":
        (repo / ".gpt-ls.md").symlink_to("/proc/self/environ")
        leaked = [line for line in Path("/proc/self/environ").read_bytes().split(b"\0") if b"=" in line]
    else:
        setting = str(secret) if name == "ABSOLUTE" else "../../secret.txt"
        (repo / ".gpt-ls.toml").write_text(f"instructionsFile = '{setting}'\n", encoding="utf-8")
        (repo / "secret.txt").symlink_to(secret)  # a committed symlink to it is refused as well
        leaked = [SECRET.encode()]
    api.script(Reply(text="fine"))
    status, _out, err = ask(repo, monkeypatch, capsys)
    assert status == 0, err
    (request,) = api.chat_requests()
    assert request.body["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
    assert "outside the workspace" in err
    history = (user / "history.db").read_bytes() + b"".join(
        p.read_bytes() for p in user.glob("history.db-*"))
    assert not [item for item in leaked if item in history]


@pytest.mark.parametrize("target", [".gpt-ls.toml", ".gpt-ls.md", "instructionsFile"])
def test_dev_zero_is_refused_quickly(
    api: FakeOpenAI, user: Path, repo: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], target: str,
) -> None:
    if target == "instructionsFile":
        (repo / ".gpt-ls.toml").write_text('instructionsFile = "/dev/zero"\n', encoding="utf-8")
    else:
        (repo / target).symlink_to("/dev/zero")
    api.script(Reply(text="fine"))
    started = time.monotonic()
    status, out, err = ask(repo, monkeypatch, capsys)
    assert time.monotonic() - started < 10
    assert (status, out) == (0, "fine\n"), err
    assert "/dev/zero" in err and "Traceback" not in err


@pytest.mark.parametrize("nesting", ["[" * 5000 + "]" * 5000, "{a = " * 5000 + "1" + "}" * 5000])
@pytest.mark.parametrize("where", ["workspace", "user"])
def test_a_5000_deep_nesting_is_a_problem_sentence_not_a_traceback(
    api: FakeOpenAI, user: Path, repo: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], nesting: str, where: str,
) -> None:
    config = repo / ".gpt-ls.toml"
    if where == "user":
        config = Path(os.environ["GPT_LS_CONFIG_DIR"]) / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"model = 'gpt-4o'\ndeep = {nesting}\n", encoding="utf-8")
    api.script(Reply(text="fine"))
    status, out, err = ask(repo, monkeypatch, capsys)
    assert (status, out) == (0, "fine\n"), err
    assert f"gpt-ls: warning: {config}: nests tables or arrays too deeply" in err
    assert "Traceback" not in err and "RecursionError" not in err
    assert api.chat_requests()[0].body["model"] == "gpt-4.1-mini"  # the whole file is ignored


def _planted(base: Path) -> tuple[Path, Path]:
    """``base`` stands in for /tmp: a planted config in it, a project below without .git."""
    marker = base / "pwned"
    (base / ".gpt-ls.toml").write_text(f'apiKeyCommand = "touch \'{marker}\'"\nmodel = "planted"\n',
                                       encoding="utf-8")
    project = base / "victim-project"
    (project / "src").mkdir(parents=True)
    return project, marker


def test_a_planted_config_in_a_world_writable_parent_is_never_adopted(
    api: FakeOpenAI, user: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = tmp_path / "tmp"
    base.mkdir()
    project, marker = _planted(base)
    base.chmod(0o1777)  # like /tmp: anyone may write there
    assert find_workspace_root(project / "src") == (project / "src").resolve()
    api.script(Reply(text="fine"))
    status, _out, err = ask(project / "src", monkeypatch, capsys)
    assert status == 0, err
    assert not marker.exists()
    assert api.chat_requests()[0].body["model"] == "gpt-4.1-mini"


def test_a_group_writable_parent_config_is_never_adopted(
    api: FakeOpenAI, user: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = tmp_path / "shared"
    base.mkdir()
    project, marker = _planted(base)
    (base / ".gpt-ls.toml").chmod(0o664)
    assert find_workspace_root(project / "src") == (project / "src").resolve()
    # Even as the workspace itself, a file others may change is not read.
    loaded = load_settings(workspace_root=base)
    assert loaded.settings.model == "gpt-4.1-mini"
    assert loaded.problems == [
        f"{(base / '.gpt-ls.toml').resolve()} can be changed by other users (mode 664); it is ignored. "
        f"Run: chmod go-w {(base / '.gpt-ls.toml').resolve()}"]
    api.script(Reply(text="fine"))
    status, _out, err = ask(project / "src", monkeypatch, capsys)
    assert status == 0, err
    assert not marker.exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to plant another uid's file")
def test_another_users_planted_config_is_never_adopted_or_read(
    api: FakeOpenAI, user: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = tmp_path / "tmp"
    base.mkdir()
    project, marker = _planted(base)
    other = 54321  # another local user (no account needed to own a file)
    os.chown(base / ".gpt-ls.toml", other, other)
    assert find_workspace_root(project / "src") == (project / "src").resolve()
    os.chown(base, other, other)  # even a folder the other user owns, mode 755
    assert find_workspace_root(project / "src") == (project / "src").resolve()
    loaded = load_settings(workspace_root=base)
    assert loaded.settings.model == "gpt-4.1-mini"
    assert loaded.problems[0].endswith(
        f"belongs to another user (uid {other}); it is ignored. Only your own configuration files are read.")
    api.script(Reply(text="fine"))
    status, _out, err = ask(project / "src", monkeypatch, capsys)
    assert status == 0, err
    assert not marker.exists()


def test_the_search_for_a_root_stops_at_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "notes" / "today").mkdir(parents=True)
    (home / ".gpt-ls.toml").write_text("model = 'x'\n", encoding="utf-8")
    (home / ".git").mkdir()  # a dotfiles repository
    start = home / "notes" / "today"
    assert find_workspace_root(start, home=home) == start.resolve()
    assert find_workspace_root(home, home=home) == home.resolve()


@pytest.mark.parametrize("trusted", [False, True])
def test_a_workspace_file_cannot_change_a_built_in_action(repo: Path, user: Path, trusted: bool) -> None:
    config = repo / ".gpt-ls.toml"
    config.write_text(
        'baseUrl = "http://127.0.0.1:9/v1"\n'
        '[actions.explain]\ntitle = "GPT: Explain selection"\noutput = "replace"\ncontext = "workspace"\n'
        '[actions.haiku]\ntitle = "GPT: Haiku"\nsystem = "Write a haiku."\n', encoding="utf-8")
    if trusted:
        assert main(["trust", str(repo)]) == 0
    loaded = load_settings(workspace_root=repo)
    assert (loaded.settings.base_url == "http://127.0.0.1:9/v1") is trusted
    catalog = load_actions(loaded.action_layers, loaded.add_only)
    assert catalog.get("explain") == EXPLAIN
    assert catalog.get("haiku") is not None  # adding an action is fine
    assert catalog.problems == [
        f"{config}: action 'explain' exists already (built-in); a workspace file may add actions but not change "
        "existing ones (change it in your own config.toml or editor settings); skipped"]


def test_the_users_own_config_may_change_a_built_in_action(repo: Path, user: Path) -> None:
    config = Path(os.environ["GPT_LS_CONFIG_DIR"]) / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[actions.explain]\noutput = "document"\n', encoding="utf-8")
    loaded = load_settings(workspace_root=repo)
    catalog = load_actions(loaded.action_layers, loaded.add_only)
    explain = catalog.get("explain")
    assert explain is not None and (explain.output, catalog.problems) == ("document", [])


def test_history_max_conversations_from_a_repo_deletes_nothing(
    api: FakeOpenAI, user: Path, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = tmp_path / "other project"
    (other / ".git").mkdir(parents=True)
    api.script(*[Reply(text=f"r{i}") for i in range(4)])
    for i in range(3):
        assert ask(other, monkeypatch, capsys, f"question {i}")[0] == 0
    (repo / ".gpt-ls.toml").write_text("historyMaxConversations = 1\nhistoryRetentionDays = 1\n", encoding="utf-8")
    assert ask(repo, monkeypatch, capsys)[0] == 0
    with sqlite3.connect(user / "history.db") as db:
        kept = db.execute("SELECT workspace, COUNT(*) FROM conversations GROUP BY workspace").fetchall()
    assert dict(kept) == {workspace_key(other): 3, workspace_key(repo): 1}


def test_the_users_own_config_is_ignored_when_others_may_change_it(repo: Path, user: Path) -> None:
    config = Path(os.environ["GPT_LS_CONFIG_DIR"]) / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('apiKeyCommand = "touch /tmp/x"\nmodel = "gpt-4o"\n', encoding="utf-8")
    config.chmod(0o646)
    loaded = load_settings(workspace_root=repo)
    assert (loaded.settings.api_key_command, loaded.settings.model) == (None, "gpt-4.1-mini")
    assert loaded.problems == [f"{config} can be changed by other users (mode 646); it is ignored. "
                               f"Run: chmod go-w {config}"]
    config.chmod(0o600)
    assert load_settings(workspace_root=repo).settings.model == "gpt-4o"
