"""One typed, fully defaulted settings object, and where each value came from.

Precedence, highest first: editor settings (LSP ``initializationOptions``,
``workspace/didChangeConfiguration``, ``workspace/configuration`` section ``gpt-ls``)
> workspace file ``.gpt-ls.toml`` > user file ``config.toml`` in the user config dir >
environment (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, …) > defaults.

The API key is the one exception to "highest layer wins, field by field": an
``apiKey`` set in a file or the editor wins over ``apiKeyCommand``, which wins over
``OPENAI_API_KEY`` from the environment.

Settings are camelCase on the wire and in the TOML files, snake_case in Python. A wrong value never stops gpt-ls:
it becomes a *problem* (a sentence naming the file, the key and what is wrong); the next layer's value is used.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

import platformdirs

from gpt_ls.secrets import redact_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

WORKSPACE_FILE = ".gpt-ls.toml"
USER_FILE = "config.toml"
DEFAULT_MODEL = "gpt-4.1-mini"
DEFAULT_PERSONA = (
    "You are a friendly conversation partner. Stay in character, answer in the language "
    "the user writes in, and keep replies short."
)

ExplainOutput = Literal["hover", "comment"]


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


@dataclass
class ResolvedSettings:
    """The result of loading: the settings, the source of each value, and problems found."""

    settings: Settings
    sources: dict[str, str]
    problems: list[str]
    #: ``actions`` tables from each layer, lowest priority first: validated by ``actions.catalog.load_actions``.
    action_layers: list[tuple[str, Any]] = field(default_factory=list)


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
        if not math.isfinite(value) or value < 0:
            raise ValueError("must be a non-negative number")
        return float(value)
    if base is str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return value
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError("must be a table (an object of key = value)")
        _key_t, val_t = get_args(base)
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


PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")

#: Sane bounds for numbers, inclusive: a value outside them is a problem, never a hang (``readTimeout = inf``),
#: a retry storm (``maxRetries = 1000000000``) or a window the budget would trust (``contextWindow = 1e11``).
RANGES: dict[str, tuple[float, float, str]] = {
    "api_key_command_timeout": (0.1, 300, " seconds"),
    "connect_timeout": (0.1, 300, " seconds"),
    "read_timeout": (0.1, 3600, " seconds"),
    "max_retries": (0, 10, ""),
    "max_reply_chars": (1_000, 20_000_000, " characters"), "max_stream_seconds": (10, 86_400, " seconds"),
    "temperature": (0, 2, ""),
    "max_tokens": (1, 1_000_000, " tokens"),
    "context_lines": (0, 100_000, " lines"),
    "context_window": (256, 10_000_000, " tokens"),
    "max_output_tokens": (1, 1_000_000, " tokens"),
    "history_retention_days": (1, 36_500, " days"),
    "history_max_conversations": (1, 10_000_000, " conversations"),
}


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else f"{value:,}"


def _check_url(value: str, schemes: tuple[str, ...], what: str) -> None:
    """Raise ValueError unless ``value`` is an absolute URL with one of ``schemes``."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"is not a valid {what} URL ({exc})") from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        wanted = ", ".join(f"{s}://" for s in schemes)
        raise ValueError(f"must be a {what} URL starting with {wanted}")


def _validate(name: str, value: Any) -> None:
    """Checks beyond the type: URL schemes, positive timeouts."""
    if value is None:
        return
    if name == "proxy" and value != "":
        _check_url(value, PROXY_SCHEMES, "proxy")
    elif name in ("base_url", "azure_endpoint"):
        _check_url(value, ("http", "https"), "http(s)")
    elif name in ("connect_timeout", "read_timeout", "api_key_command_timeout") and value == 0:
        raise ValueError("must be more than 0 seconds")
    elif name in RANGES and not RANGES[name][0] <= value <= RANGES[name][1]:
        low, high, unit = RANGES[name]
        raise ValueError(f"must be from {_number(low)} to {_number(high)}{unit}")
    elif name == "api_key_command" and not value.strip():
        raise ValueError("must not be empty")
    elif name == "headers":
        for key, text in value.items():
            if not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", key):
                raise ValueError(f"has an invalid header name {key!r}")
            if not text.isascii() or any(ord(c) < 32 and c != "\t" for c in text):
                raise ValueError(
                    f"value of {key!r} must be plain ASCII text (HTTP headers cannot carry "
                    "other characters)"
                )


def _shown(name: str, value: Any) -> str:
    """How a rejected value appears in a problem: secrets hidden, URL passwords redacted."""
    if name in SECRET_FIELDS:
        return "(hidden)"
    if name == "headers":
        return "(a table)"
    if isinstance(value, str) and "://" in value:
        return _describe(redact_url(value))
    return _describe(value)


def parse_layer(raw: Mapping[str, Any], origin: str) -> tuple[dict[str, Any], list[str]]:
    """Validate one layer of settings (wire names); return the good values and problems."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw.items():
        name = WIRE_NAMES.get(key) or (key if key in FIELDS else None)
        if name is None:
            near = difflib.get_close_matches(str(key), WIRE_NAMES, n=1, cutoff=0.75)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            problems.append(f"{origin}: unknown setting {key!r}{hint} (ignored)")
            continue
        try:
            coerced = _coerce(name, value)
            _validate(name, coerced)
        except ValueError as exc:
            shown = _shown(name, value)
            problems.append(f"{origin}: setting {camel(name)!r} {exc} (got {shown}); ignored")
        else:
            values[name] = coerced
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


def load_settings(
    editor: Mapping[str, Any] | None = None,
    workspace_root: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ResolvedSettings:
    """Merge every layer into one ``Settings``; never raises for bad input."""
    env = os.environ if env is None else env
    problems: list[str] = []
    layers: list[tuple[str, Mapping[str, Any]]] = []
    layers += env_layers(env)
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
    return ResolvedSettings(Settings(**values), sources, problems, action_layers)


def find_workspace_root(start: Path | None = None) -> Path:
    """The CLI's workspace: the nearest ancestor with ``.git`` or ``.gpt-ls.toml``, else start."""
    here = Path.cwd() if start is None else Path(start)
    here = here.resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists() or (folder / WORKSPACE_FILE).is_file():
            return folder
    return here
