"""The start-up baseline: a pygls server that imports nothing else and answers ``initialize``.

``python -m benchmarks.run`` starts it beside gpt-ls so that start-up is reported as a ratio.
"""

from pygls.lsp.server import LanguageServer

server = LanguageServer("bare-pygls", "0")

if __name__ == "__main__":
    server.start_io()
