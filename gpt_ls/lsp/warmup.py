"""How the server loads the SDK in the background without stalling the requests it answers meanwhile.

The load is a few hundred milliseconds of pure Python in a thread, sharing the GIL with the
event loop. Two things would make a request wait for it:

* the GIL switch interval: with the default 5 ms the event loop waits up to that long every
  time it wants the GIL back; during the load it is 0.5 ms;
* the cyclic garbage collector: the load creates some 60,000 objects that live as long as
  the process, and a full collection over them (and the 50,000 of pygls and lsprotocol)
  holds the GIL for 20-150 ms here, in whichever thread happens to allocate. During the load
  the collector is off; afterwards everything loaded so far is frozen (``gc.freeze``), so
  later full collections walk only what the session itself allocates.

Freezing keeps any cyclic garbage that exists at that moment: a few hundred objects left
over from the imports, once per process.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lsprotocol import types
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCResponseMessage

#: The GIL switch interval (s) while the SDK loads in the background.
SWITCH_INTERVAL = 0.0005

_frozen = False
#: With ``-vv`` (or benchmarks/timed_server.py): when the load ended, its wall and CPU time.
timing = logging.getLogger("gpt_ls.timing")


@contextmanager
def background_load() -> Iterator[None]:
    """Around the background load: a short switch interval and no collections; then freeze the heap, once."""
    global _frozen
    interval = sys.getswitchinterval()
    collecting = gc.isenabled()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
    gc.disable()
    wall, cpu = time.monotonic(), time.thread_time()
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        if not _frozen:
            _frozen = True
            gc.freeze()
        if collecting:
            gc.enable()
        now = time.monotonic()  # "method wall_ms cpu_ms collections", then the monotonic clock at the end
        timing.debug("warm-up %.4f %.4f 0 %.4f", (now - wall) * 1000, (time.thread_time() - cpu) * 1000, now)


def convert_once(converter: Any) -> None:
    """Have the converter build, once, the (un)structuring code of what the first action exchanges.

    cattrs generates that code on first use (2-3 ms for an applyEdit, less for the rest), which
    the first action would otherwise pay on the event loop. It also registers every collection
    type the first time it meets one (``list``, ``dict``, ``Sequence[TextEdit]``...), and each
    such registration empties its whole cache of generated code. So the bare containers come
    first, and the messages are converted twice: the first pass meets every collection type
    they hold, the second rebuilds what those registrations threw away. Nothing is then
    generated again in the session (tests/test_warm_up.py).
    """
    empties: tuple[Any, ...] = ([], {}, ())  # what pygls hands over as a result or as params
    for empty in empties:
        converter.unstructure(empty)
    for _ in range(2):
        _convert_messages(converter)


def _convert_messages(converter: Any) -> None:
    """The messages of a session's first seconds, in both directions, as pygls (un)structures them."""
    zero = types.Range(types.Position(0, 0), types.Position(0, 0))
    edit = types.TextDocumentEdit(types.OptionalVersionedTextDocumentIdentifier("file:///x", 1),
                                  [types.TextEdit(zero, "x")])
    progress = [types.ProgressParams("t", value) for value in (
        types.WorkDoneProgressBegin("x", cancellable=True), types.WorkDoneProgressReport(message="x"),
        types.WorkDoneProgressEnd(message="x"))]
    command = types.Command("x", "x", arguments=[0])
    action = types.CodeAction("x", kind=types.CodeActionKind.RefactorRewrite, command=command)
    outgoing = [
        types.ApplyWorkspaceEditRequest(1, types.ApplyWorkspaceEditParams(types.WorkspaceEdit(
            document_changes=[edit]), metadata=types.WorkspaceEditMetadata(is_refactoring=False))),
        types.WorkDoneProgressCreateRequest(1, types.WorkDoneProgressCreateParams("t")),
        *[types.ProgressNotification(params) for params in progress],
        types.ShowMessageNotification(types.ShowMessageParams(types.MessageType.Info, "x")),
        JsonRPCNotification(method="$/x", jsonrpc="2.0", params={"x": 0}),  # gpt-ls's status
        types.CodeActionResponse(id=1, result=[action]),
        types.ExecuteCommandResponse(id=1, result=None),
        JsonRPCResponseMessage(id=1, jsonrpc="2.0", result=None),
        zero,  # a code action's arguments
    ]
    for message in outgoing:
        converter.unstructure(message)
    # What the editor sends most, its answers to the server's requests, and the code-action
    # listing: the first of each after start-up (a just-opened document, its first menu)
    # would build its code on the loop (5-7 ms for a code action).
    doc = {"uri": "file:///x", "version": 1}
    rng = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}
    incoming: list[tuple[Any, dict[str, Any] | None]] = [
        (types.DidOpenTextDocumentNotification, {"textDocument": {**doc, "languageId": "x", "text": ""}}),
        (types.DidChangeTextDocumentNotification, {"textDocument": doc, "contentChanges": [
            {"range": rng, "text": "x"}, {"text": "x"}]}),
        (types.CodeActionRequest, {"textDocument": doc, "range": rng, "context": {"diagnostics": []}}),
        (types.ExecuteCommandRequest, {"command": "x", "arguments": [0, {"x": rng}]}),
        (types.ShutdownRequest, None),
        (types.ExitNotification, None),
    ]
    for kind, params in incoming:
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": kind.__attrs_attrs__.method.default, "params": params}
        converter.structure({**body, "id": 1} if "Request" in kind.__name__ else body, kind)
    for answer, result in ((types.ApplyWorkspaceEditResponse, {"applied": True}),
                           (types.WorkDoneProgressCreateResponse, None)):
        converter.structure({"jsonrpc": "2.0", "id": 1, "result": result}, answer)
    converter.structure(rng, types.Range)  # a command's arguments
