"""The code-action baseline: a pygls server that keeps documents and lists a fixed menu, nothing else.

``benchmarks/first_seconds.py`` asks it for code actions exactly as it asks gpt-ls, so that
gpt-ls's latency is reported against what pygls itself costs. The menu has as many entries
as gpt-ls lists for a Python file, each carrying a ``Command`` with the same arguments.
"""

from lsprotocol import types
from pygls.lsp.server import LanguageServer

server = LanguageServer("bare-pygls-actions", "0")
TITLES = ["Ask", "Explain selection", "Draft email", "Continue conversation", "Write code", "Improve code",
          "Fix code", "Translate", "Summarize", "Tutor", "Ask about this file", "Ask about the workspace"]


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.RefactorRewrite]))
def code_action(params: types.CodeActionParams) -> list[types.CodeAction]:
    uri, rng = params.text_document.uri, params.range
    server.workspace.get_text_document(uri)  # as gpt-ls does: look the document up
    return [types.CodeAction(title=f"GPT: {t}", kind=types.CodeActionKind.RefactorRewrite, command=types.Command(
        title=f"GPT: {t}", command="gpt-ls.run", arguments=[t, uri, server.protocol._converter.unstructure(rng)]))
        for t in TITLES]


if __name__ == "__main__":
    import os

    if os.environ.get("GPT_LS_TRACE_FILE"):  # diagnosis, as in timed_server.py
        import atexit
        import sys

        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from benchmarks import loop_trace

        loop_trace.install()
        atexit.register(loop_trace.write, os.environ["GPT_LS_TRACE_FILE"])
    server.start_io()
