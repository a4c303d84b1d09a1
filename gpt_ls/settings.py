"""One typed, fully defaulted settings object, and where each value came from.

Precedence, highest first: editor settings (LSP ``initializationOptions``,
``workspace/didChangeConfiguration``, ``workspace/configuration`` section ``gpt-ls``)
> workspace file ``.gpt-ls.toml`` > user file ``config.toml`` in the user config dir >
environment (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``) > defaults.

Settings are camelCase on the wire and in the TOML files, snake_case in Python. A
wrong value never stops gpt-ls: it becomes a *problem* (a sentence naming the file,
the key and what is wrong) and the value from the next layer down is used.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import platformdirs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

WORKSPACE_FILE = ".gpt-ls.toml"
USER_FILE = "config.toml"
DEFAULT_MODEL = "gpt-4.1-mini"

ExplainOutput = Literal["hover", "comment"]


@dataclass(frozen=True)
class Settings:
    """Everything gpt-ls can be told; every field has a working default."""

    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_command: str | None = None
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


_HINTS = get_type_hints(Settings)
FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def camel(name: str) -> str:
    """``max_tokens`` -> ``maxTokens``: the wire name of a field."""
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def snake(name: str) -> str:
    """``maxTokens`` -> ``max_tokens``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


WIRE_NAMES = {camel(n): n for n in FIELDS}

#: Settings whose value must never be shown or logged.
SECRET_FIELDS = frozenset({"api_key"})


@dataclass
class Loaded:
    """The result of loading: the settings, the source of each value, and problems found."""

    settings: Settings
    sources: dict[str, str]
    problems: list[str]


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _coerce(name: str, value: Any) -> Any:
    """Check ``value`` against the field's type; return it (normalised) or raise ValueError."""
    hint = _HINTS[name]
    args = get_args(hint)
    optional = type(None) in args
    if value is None:
        if optional:
            return None
        raise ValueError("must not be empty")
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    origin = get_origin(base)
    if origin is Literal:
        choices = get_args(base)
        if value not in choices:
            raise ValueError("must be one of " + ", ".join(repr(c) for c in choices))
        return value
    if base is bool:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be a whole number")
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("must be a number")
        if value != value or value < 0:
            raise ValueError("must be a non-negative number")
        return float(value)
    if base is str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return value
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError("must be a table (an object of key = value)")
        key_t, val_t = get_args(base)
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError("keys must be strings")
            if val_t is str:
                if not isinstance(v, str):
                    raise ValueError(f"value of {k!r} must be a string")
                out[k] = v
            else:  # prices: {model: {input: float, output: float}}
                if not isinstance(v, Mapping) or not all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) for x in v.values()
                ):
                    raise ValueError(f"value of {k!r} must be a table of numbers")
                out[k] = {str(a): float(b) for a, b in v.items()}
        return out
    raise ValueError("has an unsupported type")  # pragma: no cover


def parse_layer(raw: Mapping[str, Any], origin: str) -> tuple[dict[str, Any], list[str]]:
    """Validate one layer of settings (wire names); return the good values and problems."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw.items():
        name = WIRE_NAMES.get(key) or (key if key in FIELDS else None)
        if name is None:
            problems.append(f"{origin}: unknown setting {key!r} (ignored)")
            continue
        try:
            values[name] = _coerce(name, value)
        except ValueError as exc:
            shown = "(hidden)" if name in SECRET_FIELDS else _describe(value)
            problems.append(f"{origin}: setting {camel(name)!r} {exc} (got {shown}); ignored")
    return values, problems


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """The user config dir (``GPT_LS_CONFIG_DIR`` moves it)."""
    env = os.environ if env is None else env
    if env.get("GPT_LS_CONFIG_DIR"):
        return Path(env["GPT_LS_CONFIG_DIR"])
    return Path(platformdirs.user_config_dir("gpt-ls"))


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The user data dir for history (``GPT_LS_DATA_DIR`` moves it)."""
    env = os.environ if env is None else env
    if env.get("GPT_LS_DATA_DIR"):
        return Path(env["GPT_LS_DATA_DIR"])
    return Path(platformdirs.user_data_dir("gpt-ls"))


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The cache dir (``GPT_LS_CACHE_DIR`` moves it)."""
    env = os.environ if env is None else env
    if env.get("GPT_LS_CACHE_DIR"):
        return Path(env["GPT_LS_CACHE_DIR"])
    return Path(platformdirs.user_cache_dir("gpt-ls"))


def read_toml(path: Path) -> tuple[dict[str, Any], list[str]]:
    """Read a settings file; a missing file is empty, a malformed one is a problem."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, []
    except OSError as exc:
        return {}, [f"{path}: cannot be read ({exc.strerror}); its settings are ignored"]
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return {}, [f"{path}: is not valid TOML ({exc}); its settings are ignored"]
    # Settings may sit at the top level or under a [gpt-ls] table.
    section = doc.get("gpt-ls")
    if isinstance(section, dict):
        doc = {**{k: v for k, v in doc.items() if k != "gpt-ls"}, **section}
    return doc, []


def env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    """Values the standard OpenAI environment variables provide."""
    out: dict[str, Any] = {}
    if env.get("OPENAI_API_KEY"):
        out["apiKey"] = env["OPENAI_API_KEY"]
    if env.get("OPENAI_BASE_URL"):
        out["baseUrl"] = env["OPENAI_BASE_URL"]
    if env.get("OPENAI_ORG_ID"):
        out["organization"] = env["OPENAI_ORG_ID"]
    if env.get("OPENAI_PROJECT_ID"):
        out["project"] = env["OPENAI_PROJECT_ID"]
    return out


def load_settings(
    editor: Mapping[str, Any] | None = None,
    workspace_root: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Loaded:
    """Merge every layer into one ``Settings``; never raises for bad input."""
    env = os.environ if env is None else env
    problems: list[str] = []
    layers: list[tuple[str, Mapping[str, Any]]] = []
    layers.append(("environment", env_layer(env)))
    user_path = config_dir(env) / USER_FILE
    user, errs = read_toml(user_path)
    problems += errs
    layers.append((str(user_path), user))
    if workspace_root is not None:
        ws_path = Path(workspace_root) / WORKSPACE_FILE
        ws, errs = read_toml(ws_path)
        problems += errs
        layers.append((str(ws_path), ws))
    if editor:
        if not isinstance(editor, Mapping):
            problems.append("editor settings: expected an object of settings; ignored")
        else:
            layers.append(("editor", editor))
    values: dict[str, Any] = {}
    sources = {name: "default" for name in FIELDS}
    for origin, raw in layers:
        good, errs = parse_layer(raw, origin)
        problems += errs
        for name, value in good.items():
            values[name] = value
            sources[name] = origin
    return Loaded(Settings(**values), sources, problems)


def redact(value: str | None) -> str:
    """Show a secret as its first three and last four characters."""
    if not value:
        return "(not set)"
    if len(value) <= 10:
        return "*" * len(value)
    return f"{value[:3]}…{value[-4:]}"
