"""Settings: five layers with sources, bad input as problems, and the API key's origins."""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

from gpt_ls.api.failures import describe_error
from gpt_ls.api.http import ClientCache
from gpt_ls.api.keys import resolve_api_key
from gpt_ls.errors import AuthError, KeyCommandFailed, NoApiKey
from gpt_ls.secrets import redact, redact_url
from gpt_ls.settings import Settings, camel, data_dir, find_workspace_root, load_settings, parse_layer
from gpt_ls.trust import TrustList
from tests.support.fakeopenai import FakeOpenAI
from tests.support.netkit import fresh_key_cache_fixture  # noqa: F401 - a fixture

PY = shlex.quote(sys.executable)



pytestmark = pytest.mark.usefixtures("fresh_key_cache")


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    """An environment whose user config dir is empty, and a workspace folder."""
    config = tmp_path / "config"
    config.mkdir()
    ws = tmp_path / "ws"
    ws.mkdir()
    return {"GPT_LS_CONFIG_DIR": str(config)}, config / "config.toml", ws


def test_defaults_everywhere(dirs: tuple[dict[str, str], Path, Path]) -> None:
    env, _user, ws = dirs
    loaded = load_settings(workspace_root=ws, env=env)
    assert loaded.settings == Settings()
    assert set(loaded.sources.values()) == {"default"}
    assert loaded.problems == []
    assert (loaded.settings.connect_timeout, loaded.settings.read_timeout) == (5.0, 60.0)
    assert loaded.settings.max_retries == 2


def test_precedence_across_all_five_layers(dirs: tuple[dict[str, str], Path, Path]) -> None:
    env, user, ws = dirs
    env = {**env, "OPENAI_BASE_URL": "http://env:1/v1", "OPENAI_ORG_ID": "org-env",
           "OPENAI_PROJECT_ID": "proj-env", "OPENAI_API_KEY": "sk-env-000000000000"}
    user.write_text(
        'baseUrl = "http://user:2/v1"\norganization = "org-user"\nreadTimeout = 30\n'
        'model = "gpt-4o"\n',
        "utf-8",
    )
    (ws / ".gpt-ls.toml").write_text(
        '[gpt-ls]\nbaseUrl = "http://ws:3/v1"\nreadTimeout = 45.5\nmaxRetries = 0\n', "utf-8"
    )
    editor = {"baseUrl": "http://editor:4/v1", "maxRetries": 1}
    loaded = load_settings(editor=editor, workspace_root=ws, env=env)
    s = loaded.settings
    got = {
        name: (getattr(s, name), loaded.sources[name])
        for name in ("base_url", "organization", "project", "read_timeout", "max_retries",
                     "model", "api_key", "temperature")
    }
    assert got == {
        "base_url": ("http://editor:4/v1", "editor"),
        "organization": ("org-user", str(user)),
        "project": ("proj-env", "environment (OPENAI_PROJECT_ID)"),
        "read_timeout": (45.5, str(ws / ".gpt-ls.toml")),
        "max_retries": (1, "editor"),
        "model": ("gpt-4o", str(user)),
        "api_key": ("sk-env-000000000000", "environment (OPENAI_API_KEY)"),
        "temperature": (None, "default"),
    }
    assert loaded.problems == []


def test_malformed_toml_names_the_file_and_other_layers_still_apply(
    dirs: tuple[dict[str, str], Path, Path]
) -> None:
    env, user, ws = dirs
    user.write_text('model = "gpt-4o"\n', "utf-8")
    bad = ws / ".gpt-ls.toml"
    bad.write_text('model = "gpt-4.1\nproxy = 3\n', "utf-8")
    loaded = load_settings(editor={"readTimeout": 20}, workspace_root=ws, env=env)
    assert loaded.settings.model == "gpt-4o"
    assert loaded.settings.read_timeout == 20.0
    assert loaded.problems == [
        f"{bad}: is not valid TOML (Illegal character '\\n' (at line 1, column 17)); "
        "its settings are ignored"
    ]


@pytest.mark.parametrize(
    ("editor", "problem"),
    [
        ({"readTimeout": "fast"},
         "editor: setting 'readTimeout' must be a number (got 'fast'); ignored"),
        ({"maxRetries": 1.5},
         "editor: setting 'maxRetries' must be a whole number (got 1.5); ignored"),
        ({"headers": {"X-A": 1}},
         "editor: setting 'headers' value of 'X-A' must be a string (got (a table)); ignored"),
        ({"apiKey": 12345},
         "editor: setting 'apiKey' must be a string (got (hidden)); ignored"),
        ({"connectTimeout": 0},
         "editor: setting 'connectTimeout' must be more than 0 seconds (got 0); ignored"),
        ({"proxy": "socks4://me:secret@127.0.0.1:1080"},
         "editor: setting 'proxy' must be a proxy URL starting with http://, https://, "
         "socks5://, socks5h:// (got 'socks4://me:***@127.0.0.1:1080'); ignored"),
        ({"proxy": "127.0.0.1:3128"},
         "editor: setting 'proxy' must be a proxy URL starting with http://, https://, "
         "socks5://, socks5h:// (got '127.0.0.1:3128'); ignored"),
        ({"baseUrl": "api.deepseek.com"},
         "editor: setting 'baseUrl' must be a http(s) URL starting with http://, https:// "
         "(got 'api.deepseek.com'); ignored"),
        ({"explainOutput": "popup"},
         "editor: setting 'explainOutput' must be one of 'hover', 'comment' (got 'popup'); "
         "ignored"),
        ({"modle": "gpt-4o"}, "editor: unknown setting 'modle'; did you mean 'model'? (ignored)"),
        ({"readTimeOut": 5}, "editor: unknown setting 'readTimeOut'; did you mean 'readTimeout'? (ignored)"),
        ({"colour": "blue"}, "editor: unknown setting 'colour' (ignored)"),
        ({"temperature": 5},
         "editor: setting 'temperature' must be from 0 to 2 (got 5); ignored"),
        ({"readTimeout": float("inf")},
         "editor: setting 'readTimeout' must be a non-negative number (got inf); ignored"),
        ({"readTimeout": 86400},
         "editor: setting 'readTimeout' must be from 0.1 to 3,600 seconds (got 86400); ignored"),
        ({"maxRetries": 1_000_000_000},
         "editor: setting 'maxRetries' must be from 0 to 10 (got 1000000000); ignored"),
        ({"contextWindow": 100_000_000_000},
         "editor: setting 'contextWindow' must be from 256 to 10,000,000 tokens (got 100000000000); ignored"),
        ({"historyMaxConversations": 0},
         "editor: setting 'historyMaxConversations' must be from 1 to 10,000,000 conversations (got 0); ignored"),
        ({"headers": {"X-Team": "文档"}},
         "editor: setting 'headers' value of 'X-Team' must be plain ASCII text (HTTP headers "
         "cannot carry other characters) (got (a table)); ignored"),
        ({"headers": {"X Team": "a"}},
         "editor: setting 'headers' has an invalid header name 'X Team' (got (a table)); ignored"),
    ],
)
def test_wrong_values_name_the_key(
    dirs: tuple[dict[str, str], Path, Path], editor: dict[str, object], problem: str
) -> None:
    env, _user, ws = dirs
    loaded = load_settings(editor={**editor, "model": "gpt-4o"}, workspace_root=ws, env=env)
    assert loaded.problems == [problem]
    assert loaded.settings.model == "gpt-4o"  # the rest still applies


def test_wrong_type_in_a_file_names_file_and_key(dirs: tuple[dict[str, str], Path, Path]) -> None:
    env, user, ws = dirs
    user.write_text('readTimeout = "slow"\nmodel = "gpt-4o"\n', "utf-8")
    loaded = load_settings(workspace_root=ws, env=env)
    assert loaded.problems == [
        f"{user}: setting 'readTimeout' must be a number (got 'slow'); ignored"
    ]
    assert (loaded.settings.read_timeout, loaded.settings.model) == (60.0, "gpt-4o")


def test_a_bad_value_falls_back_to_the_next_layer(dirs: tuple[dict[str, str], Path, Path]) -> None:
    env, user, ws = dirs
    user.write_text("readTimeout = 25\n", "utf-8")
    loaded = load_settings(editor={"readTimeout": -1}, workspace_root=ws, env=env)
    assert (loaded.settings.read_timeout, loaded.sources["read_timeout"]) == (25.0, str(user))


def test_proxy_values(dirs: tuple[dict[str, str], Path, Path]) -> None:
    env, _user, ws = dirs
    for url in ("http://127.0.0.1:3128", "https://p.corp:443", "socks5://u:p@127.0.0.1:1080",
                "socks5h://127.0.0.1:9050", ""):
        loaded = load_settings(editor={"proxy": url}, workspace_root=ws, env=env)
        assert (loaded.settings.proxy, loaded.problems) == (url, [])


def test_azure_environment(dirs: tuple[dict[str, str], Path, Path]) -> None:
    env, _user, ws = dirs
    env = {**env, "AZURE_OPENAI_API_KEY": "azure-key-0000000000",
           "AZURE_OPENAI_ENDPOINT": "https://me.openai.azure.com",
           "OPENAI_API_VERSION": "2024-06-01"}
    loaded = load_settings(workspace_root=ws, env=env)
    s = loaded.settings
    assert (s.api_key, s.azure_endpoint, s.azure_api_version) == (
        "azure-key-0000000000", "https://me.openai.azure.com", "2024-06-01")
    assert loaded.sources["api_key"] == "environment (AZURE_OPENAI_API_KEY)"


def test_settings_repr_hides_secrets() -> None:
    s = Settings(api_key="sk-very-secret-key-123", headers={"Authorization": "Bearer zzz"},
                 proxy="http://u:pw@127.0.0.1:3128")
    text = repr(s)
    assert "sk-very-secret-key-123" not in text
    assert "zzz" not in text and ":pw@" not in text
    assert "api_key=(hidden)" in text
    assert "headers={'Authorization': '***'}" in text
    assert "proxy='http://u:***@127.0.0.1:3128'" in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://u:p@h:1", "http://u:***@h:1"),
        ("socks5h://user:pä$$@proxy.corp:1080/", "socks5h://user:***@proxy.corp:1080/"),
        ("http://h:1", "http://h:1"),
        ("http://onlyuser@h:1", "http://onlyuser@h:1"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_and_camel() -> None:
    assert redact("sk-abcdefghijklmnop") == "sk-…mnop"
    assert redact("short") == "*****"
    assert redact(None) == "(not set)"
    assert camel("api_key_command_timeout") == "apiKeyCommandTimeout"


def test_find_workspace_root(tmp_path: Path) -> None:
    (tmp_path / "proj" / ".git").mkdir(parents=True)
    deep = tmp_path / "proj" / "src" / "pkg"
    deep.mkdir(parents=True)
    assert find_workspace_root(deep) == (tmp_path / "proj").resolve()
    (deep / ".gpt-ls.toml").write_text("", "utf-8")
    assert find_workspace_root(deep) == deep.resolve()


# --------------------------------------------------------------------------- API key


def key_command(tmp_path: Path, body: str) -> str:
    """A command line running a small Python script (no shell involved)."""
    script = tmp_path / "key cmd.py"  # a space, to prove the shell-like quoting
    script.write_text(body, "utf-8")
    return f"{PY} {shlex.quote(str(script))}"


async def test_key_command_runs_once_per_process(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    cmd = key_command(tmp_path, f"""
with open({str(runs)!r}, "a") as f:
    f.write("run\\n")
print("sk-from-command-0123456789")
print("extra lines are ignored")
""")
    s = Settings(api_key_command=cmd)
    assert await resolve_api_key(s) == "sk-from-command-0123456789"
    assert await resolve_api_key(s) == "sk-from-command-0123456789"
    assert runs.read_text() == "run\n"


@pytest.mark.parametrize(
    ("script", "timeout", "sentence"),
    [
        # Its output is never echoed: it might be (part of) a key.
        ("import sys\nprint('sk-leaked-0123456789')\nsys.exit(3)\n", 10.0,
         "failed with exit status 3: run it in a terminal to see why"),
        ("print('   ')\n", 10.0,
         "printed nothing: it must print the API key on its first line"),
        ("import time\ntime.sleep(30)\n", 0.5,
         "did not finish within 0.5 s: it must print the key without waiting for input (raise "
         "apiKeyCommandTimeout if it is only slow)"),
    ],
)
async def test_key_command_failures(
    tmp_path: Path, script: str, timeout: float, sentence: str
) -> None:
    cmd = key_command(tmp_path, script)
    with pytest.raises(KeyCommandFailed) as info:
        await resolve_api_key(Settings(api_key_command=cmd, api_key_command_timeout=timeout))
    assert str(info.value) == f"apiKeyCommand ({sys.executable}) {sentence}"
    assert isinstance(info.value, NoApiKey)


@pytest.mark.parametrize(
    ("command", "sentence"),
    [
        ("no-such-program-xyz --get key",
         "apiKeyCommand program 'no-such-program-xyz' not found: check its name or give its "
         "full path"),
        ("pass show 'openai",
         "apiKeyCommand cannot be parsed (No closing quotation): check its quoting"),
    ],
)
async def test_key_command_that_cannot_start(command: str, sentence: str) -> None:
    with pytest.raises(KeyCommandFailed) as info:
        await resolve_api_key(Settings(api_key_command=command))
    assert str(info.value) == sentence


async def test_key_command_reads_no_stdin(tmp_path: Path) -> None:
    # A command that reads stdin must not consume the language server's LSP input.
    body = "import sys\ndata = sys.stdin.read()\nprint('sk-k' + str(len(data)))\n"
    cmd = key_command(tmp_path, body)
    assert await resolve_api_key(Settings(api_key_command=cmd)) == "sk-k0"


async def test_key_order_file_key_beats_command_beats_environment(
    dirs: tuple[dict[str, str], Path, Path], tmp_path: Path
) -> None:
    env, user, ws = dirs
    env = {**env, "OPENAI_API_KEY": "sk-env-0000000000"}
    cmd = key_command(tmp_path, "print('sk-cmd-1111111111')\n")
    # Command in the (trusted) workspace file, key only in the environment: the command wins.
    (ws / ".gpt-ls.toml").write_text(f"apiKeyCommand = '''{cmd}'''\n", "utf-8")
    TrustList(data_dir(env)).trust(ws / ".gpt-ls.toml")
    loaded = load_settings(workspace_root=ws, env=env)
    assert loaded.settings.api_key is None
    assert loaded.sources["api_key"] == "default"
    assert await resolve_api_key(loaded.settings) == "sk-cmd-1111111111"
    # An explicit apiKey in a file (even a lower one) wins over the command.
    user.write_text('apiKey = "sk-file-2222222222"\n', "utf-8")
    loaded = load_settings(workspace_root=ws, env=env)
    assert (loaded.settings.api_key, loaded.sources["api_key"]) == ("sk-file-2222222222", str(user))
    assert await resolve_api_key(loaded.settings) == "sk-file-2222222222"
    # Without a command, the environment's key is used.
    user.unlink()
    loaded = load_settings(env=env)
    assert await resolve_api_key(loaded.settings) == "sk-env-0000000000"


async def test_concurrent_first_requests_run_the_command_once(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    cmd = key_command(tmp_path, f"""
import time
with open({str(runs)!r}, "a") as f:
    f.write("run\\n")
time.sleep(0.3)
print("sk-shared-0123456789")
""")
    s = Settings(api_key_command=cmd)
    keys = await asyncio.gather(*(resolve_api_key(s) for _ in range(5)))
    assert keys == ["sk-shared-0123456789"] * 5
    assert runs.read_text() == "run\n"


async def test_a_rejected_key_from_the_command_is_fetched_again(tmp_path: Path) -> None:
    with FakeOpenAI(api_key="sk-rotated-NEW-0123456789") as api:
        store = tmp_path / "vault.txt"
        store.write_text("sk-rotated-OLD-0123456789\n", "utf-8")
        cmd = key_command(tmp_path, f"print(open({str(store)!r}).read().strip())\n")
        s = Settings(base_url=api.url, api_key_command=cmd, max_retries=0)
        cache = ClientCache(env={})
        client = await cache.get(s)
        with pytest.raises(openai.AuthenticationError) as info:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        assert isinstance(describe_error(info.value, s), AuthError)
        store.write_text("sk-rotated-NEW-0123456789\n", "utf-8")  # the user rotates the key
        client = await cache.get(s)
        reply = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "again"}])
        assert reply.choices[0].message.content == "Echo: again"
        await cache.aclose()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"indexExclude": ["vendor/", "*.min.js"]}, ("vendor/", "*.min.js")),
        ({"indexExclude": []}, ()),
    ],
)
def test_list_settings_become_tuples(raw: dict[str, Any], expected: tuple[str, ...]) -> None:
    values, problems = parse_layer(raw, "editor")
    assert problems == []
    assert values == {"index_exclude": expected}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"indexInclude": "src/"},
         "editor: setting 'indexInclude' must be a list of strings (got 'src/'); ignored"),
        ({"indexInclude": ["src/", 3]},
         "editor: setting 'indexInclude' must be a list of strings (got ['src/', 3]); ignored"),
        ({"indexExclude": ["x"] * 257},
         "editor: setting 'indexExclude' must be at most 256 strings of at most 1000 characters "
         "(got ['x', 'x', 'x', 'x', 'x', 'x', 'x', '...); ignored"),
        ({"completionDebounceMs": 9000},
         "editor: setting 'completionDebounceMs' must be from 0 to 5,000 milliseconds (got 9000); ignored"),
        ({"completionMode": "fill"},
         "editor: setting 'completionMode' must be one of 'chat', 'fim' (got 'fill'); ignored"),
    ],
)
def test_index_and_completion_settings_are_checked(raw: dict[str, Any], problem: str) -> None:
    assert parse_layer(raw, "editor") == ({}, [problem])


def test_a_workspace_cannot_turn_on_completions_or_embeddings(dirs: tuple[dict[str, str], Path, Path]) -> None:
    env, _user, ws = dirs
    (ws / ".gpt-ls.toml").write_text(
        'completions = true\nembeddingModel = "text-embedding-3-small"\ncompletionDebounceMs = 300\n'
    )
    resolved = load_settings(None, ws, env)
    assert resolved.settings.completions is False
    assert resolved.settings.embedding_model is None
    assert resolved.settings.completion_debounce_ms == 300
    assert resolved.untrusted is not None
    assert set(resolved.untrusted.keys) == {"completions", "embeddingModel"}
