"""The action catalog, as data.

An action is everything that distinguishes *Ask* from *Translate*: its command, its
title in the code-action menu, the system prompt, the user-message template, where
the reply goes, which files offer it, and optional model parameters. The server and
the CLI only interpret these records. Users add actions, or override built-ins, in
``config.toml`` (``[actions.<id>]`` tables) or in editor settings (``"actions": {"<id>": {…}}``);
a workspace's ``.gpt-ls.toml`` may only add new ones. ``load_actions`` validates them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from gpt_ls.settings import Settings

#: Where a reply goes.
Output = Literal["insert_below", "replace", "hover", "comment_above", "document"]
#: How an action relates to the workspace's conversation.
Conversation = Literal["new", "continue", "setting"]
#: What of the file the model sees besides the selection.
Context = Literal["excerpt", "document", "workspace", "none"]
#: What an action reads: the selection, or a whole chat document (``*.chat.md``).
Source = Literal["selection", "chat"]

OUTPUTS: tuple[str, ...] = get_args(Output)
CONVERSATIONS: tuple[str, ...] = get_args(Conversation)
CONTEXTS: tuple[str, ...] = get_args(Context)
#: A setting's value that switches an action's output (``explainOutput = "comment"``) -> that
#: output; any other value keeps the action's own.
SETTING_OUTPUTS: dict[str, Output] = {"comment": "comment_above"}

CODE_ACTION_KIND = "refactor.rewrite.gpt"
#: The generic command that runs any action by id: ``[actionId, uri, range, extra?]``.
RUN_COMMAND = "gpt-ls.run"

#: Languages that are prose, not code: code actions (Write / Improve / Fix) skip them.
PROSE = ("plaintext", "markdown", "text", "restructuredtext", "asciidoc", "org", "latex", "tex")

TEMPLATE_VARIABLES = (
    "selection", "file_name", "language", "before", "after", "context", "document",
    "diagnostics", "input", "target_language",
)

CONTEXT_TEMPLATE = """File: {file_name} (language: {language})

{context}Selection:
{selection}"""

ASK_SYSTEM = (
    "You are a helpful assistant working inside the user's text editor. "
    "The user selected a question in a file; answer it. Use the excerpt of the file "
    "around the selection as context when it is relevant. Answer in the natural "
    "language of the question. Reply with the answer only, as plain text ready to "
    "be inserted into the file below the question; use code without Markdown fences "
    "when the file is code."
)

EXPLAIN_SYSTEM = (
    "You explain text to the user of a text editor. Explain the selected text "
    "(code or prose) clearly and concisely in Markdown: what it does or says, and "
    "anything subtle about it. Write in the natural language of the selection's "
    "surroundings (for example, Chinese when the comments or prose around it are "
    "Chinese), otherwise in English."
)

EMAIL_SYSTEM = (
    "You write e-mails. The user's selection holds notes or bullet points. Turn them "
    "into one complete e-mail: a first line 'Subject: …', a greeting, the body, and a "
    "closing. Write in the language of the notes and keep every fact from them; "
    "invent no facts. Reply with the e-mail only, as plain text."
)

WRITE_CODE_SYSTEM = (
    "You write code. The selection is a comment or an instruction in a {language} file. "
    "Write the code it asks for, in {language}, fitting the surrounding file. Reply "
    "with the code only: no explanations, no Markdown fences."
)

IMPROVE_CODE_SYSTEM = (
    "You improve code. Rewrite the selected {language} code to be clearer, simpler and "
    "more idiomatic without changing what it does. Reply with the replacement code only: "
    "no explanations, no Markdown fences."
)

FIX_CODE_SYSTEM = (
    "You fix code. The selected {language} code has the problems listed below (from the "
    "editor's diagnostics, when there are any). Fix them, changing as little as "
    "possible. Reply with the corrected replacement code only: no explanations, no "
    "Markdown fences."
)

FIX_TEMPLATE = """File: {file_name} (language: {language})

{context}Diagnostics:
{diagnostics}

Code to fix:
{selection}"""

TRANSLATE_SYSTEM = (
    "You translate. Translate the user's text into {target_language}, keeping its meaning, "
    "tone and formatting (Markdown, code and line breaks stay as they are). Reply with the "
    "translation only."
)

SUMMARIZE_SYSTEM = (
    "You summarize. Summarize the selected text in a few sentences or bullet points, in the "
    "language of the text. Reply with the summary only, in Markdown."
)

TUTOR_SYSTEM = (
    "You are a patient tutor. Explain the selected material step by step for a learner, "
    "in the language of the material, with a small example where it helps. End with one "
    "short question that checks the learner's understanding."
)

ASK_FILE_SYSTEM = (
    "You answer questions about documents. The reference material below is the user's "
    "{scope}; answer the question using it, and say so when it does not contain the "
    "answer. Answer in the language of the question.\n\n{context}"
)

ROLE_PLAY_SYSTEM = "{persona}"

SEND_SYSTEM = "You are a helpful assistant."


@dataclass(frozen=True)
class Action:
    """One thing the user can ask of the model."""

    id: str
    command: str
    title: str
    system: str
    template: str = CONTEXT_TEMPLATE
    output: Output = "insert_below"
    conversation: Conversation = "new"
    kind: str = CODE_ACTION_KIND
    #: Offered in the code-action menu.
    code_action: bool = True
    #: Offer only for these language ids (empty: every language).
    languages: tuple[str, ...] = ()
    #: Never offer for these language ids.
    exclude_languages: tuple[str, ...] = ()
    context: Context = "excerpt"
    #: The reply is code: strip Markdown fences, match the selection's indentation.
    code: bool = False
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    #: Choices offered for ``{input}`` (``window/showMessageRequest``), and its prompt.
    input_choices: tuple[str, ...] = ()
    input_prompt: str = ""
    #: The code action carries the editor's diagnostics for the range (``{diagnostics}``).
    wants_diagnostics: bool = False
    #: A setting (a ``Settings`` attribute) whose value may switch ``output``
    #: (``explainOutput``: ``hover`` or ``comment``).
    output_setting: str | None = None
    source: Source = "selection"
    #: Where a user-defined action came from (for messages).
    origin: str = "built-in"

    @property
    def streams(self) -> bool:
        """Whether the reply streams into the document as it arrives (prose below, or a chat)."""
        return self.source == "chat" or (self.output == "insert_below" and not self.code)

    def output_in(self, settings: Settings) -> Output:
        """Where the reply goes with these settings."""
        value = getattr(settings, self.output_setting, None) if self.output_setting else None
        return SETTING_OUTPUTS.get(value, self.output) if isinstance(value, str) else self.output

    def continues(self, settings: Settings) -> bool:
        """Whether it continues the workspace's current conversation (else it starts one)."""
        return self.conversation == "continue" or (
            self.conversation == "setting" and settings.ask_continues_conversation)

    def offered_for(self, language: str) -> bool:
        """Whether the code-action menu lists this action for a file of ``language``."""
        if not self.code_action:
            return False
        language = language.lower()
        if self.languages and language not in self.languages:
            return False
        return language not in self.exclude_languages


ASK = Action("ask", "gpt-ls.ask", "GPT: Ask", ASK_SYSTEM, conversation="setting")
EXPLAIN = Action("explain", "gpt-ls.explain", "GPT: Explain selection", EXPLAIN_SYSTEM, output="hover",
                 output_setting="explain_output")
DRAFT_EMAIL = Action("draftEmail", "gpt-ls.draftEmail", "GPT: Draft email", EMAIL_SYSTEM)
CONTINUE = Action(
    "continue", "gpt-ls.continue", "GPT: Continue conversation", ASK_SYSTEM, conversation="continue"
)
WRITE_CODE = Action(
    "writeCode", RUN_COMMAND, "GPT: Write code", WRITE_CODE_SYSTEM, code=True, exclude_languages=PROSE
)
IMPROVE_CODE = Action(
    "improveCode", RUN_COMMAND, "GPT: Improve code", IMPROVE_CODE_SYSTEM, output="replace", code=True,
    exclude_languages=PROSE,
)
FIX_CODE = Action(
    "fixCode", RUN_COMMAND, "GPT: Fix code", FIX_CODE_SYSTEM, template=FIX_TEMPLATE, output="replace",
    code=True, exclude_languages=PROSE, wants_diagnostics=True,
)
TRANSLATE = Action("translate", RUN_COMMAND, "GPT: Translate", TRANSLATE_SYSTEM, template="{selection}",
                   context="none")
SUMMARIZE = Action("summarize", RUN_COMMAND, "GPT: Summarize", SUMMARIZE_SYSTEM, output="hover")
TUTOR = Action("tutor", RUN_COMMAND, "GPT: Tutor", TUTOR_SYSTEM)
ASK_FILE = Action(
    "askFile", RUN_COMMAND, "GPT: Ask about this file", ASK_FILE_SYSTEM, template="{selection}",
    context="document",
)
ASK_WORKSPACE = Action(
    "askWorkspace", RUN_COMMAND, "GPT: Ask about the workspace", ASK_FILE_SYSTEM, template="{selection}",
    context="workspace",
)
ROLE_PLAY = Action(
    "rolePlay", RUN_COMMAND, "GPT: Role-play", ROLE_PLAY_SYSTEM, template="{selection}", conversation="continue",
    context="none",
)
SEND = Action(
    "send", "gpt-ls.send", "GPT: Send", SEND_SYSTEM, template="{selection}", code_action=False,
    context="none", source="chat",
)

BUILTIN_ACTIONS: tuple[Action, ...] = (
    ASK, EXPLAIN, DRAFT_EMAIL, CONTINUE, WRITE_CODE, IMPROVE_CODE, FIX_CODE, TRANSLATE, SUMMARIZE,
    TUTOR, ASK_FILE, ASK_WORKSPACE, ROLE_PLAY,
)

#: Actions that have a command id of their own (the rest run through ``gpt-ls.run``).
DEDICATED_COMMANDS = {a.command: a for a in (ASK, EXPLAIN, DRAFT_EMAIL, CONTINUE)}

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_VARIABLE = re.compile(r"\{([A-Za-z_]+)\}")

#: User-settable fields: wire name -> (python name, checker description).
_FIELDS: dict[str, str] = {
    "title": "title", "system": "system", "template": "template", "output": "output",
    "conversation": "conversation", "kind": "kind", "codeAction": "code_action",
    "languages": "languages", "excludeLanguages": "exclude_languages", "context": "context",
    "code": "code", "model": "model", "temperature": "temperature", "maxTokens": "max_tokens",
    "inputChoices": "input_choices", "inputPrompt": "input_prompt", "wantsDiagnostics": "wants_diagnostics",
}


def _check_value(wire: str, value: Any) -> Any:
    """Validate one field of a user action; raise ValueError with the reason."""
    name = _FIELDS[wire]
    if name in ("title", "system", "template", "kind", "input_prompt"):
        if not isinstance(value, str) or (name != "input_prompt" and not value.strip()):
            raise ValueError("must be a non-empty string")
        if name in ("system", "template"):
            unknown = sorted({v for v in _VARIABLE.findall(value) if v not in TEMPLATE_VARIABLES} - {
                "scope", "persona"})
            if unknown:
                raise ValueError(
                    f"uses unknown variable(s) {', '.join('{' + u + '}' for u in unknown)}; known: "
                    + ", ".join("{" + v + "}" for v in TEMPLATE_VARIABLES))
        return value
    if name in ("output", "conversation", "context"):
        choices = {"output": OUTPUTS, "conversation": CONVERSATIONS, "context": CONTEXTS}[name]
        if value not in choices:
            raise ValueError("must be one of " + ", ".join(repr(c) for c in choices))
        return value
    if name in ("code_action", "code", "wants_diagnostics"):
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if name in ("languages", "exclude_languages", "input_choices"):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise ValueError("must be a list of strings")
        return tuple(v.lower() for v in value) if name != "input_choices" else tuple(value)
    if name == "model":
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a model name")
        return value
    if name == "temperature":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 2:
            raise ValueError("must be a number from 0 to 2")
        return float(value)
    if name == "max_tokens":
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError("must be a positive whole number")
        return value
    raise ValueError("is not supported")  # pragma: no cover


def parse_action(action_id: str, raw: Any, origin: str, base: Action | None) -> tuple[Action | None, list[str]]:
    """One user action (or override of a built-in); None and problems when it is invalid."""
    where = f"{origin}: action {action_id!r}"
    if not _ID.match(action_id):
        return None, [f"{where}: the id must start with a letter and use letters, digits, '_', '-' or '.'; skipped"]
    if not isinstance(raw, Mapping):
        return None, [f"{where}: must be a table of settings; skipped"]
    problems: list[str] = []
    values: dict[str, Any] = {}
    for wire, value in raw.items():
        if wire not in _FIELDS:
            problems.append(f"{where}: unknown field {wire!r} (known: {', '.join(_FIELDS)})")
            continue
        try:
            values[_FIELDS[wire]] = _check_value(wire, value)
        except ValueError as exc:
            problems.append(f"{where}: {wire!r} {exc}")
    if problems:
        return None, [*problems[:-1], problems[-1] + "; skipped"]
    if base is not None:
        return dataclasses.replace(base, origin=origin, **values), []
    missing = [w for w in ("title", "system") if _FIELDS[w] not in values]
    if missing:
        return None, [f"{where}: a new action needs {' and '.join(repr(m) for m in missing)}; skipped"]
    values.setdefault("template", CONTEXT_TEMPLATE)
    if "{input}" in values["template"] + values["system"] and not values.get("input_choices"):
        return None, [f"{where}: uses {{input}}, so it needs 'inputChoices' (the answers to offer); skipped"]
    return Action(id=action_id, command=RUN_COMMAND, origin=origin, **values), []


@dataclass
class Catalog:
    """The actions in force: built-ins, overridden or extended by the user's."""

    actions: list[Action] = field(default_factory=lambda: list(BUILTIN_ACTIONS))
    problems: list[str] = field(default_factory=list)

    def get(self, action_id: str) -> Action | None:
        return next((a for a in self.actions if a.id == action_id), None)

    def menu(self, language: str, chat: bool, only: Sequence[str] | None) -> list[Action]:
        """The code-action menu for a file of ``language`` (``chat``: a chat document)."""
        listed = [SEND] if chat else []
        listed += [a for a in self.actions if a.offered_for(language)]
        return [a for a in listed if not only or any(a.kind == k or a.kind.startswith(k + ".") for k in only)]


def command_arguments(action: Action, uri: str, rng: Any, diagnostics: list[Any]) -> list[Any]:
    """A menu entry's command arguments (``rng`` and ``diagnostics`` as LSP JSON)."""
    if action.source == "chat":
        return [uri]
    if action.command != RUN_COMMAND:
        return [uri, rng]
    return [action.id, uri, rng, *([{"diagnostics": diagnostics}] if action.wants_diagnostics and diagnostics else [])]


def load_actions(layers: list[tuple[str, Any]], add_only: Collection[str] = ()) -> Catalog:
    """Merge user actions from each settings layer (lowest priority first) over the built-ins.

    Layers named in ``add_only`` (a workspace's ``.gpt-ls.toml``) may add actions but not
    change one that exists: a repository must not turn "Explain" into something else.
    """
    catalog = Catalog()
    for origin, raw in layers:
        if raw is None:
            continue
        if not isinstance(raw, Mapping):
            catalog.problems.append(f"{origin}: 'actions' must be a table of actions (id = {{…}}); ignored")
            continue
        for action_id, spec in raw.items():
            base = catalog.get(str(action_id))
            if base is not None and origin in add_only:
                catalog.problems.append(
                    f"{origin}: action {action_id!r} exists already ({base.origin}); a workspace file may add "
                    "actions but not change existing ones (change it in your own config.toml or editor "
                    "settings); skipped")
                continue
            action, problems = parse_action(str(action_id), spec, origin, base)
            catalog.problems.extend(problems)
            if action is None:
                continue
            if base is not None:
                catalog.actions[catalog.actions.index(base)] = action
            else:
                catalog.actions.append(action)
    return catalog
