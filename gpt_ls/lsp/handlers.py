"""Thin LSP feature handlers: read the params, call one function, return an lsprotocol type."""

from __future__ import annotations

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from gpt_ls.lsp.editor import resolve_features
from gpt_ls.lsp.state import GptLanguageServer
from gpt_ls.text import Pos


def initialize(ls: GptLanguageServer, params: types.InitializeParams) -> None:
    """Resolve the client's features once; take settings (and ``workspaceTrusted``) from ``initializationOptions``."""
    ls.features = resolve_features(params.capabilities, params.client_info)
    ls.take_initialization_options(params.initialization_options)
    if params.initialization_options is None:
        ls.reload_settings()
    ls.completion.advertise()


async def initialized(ls: GptLanguageServer, params: types.InitializedParams) -> None:
    """Pull the ``gpt-ls`` configuration section; load the SDK in the background."""
    ls.warm_up()
    await ls.pull_configuration()
    await ls.completion.sync_registration()
    ls.indexing.begin(ls)


async def did_change_configuration(ls: GptLanguageServer, params: types.DidChangeConfigurationParams) -> None:
    """New settings apply to the next request."""
    if isinstance(params.settings, dict) and params.settings:
        ls.push_editor_settings(params.settings)
    else:
        await ls.pull_configuration()


def did_close(ls: GptLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    """Forget hovers of a closed document."""
    if ls.started_runner is not None:
        ls.started_runner.forget(params.text_document.uri)
    ls.completion.forget(params.text_document.uri)


def did_save(ls: GptLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    """A saved file is indexed again (once the workspace index is open)."""
    ls.indexing.changed([params.text_document.uri])


def did_change_watched_files(ls: GptLanguageServer, params: types.DidChangeWatchedFilesParams) -> None:
    """Files changed on disk are indexed again (registered at ``initialized`` when the client can watch)."""
    ls.indexing.changed(change.uri for change in params.changes)


def code_action(ls: GptLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """List the GPT actions for the selection (data only: the work happens in the command)."""
    return ls.code_actions(params)


def hover(ls: GptLanguageServer, params: types.HoverParams) -> types.Hover | None:
    """Show a reply over the range it is about."""
    runner, position = ls.started_runner, Pos(params.position.line, params.position.character)
    found = runner.hover_at(params.text_document.uri, position) if runner is not None else None
    if found is None:
        return None
    rng = types.Range(types.Position(found.start.line, found.start.character),
                      types.Position(found.end.line, found.end.character))
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=found.markdown), range=rng)


async def inline_completion(ls: GptLanguageServer,
                            params: types.InlineCompletionParams) -> types.InlineCompletionList | None:
    """Ghost text at the cursor, when completions are on (issue 15)."""
    return await ls.completion.inline(params)


async def completion(ls: GptLanguageServer, params: types.CompletionParams) -> types.CompletionList | None:
    """Completion items: workspace files after ``@`` in a chat document; else the AI suggestion."""
    doc = ls.open_document(params.text_document.uri)
    if doc is not None and (files := ls.indexing.completion(
            params.text_document.uri, doc.source, params.position, ls.encoding)) is not None:
        return files
    return await ls.completion.complete(params)


async def shutdown(ls: GptLanguageServer, params: None = None) -> None:
    """Cancel running requests (their partial replies are saved) and close the store."""
    await ls.close_actions()


def register(server: LanguageServer) -> None:
    """Register the feature handlers on ``server``."""
    server.feature(types.INITIALIZE)(initialize)
    server.feature(types.INITIALIZED)(initialized)
    server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(did_change_configuration)
    server.feature(types.TEXT_DOCUMENT_DID_CLOSE)(did_close)
    server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.RefactorRewrite]))(code_action)
    server.feature(types.TEXT_DOCUMENT_HOVER)(hover)
    server.feature(types.TEXT_DOCUMENT_DID_SAVE)(did_save)
    server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)(did_change_watched_files)
    server.feature(types.SHUTDOWN)(shutdown)
    # No options: advertised at initialize only when completions are on (lsp/completion.py).
    server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION)(inline_completion)
    # "@" in a chat document: workspace files (lsp/indexing.py).
    server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=["@"]))(completion)
