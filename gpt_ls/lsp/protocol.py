"""pygls's protocol with gpt-ls's tweaks: unreadable requests still get an answer, invalid
progress cancels are ignored, request timing (opt-in), document changes applied by
LSP's own line rules (so trackers can follow each change), and no traceback in an answer."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Generator
from typing import Any, Protocol

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInternalError
from pygls.protocol import LanguageServerProtocol, lsp_method

from gpt_ls.lsp.documents import put_document

log = logging.getLogger(__name__)
#: Opt-in (debug level): how long each request spent in the server, for benchmarks/run.py.
timing = logging.getLogger("gpt_ls.timing")


def gc_count() -> int:
    """Garbage collections so far, all generations (for the timing log)."""
    return sum(int(g["collections"]) for g in gc.get_stats())


#: What an editor sees of an unexpected error (pygls would send the exception and its traceback).
INTERNAL_ERROR = ("gpt-ls internal error: this request failed and the server keeps running. "
                  "The details are in the server's log (start it with --log-file to keep them).")


class ChangeApplier(Protocol):
    """The server side of ``didChange``: ``GptLanguageServer.apply_did_change``."""

    def apply_did_change(self, params: types.DidChangeTextDocumentParams) -> None: ...


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

    def _send_response(self, msg_id: Any, result: Any | None = None,
                       error: types.ResponseError | None = None) -> None:
        """Like pygls; but an internal error carries one sentence, never the exception or its traceback."""
        traceback = isinstance(error.data, dict) and "traceback" in error.data if error is not None else False
        if error is not None and (error.code == JsonRpcInternalError.CODE or traceback):
            log.error("request %s failed: %s", msg_id, error.message)  # pygls logged the traceback
            error = types.ResponseError(code=error.code, message=INTERNAL_ERROR)
        super()._send_response(msg_id, result, error)

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

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> Generator[Any, Any, None]:
        """Like pygls, but the document keeps its text in pieces (``gpt_ls/lsp/documents.py``)."""
        put_document(self.workspace, params.text_document)
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        """Apply each change, tell the trackers where it happened, then the user handler."""
        server: ChangeApplier = self._server  # type: ignore[assignment]
        server.apply_did_change(params)
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None
