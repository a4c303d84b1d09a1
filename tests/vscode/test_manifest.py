"""The VS Code extension's manifest stays in step with the server's settings and commands.

The extension sends every `gpt-ls.*` setting it contributes to the server, so a setting
the server lacks is a warning for every user, and one the manifest lacks cannot be set
from VS Code at all.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, get_args

import pytest

from gpt_ls.settings import RESTRICTED_FIELDS, SECRET_FIELDS, ExplainOutput, Settings, camel

MANIFEST = Path(__file__).resolve().parents[2] / "editors" / "vscode" / "package.json"
#: Settings that only the extension reads (how to start the server).
CLIENT_ONLY = {"serverPath", "pythonPath", "trace.server"}
#: Client settings that choose the program the extension starts: restricted like the server's.
CLIENT_RESTRICTED = {"serverPath", "pythonPath"}
#: Settings the server reads that are not fields of ``Settings`` (user actions).
SERVER_EXTRA = {"actions"}


def manifest() -> dict[str, Any]:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def contributed() -> dict[str, dict[str, Any]]:
    props = manifest()["contributes"]["configuration"]["properties"]
    return {key.removeprefix("gpt-ls."): value for key, value in props.items()}


def server_fields() -> dict[str, dataclasses.Field[Any]]:
    return {camel(f.name): f for f in dataclasses.fields(Settings) if f.name not in SECRET_FIELDS}


def test_every_server_setting_is_contributed_and_nothing_else() -> None:
    assert set(contributed()) - CLIENT_ONLY == set(server_fields()) | SERVER_EXTRA


@pytest.mark.parametrize("name", sorted(server_fields()))
def test_defaults_match_the_server(name: str) -> None:
    field = server_fields()[name]
    default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
    assert contributed()[name]["default"] == (list(default) if isinstance(default, tuple) else default)
    assert contributed()[name].get("markdownDescription") or contributed()[name].get("description")


def test_explain_output_choices_match_the_server() -> None:
    assert contributed()["explainOutput"]["enum"] == list(get_args(ExplainOutput))


def test_no_api_key_setting() -> None:
    # The key lives in VS Code's secret storage (GPT: Set API key), never in settings.json.
    assert "apiKey" not in contributed()


def test_palette_commands_do_not_collide_with_server_commands() -> None:
    # vscode-languageclient registers the server's command ids itself; reusing one fails.
    ids = [c["command"] for c in manifest()["contributes"]["commands"]]
    assert all(i.startswith("gpt-ls.vscode.") for i in ids)
    titles = {c["title"] for c in manifest()["contributes"]["commands"]}
    assert {"Ask", "Explain selection", "Draft email", "Continue conversation", "New conversation",
            "Show history", "Check connection", "Set API key"} <= titles


def test_engine_and_types_are_on_the_same_minor() -> None:
    # vsce refuses to package when @types/vscode is newer than engines.vscode.
    m = manifest()
    engine = m["engines"]["vscode"].lstrip("^~>=")
    types = m["devDependencies"]["@types/vscode"].lstrip("^~>=")
    assert engine.split(".")[:2] == types.split(".")[:2] == ["1", "91"]


def restricted_keys() -> set[str]:
    """The server's restricted settings (``settings.RESTRICTED_FIELDS``) plus the program to start."""
    return {camel(n) for n in RESTRICTED_FIELDS - SECRET_FIELDS} | CLIENT_RESTRICTED


@pytest.mark.parametrize("name", sorted(restricted_keys()))
def test_restricted_settings_cannot_be_set_by_a_workspace(name: str) -> None:
    # "application" and "machine" settings are read from user settings only: a repository's
    # .vscode/settings.json cannot point requests, credentials or programs elsewhere.
    assert contributed()[name].get("scope") in {"application", "machine"}


def test_restricted_configurations_are_exactly_the_restricted_settings() -> None:
    listed = manifest()["capabilities"]["untrustedWorkspaces"]["restrictedConfigurations"]
    assert sorted(listed) == sorted(f"gpt-ls.{k}" for k in restricted_keys())
    assert manifest()["capabilities"]["untrustedWorkspaces"]["supported"] == "limited"


@pytest.mark.parametrize("name", sorted(set(contributed()) - restricted_keys() - {"trace.server"}))
def test_open_settings_keep_the_default_scope(name: str) -> None:
    # Prompt-shaping settings stay per workspace (the server lets a workspace file set them too).
    assert contributed()[name].get("scope") in {None, "resource", "window", "language-overridable"}
