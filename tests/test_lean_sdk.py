"""The openai SDK imported lean (gpt_ls/api/lean.py): what chat and FIM requests need, the rest on demand.

The test process imports the SDK in full (other tests import ``openai`` first), so each check
runs in a fresh interpreter, as the server and the terminal commands do. The end-to-end tests
(tests/e2e) run every action through the lean SDK in the real server.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest

ROOT = Path(__file__).resolve().parents[1]
TYPES = Path(openai.__file__).parent / "types"

#: Heavy modules of ``openai.types`` that no chat request needs (0.4 s of the full import).
NEVER_NEEDED = ("openai.types.eval_create_params", "openai.types.graders", "openai.types.batch",
                "openai.types.responses.response", "openai.types.realtime")

LEAN_REQUEST = """
import asyncio, json, sys
from gpt_ls.api import http, failures, lean
from gpt_ls.settings import Settings
from tests.support.fakeopenai import Error, FakeOpenAI, Reply

async def main():
    out = {"installed": any(isinstance(f, lean.LazyTypesFinder) for f in sys.meta_path)}
    with FakeOpenAI() as api:
        settings = Settings(base_url=api.url, api_key="sk-lean-0123456789", model="gpt-4o-mini", max_retries=0)
        api.script(Reply(text="你好，世界 👋 done", chunk_size=3))
        client = await http.ClientCache(env={}).get(settings)
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True})
        parts, usage = [], None
        async with stream:
            async for chunk in stream:
                usage = chunk.usage or usage
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
        out["text"], out["usage"] = "".join(parts), usage.completion_tokens > 0
        api.script(Reply(text="return a + b"))
        fim = await client.completions.create(model="gpt-3.5-turbo-instruct", prompt="def add(a, b):", suffix="# end",
                                              stream=True)
        async with fim:
            out["fim"] = "".join([c.choices[0].text async for c in fim if c.choices])
        api.script(Error(status=401))
        try:
            await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        except Exception as exc:
            out["error"] = [type(exc).__name__, type(failures.describe_error(exc, settings)).__name__]
        await client.close()
    out["heavy"] = sorted(m for m in sys.modules if m.startswith(%r))
    # Asked for by name, a type the request never loaded comes as a normal import gives it.
    import openai
    from openai.types import Batch
    out["batch"] = [Batch.__module__, openai.types.Batch is Batch, lean.loaded_in_full("openai.types")]
    print(json.dumps(out))

asyncio.run(main())
"""

#: Every package under openai.types, once a name it lacks is asked for: its public names and what they are.
NAMESPACES = """
import json, pkgutil, sys, importlib
if sys.argv[1] == "lean":
    import gpt_ls.api.http
import openai.types
out = {}
for info in pkgutil.walk_packages(openai.types.__path__, "openai.types."):
    if info.ispkg:
        pkg = importlib.import_module(info.name)
        getattr(pkg, "_no_such_name", None)  # a lean package runs its __init__ now
        out[info.name] = {k: f"{getattr(v, '__module__', '')}.{getattr(v, '__name__', type(v).__name__)}"
                          for k, v in vars(pkg).items() if not k.startswith("_")}
print(json.dumps(out, sort_keys=True))
"""


def python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def result(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out


def test_a_streamed_request_and_its_errors_need_none_of_the_heavy_types() -> None:
    got = json.loads(result(python(LEAN_REQUEST % "openai.types.")))
    assert got["installed"] is True
    assert got["text"] == "你好，世界 👋 done" and got["usage"] is True
    assert got["fim"] == "return a + b"  # completions as you type (fill in the middle)
    assert got["error"] == ["AuthenticationError", "AuthError"]
    assert not [m for m in got["heavy"] if m.startswith(NEVER_NEEDED)]
    assert "openai.types.chat.chat_completion_chunk" in got["heavy"]
    assert got["batch"] == ["openai.types.batch", True, True]


@pytest.mark.slow  # imports all of openai.types twice (about 10 s): rerun when the SDK changes
def test_every_types_package_ends_up_as_a_normal_import_makes_it() -> None:
    """Each package of openai.types, once a name in it is asked for, holds exactly what it normally holds."""
    lean, normal = python(NAMESPACES, "lean"), python(NAMESPACES, "normal")
    lean_ns, normal_ns = json.loads(result(lean)), json.loads(result(normal))
    assert lean_ns.keys() == normal_ns.keys() and len(normal_ns) > 10
    assert lean_ns == normal_ns


def test_no_types_package_binds_the_name_of_one_of_its_modules_to_something_else() -> None:
    """The one case where the lean import could differ: ``pkg.name`` is the module before the __init__ runs."""
    clashes = []
    for init in TYPES.rglob("__init__.py"):
        modules = {p.stem for p in init.parent.glob("*.py")} | {p.name for p in init.parent.iterdir() if p.is_dir()}
        for node in ast.walk(ast.parse(init.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and not (node.level == 1 and node.module is None):
                clashes += [f"{init}: {a.asname or a.name}" for a in node.names if (a.asname or a.name) in modules]
            elif isinstance(node, (ast.Assign, ast.FunctionDef, ast.ClassDef)):
                names = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
                clashes += [f"{init}: {n}" for n in [*names, getattr(node, "name", "")] if n in modules]
    assert clashes == []
