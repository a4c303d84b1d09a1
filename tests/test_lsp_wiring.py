"""The LSP edge: capabilities resolved once, the code-action arguments, and a factory without side effects."""

from __future__ import annotations

import subprocess
import sys

import pytest
from lsprotocol import types
from pytest_lsp import client_capabilities

from gpt_ls.actions.catalog import ASK, EXPLAIN, FIX_CODE, SEND, TRANSLATE, Catalog, command_arguments, load_actions
from gpt_ls.actions.editor import ClientFeatures
from gpt_ls.lsp.editor import resolve_features

NEOVIM = types.ClientInfo(name="Neovim", version="0.11.4")


@pytest.mark.parametrize(
    ("editor", "client", "expected"),
    [
        ("visual-studio-code", None, ClientFeatures(True, True, True, True, True, True)),
        # Neovim checks documentChanges versions without advertising them: resolved here, once.
        ("neovim", NEOVIM, ClientFeatures(True, True, True, True, True, True)),
        ("neovim", types.ClientInfo(name="other"), ClientFeatures(True, False, True, True, True, True)),
    ],
)
def test_client_features_are_resolved_once(editor: str, client: types.ClientInfo | None,
                                           expected: ClientFeatures) -> None:
    assert resolve_features(client_capabilities(editor), client) == expected


def test_a_bare_client_supports_nothing() -> None:
    assert resolve_features(types.ClientCapabilities(), None) == ClientFeatures()


def test_code_action_arguments_follow_the_action() -> None:
    rng = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 2}}
    diagnostics = [{"message": "未定义 😀"}]
    assert command_arguments(ASK, "file:///a.py", rng, diagnostics) == ["file:///a.py", rng]
    assert command_arguments(FIX_CODE, "file:///a.py", rng, diagnostics) == [
        "fixCode", "file:///a.py", rng, {"diagnostics": diagnostics}]
    assert command_arguments(FIX_CODE, "file:///a.py", rng, []) == ["fixCode", "file:///a.py", rng]
    assert command_arguments(TRANSLATE, "file:///a.py", rng, diagnostics) == ["translate", "file:///a.py", rng]
    assert command_arguments(SEND, "file:///a.chat.md", rng, diagnostics) == ["file:///a.chat.md"]


def test_the_menu_lists_send_first_in_a_chat_document_and_filters_by_kind() -> None:
    catalog = Catalog()
    assert [a.id for a in catalog.menu("markdown", True, None)][:3] == ["send", "ask", "explain"]
    assert [a.id for a in catalog.menu("python", False, ["quickfix"])] == []
    assert EXPLAIN in catalog.menu("python", False, ["refactor"])


def test_importing_and_building_the_server_reads_nothing() -> None:
    script = (
        "import gpt_ls.settings as s\n"
        "def boom(*a, **k): raise AssertionError('settings read')\n"
        "s.load_settings = boom\n"
        "import gpt_ls.lsp.state as state\n"
        "state.load_settings = boom\n"
        "from gpt_ls.lsp.server import create_server\n"
        "server = create_server()\n"
        "assert server._runner is None and server._exchange is None\n"
        "print(sorted(server.protocol.fm.commands)[:2])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "['gpt-ls.ask', 'gpt-ls.cancel']\n"


def test_wants_diagnostics_is_a_user_setting_validated_like_the_others() -> None:
    catalog = load_actions([("config.toml", {
        "lint": {"title": "GPT: Lint 检查", "system": "Lint.", "template": "{diagnostics}\n{selection}",
                 "wantsDiagnostics": True},
        "bad": {"title": "GPT: Bad", "system": "Bad.", "wantsDiagnostics": "yes"},
    })])
    lint = catalog.get("lint")
    assert lint is not None and lint.wants_diagnostics
    assert catalog.get("bad") is None
    assert catalog.problems == ["config.toml: action 'bad': 'wantsDiagnostics' must be true or false; skipped"]
    rng = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}}
    assert command_arguments(lint, "file:///a.py", rng, [{"message": "x"}])[-1] == {"diagnostics": [{"message": "x"}]}
