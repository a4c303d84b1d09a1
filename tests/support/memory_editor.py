"""An in-memory editor behind the editor port, and a scripted exchange: the runner and every
delivery path run in-process against them, without LSP or HTTP.

``MemoryEditor`` keeps each document's text and version, applies edits (refusing stale
versions, like VS Code), and tells the runner about every change, at once or
``echo_delay`` seconds later (Neovim's debounce). It records what the user would see:
messages, shown documents, progress, status notifications.

``ScriptedExchange`` has ``Exchange.run``'s signature and plays a script: text deltas,
pauses, an error at the end, or a wait until cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gpt_ls.actions.editor import ClientFeatures, DocumentSnapshot, MessageKind
from gpt_ls.errors import GptLsError
from gpt_ls.exchange import ExchangeRequest, Reply, Usage
from gpt_ls.pieces import Text
from gpt_ls.text import Change, Encoding, LineIndex, Pos, apply_change

#: Everything a client can do (VS Code-like).
FULL = ClientFeatures(apply_edit=True, versioned_edits=True, show_document=True, show_message_request=True,
                      work_done_progress=True, configuration=True)
#: A client that takes no edits and shows no documents (Vim's ALE-like).
NO_EDITS = ClientFeatures()

OnChange = Callable[[str, Change, str, str], None]


@dataclass
class MemoryDocument:
    uri: str
    text: str
    version: int = 1
    language_id: str = "plaintext"


@dataclass
class MemoryProgress:
    """One progress: its events in order, and the cancel button."""

    title: str
    on_cancel: Callable[[], object]
    events: list[str] = field(default_factory=list)

    def report(self, message: str) -> None:
        self.events.append(f"report {message}")

    async def end(self, message: str) -> None:
        self.events.append(f"end {message}")

    def cancel(self) -> None:
        """The user pressed cancel."""
        self.on_cancel()


class MemoryEditor:
    """The editor port in memory."""

    def __init__(
        self, features: ClientFeatures = FULL, encoding: Encoding = "utf-16", echo_delay: float | None = None,
        workspace_root: Path | None = None,
    ) -> None:
        self.features = features
        self.encoding = encoding
        #: None: the change reaches the runner before the edit is answered; else that many seconds later.
        self.echo_delay = echo_delay
        self.workspace_root = workspace_root
        self.docs: dict[str, MemoryDocument] = {}
        #: What the runner has seen of each document (lags behind ``docs`` by ``echo_delay``).
        self.seen: dict[str, MemoryDocument] = {}
        self.listeners: list[OnChange] = []
        self.refuse_edits = False
        self.save_fails = False
        self.choice: str | None = None
        self.choices_asked: list[tuple[str, list[str]]] = []
        self.messages: list[tuple[MessageKind, str]] = []
        self.files: dict[Path, str] = {}
        self.shown: list[tuple[Path, bool]] = []
        self.progresses: list[MemoryProgress] = []
        self.statuses: list[tuple[int, int, str]] = []
        self.edits: list[tuple[str, Pos, Pos, str, int | None]] = []
        self._echoes: list[asyncio.Task[None]] = []

    # -- the user -------------------------------------------------------------------
    def open(self, uri: str, text: str, language_id: str = "plaintext") -> None:
        self.docs[uri] = MemoryDocument(uri, text, 1, language_id)
        self.seen[uri] = MemoryDocument(uri, text, 1, language_id)

    def text(self, uri: str) -> str:
        return self.docs[uri].text

    def range_of(self, uri: str, needle: str) -> tuple[Pos, Pos]:
        """The positions of the first occurrence of ``needle``."""
        text = self.docs[uri].text
        start = text.index(needle)
        index = LineIndex(text)
        return index.position(start, self.encoding), index.position(start + len(needle), self.encoding)

    def type(self, uri: str, offset: int, text: str) -> None:
        """The user inserts ``text`` at a string offset."""
        at = LineIndex(self.docs[uri].text).position(offset, self.encoding)
        self._change(uri, at, at, text)

    async def settle(self) -> None:
        """Wait until the runner has seen every change."""
        while self._echoes:
            await self._echoes.pop(0)

    def _change(self, uri: str, start: Pos, end: Pos, text: str) -> None:
        doc = self.docs[uri]
        doc.text, _ = apply_change(doc.text, start, end, text, self.encoding)
        doc.version += 1
        if self.echo_delay is None:
            self._echo(uri, start, end, text, doc.version)
        else:
            self._echoes.append(asyncio.get_running_loop().create_task(
                self._later(uri, start, end, text, doc.version)))

    async def _later(self, uri: str, start: Pos, end: Pos, text: str, version: int) -> None:
        await asyncio.sleep(self.echo_delay or 0)
        self._echo(uri, start, end, text, version)

    def _echo(self, uri: str, start: Pos, end: Pos, text: str, version: int) -> None:
        seen = self.seen[uri]
        old = seen.text
        seen.text, change = apply_change(old, start, end, text, self.encoding)
        seen.version = version
        for listener in self.listeners:
            listener(uri, change, old, seen.text)

    # -- the port ---------------------------------------------------------------------
    def document(self, uri: str) -> DocumentSnapshot | None:
        doc = self.seen.get(uri)
        if doc is None:
            return None
        return DocumentSnapshot(uri, Text(doc.text), doc.version, doc.language_id, "/work/" + uri.rsplit("/", 1)[-1])

    def documents(self) -> list[DocumentSnapshot]:
        return [d for uri in self.seen if (d := self.document(uri)) is not None]

    async def apply_edit(self, uri: str, start: Pos, end: Pos, text: str, version: int | None = None) -> bool:
        self.edits.append((uri, start, end, text, version))
        doc = self.docs.get(uri)
        if self.refuse_edits or doc is None or (version is not None and version != doc.version):
            return False
        self._change(uri, start, end, text)
        return True

    def show_message(self, text: str, kind: MessageKind = "error") -> None:
        self.messages.append((kind, text))

    def save_markdown(self, name: str, text: str, folder: str = "documents") -> Path:
        if self.save_fails:
            raise OSError("disk full")
        path = Path("/memory") / folder / name
        self.files[path] = text
        return path

    def show_document(self, path: Path, focus: bool = True) -> None:
        self.shown.append((path, focus))

    async def ask_choice(self, prompt: str, choices: list[str]) -> str | None:
        self.choices_asked.append((prompt, choices))
        return self.choice

    def begin_progress(self, title: str, on_cancel: Callable[[], object]) -> MemoryProgress:
        progress = MemoryProgress(title, on_cancel, [f"begin {title}"])
        self.progresses.append(progress)
        return progress

    def notify_status(self, running: int, tokens: int, message: str) -> None:
        self.statuses.append((running, tokens, message))


@dataclass
class Hang:
    """A script step: wait until cancelled (or ``seconds``)."""

    seconds: float = 30.0


class ScriptedExchange:
    """``Exchange.run`` playing a script: strings are deltas, numbers pauses, ``Hang`` a stall,
    and a ``GptLsError`` last makes the reply fail with it."""

    def __init__(self, *script: str | float | Hang | GptLsError, model: str = "gpt-4.1-mini") -> None:
        self.script = list(script)
        self.model = model
        self.requests: list[ExchangeRequest] = []
        self.notices: list[str] = []

    async def run(
        self, req: ExchangeRequest, on_text: Callable[[str], None], on_progress: Callable[[int], None] | None = None
    ) -> Reply:
        self.requests.append(req)
        parts: list[str] = []
        reply = Reply(text="", status="complete", model=self.model, notices=list(self.notices))
        try:
            for step in self.script:
                if isinstance(step, str):
                    parts.append(step)
                    on_text(step)
                    if on_progress is not None:
                        on_progress(len(parts))
                    await asyncio.sleep(0)
                elif isinstance(step, Hang):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, GptLsError):
                    reply.status, reply.error = "error", step
                else:
                    await asyncio.sleep(step)
        except asyncio.CancelledError:
            reply.status = "cancelled"
        reply.text = "".join(parts)
        reply.usage = Usage(12, len(parts))
        return reply
