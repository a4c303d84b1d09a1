"""The LSP wiring: handlers read params, call one function, return an lsprotocol type.

The work itself lives elsewhere: ``engine`` runs an exchange, ``stream`` writes it into
the document, ``prompts`` builds the messages. What is here is the glue that needs the
connection: document sync, progress, edits, hovers and messages.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.workspace import TextDocument

from gpt_ls import __version__, prompts
from gpt_ls.actions import DEDICATED_COMMANDS, RUN_COMMAND, SEND, Action, Catalog, load_actions
from gpt_ls.errors import GptLsError, InvalidRequest
from gpt_ls.secrets import add_secret, mask
from gpt_ls.settings import Loaded, Settings, cache_dir, load_settings
from gpt_ls.text import Encoding, Pos, apply_change

if TYPE_CHECKING:  # the engine and runner load in the background after initialize
    from gpt_ls.engine import Engine
    from gpt_ls.runner import Runner, Running

log = logging.getLogger(__name__)
#: Opt-in (debug level): how long each request spent in the server, for benchmarks/run.py.
timing = logging.getLogger("gpt_ls.timing")

STATUS_NOTIFICATION = "gpt-ls/status"
PROGRESS_INTERVAL = 0.5
PROGRESS_CREATE_TIMEOUT = 60.0


def gc_count() -> int:
    """Garbage collections so far, all generations (for the timing log)."""
    return sum(int(g["collections"]) for g in gc.get_stats())


class GptProtocol(LanguageServerProtocol):
    """pygls's protocol, with document changes applied by LSP's own line rules."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Like pygls; but a request whose params cannot be read still gets its error answer."""
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            # pygls drops the message, so the client would wait for an answer forever.
            if isinstance(data.get("method"), str) and isinstance(data.get("id"), str | int):
                self._send_response(data["id"], error=exc.to_response_error())
            raise

    @lsp_method(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def lsp_work_done_progress_cancel(self, params: types.WorkDoneProgressCancelParams) -> Generator[Any, Any, None]:
        """Like pygls, but a token that is not a string or number is ignored instead of raising."""
        if not isinstance(params.token, str | int):
            log.warning("ignored a progress cancel with an invalid token: %r", params.token)
            return
        yield from super().lsp_work_done_progress_cancel(params)

    def handle_message(self, message: Any) -> None:
        """Dispatch; with ``gpt_ls.timing`` at debug, log each request's time in the server.

        For a synchronous handler (code actions, hover) this spans the handler, the
        serialization and the write of the response.
        """
        if not timing.isEnabledFor(logging.DEBUG) or getattr(message, "id", None) is None:
            super().handle_message(message)
            return
        t0, c0, g0 = time.perf_counter(), time.thread_time(), gc_count()
        super().handle_message(message)
        wall, cpu = (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000
        # Wall time, this thread's CPU time (the gap is waiting: GIL, preemption), collections.
        timing.debug("%s %.4f %.4f %d", getattr(message, "method", "response"), wall, cpu, gc_count() - g0)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        """Apply each change, tell the trackers where it happened, then the user handler."""
        server = self._server
        assert isinstance(server, GptLanguageServer)
        server.apply_did_change(params)
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None


class GptLanguageServer(LanguageServer):
    """The gpt-ls server: state shared by the handlers."""

    def __init__(self) -> None:
        super().__init__("gpt-ls", __version__, protocol_cls=GptProtocol)
        self._engine: Engine | None = None
        self._runner: Runner | None = None
        self.editor_settings: dict[str, Any] = {}
        self.loaded: Loaded = load_settings()
        self.catalog = Catalog()
        self._shown_problems: set[str] = set()
        self.client_info: types.ClientInfo | None = None
        self._warm: asyncio.Future[None] | None = None
        self._tokenizer_warm: asyncio.Future[None] | None = None

    @property
    def engine(self) -> Engine:
        """The exchange engine (imported on first use, off the start-up path)."""
        if self._engine is None:
            from gpt_ls.engine import Engine

            self._engine = Engine()
        return self._engine

    @property
    def runner(self) -> Runner:
        """The action runner (imported on first use, off the start-up path)."""
        if self._runner is None:
            from gpt_ls.runner import Runner

            self._runner = Runner(self)
        return self._runner

    @property
    def client_name(self) -> str:
        return self.client_info.name if self.client_info is not None else ""

    # -- settings -------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    @property
    def workspace_root(self) -> Path | None:
        try:
            root = self.workspace.root_path
        except Exception:
            return None
        return Path(root) if root else None

    def reload_settings(self) -> None:
        """Merge every settings layer again and report new problems once."""
        self.loaded = load_settings(self.editor_settings, self.workspace_root)
        self.catalog = load_actions(self.loaded.action_layers)
        add_secret(self.loaded.settings.api_key)
        for problem in [*self.loaded.problems, *self.catalog.problems]:
            if problem not in self._shown_problems:
                self._shown_problems.add(problem)
                self.show(f"gpt-ls settings: {problem}", types.MessageType.Warning)

    def set_editor_settings(self, raw: Any) -> None:
        """Take settings from the editor: a flat object, or one under a ``gpt-ls`` key."""
        if isinstance(raw, dict) and isinstance(raw.get("gpt-ls"), dict):
            raw = raw["gpt-ls"]
        if raw is None:
            return
        if not isinstance(raw, dict):
            self.show("gpt-ls settings: expected an object of settings; ignored", types.MessageType.Warning)
            return
        add_secret(raw.get("apiKey") if isinstance(raw.get("apiKey"), str) else None)
        # Each message carries the editor's whole configuration: a setting the user removed
        # must stop applying.
        self.editor_settings = dict(raw)
        self.reload_settings()

    async def pull_configuration(self) -> None:
        """Ask the client for the ``gpt-ls`` section, when it offers workspace/configuration."""
        caps = self.client_capabilities.workspace
        if not (caps and caps.configuration):
            return
        try:
            result = await asyncio.wait_for(
                self.workspace_configuration_async(
                    types.ConfigurationParams(items=[types.ConfigurationItem(section="gpt-ls")])
                ),
                5,
            )
        except Exception as exc:
            log.info("workspace/configuration failed: %s", exc)
            return
        if result and isinstance(result[0], dict):
            self.set_editor_settings(result[0])

    def warm_up(self) -> None:
        """Load the SDK and its TLS context off the critical path, so the first action does not wait."""

        def load() -> None:
            try:
                importlib.import_module("gpt_ls.runner")
                client = importlib.import_module("gpt_ls.api.http")
                client._ssl_context()
            except Exception as exc:  # the first action reports it properly
                log.warning("could not load the openai SDK: %s", exc)

        self._warm = asyncio.get_running_loop().run_in_executor(None, load)

    async def shutdown(self) -> None:
        """Cancel running requests and close the engine, if either was ever built."""
        if self._runner is not None:
            await self._runner.shutdown()
        if self._engine is not None:
            await self._engine.aclose()

    # -- documents ------------------------------------------------------------
    @property
    def encoding(self) -> Encoding:
        kind = str(getattr(self.workspace, "position_encoding", None) or "utf-16")
        kind = kind.rsplit(".", 1)[-1].lower().replace("_", "-")
        return {"utf8": "utf-8", "utf32": "utf-32"}.get(kind.replace("-", ""), "utf-16")  # type: ignore[return-value]

    def open_document(self, uri: str) -> TextDocument | None:
        """The document if the client has it open (never read from disk)."""
        try:
            docs = self.workspace.text_documents
        except Exception:
            return None
        # pygls keys documents by the decoded URI; clients send them percent-encoded.
        doc: TextDocument | None = docs.get(unquote(uri))
        return doc

    def apply_did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        """Apply content changes with LSP line rules and let trackers follow them."""
        uri = params.text_document.uri
        doc = self.open_document(uri)
        if doc is None:
            log.warning("didChange for a document that is not open: %s", uri)
            return
        encoding = self.encoding
        text = doc.source
        # Only a runner that exists has trackers and hovers to move; a plain edit must not
        # import and build it on the event loop.
        runner = self._runner
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                start = Pos(change.range.start.line, change.range.start.character)
                end = Pos(change.range.end.line, change.range.end.character)
                new, applied = apply_change(text, start, end, change.text, encoding)
            else:
                new, applied = apply_change(text, None, None, change.text, encoding)
            if runner is not None:
                runner.on_change(uri, applied, text, new)
            text = new
        doc._source = text  # pygls keeps the text here; we applied the changes ourselves
        doc.version = params.text_document.version

    def document_for(self, uri: str) -> TextDocument:
        """An open document, or a clear error for the editor."""
        doc = self.open_document(uri)
        if doc is None:
            raise InvalidRequest(f"gpt-ls does not have {uri} open: open the file in the editor first.")
        return doc

    # -- messages and progress ------------------------------------------------
    def show(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        """One ``window/showMessage``, with secrets masked."""
        self.window_show_message(types.ShowMessageParams(type=kind, message=mask(message)))

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Unexpected errors: logged in full, shown briefly, never as a traceback."""
        if source.__name__ == "FeatureRequestError":
            log.info("request failed: %s", error)  # the client got it as a JSON-RPC error
            return
        if source is JsonRpcException:  # a message from the client that cannot be read: its bug
            log.warning("ignored a message the client sent that cannot be read: %s", error)
            return
        log.error("internal error: %s", error)
        self.show(f"gpt-ls internal error: {error}. The server keeps running; see its log.")

    def notify_status(self, message: str) -> None:
        """The ``gpt-ls/status`` notification that status bars show."""
        running = self.runner.running
        tokens = sum(r.tokens for r in running.values())
        self.protocol.notify(STATUS_NOTIFICATION, {"running": len(running), "tokens": tokens, "message": message})

    def supports(self, *path: str) -> bool:
        """Whether the client's capabilities have ``path`` (e.g. ``"window", "show_document"``) set."""
        node: Any = self.client_capabilities
        for name in path:
            node = getattr(node, name, None)
            if node is None:
                return False
        return bool(node)

    async def begin_progress(self, run: Running, title: str) -> None:
        """Work-done progress, cancellable, when the client supports it."""
        if not self.supports("window", "work_done_progress"):
            return
        token = str(uuid.uuid4())
        created = asyncio.ensure_future(self.work_done_progress.create_async(token))
        try:
            # Shielded: a late answer (Emacs 28 answers seconds later) must still find its
            # request pending, and the exchange does not wait for it anyway.
            await asyncio.wait_for(asyncio.shield(created), PROGRESS_CREATE_TIMEOUT)
        except Exception as exc:
            log.info("progress not available: %s", exc)
            return
        if run.finished:
            return  # the exchange ended before the editor answered
        run.progress_token = token
        self.work_done_progress.begin(
            token, types.WorkDoneProgressBegin(title=title, cancellable=True, message="waiting for the model")
        )
        future = self.work_done_progress.tokens.get(token)
        if future is not None:
            future.add_done_callback(lambda f: self.runner.cancel(run.id) if f.cancelled() else None)

    def on_tokens(self, run: Running, count: int) -> None:
        """Report tokens received, at most every PROGRESS_INTERVAL seconds."""
        run.tokens = count
        now = time.monotonic()
        if now - run.last_report < PROGRESS_INTERVAL:
            return
        run.last_report = now
        message = f"{count} tokens"
        if run.progress_token:
            self.work_done_progress.report(run.progress_token, types.WorkDoneProgressReport(message=message))
        self.notify_status(message)

    def end_progress(self, run: Running, message: str) -> None:
        """Always end the progress."""
        if run.progress_token:
            self.work_done_progress.end(run.progress_token, types.WorkDoneProgressEnd(message=message))

    # -- actions --------------------------------------------------------------
    def can_edit(self) -> bool:
        """Whether the client takes ``workspace/applyEdit``."""
        return self.supports("workspace", "apply_edit")

    def write_markdown(self, name: str, text: str, folder: str = "documents") -> Path:
        """A Markdown file under the cache dir, for ``window/showDocument``; owner-only, like history."""
        directory = cache_dir() / folder
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        return path

    def show_document(self, path: Path, focus: bool = True) -> None:
        """Open a file in the editor (or show its text as a message when it cannot)."""
        if self.supports("window", "show_document"):
            self.window_show_document(types.ShowDocumentParams(uri=path.as_uri(), take_focus=focus))
        else:
            self.show(path.read_text(encoding="utf-8"), types.MessageType.Info)

    def show_markdown(self, name: str, text: str) -> str:
        """Open ``text`` in the editor as a Markdown document (or show it as a message)."""
        path = self.write_markdown(name, text)
        self.show_document(path)
        return path.as_uri()

    def new_conversation(self) -> dict[str, Any]:
        """Start a fresh conversation in this workspace: Continue follows it from now on."""
        from gpt_ls.history.store import workspace_key

        if not self.settings.history:
            raise InvalidRequest("History is turned off (setting 'history'): there is no conversation to start.")
        conv_id = self.engine.store().new_conversation(
            workspace_key(self.workspace_root), "New conversation", model=self.settings.model)
        self.show("gpt-ls: new conversation started.", types.MessageType.Info)
        return {"conversation": conv_id}

    def history_overview(self, limit: int = 20) -> dict[str, Any]:
        """Recent conversations of this workspace, opened as one Markdown document."""
        from gpt_ls.budget import usage_summary
        from gpt_ls.history.store import workspace_key

        store = self.engine.store()
        workspace = workspace_key(self.workspace_root)
        conversations = store.list_conversations(workspace, limit=limit)
        used = usage_summary(store.usage_by_model(workspace), self.settings.prices)
        lines = [f"# gpt-ls history: {workspace or '(no workspace)'}", "", f"Tokens used here: {used}", ""]
        if not conversations:
            lines.append("No conversations yet.")
        for conv in conversations:
            lines.append(f"- **{conv.title or '(untitled)'}** · {conv.message_count} messages · "
                         f"{conv.updated} · id {conv.id}")
        lines += ["", "Open one with the command `gpt-ls.openConversation` and its id "
                  "(or `gpt-ls history show ID` in a terminal)."]
        uri = self.show_markdown("history.md", "\n".join(lines) + "\n")
        return {"uri": uri, "conversations": [{"id": c.id, "title": c.title, "updated": c.updated,
                                               "messages": c.message_count} for c in conversations]}

    def open_conversation(self, conversation_id: int) -> dict[str, Any]:
        """One conversation as a Markdown document."""
        from gpt_ls.history.export import to_markdown

        try:
            conv, messages = self.engine.store().get_conversation(conversation_id)
        except GptLsError as exc:
            raise InvalidRequest(str(exc)) from None
        uri = self.show_markdown(f"conversation-{conv.id}.md", to_markdown(conv, messages))
        return {"uri": uri, "id": conv.id}

    def warm_tokenizer(self) -> None:
        """Load the model's tokenizer in the background, once: an action is probably coming.

        Not at initialize: it adds 40-80 MB, which only servers that are used should pay.
        Loading it on the event loop at the first action would stall every request for
        up to a second (benchmarks/run.py measures both).
        """
        if self._tokenizer_warm is not None:
            return
        encoding = self.engine.model_info(self.settings).encoding

        def load() -> None:
            from gpt_ls import tokens

            tokens.preload([encoding])

        self._tokenizer_warm = asyncio.get_running_loop().run_in_executor(None, load)

    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        """The actions for a range: data only, no network; only a dict lookup of the document."""
        self.warm_tokenizer()
        uri = params.text_document.uri
        doc = self.open_document(uri)
        language = (doc.language_id if doc is not None else None) or "plaintext"
        only = params.context.only
        listed: list[Action] = [SEND] if prompts.is_chat_document(uri) else []
        listed += [a for a in self.catalog.actions if a.offered_for(language)]
        diagnostics = [self.protocol._converter.unstructure(d) for d in params.context.diagnostics]
        actions = []
        for action in listed:
            if only and not any(action.kind == k or action.kind.startswith(k + ".") for k in only):
                continue
            if action is SEND:
                arguments: list[Any] = [uri]
            elif action.command == RUN_COMMAND:
                arguments = [action.id, uri, params.range]
                if action.id == "fixCode" and diagnostics:
                    arguments.append({"diagnostics": diagnostics})
            else:
                arguments = [uri, params.range]
            actions.append(types.CodeAction(
                title=action.title, kind=action.kind,
                command=types.Command(title=action.title, command=action.command, arguments=arguments),
            ))
        return actions


server = GptLanguageServer()


@server.feature(types.INITIALIZE)
def initialize(ls: GptLanguageServer, params: types.InitializeParams) -> None:
    """Take settings from ``initializationOptions``."""
    ls.client_info = params.client_info
    ls.set_editor_settings(params.initialization_options)
    if params.initialization_options is None:
        ls.reload_settings()


@server.feature(types.INITIALIZED)
async def initialized(ls: GptLanguageServer, params: types.InitializedParams) -> None:
    """Pull the ``gpt-ls`` configuration section; load the SDK in the background."""
    ls.warm_up()
    await ls.pull_configuration()


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def did_change_configuration(ls: GptLanguageServer, params: types.DidChangeConfigurationParams) -> None:
    """New settings apply to the next request."""
    if isinstance(params.settings, dict) and params.settings:
        ls.set_editor_settings(params.settings)
    else:
        await ls.pull_configuration()


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: GptLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    """Forget hovers of a closed document."""
    ls.runner.forget(params.text_document.uri)


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.RefactorRewrite]),
)
def code_action(ls: GptLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """List the GPT actions for the selection."""
    return ls.code_actions(params)


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: GptLanguageServer, params: types.HoverParams) -> types.Hover | None:
    """Show an explanation over the range it explains."""
    return ls.runner.hover_at(params.text_document.uri, params.position)


def _arguments(args: tuple[Any, ...], usage: str, count: int) -> list[Any]:
    """Check a command's arguments; a JSON-RPC error that says the expected form otherwise."""
    if len(args) < count:
        raise JsonRpcInvalidParams(f"expected arguments {usage}, got {len(args)} argument(s)")
    return list(args)


def _uri(value: Any, usage: str) -> str:
    if not isinstance(value, str) or not value:
        raise JsonRpcInvalidParams(f"expected arguments {usage}: the first must be a document URI")
    return value


def _range(ls: GptLanguageServer, value: Any, usage: str) -> types.Range:
    try:
        rng: types.Range = ls.protocol._converter.structure(value, types.Range)
    except Exception:
        raise JsonRpcInvalidParams(f"expected arguments {usage}: {value!r} is not an LSP range") from None
    return rng


async def _user_errors(call: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """A user-facing error becomes a JSON-RPC error carrying its sentence (never a traceback)."""
    try:
        return await call
    except GptLsError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None


def _action_command(action: Action) -> Callable[..., Any]:
    usage = "[uri, range]"

    async def handler(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
        uri, rng = _arguments(args, usage, 2)[:2]
        if len(args) > 2:
            raise JsonRpcInvalidParams(f"expected arguments {usage}, got {len(args)} arguments")
        current = ls.catalog.get(action.id) or action  # the user may have overridden it
        return await _user_errors(ls.runner.run_action(current, _uri(uri, usage), _range(ls, rng, usage)))

    handler.__doc__ = f"Run {action.title}."
    return handler


for _command, _action in DEDICATED_COMMANDS.items():
    server.command(_command)(_action_command(_action))


@server.command(RUN_COMMAND)
async def run_any(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
    """Run any action by id: ``[actionId, uri, range, {diagnostics}?]``."""
    usage = "[actionId, uri, range, options?]"
    action_id, uri, rng, *rest = _arguments(args, usage, 3)
    action = ls.catalog.get(action_id) if isinstance(action_id, str) else None
    if action is None:
        known = ", ".join(a.id for a in ls.catalog.actions)
        raise JsonRpcInvalidParams(f"unknown action {action_id!r}; known: {known}")
    extra = rest[0] if rest and isinstance(rest[0], dict) else {}
    return await _user_errors(ls.runner.run_action(action, _uri(uri, usage), _range(ls, rng, usage), extra))


@server.command(SEND.command)
async def send(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
    """Send a chat document (``*.chat.md``): ``[uri]``."""
    (uri, *_rest) = _arguments(args, "[uri]", 1)
    return await _user_errors(ls.runner.send_chat(_uri(uri, "[uri]")))


@server.command("gpt-ls.cancel")
def cancel_all(ls: GptLanguageServer, *args: Any) -> dict[str, int]:
    """Cancel every running request."""
    return {"cancelled": ls.runner.cancel()}


def _plain_errors(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a user-facing error becomes a JSON-RPC error with its sentence."""
    try:
        return fn()
    except GptLsError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None


@server.command("gpt-ls.newConversation")
def new_conversation(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
    """Start a fresh conversation (arguments are ignored: the workspace decides)."""
    return _plain_errors(ls.new_conversation)  # type: ignore[no-any-return]


@server.command("gpt-ls.showHistory")
def show_history(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
    """Open the workspace's recent conversations as a Markdown document."""
    return _plain_errors(ls.history_overview)  # type: ignore[no-any-return]


@server.command("gpt-ls.openConversation")
def open_conversation(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
    """Open one conversation as a Markdown document: ``[id]``."""
    (conversation_id, *_rest) = _arguments(args, "[conversationId]", 1)
    if isinstance(conversation_id, bool) or not isinstance(conversation_id, int):
        raise JsonRpcInvalidParams("expected arguments [conversationId]: a conversation id is a number")
    return _plain_errors(lambda: ls.open_conversation(conversation_id))  # type: ignore[no-any-return]


@server.command("gpt-ls.check")
async def check(ls: GptLanguageServer, *args: Any) -> dict[str, Any]:
    """Test the connection with the current settings; show the report."""
    from gpt_ls.check import run_check

    report = await run_check(ls.loaded)
    kind = types.MessageType.Info if report.ok else types.MessageType.Error
    # The verdict first: editors cut long messages.
    ls.show("\n".join([report.lines[-1], *report.lines[:-1]]), kind)
    return {"ok": report.ok, "lines": [mask(line) for line in report.lines], "latencyMs": report.latency_ms}


@server.feature(types.SHUTDOWN)
async def shutdown(ls: GptLanguageServer, params: None = None) -> None:
    """Cancel running requests (their partial replies are saved) and close the store."""
    await ls.shutdown()
