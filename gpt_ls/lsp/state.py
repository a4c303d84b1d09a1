"""``GptLanguageServer``: the state the LSP handlers share (``server.create_server`` builds it).

Settings, the action catalog, the client's features, the open documents, and (built on
first use, off the start-up path) the exchange and the action runner. Building it reads
nothing from disk: settings load at ``initialize``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from gpt_ls import __version__, prompts
from gpt_ls.actions.catalog import Catalog, command_arguments, load_actions
from gpt_ls.actions.editor import ClientFeatures, MessageKind
from gpt_ls.config_files import WORKSPACE_FILE, file_stamp
from gpt_ls.errors import GptLsError
from gpt_ls.lsp.completion import CompletionEdge
from gpt_ls.lsp.documents import content_of, set_content
from gpt_ls.lsp.editor import LspEditor, negotiated_encoding, open_document, root_of
from gpt_ls.lsp.indexing import Indexing
from gpt_ls.lsp.protocol import GptProtocol
from gpt_ls.lsp.warmup import SWITCH_INTERVAL, background_load, convert_once
from gpt_ls.secrets import add_secret
from gpt_ls.settings import ResolvedSettings, Settings, data_dir, load_settings
from gpt_ls.text import Encoding, Pos
from gpt_ls.trust import TRUST_FILE, TrustList, UntrustedFile, offer_trust

if TYPE_CHECKING:  # the exchange and runner load in the background after initialize
    from gpt_ls.actions.runner import ActionRunner
    from gpt_ls.exchange import Exchange

log = logging.getLogger(__name__)
#: The GIL switch interval (s) while the SDK is imported in the background (see warm_up).
WARM_UP_SWITCH_INTERVAL = SWITCH_INTERVAL


class GptLanguageServer(LanguageServer):
    """The gpt-ls server: state shared by the handlers."""

    def __init__(self) -> None:
        super().__init__("gpt-ls", __version__, protocol_cls=GptProtocol)
        self._exchange: Exchange | None = None
        self._runner: ActionRunner | None = None
        self.editor = LspEditor(self, lambda: self.features)
        self.features = ClientFeatures()
        #: The workspace index (created for the workspace folder on first use).
        self.indexing = Indexing(lambda: self.workspace_root, lambda: self.settings, self.editor,
                                 lambda: self.exchange.clients)
        self.editor_settings: dict[str, Any] = {}
        #: How many times the editor pushed its settings (``didChangeConfiguration`` with them):
        #: a pull answered across a push carries the older settings.
        self._pushes = 0
        #: False when the editor said at initialize that the workspace is untrusted (VS Code's
        #: Restricted Mode): the workspace file's restricted settings never apply then.
        self.workspace_trusted = True
        self._trust_offer: asyncio.Future[None] | None = None
        #: The workspace file and the trust list as last loaded (None: settings not loaded yet).
        self._stamps: tuple[object, object] | None = None
        # Defaults until initialize: building the server reads nothing from disk.
        self.resolved = ResolvedSettings(Settings(), {}, [])
        self.catalog = Catalog()
        self._shown_problems: set[str] = set()
        self._warm: asyncio.Future[None] | None = None
        self._closing: asyncio.Future[None] | None = None
        #: Completions as you type (issue 15).
        self.completion = CompletionEdge(self, self.editor.documents, self.editor.document)

    @property
    def exchange(self) -> Exchange:
        """The exchange (imported on first use, off the start-up path)."""
        if self._exchange is None:
            from gpt_ls.exchange import Exchange

            self._exchange = Exchange()
        return self._exchange

    @property
    def runner(self) -> ActionRunner:
        """The action runner (imported on first use, off the start-up path)."""
        if self._runner is None:
            from gpt_ls.actions.runner import ActionRunner

            self._runner = ActionRunner(self.editor, lambda: self.settings, self.exchange, lambda: self.catalog,
                                        self.indexing.get)
        return self._runner

    @property
    def started_runner(self) -> ActionRunner | None:
        """The runner if an action ever ran (only then are there hovers and trackers)."""
        return self._runner

    # -- settings -------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        self.refresh()
        return self.resolved.settings

    def _current_stamps(self) -> tuple[object, object]:
        root = self.workspace_root
        return (file_stamp(root / WORKSPACE_FILE) if root is not None else None,
                file_stamp(data_dir() / TRUST_FILE))

    def refresh(self) -> None:
        """Reload when the workspace file or the trust list changed on disk (two stats).

        A ``gpt-ls trust`` in a terminal applies to the next request, and a trusted file that
        changes stops applying at once (untrusted until trusted anew).
        """
        if self._stamps is not None and self._stamps != self._current_stamps():
            self.reload_settings()

    @property
    def workspace_root(self) -> Path | None:
        return root_of(self)

    def reload_settings(self) -> None:
        """Merge every settings layer again and report new problems once."""
        self._stamps = self._current_stamps()
        self.resolved = load_settings(self.editor_settings, self.workspace_root,
                                      workspace_trusted=self.workspace_trusted)
        self.catalog = load_actions(self.resolved.action_layers, self.resolved.add_only)
        for secret in (self.resolved.settings.api_key, *self.resolved.settings.headers.values()):
            add_secret(secret)  # any custom header may carry a credential
        for problem in [*self.resolved.problems, *self.catalog.problems]:
            if problem not in self._shown_problems:
                self._shown_problems.add(problem)
                self.show(f"gpt-ls settings: {problem}", "warning")
        untrusted = self.resolved.untrusted
        if untrusted is not None and f"{untrusted.message()} {untrusted.digest}" not in self._shown_problems:
            self._shown_problems.add(f"{untrusted.message()} {untrusted.digest}")
            self.tell_untrusted(untrusted)
        self.completion.settings_changed()

    def tell_untrusted(self, untrusted: UntrustedFile) -> None:
        """The one message about an untrusted workspace file; with a "Trust" choice when the editor can ask."""
        if not self.features.show_message_request or untrusted.editor_untrusted or self._trust_offer is not None:
            self.show(f"gpt-ls: {untrusted.message()}", "warning")
            return

        async def offer() -> None:
            try:
                if await offer_trust(self.editor, untrusted, TrustList(data_dir())):
                    self.reload_settings()
                    self.show(f"gpt-ls: {untrusted.path} is trusted; its settings apply.", "info")
            except GptLsError as exc:
                self.show(f"gpt-ls: {exc}", "warning")
            except Exception as exc:  # the editor failed to ask: say it plainly instead
                log.info("window/showMessageRequest failed: %s", exc)
                self.show(f"gpt-ls: {untrusted.message()}", "warning")
            finally:
                self._trust_offer = None

        self._trust_offer = asyncio.ensure_future(offer())

    def take_initialization_options(self, options: Any) -> None:
        """``initializationOptions``: settings, and ``workspaceTrusted`` (not a setting; read only here)."""
        if isinstance(options, dict):
            section = options.get("gpt-ls")
            section = section if isinstance(section, dict) else {}
            self.workspace_trusted = False not in (options.get("workspaceTrusted"), section.get("workspaceTrusted"))
        self.set_editor_settings(options)

    def set_editor_settings(self, raw: Any) -> None:
        """Take settings from the editor: a flat object, or one under a ``gpt-ls`` key."""
        if isinstance(raw, dict) and isinstance(raw.get("gpt-ls"), dict):
            raw = raw["gpt-ls"]
        if raw is None:
            return
        if not isinstance(raw, dict):
            self.show("gpt-ls settings: expected an object of settings; ignored", "warning")
            return
        raw = {k: v for k, v in raw.items() if k != "workspaceTrusted"}  # taken at initialize only
        add_secret(raw.get("apiKey") if isinstance(raw.get("apiKey"), str) else None)
        # Each message carries the editor's whole configuration: a setting the user removed
        # must stop applying.
        self.editor_settings = dict(raw)
        self.reload_settings()

    def push_editor_settings(self, raw: Any) -> None:
        """Settings the editor sent of itself (``didChangeConfiguration``): newer than any pull in flight."""
        self._pushes += 1
        self.set_editor_settings(raw)

    async def pull_configuration(self) -> None:
        """Ask the client for the ``gpt-ls`` section, when it offers workspace/configuration."""
        if not self.features.configuration:
            return
        pushes = self._pushes
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
        if self._pushes != pushes:
            # The editor pushed settings while this answer was on its way (its answer was read
            # first, but handled after): the pushed ones are newer and stay.
            log.debug("workspace/configuration answer older than pushed settings: ignored")
            return
        if result and isinstance(result[0], dict):
            self.set_editor_settings(result[0])

    # -- background loading -----------------------------------------------------
    def warm_up(self) -> None:
        """Load the SDK and its TLS context off the critical path, so the first action does not wait."""

        def load() -> None:
            # Pure Python holding the GIL: a short switch interval and no garbage collection
            # meanwhile, then the loaded heap frozen (gpt_ls/lsp/warmup.py says why).
            with background_load():
                # First what the editor's first requests need (a menu, an open document);
                # the SDK (0.5-1 s) only the first action. Either may fail without the other.
                try:
                    convert_once(self.protocol._converter)
                except Exception as exc:  # each message then builds its code on first use
                    log.warning("could not prepare the message conversions: %s", exc)
                try:
                    importlib.import_module("gpt_ls.actions.runner")
                    http = importlib.import_module("gpt_ls.api.http")
                    http.warm_up()
                    importlib.import_module("gpt_ls.api.failures")
                except Exception as exc:  # the first action reports it properly
                    log.warning("could not load the openai SDK: %s", exc)

        self._warm = asyncio.get_running_loop().run_in_executor(None, load)

    async def close_actions(self) -> None:
        """Cancel running requests and close the exchange, if either was ever built.

        (Not ``shutdown``: pygls calls its own synchronous ``shutdown`` when the connection ends.)
        """
        if self._closing is None:  # once: shutdown, exit and the end of the connection all close
            self._closing = asyncio.ensure_future(self._close_actions())
        await asyncio.shield(self._closing)

    async def _close_actions(self) -> None:
        await self.completion.close()
        if self._runner is not None:
            await self._runner.shutdown()
        if self._exchange is not None:
            await self._exchange.aclose()
        await self.indexing.close()

    # -- documents ------------------------------------------------------------
    @property
    def encoding(self) -> Encoding:
        return negotiated_encoding(self)

    def open_document(self, uri: str) -> TextDocument | None:
        """The document if the client has it open (never read from disk)."""
        return open_document(self, uri)

    def apply_did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        """Apply content changes with LSP line rules and let trackers follow them."""
        uri = params.text_document.uri
        doc = self.open_document(uri)
        if doc is None:
            log.warning("didChange for a document that is not open: %s", uri)
            return
        encoding = self.encoding
        text = content_of(doc)  # in pieces: an edit copies a block, not the document
        # Only a runner that exists has trackers and hovers to move; a plain edit must not
        # import and build it on the event loop.
        runner = self.started_runner
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                start = Pos(change.range.start.line, change.range.start.character)
                end = Pos(change.range.end.line, change.range.end.character)
                new, applied = text.apply(start, end, change.text, encoding)
            else:
                new, applied = text.apply(None, None, change.text, encoding)
            if runner is not None:
                runner.on_change(uri, applied, text, new)
            text = new
        set_content(doc, text)  # we applied the changes ourselves, by LSP's line rules
        doc.version = params.text_document.version

    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        """The actions for a range: data only, no network; only a dict lookup of the document."""
        self.refresh()
        uri = params.text_document.uri
        doc = self.open_document(uri)
        language = (doc.language_id if doc is not None else None) or "plaintext"
        diagnostics = [self.protocol._converter.unstructure(d) for d in params.context.diagnostics]
        menu = self.catalog.menu(language, prompts.is_chat_document(uri), params.context.only)
        return [types.CodeAction(title=a.title, kind=a.kind, command=types.Command(
            title=a.title, command=a.command, arguments=command_arguments(a, uri, params.range, diagnostics)))
            for a in menu]

    # -- messages -------------------------------------------------------------
    def show(self, message: str, kind: MessageKind = "error") -> None:
        """One ``window/showMessage``, with secrets masked."""
        self.editor.show_message(message, kind)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Unexpected errors: logged in full, shown briefly, never as a traceback."""
        if source.__name__ == "FeatureRequestError":
            log.info("request failed: %s", error)  # the client got it as a JSON-RPC error
            return
        if source is JsonRpcException:  # a message from the client that cannot be read: its bug
            log.warning("ignored a message the client sent that cannot be read: %s", error)
            return
        log.error("internal error: %s", error)
        self.show("gpt-ls internal error: the server keeps running. The details are in its log "
                  "(start it with --log-file to keep them).")

