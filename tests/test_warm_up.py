"""The server loads the SDK and the TLS context in the background, never a tokenizer."""

import sys

from lsprotocol import types

from gpt_ls import tokens


async def test_warm_up_loads_the_tls_context_but_not_the_tokenizer(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_LS_CONFIG_DIR", str(tmp_path))
    from gpt_ls.api import http
    from gpt_ls.lsp.state import GptLanguageServer

    tokens.reset()
    http._SSL_CONTEXTS.clear()
    monkeypatch.setattr(http, "_warmed", False)  # another test's exchange may have warmed up
    ls = GptLanguageServer()
    ls.warm_up()
    assert ls._warm is not None
    await ls._warm
    assert len(http._SSL_CONTEXTS) == 1
    assert all(name in sys.modules for name in (*http.FIRST_REQUEST_MODULES, "gpt_ls.api.failures"))
    assert tokens._loaded == {}


async def test_code_action_listings_load_no_tokenizer(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_LS_CONFIG_DIR", str(tmp_path))
    from gpt_ls.lsp.state import GptLanguageServer

    tokens.reset()
    ls = GptLanguageServer()
    ls.set_editor_settings({"model": "gpt-4"})
    params = types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri="file:///a.md"),
        range=types.Range(types.Position(0, 0), types.Position(0, 1)),
        context=types.CodeActionContext(diagnostics=[]),
    )
    for _ in range(3):
        assert ls.code_actions(params)[0].title == "GPT: Ask"
    # An action that needs a count loads it then, in a thread (tests/test_lazy_tokenizer.py).
    assert tokens._loaded == {}


async def test_warm_up_shortens_the_switch_interval_only_while_it_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_LS_CONFIG_DIR", str(tmp_path))
    from gpt_ls.lsp import state

    seen: list[float] = []
    real = state.importlib.import_module

    def spy(name: str):  # records the interval the imports run with
        seen.append(sys.getswitchinterval())
        return real(name)

    monkeypatch.setattr(state.importlib, "import_module", spy)
    before = sys.getswitchinterval()
    ls = state.GptLanguageServer()
    ls.warm_up()
    assert ls._warm is not None
    await ls._warm
    assert seen and set(seen) == {state.WARM_UP_SWITCH_INTERVAL}
    assert sys.getswitchinterval() == before


async def test_the_first_exchange_waits_for_the_warm_up_instead_of_repeating_it(monkeypatch):
    import threading

    from gpt_ls.api import http

    built: list[str] = []
    monkeypatch.setattr(http, "_warmed", False)
    monkeypatch.setattr(http, "_ssl_context", lambda: built.append(threading.current_thread().name))
    warm = threading.Thread(target=http.warm_up, name="warm-up")
    with http._warm_lock:  # the warm-up is under way
        warm.start()
        waiting = threading.Thread(target=http.warm_up, name="first exchange")  # as Exchange.run calls it
        waiting.start()
    warm.join()
    waiting.join()
    assert len(built) == 1  # built once, by whichever came first; never twice


async def test_warm_up_collects_no_garbage_while_it_loads_then_freezes_what_it_loaded(tmp_path, monkeypatch):
    """A full collection over the loading SDK would hold the GIL for tens of ms (gpt_ls/lsp/warmup.py)."""
    import gc

    monkeypatch.setenv("GPT_LS_CONFIG_DIR", str(tmp_path))
    from gpt_ls.lsp import state, warmup

    collecting: list[bool] = []
    real = state.importlib.import_module

    def spy(name: str):
        collecting.append(gc.isenabled())
        return real(name)

    monkeypatch.setattr(state.importlib, "import_module", spy)
    monkeypatch.setattr(warmup, "_frozen", False)
    frozen = gc.get_freeze_count()
    ls = state.GptLanguageServer()
    ls.warm_up()
    assert ls._warm is not None
    await ls._warm
    assert collecting and not any(collecting)
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen


def test_the_first_request_is_rehearsed_in_memory_without_any_connection(monkeypatch):
    """The SDK's first-request work (type hints, chunk schemas, headers) is done off the event loop."""
    import socket

    from gpt_ls.api import rehearsal

    def no_network(*args, **kwargs):
        raise AssertionError("the rehearsal tried to connect")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    assert rehearsal.rehearse() is True


def test_the_warm_up_converts_what_the_editor_sends_first():
    from pygls.lsp.server import LanguageServer

    from gpt_ls.lsp.warmup import convert_once

    converter = LanguageServer("x", "0").protocol._converter
    convert_once(converter)  # raises if lsprotocol's shapes changed
    request = converter.structure({"jsonrpc": "2.0", "id": 7, "method": "textDocument/codeAction", "params": {
        "textDocument": {"uri": "file:///a.py"}, "range": {"start": {"line": 5, "character": 0},
                                                           "end": {"line": 6, "character": 0}},
        "context": {"diagnostics": []}}}, types.CodeActionRequest)
    assert (request.id, request.params.range.end.line) == (7, 6)


def test_after_the_warm_up_the_first_action_builds_no_conversion_code(monkeypatch):
    """cattrs empties its cache of generated code whenever it meets a new collection type
    (here ``list``, ``dict``): the warm-up's code must survive the session's first messages."""
    import cattrs.gen
    from pygls.lsp.server import LanguageServer
    from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCResponseMessage

    from gpt_ls.lsp.warmup import convert_once

    converter = LanguageServer("x", "0").protocol._converter
    convert_once(converter)
    built: list[str] = []
    for name in ("make_dict_unstructure_fn", "make_dict_structure_fn"):
        real = getattr(cattrs.gen, name)

        def spy(cls, *args, _real=real, **kwargs):
            built.append(cls.__name__)
            return _real(cls, *args, **kwargs)

        monkeypatch.setattr(cattrs.gen, name, spy)
    rng = types.Range(types.Position(3, 0), types.Position(4, 2))
    action = types.CodeAction("GPT: Ask", kind=types.CodeActionKind.RefactorRewrite, command=types.Command(
        "GPT: Ask", "gpt-ls.ask", arguments=["file:///a.py", converter.unstructure(rng)]))
    # In the order of a first Ask: the menu, the command, its progress and status, then the reply's edit.
    assert converter.unstructure(types.CodeActionResponse(id=2, result=[action]))["result"][0]["title"] == "GPT: Ask"
    assert converter.unstructure(JsonRPCResponseMessage(id=2, jsonrpc="2.0", result=[action]))["result"]
    command = converter.structure({"jsonrpc": "2.0", "id": 3, "method": "workspace/executeCommand", "params": {
        "command": "gpt-ls.ask", "arguments": ["file:///a.py", {"start": {"line": 3, "character": 0},
                                                               "end": {"line": 4, "character": 2}}]}},
        types.ExecuteCommandRequest)
    assert command.params.command == "gpt-ls.ask"
    assert converter.structure(command.params.arguments[1], types.Range) == rng
    converter.unstructure(types.WorkDoneProgressCreateRequest(9, types.WorkDoneProgressCreateParams("p")))
    converter.structure({"jsonrpc": "2.0", "id": 9, "result": None}, types.WorkDoneProgressCreateResponse)
    converter.unstructure(types.ProgressNotification(types.ProgressParams(
        "p", types.WorkDoneProgressBegin("GPT: Ask", cancellable=True))))
    status = converter.unstructure(JsonRPCNotification(method="$/gpt-ls/status", jsonrpc="2.0",
                                                       params={"running": 1, "tokens": 0}))
    assert status["params"]["running"] == 1
    edit = types.TextDocumentEdit(types.OptionalVersionedTextDocumentIdentifier("file:///a.py", 4),
                                  [types.TextEdit(rng, "你好 🙂")])
    sent = converter.unstructure(types.ApplyWorkspaceEditRequest(10, types.ApplyWorkspaceEditParams(
        types.WorkspaceEdit(document_changes=[edit]), metadata=types.WorkspaceEditMetadata(is_refactoring=False))))
    assert sent["params"]["edit"]["documentChanges"][0]["edits"][0]["newText"] == "你好 🙂"
    answer = converter.structure({"jsonrpc": "2.0", "id": 10, "result": {"applied": True}},
                                 types.ApplyWorkspaceEditResponse)
    assert answer.result.applied
    converter.unstructure(types.ProgressNotification(types.ProgressParams("p", types.WorkDoneProgressEnd())))
    converter.unstructure(types.ExecuteCommandResponse(id=3, result=None))
    assert built == [], built


async def test_the_warm_up_converts_before_it_loads_the_sdk(tmp_path, monkeypatch):
    """The editor's first requests (a menu, an open document) come before the SDK's 0.5-1 s load ends."""
    monkeypatch.setenv("GPT_LS_CONFIG_DIR", str(tmp_path))
    from gpt_ls.lsp import state

    order: list[str] = []
    real_import, real_convert = state.importlib.import_module, state.convert_once
    monkeypatch.setattr(state.importlib, "import_module", lambda name: order.append(name) or real_import(name))
    monkeypatch.setattr(state, "convert_once", lambda converter: order.append("convert") or real_convert(converter))
    ls = state.GptLanguageServer()
    ls.warm_up()
    assert ls._warm is not None
    await ls._warm
    assert order[0] == "convert"
    assert "gpt_ls.api.http" in order[1:]


async def test_a_failed_conversion_warm_up_still_loads_the_sdk(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GPT_LS_CONFIG_DIR", str(tmp_path))
    from gpt_ls.lsp import state

    loaded: list[str] = []
    real_import = state.importlib.import_module

    def broken(converter):
        raise TypeError("lsprotocol changed shape")

    monkeypatch.setattr(state, "convert_once", broken)
    monkeypatch.setattr(state.importlib, "import_module", lambda name: loaded.append(name) or real_import(name))
    ls = state.GptLanguageServer()
    ls.warm_up()
    assert ls._warm is not None
    await ls._warm
    assert "gpt_ls.api.http" in loaded
    assert "could not prepare the message conversions: lsprotocol changed shape" in caplog.text
