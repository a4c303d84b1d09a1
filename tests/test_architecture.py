"""The shape docs/architecture.md promises, checked from the source alone (ast, nothing imported).

* Nothing in gpt_ls is imported both ways: the import graph has no cycle, counting every
  import (top level, under ``TYPE_CHECKING``, inside functions).
* No module is over 400 lines.
* No LSP handler is over 15 lines: a handler reads its params and calls one function.

One check runs the real server instead: what it imports until it has answered
``initialize`` (start-up is a benchmark figure; this pins the import set, which does not
depend on the machine's load).
"""

from __future__ import annotations

import ast
import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gpt_ls"
MAX_MODULE_LINES = 400
MAX_HANDLER_LINES = 15
#: Where the thin handlers live; every function in them is a handler (or a helper as short).
HANDLER_MODULES = ("gpt_ls.lsp.handlers", "gpt_ls.lsp.commands")
REGISTRARS = ("feature", "command")  # pygls: @server.feature(...) / @server.command(...)


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


@functools.cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The gpt_ls modules ``name`` imports anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets.add(base)
            # ``from gpt_ls.api import http`` imports the module gpt_ls.api.http.
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {t for t in targets if t in known and t != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_nothing_is_imported_both_ways() -> None:
    known = modules()
    graph = {name: imported(name, path, set(known)) for name, path in known.items()}
    assert sum(len(targets) for targets in graph.values()) > len(graph) // 2  # the parser sees imports
    found = cycles(graph)
    shown = [" <-> ".join(c) + "  (" + "; ".join(f"{m} imports {sorted(graph[m] & set(c))}" for m in c) + ")"
             for c in found]
    assert shown == []


def test_no_module_is_over_400_lines() -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def _registrar(node: ast.expr) -> bool:
    """``X.feature(...)`` or ``X.command(...)``."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in REGISTRARS


def handlers(name: str, tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Functions registered with pygls (decorated, or passed to a registrar), and all of a handler module."""
    registered = {
        arg.id for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _registrar(node.func) for arg in node.args if isinstance(arg, ast.Name)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
            name in HANDLER_MODULES or node.name in registered or any(_registrar(d) for d in node.decorator_list)
        ):
            yield node


def body_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from ``def`` to the end, without decorators or the docstring."""
    span = (fn.end_lineno or fn.lineno) - fn.lineno + 1
    first = fn.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        span -= (first.end_lineno or first.lineno) - first.lineno + 1
    return span


def test_no_lsp_handler_is_over_15_lines() -> None:
    found: dict[str, int] = {}
    for name, path in modules().items():
        for fn in handlers(name, parsed(path)):
            found[f"{name}.{fn.name} (line {fn.lineno})"] = body_lines(fn)
    assert len(found) >= 10, found  # the LSP features and commands were found
    assert {h: n for h, n in found.items() if n > MAX_HANDLER_LINES} == {}


#: Loaded on first use or in the background after ``initialized``, never before the server answers ``initialize``.
NOT_AT_START_UP = ("gpt_ls.index", "gpt_ls.completions", "gpt_ls.api", "gpt_ls.exchange", "gpt_ls.history",
                   "gpt_ls.actions.runner", "gpt_ls.tokens", "gpt_ls.lsp.listen", "openai", "tiktoken", "httpx2",
                   "httpx", "sqlite3", "pydantic")


def _frame(obj: dict[str, object]) -> bytes:
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_start_up_imports_only_what_initialize_needs(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "GPT_LS_DATA_DIR": str(tmp_path / "data"),
           "GPT_LS_CONFIG_DIR": str(tmp_path / "config"), "GPT_LS_CACHE_DIR": str(tmp_path / "cache")}
    initialize = _frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {},
        "initializationOptions": {"completions": True}}})
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "gpt_ls"], cwd=PACKAGE.parent, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(initialize)
        proc.stdin.flush()
        length = 0
        while (line := proc.stdout.readline()) != b"\r\n" or not length:
            assert line, "the server exited before answering initialize"
            length = int(line.split(b":")[1]) if line.lower().startswith(b"content-length:") else length
        answer = json.loads(proc.stdout.read(length))
    finally:
        proc.kill()  # everything imported so far is on stderr: -X importtime writes each import as it ends
        _, err = proc.communicate()
    assert "inlineCompletionProvider" in answer["result"]["capabilities"]  # completions on, and advertised
    loaded = {line.rsplit("|", 1)[1].strip() for line in err.decode().splitlines() if line.startswith("import time:")}
    assert {"gpt_ls.lsp.server", "gpt_ls.settings", "pygls.lsp.server"} <= loaded  # the log was read
    assert sorted(m for m in loaded if m.startswith(NOT_AT_START_UP)) == []
