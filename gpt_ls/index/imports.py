"""Pure: the workspace files a file imports or includes, and its test or counterpart, among the indexed files.

``neighbours(path, text, files)`` reads the imports of ``text`` (the file ``path``,
workspace-relative POSIX) and keeps those that name a file of ``files`` (the index's list:
nothing outside the workspace, nothing secret or ignored, is ever in it):

* Python: ``import a.b``, ``from a.b import c`` (``a/b/c.py`` when ``c`` is a module, else
  ``a/b.py`` or ``a/b/__init__.py``), relative ``from ..x import y``; absolute modules are
  looked for at the root, under ``src/`` and ``lib/``, and under the folders above the file;
* JavaScript/TypeScript: relative specifiers of ``import … from``, ``export … from``,
  ``import '…'``, ``import('…')`` and ``require('…')`` (extensions and ``index`` files tried;
  ``./x.js`` in TypeScript may be ``./x.ts``); packages (``react``) are not workspace files;
* C/C++: ``#include "x.h"`` beside the file, then at the root, under ``include/`` and ``src/``
  and the folders above the file (``<x.h>`` is the system's);
* Rust: ``mod x;`` (``x.rs`` or ``x/mod.rs``);
* the test of a module and the module of a test (``foo.py`` <-> ``test_foo.py``,
  ``foo.ts`` <-> ``foo.test.ts``, ``foo.go`` <-> ``foo_test.go``, ``foo.c`` <-> ``foo.h``);
* through a package: a name taken from a package (``from pkg import thing``, ``import pkg`` then
  ``pkg.thing``) leads to the module its ``__init__.py`` takes it from (one hop, when the caller
  can read the ``__init__.py``: bounded, confined, the editor's text when it is open).

A path is normalised without the file system and refused when it would leave the root.
Only the first ``MAX_SCAN_CHARS`` of a file are read, at most ``MAX_IMPORTS`` imports kept.
The neighbours whose names occur in what the user points at (the question, the selected lines)
or around it (the excerpt, the chunks sent: import lines left out) come first, the most
named first; then the test/counterpart; then the other imports in file order.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

MAX_SCAN_CHARS = 256 * 1024
MAX_IMPORTS = 200
MAX_NAMES = 12
#: Packages (``__init__.py``) looked through, and the modules taken from each, at most.
MAX_PACKAGES = 4
MAX_REEXPORTS = 4

PYTHON = frozenset({".py", ".pyi", ".pyw"})
SCRIPT = (".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs", ".vue", ".svelte")
C_SOURCES = (".c", ".cc", ".cpp", ".cxx", ".m", ".mm")
C_HEADERS = (".h", ".hh", ".hpp", ".hxx")
SOURCE_ROOTS = ("", "src", "lib")

_PY_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w. \t,]+)", re.M)
_PY_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]{0,2000}\)?|[^\n#;]+)", re.M)
_JS_SPEC = re.compile(
    r"""(?:\b(?:import|export)\b([^'"`;]{0,500}?)\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)(['"])(\.{1,2}/[^'"\n]{0,300})\2""")
_C_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"\n]{1,300})"', re.M)
_RUST_MOD = re.compile(r"^[ \t]*(?:pub(?:\([^)\n]*\))?[ \t]+)?mod[ \t]+([A-Za-z_]\w*)[ \t]*;", re.M)
_IMPORT_LINE = re.compile(
    r"^[ \t]*(?:import\b|from[ \t]+[\w.]+[ \t]+import\b|export\b[^\n]*\bfrom\b|#[ \t]*include\b"
    r"|(?:pub\S*[ \t]+)?mod[ \t]+\w+[ \t]*;|(?:const|let|var)\b[^\n]*\brequire\s*\()[^\n]*", re.M)
_NAME = re.compile(r"(?:[^\W\d]|\$)[\w$]*")
_NOT_NAMES = frozenset({"as", "type", "typeof", "import", "export", "from", "default", "const", "let", "var"})


@dataclass(frozen=True)
class Neighbour:
    """A workspace file related to the asking one: its path, the names it brings, why it is related."""

    path: str
    names: tuple[str, ...] = ()
    #: "import" or "counterpart" (a test and its module, a source and its header).
    why: str = "import"


@dataclass(frozen=True)
class _Ref:
    """One import: the paths it may be, in order of preference, and the names it brings."""

    paths: tuple[str, ...]
    names: tuple[str, ...]


def normal(path: str) -> str | None:
    """``path`` normalised (``a/./b/../c`` -> ``a/c``), or None when it leaves the root or is absolute."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        return None
    joined = posixpath.normpath(path)
    if joined in (".", "..") or joined.startswith("../"):
        return None
    return joined


def _ancestors(folder: str) -> list[str]:
    """``a/b/c`` -> ``["", "a", "a/b", "a/b/c"]``."""
    parts = [p for p in folder.split("/") if p]
    return ["", *("/".join(parts[: i + 1]) for i in range(len(parts)))]


def _under(prefixes: Collection[str], rel: str) -> Iterator[str]:
    for prefix in dict.fromkeys(prefixes):
        if (path := normal(f"{prefix}/{rel}" if prefix else rel)) is not None:
            yield path


def _names(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in _NAME.findall(text) if n not in _NOT_NAMES))[:MAX_NAMES]


def _python(path: str, text: str) -> Iterator[_Ref]:
    folder = posixpath.dirname(path)
    roots = [*SOURCE_ROOTS, *_ancestors(folder)]

    def files(module: str, bases: Collection[str]) -> tuple[str, ...]:
        rel = module.replace(".", "/")
        return tuple(p for base in bases for p in _under([base], f"{rel}.py")) + tuple(
            p for base in bases for p in _under([base], f"{rel}/__init__.py"))

    found: list[tuple[int, _Ref]] = []
    for m in _PY_IMPORT.finditer(text):
        for part in m.group(1).split(","):
            words = part.split()
            module = words[0] if words else ""
            if module and not module.startswith("."):
                name = words[2] if len(words) == 3 and words[1] == "as" else module.rsplit(".", 1)[-1]
                found.append((m.start(), _Ref(files(module, roots), (name,))))
    for m in _PY_FROM.finditer(text):
        dots, module, names = m.group(1), m.group(2), _names(re.sub(r"#[^\n]*", "", m.group(3)))
        if dots:
            base = folder
            for _ in range(len(dots) - 1):
                base = posixpath.dirname(base) if base else "/"  # "/": above the root, refused
            bases: list[str] = [base]
        else:
            bases = roots
        prefix = f"{module}." if module else ""
        for name in names:  # ``from a import b``: b may be the module a/b.py
            found.append((m.start(), _Ref(files(prefix + name, bases), (name,))))
        if module:
            found.append((m.start(), _Ref(files(module, bases), names)))
    for _, ref in sorted(found, key=lambda item: item[0]):
        yield ref


def _script(path: str, text: str) -> Iterator[_Ref]:
    folder = posixpath.dirname(path)
    typed = PurePosixPath(path).suffix in (".ts", ".tsx", ".mts", ".cts")
    for m in _JS_SPEC.finditer(text):
        spec = normal(posixpath.join(folder, m.group(3).split("?", 1)[0]))
        if spec is None:
            continue
        suffix = PurePosixPath(spec).suffix
        tries = [spec] if suffix else []
        if typed and suffix in (".js", ".jsx", ".mjs", ".cjs"):
            stem = spec[: -len(suffix)]
            tries += [stem + ext for ext in (".ts", ".tsx", ".mts", ".cts")]
        tries += [spec + ext for ext in SCRIPT] + [f"{spec}/index{ext}" for ext in SCRIPT]
        names = _names(m.group(1) or "") or (PurePosixPath(spec).stem,)
        yield _Ref(tuple(tries), names)


def _c(path: str, text: str) -> Iterator[_Ref]:
    folder = posixpath.dirname(path)
    for m in _C_INCLUDE.finditer(text):
        header = m.group(1)
        paths = tuple(_under([folder, "", "include", "src", *_ancestors(folder)], header))
        yield _Ref(paths, (PurePosixPath(header).stem,))


def _rust(path: str, text: str) -> Iterator[_Ref]:
    file = PurePosixPath(path)
    folder = str(file.parent) if file.name in ("lib.rs", "main.rs", "mod.rs") else str(file.with_suffix(""))
    folder = "" if folder == "." else folder
    for m in _RUST_MOD.finditer(text):
        name = m.group(1)
        yield _Ref(tuple(_under([folder], f"{name}.rs")) + tuple(_under([folder], f"{name}/mod.rs")), (name,))


def imports(path: str, text: str) -> list[_Ref]:
    """The imports of ``text`` (the file ``path``) as candidate workspace paths (see the module docstring)."""
    suffix = PurePosixPath(path).suffix.lower()
    head = text[:MAX_SCAN_CHARS]
    if suffix in PYTHON:
        refs = _python(path, head)
    elif suffix in SCRIPT:
        refs = _script(path, head)
    elif suffix in C_SOURCES or suffix in C_HEADERS:
        refs = _c(path, head)
    elif suffix == ".rs":
        refs = _rust(path, head)
    else:
        return []
    out = []
    for ref in refs:
        out.append(ref)
        if len(out) >= MAX_IMPORTS:
            break
    return out


def counterparts(path: str) -> list[str]:
    """The paths the test of ``path`` (or the module of a test) may have, most likely first."""
    file = PurePosixPath(path)
    folder, name, suffix = posixpath.dirname(path), file.stem, file.suffix
    if suffix in PYTHON:
        if name.startswith("test_") or name.endswith("_test"):
            module = name[5:] if name.startswith("test_") else name[:-5]
            return list(_under([folder, posixpath.dirname(folder), "src"], f"{module}{suffix}"))
        tails = [f"test_{name}{suffix}", f"{name}_test{suffix}"]
        rest = folder.split("/", 1)[1] if "/" in folder else ""
        folders = [folder, f"{folder}/tests" if folder else "tests", "tests", "test", f"tests/{folder}",
                   f"tests/{rest}" if rest else "tests",
                   *(f"{a}/tests" if a else "tests" for a in _ancestors(folder))]
        return [p for f in dict.fromkeys(folders) for tail in tails for p in _under([f], tail)]
    if suffix in SCRIPT:
        for marker in (".test", ".spec"):
            if name.endswith(marker):
                module = name[: -len(marker)] + suffix
                return list(_under([folder, posixpath.dirname(folder)], module))
        tests = [f"{name}.test{suffix}", f"{name}.spec{suffix}"]
        return [p for f in (folder, f"{folder}/__tests__" if folder else "__tests__") for t in tests
                for p in _under([f], t)]
    if suffix == ".go":
        other = f"{name[:-5]}.go" if name.endswith("_test") else f"{name}_test.go"
        return list(_under([folder], other))
    if suffix in C_SOURCES:
        return [p for ext in C_HEADERS for p in _under([folder, "include"], name + ext)]
    if suffix in C_HEADERS:
        return [p for ext in C_SOURCES for p in _under([folder, "src"], name + ext)]
    return []


def without_imports(text: str) -> str:
    """``text`` without its import lines (a name counts as used only where it is used)."""
    return _IMPORT_LINE.sub("", text)


def _mentioned(names: tuple[str, ...], focus: str) -> int:
    """How many of ``names`` occur in ``focus`` as whole words."""
    return sum(1 for n in names if re.search(rf"(?<![\w$]){re.escape(n)}(?![\w$])", focus))


def _reexported(package: str, text: str, used: set[str], known: Collection[str]) -> list[Neighbour]:
    """The modules a package's ``__init__.py`` (``text``) takes the ``used`` names from (one hop)."""
    out: dict[str, Neighbour] = {}
    for ref in imports(package, text):
        names = tuple(n for n in ref.names if n in used)
        hit = next((p for p in ref.paths if p in known and p != package), None) if names else None
        if hit is not None:
            out[hit] = Neighbour(hit, tuple(dict.fromkeys((*out[hit].names, *names) if hit in out else names)))
        if len(out) >= MAX_REEXPORTS:
            break
    return list(out.values())


def _attributes(name: str, text: str) -> set[str]:
    """The ``name.attribute`` names used in ``text`` (``click.confirm`` -> confirm)."""
    return set(re.findall(rf"(?<![\w$]){re.escape(name)}\.([A-Za-z_]\w*)", text)[:MAX_NAMES * 4])


def neighbours(path: str, text: str, files: Collection[str], focus: str = "", limit: int = 4,
               pointed: str = "", read: Callable[[str], str | None] | None = None) -> list[Neighbour]:
    """At most ``limit`` files of ``files`` related to ``path`` (see the module docstring for the order).

    ``focus``: the text whose names rank the imports (its import lines do not count); ``pointed``: what
    the user points at (the question, the selected lines), whose names count twice, import lines too.
    ``read``: a package's ``__init__.py`` text (bounded, confined; None when it cannot be had): a name
    the file takes from a package (``from pkg import thing``, ``pkg.thing``) leads to the module the
    package takes it from, in place of the package.
    """
    focus = without_imports(focus)
    known = files if isinstance(files, (set, frozenset, dict)) else set(files)
    found: dict[str, Neighbour] = {}
    for ref in imports(path, text):
        hit = next((p for p in ref.paths if p in known and p != path), None)
        if hit is None:
            continue
        names = found[hit].names if hit in found else ()
        found[hit] = Neighbour(hit, tuple(dict.fromkeys(names + ref.names))[:MAX_NAMES])
    if read is not None:
        found = _through_packages(found, read, known, path, f"{pointed}\n{focus}")
    pair = next((p for p in counterparts(path) if p in known and p != path), None)
    scored: list[tuple[float, int, Neighbour]] = [
        (float(_mentioned(n.names, focus) + 2 * _mentioned(n.names, pointed)), i, n)
        for i, n in enumerate(found.values())]
    if pair is not None and pair not in found:  # after the imports the question or selection names
        scored.append((0.5, -1, Neighbour(pair, (PurePosixPath(pair).stem,), "counterpart")))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [n for _, _, n in scored[:limit]]


def _through_packages(found: dict[str, Neighbour], read: Callable[[str], str | None], known: Collection[str],
                      path: str, usage: str) -> dict[str, Neighbour]:
    """``found`` with each package (``__init__.py``) replaced by the modules it takes the used names from."""
    out: dict[str, Neighbour] = {}
    packages = 0
    for hit, neighbour in found.items():
        targets: list[Neighbour] = []
        if PurePosixPath(hit).name == "__init__.py" and packages < MAX_PACKAGES:
            packages += 1
            used = set(neighbour.names).union(*(_attributes(n, usage) for n in neighbour.names))
            inner = read(hit)
            targets = [t for t in _reexported(hit, inner, used, known) if t.path != path] if inner else []
        for target in targets or [neighbour]:
            names = out[target.path].names if target.path in out else ()
            out[target.path] = dataclasses.replace(target, names=tuple(dict.fromkeys(names + target.names))[:MAX_NAMES])
    return out
