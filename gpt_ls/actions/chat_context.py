"""Mentions in a chat document, brought into the request when it is sent.

``@path``, ``@path:10-40`` and ``@search: query`` in the last user section
(``index.mentions``) become labelled excerpts appended to that message: files read only
inside the workspace (``files.read_workspace_file``: confined, bounded, never a secret),
searches through the workspace index. The excerpts are fitted to the window like a
workspace question's (``index.context``); what is missing, refused or left out becomes a
note in the request and a message. The user's own words are what history keeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from gpt_ls import budget
from gpt_ls.actions import workspace
from gpt_ls.actions.editor import EditorPort, Progress
from gpt_ls.actions.workspace import Prepared, ensure_index, open_documents
from gpt_ls.errors import FileRefused, GptLsError
from gpt_ls.exchange import ExchangeRequest
from gpt_ls.files import read_workspace_file
from gpt_ls.index import mentions
from gpt_ls.index.context import CITE_INSTRUCTIONS, Source, chunk_budget, fit_sources, render_block
from gpt_ls.index.live import LiveIndex
from gpt_ls.index.walk import is_secret
from gpt_ls.models import adapt_messages, model_info
from gpt_ls.tokens import count_messages

#: A mentioned file is read up to this size.
MENTION_FILE_LIMIT = 1024 * 1024
#: Chunks one ``@search:`` brings at most (the window decides how many go).
SEARCH_HITS = 10


def read_mentioned(root: Path, rel: str) -> str | None:
    """A mentioned file's text (None: no such file); ``FileRefused`` with the reason otherwise."""
    if is_secret(rel):  # what the index never holds (.env, keys, …) is not read for a mention either
        raise FileRefused(f"{rel} may hold secrets; gpt-ls does not send it (copy the part you mean instead).")
    return read_workspace_file(root, rel, MENTION_FILE_LIMIT)


async def gather(
    found: list[mentions.Mention], root: Path | None, live: LiveIndex | None, port: EditorPort,
    progress: Progress | None,
) -> tuple[list[Source], list[str]]:
    """The sources the mentions bring, in order, and the notes about them."""
    sources: list[Source] = []
    notes: list[str] = []
    for mention in found:
        if root is None:
            notes.append(f"{mention.written}: no workspace folder is open, so nothing is brought in.")
            continue
        try:
            if mention.kind == "file":
                text = await asyncio.to_thread(read_mentioned, root, mention.target)
                source, note = mentions.file_source(mention, text, len(sources))
                sources += [source] if source is not None else []
                notes += [note] if note else []
            elif live is None:
                notes.append(f"{mention.written}: the workspace index is not available.")
            else:
                await ensure_index(live, port, progress)
                hits = await live.search(mention.target, SEARCH_HITS, open_documents(port, root))
                sources += mentions.search_sources(hits, len(sources))
                if not hits:
                    notes.append(f"{mention.written}: the search found nothing.")
        except GptLsError as exc:
            notes.append(f"{mention.written}: {exc}")
    return sources, notes


def fit_mentions(req: ExchangeRequest, content: str, sources: list[Source]) -> tuple[list[Source], int]:
    """The sources that fit with the conversation (counted exactly when the size does not settle it)."""
    info = model_info(req.settings)
    chat = [*(req.chat or [])[:-1], {"role": "user", "content": f"{content}\n\n{CITE_INSTRUCTIONS}\n\n"}]
    system = [{"role": "system", "content": f"{req.action.system}\n\n{req.system_extra}"}]
    messages = adapt_messages(info, [*system, *[m for m in chat if m["role"] != "system"]])
    room = chunk_budget(info, req.settings.max_tokens, budget.bound_messages(messages, info))
    kept, _, _ = fit_sources(sources, room, info)
    if len(kept) < len(sources):
        room = chunk_budget(info, req.settings.max_tokens, count_messages(messages, info))
        kept, _, _ = fit_sources(sources, room, info)
    return kept, len(sources) - len(kept)


async def prepare_chat(
    live: LiveIndex | None, port: EditorPort, req: ExchangeRequest, progress: Progress | None
) -> tuple[ExchangeRequest, Prepared | None]:
    """The chat request with its mentions' context in the last user message (unchanged without mentions)."""
    chat = list(req.chat or [])
    if not chat or chat[-1]["role"] != "user":
        return req, None
    content = chat[-1]["content"]
    found = mentions.find_mentions(content)
    if not found:
        return req, None
    root = port.workspace_root
    sources, notes = await gather(found, root, live, port, progress)
    kept, left_out = await asyncio.to_thread(fit_mentions, req, content, sources) if sources else ([], 0)
    if left_out:
        notes.append(f"{left_out} of {len(sources)} excerpts did not fit the context window and were left out.")
    for note in notes:
        port.show_message(f"gpt-ls: {note}", "warning")
    parts = [content]
    if kept:
        parts.append(f"Workspace context for this message. {CITE_INSTRUCTIONS}\n\n{render_block(kept)}")
    if notes:
        parts.append(mentions.notes_text(notes))
    chat[-1] = {"role": "user", "content": "\n\n".join(parts)}
    prepared = Prepared(tuple(kept), root) if kept and root is not None else None
    return dataclasses.replace(req, chat=chat), prepared


async def prepare_request(
    live: LiveIndex | None, port: EditorPort, req: ExchangeRequest, progress: Progress | None
) -> tuple[ExchangeRequest, Prepared | None]:
    """A chat document's mentions, or a workspace question's chunks; other requests go as they are."""
    if req.chat is not None:
        return await prepare_chat(live, port, req, progress)
    if req.action.context == "workspace" and live is not None:
        return await workspace.prepare(live, port, req, progress)
    return req, None
