"""One typed, fully defaulted settings object, and where each value came from.

Precedence, highest first: editor settings (LSP ``initializationOptions``,
``workspace/didChangeConfiguration``, ``workspace/configuration`` section ``gpt-ls``)
> workspace file ``.gpt-ls.toml`` > user file ``config.toml`` in the user config dir >
environment (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, …) > defaults.
A workspace file sets the ``RESTRICTED_FIELDS`` only when the user trusted it
(``trust.TrustList``); otherwise they are dropped and ``ResolvedSettings.untrusted`` says so.

The API key is the one exception to "highest layer wins, field by field": an
``apiKey`` set in a file or the editor wins over ``apiKeyCommand``, which wins over
``OPENAI_API_KEY`` from the environment.

Settings are camelCase on the wire and in the TOML files, snake_case in Python. A wrong value never stops gpt-ls:
it becomes a *problem* (a sentence naming the file, the key and what is wrong); the next layer's value is used.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_type_hints

from gpt_ls.config_files import USER_FILE as USER_FILE
from gpt_ls.config_files import WORKSPACE_FILE as WORKSPACE_FILE
from gpt_ls.config_files import ConfigFile, nesting_depth, read_toml
from gpt_ls.config_files import cache_dir as cache_dir
from gpt_ls.config_files import config_dir as config_dir
from gpt_ls.config_files import data_dir as data_dir
from gpt_ls.config_files import find_workspace_root as find_workspace_root
from gpt_ls.secrets import redact_url
from gpt_ls.setting_values import coerce, validate
from gpt_ls.setting_values import shown as show
from gpt_ls.trust import TrustList, UntrustedFile, digest

DEFAULT_MODEL = "gpt-4.1-mini"
DEFAULT_PERSONA = (
    "You are a friendly conversation partner. Stay in character, answer in the language "
    "the user writes in, and keep replies short."
)

ExplainOutput = Literal["hover", "comment"]
#: How completions as you type ask the model: a chat model told to return only the text to insert,
#: or fill-in-the-middle through ``/v1/completions`` with ``prompt`` + ``suffix``.
CompletionMode = Literal["chat", "fim"]


@dataclass(frozen=True)
class Settings:
    """Everything gpt-ls can be told; every field has a working default."""

    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key: str | None = None
    api_key_command: str | None = None
    api_key_command_timeout: float = 10.0
    organization: str | None = None
    project: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    azure_endpoint: str | None = None
    azure_api_version: str | None = None
    azure_deployment: str | None = None
    proxy: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_retries: int = 2
    max_reply_chars: int = 1_000_000
    max_stream_seconds: float = 1200.0
    temperature: float | None = None
    max_tokens: int | None = None
    context_lines: int = 40
    context_window: int | None = None
    max_output_tokens: int | None = None
    explain_output: ExplainOutput = "hover"
    history: bool = True
    history_retention_days: int | None = None
    history_max_conversations: int | None = None
    ask_continues_conversation: bool = False
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    translate_to: str | None = None
    persona: str = DEFAULT_PERSONA
    instructions_file: str = ".gpt-ls.md"
    # The workspace search index (issue 14).
    index_include: tuple[str, ...] = ()
    index_exclude: tuple[str, ...] = ()
    index_max_files: int = 50_000
    embedding_model: str | None = None
    # Completions as you type (issue 15): off by default, every suggestion costs tokens.
    completions: bool = False
    completion_mode: CompletionMode = "chat"
    completion_model: str | None = None
    completion_debounce_ms: int = 200
    completion_max_per_minute: int = 30
    completion_max_tokens: int = 64
    completion_context_tokens: int = 1_500

    def __repr__(self) -> str:
        """Safe to log: the key hidden, header values and URL passwords redacted."""
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS:
                shown = "(hidden)" if value else "None"
            elif f.name == "headers":
                shown = repr(dict.fromkeys(value, "***"))
            elif isinstance(value, str) and "://" in value:
                shown = repr(redact_url(value))
            else:
                shown = repr(value)
            parts.append(f"{f.name}={shown}")
        return f"Settings({', '.join(parts)})"


_HINTS = get_type_hints(Settings)
FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def camel(name: str) -> str:
    """``max_tokens`` -> ``maxTokens``: the wire name of a field."""
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


WIRE_NAMES = {camel(n): n for n in FIELDS}

#: Settings whose value must never be shown or logged.
SECRET_FIELDS = frozenset({"api_key"})

#: Settings that decide where requests go, which credentials, headers and programs are used,
#: what is recorded or deleted: only the user's config file, the environment, the editor or a
#: *trusted* workspace file set them (``trust.py``). A repository could otherwise send the key
#: elsewhere, run a program as the user or delete the user's history.
RESTRICTED_FIELDS = frozenset({
    "api_key", "api_key_command", "api_key_command_timeout", "base_url", "organization", "project",
    "headers", "azure_endpoint", "azure_api_version", "azure_deployment", "proxy",
    "history", "history_retention_days", "history_max_conversations",
    # Both send requests with the user's key unasked: embeddings send the workspace's text out,
    # completions spend tokens at every pause in typing.
    "embedding_model", "completions",
})
#: Settings that shape prompts and replies (or are bounded by ``RANGES``): any workspace file may set them.
#: ``instructions_file`` is open because it is read only inside the workspace (``files.inside``).
OPEN_FIELDS = frozenset({
    "model", "connect_timeout", "read_timeout", "max_retries", "max_reply_chars", "max_stream_seconds",
    "temperature", "max_tokens", "context_lines",
    "context_window", "max_output_tokens", "explain_output", "ask_continues_conversation", "prices",
    "translate_to", "persona", "instructions_file",
    "index_include", "index_exclude", "index_max_files",
    "completion_mode", "completion_model", "completion_debounce_ms", "completion_max_per_minute",
    "completion_max_tokens", "completion_context_tokens",
})


@dataclass
class ResolvedSettings:
    """The result of loading: the settings, the source of each value, and problems found."""

    settings: Settings
    sources: dict[str, str]
    problems: list[str]
    #: ``actions`` tables from each layer, lowest priority first: validated by ``actions.catalog.load_actions``.
    action_layers: list[tuple[str, Any]] = field(default_factory=list)
    #: Layers that may add actions but not change existing ones (the workspace file).
    add_only: frozenset[str] = frozenset()
    #: The workspace file whose restricted settings were ignored, if any.
    untrusted: UntrustedFile | None = None


def field_name(key: Any) -> str | None:
    """The field a wire key names (camelCase, or snake_case), or None."""
    return WIRE_NAMES.get(key) or (key if key in FIELDS else None)


def parse_layer(raw: Mapping[str, Any], origin: str) -> tuple[dict[str, Any], list[str]]:
    """Validate one layer of settings (wire names); return the good values and problems."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw.items():
        name = field_name(key)
        if name is None:
            near = difflib.get_close_matches(str(key), WIRE_NAMES, n=1, cutoff=0.75)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            problems.append(f"{origin}: unknown setting {key!r}{hint} (ignored)")
            continue
        if nesting_depth(value, 3) > 3:
            problems.append(f"{origin}: setting {camel(name)!r} nests too deeply; ignored")
            continue
        try:
            coerced = coerce(_HINTS[name], value)
            validate(name, coerced)
        except ValueError as exc:
            shown = show(name, value, secret=name in SECRET_FIELDS)
            problems.append(f"{origin}: setting {camel(name)!r} {exc} (got {shown}); ignored")
        else:
            values[name] = coerced
    return values, problems


#: Environment variables read as settings, lowest precedence first (a later one wins).
ENV_VARS = (
    ("AZURE_OPENAI_API_KEY", "apiKey"),
    ("OPENAI_API_KEY", "apiKey"),
    ("OPENAI_BASE_URL", "baseUrl"),
    ("OPENAI_ORG_ID", "organization"),
    ("OPENAI_PROJECT_ID", "project"),
    ("AZURE_OPENAI_ENDPOINT", "azureEndpoint"),
    ("OPENAI_API_VERSION", "azureApiVersion"),
)


def env_layers(env: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """One layer per standard environment variable, so each value's source names it."""
    return [
        (f"environment ({var})", {key: env[var]}) for var, key in ENV_VARS if env.get(var)
    ]


def workspace_layer(
    file: ConfigFile, env: Mapping[str, str], editor_trusts: bool
) -> tuple[dict[str, Any], UntrustedFile | None]:
    """The workspace file's settings, without its restricted ones unless the user trusted this content."""
    restricted = [k for k in file.values if field_name(k) in RESTRICTED_FIELDS]
    if not restricted or file.content is None:
        return file.values, None
    if editor_trusts and TrustList(data_dir(env)).is_trusted(file.path, file.content):
        return file.values, None
    kept = {k: v for k, v in file.values.items() if k not in restricted}
    keys = tuple(camel(field_name(k) or k) for k in restricted)
    return kept, UntrustedFile(file.path.resolve(), digest(file.content), keys, not editor_trusts)


def load_settings(
    editor: Mapping[str, Any] | None = None,
    workspace_root: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    workspace_trusted: bool = True,
) -> ResolvedSettings:
    """Merge every layer into one ``Settings``; never raises for bad input.

    ``workspace_trusted=False`` (the editor says so) ignores the workspace file's restricted
    settings even when the user trusted the file.
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    layers: list[tuple[str, Mapping[str, Any]]] = []
    layers += env_layers(env)
    user = read_toml(config_dir(env) / USER_FILE)
    problems += user.problems
    layers.append((str(user.path), user.values))
    untrusted, add_only = None, frozenset[str]()
    if workspace_root is not None:
        ws = read_toml(Path(workspace_root) / WORKSPACE_FILE, Path(workspace_root))
        problems += ws.problems
        kept, untrusted = workspace_layer(ws, env, workspace_trusted)
        layers.append((str(ws.path), kept))
        add_only = frozenset({str(ws.path)})
    if editor:
        if not isinstance(editor, Mapping):
            problems.append("editor settings: expected an object of settings; ignored")
        else:
            layers.append(("editor", editor))
    values: dict[str, Any] = {}
    sources = {name: "default" for name in FIELDS}
    action_layers: list[tuple[str, Any]] = []
    for origin, raw in layers:
        if "actions" in raw:
            action_layers.append((origin, raw["actions"]))
            raw = {k: v for k, v in raw.items() if k != "actions"}
        good, errs = parse_layer(raw, origin)
        problems += errs
        for name, value in good.items():
            values[name] = value
            sources[name] = origin
    # Key order: an apiKey set in a file or the editor > apiKeyCommand > OPENAI_API_KEY.
    if values.get("api_key_command") and sources["api_key"].startswith("environment"):
        del values["api_key"]
        sources["api_key"] = "default"
    return ResolvedSettings(Settings(**values), sources, problems, action_layers, add_only, untrusted)
