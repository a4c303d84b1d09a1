"""The workspace index in the server: one per workspace folder, built on first use, kept current.

At ``initialized``, watching the workspace's files is registered when the client can
(``workspace.didChangeWatchedFiles.dynamicRegistration``), and an index that already exists
on disk is brought up to date in the background (with a cancellable progress). Saves and
watched-file events update those files once the index is open; events arriving together
are handled together. Open documents reach the index at query time (``index.live``).
``@`` in a chat document completes workspace files (``index.mentions``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from gpt_ls import prompts
from gpt_ls.actions.editor import EditorPort
from gpt_ls.settings import Settings
from gpt_ls.text import Encoding, LineIndex

if TYPE_CHECKING:  # the index's modules load when the index is first used, off the start-up path
    from gpt_ls.index.live import LiveIndex

log = logging.getLogger(__name__)


def index_exists(root: Path) -> bool:
    """Whether this workspace has an index on disk already (not opened, nothing created)."""
    from gpt_ls.index.db import index_file

    try:
        return index_file(root.resolve()).is_file()
    except OSError as exc:  # no data dir: as if there were none
        log.info("index lookup: %s", exc)
        return False


async def worker_build(root: Path, settings: Settings, report: Callable[[str], None], cancel: threading.Event) -> str:
    """A cold build in a child process (``gpt_ls.index.worker``): the event loop keeps its GIL."""
    from gpt_ls.index.live import progress_text, summary_of
    from gpt_ls.index.worker import build

    result = await build(root, settings, progress=lambda *a: report(progress_text(a)), cancel=cancel)
    return summary_of(result)


class Indexing:
    """The server's workspace index, and what the LSP handlers ask of it."""

    def __init__(
        self, root: Callable[[], Path | None], settings: Callable[[], Settings], port: EditorPort,
        clients: Callable[[], Any] = lambda: None,
    ) -> None:
        self.root = root
        self.clients = clients
        self.settings = settings
        self.port = port
        self.live: LiveIndex | None = None
        self._background: asyncio.Task[None] | None = None
        self._walked: list[str] | None = None

    def get(self) -> LiveIndex | None:
        """The workspace's index (None without a workspace folder); nothing is read until it is used."""
        root = self.root()
        if root is None:
            return None
        if self.live is None or self.live.root != root:
            from gpt_ls.index.live import LiveIndex, semantic_ranker

            self.live = LiveIndex(root, self.settings, builder=worker_build, ranker=semantic_ranker(self.clients))
        return self.live

    # -- initialized ------------------------------------------------------------------
    def begin(self, server: Any) -> None:
        """At ``initialized``: :meth:`start` in the background (the client's answers are not waited for)."""
        self._background = asyncio.ensure_future(self.start(server))

    async def start(self, server: Any) -> None:
        """Watch the workspace's files if the client can; update an index that exists already."""
        root = self.root()
        if root is None:
            return
        if self._can_watch(server) and await self._watch(server):
            live = self.get()
            if live is not None:
                live.watched = True
        if await asyncio.to_thread(index_exists, root):
            await self._update_existing()

    @staticmethod
    def _can_watch(server: Any) -> bool:
        try:
            caps = server.client_capabilities.workspace.did_change_watched_files
            return bool(caps and caps.dynamic_registration)
        except AttributeError:
            return False

    async def _watch(self, server: Any) -> bool:
        options = types.DidChangeWatchedFilesRegistrationOptions(
            watchers=[types.FileSystemWatcher(glob_pattern="**/*")])
        registration = types.Registration(id=str(uuid.uuid4()), method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                                          register_options=options)
        try:
            await asyncio.wait_for(server.client_register_capability_async(
                types.RegistrationParams(registrations=[registration])), 10)
            return True
        except Exception as exc:  # saves still update the index
            log.info("could not register file watching: %s", exc)
            return False

    async def _update_existing(self) -> None:
        live = self.get()
        if live is None:
            return
        cancel = threading.Event()
        progress = self.port.begin_progress("gpt-ls: Updating the workspace index", cancel.set)
        summary = "cancelled"
        try:
            summary = await asyncio.shield(live.ready(progress.report, cancel)) or "up to date"
        except asyncio.CancelledError:
            cancel.set()
        except Exception as exc:
            summary = "failed"
            self.port.show_message(f"gpt-ls: the workspace index could not be updated ({exc}); it is tried again "
                                   "at the next question about the workspace.", "warning")
        finally:
            await progress.end(summary)

    # -- saves and file events -------------------------------------------------------------
    def changed(self, uris: Iterable[str]) -> None:
        """Files saved or changed on disk: indexed again (together, soon) if the index is open."""
        live = self.live
        if live is not None:
            from gpt_ls.index.live import relative_path

            live.changed(p for uri in uris if (p := relative_path(live.root, _path_of(uri))) is not None)

    # -- completion -----------------------------------------------------------------------
    def complete(self, uri: str, line_before_cursor: str) -> list[str] | None:
        """Workspace files for an ``@`` mention being typed in a chat document (None: not one)."""
        if not prompts.is_chat_document(uri):
            return None
        from gpt_ls.index import mentions  # loaded on the first completion in a chat document

        prefix = mentions.typing_mention(line_before_cursor)
        if prefix is None:
            return None
        live, root = self.live, self.root()
        files = live.known_files() if live is not None else None
        if files is None:
            if root is None:
                return []
            if self._walked is None:  # bounded, once a session until the index is built
                self._walked = mentions.walk_files(root)
            files = self._walked
        return mentions.candidates(files, prefix)

    def completion(
        self, uri: str, text: str, position: types.Position, encoding: Encoding
    ) -> types.CompletionList | None:
        """``textDocument/completion`` for an ``@`` mention: a ``CompletionList``, or None when it is not one."""
        index = LineIndex(text)
        if position.line >= index.line_count:
            return None
        offset = index.offset(position.line, position.character, encoding)
        before = text[index.starts[position.line] : offset]
        found = self.complete(uri, before)
        if found is None:
            return None
        from gpt_ls.index import mentions

        prefix, quoted = mentions.typing_mention(before) or "", mentions.typed_quote(before)
        start = index.position(offset - len(prefix) - (1 if quoted else 0), encoding)
        rng = types.Range(types.Position(start.line, start.character), position)
        items = [types.CompletionItem(label=path, kind=types.CompletionItemKind.File,
                                      filter_text=f'"{path}' if quoted else path,
                                      text_edit=types.TextEdit(rng, mentions.insert_text(path, quoted)))
                 for path in found]
        return types.CompletionList(is_incomplete=len(found) >= mentions.MAX_ITEMS, items=items)

    async def close(self) -> None:
        if self._background is not None and not self._background.done():
            self._background.cancel()
        if self.live is not None:
            await self.live.close()


def _path_of(uri: str) -> str:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else ""
