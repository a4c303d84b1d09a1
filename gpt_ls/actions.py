"""The action catalog, as data.

An action is everything that distinguishes *Ask* from *Draft email*: its command,
its title in the code-action menu, the system prompt, the user-message template,
where the reply goes and whether it continues a conversation. The server and the
CLI only interpret these records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Where a reply goes.
Output = Literal["insert_below", "hover", "comment_above"]
#: How an action relates to the workspace's conversation.
Conversation = Literal["new", "continue", "setting"]

CODE_ACTION_KIND = "refactor.rewrite.gpt"

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
    #: Offered in the code-action menu (Continue is too; New conversation is not an action).
    code_action: bool = True


ASK = Action("ask", "gpt-ls.ask", "GPT: Ask", ASK_SYSTEM, conversation="setting")
EXPLAIN = Action("explain", "gpt-ls.explain", "GPT: Explain selection", EXPLAIN_SYSTEM, output="hover")
DRAFT_EMAIL = Action("draftEmail", "gpt-ls.draftEmail", "GPT: Draft email", EMAIL_SYSTEM)
CONTINUE = Action(
    "continue", "gpt-ls.continue", "GPT: Continue conversation", ASK_SYSTEM, conversation="continue"
)

BUILTIN_ACTIONS: tuple[Action, ...] = (ASK, EXPLAIN, DRAFT_EMAIL, CONTINUE)


def action_by_command(command: str) -> Action | None:
    """The built-in action a command id runs, if any."""
    return next((a for a in BUILTIN_ACTIONS if a.command == command), None)


def action_by_id(action_id: str) -> Action | None:
    """The built-in action with this id, if any."""
    return next((a for a in BUILTIN_ACTIONS if a.id == action_id), None)
