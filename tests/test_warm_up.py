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
