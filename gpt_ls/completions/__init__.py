"""Completions as you type (issue 15): prompt, post-processing and scheduling, pure; ``service`` joins them.

``lsp/completion.py`` is the LSP edge (inline completion, the completion fallback, the
capability); nothing here imports ``lsp`` or pygls.
"""
