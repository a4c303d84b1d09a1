"""Importing the openai SDK without the half second it spends on types gpt-ls never uses.

``import openai`` runs ``openai/types/__init__.py``, which imports every request and response
type of the whole API (evals, graders, responses, realtime, ...): about 0.5 s of pure Python
holding the GIL and 10 MB, while a chat, completion or embedding request needs a few dozen of
those modules. The SDK itself reaches its types through their modules
(``from ..types.chat import chat_completion``) or through a few names of a package.

:func:`install` makes every package under ``openai.types`` lazy: the package exists at once
(with its ``__path__``, so its modules import as usual), and its ``__init__`` runs in full the
first time a name that is not one of its modules is asked for (``openai.types.ChatCompletion``,
``from openai.types import Batch``). Whatever the SDK or a caller reads, it gets what a normal
import would give it, only later; ``tests/test_lean_sdk.py`` checks that no package binds a
name of one of its own modules to something else (the one case where the two could differ).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

#: The packages made lazy: this one and every package below it.
LAZY_ROOT = "openai.types"


def lazy(fullname: str) -> bool:
    """Whether a module's package ``__init__`` may wait until a name in it is asked for."""
    return fullname == LAZY_ROOT or fullname.startswith(LAZY_ROOT + ".")


class _LazyPackageLoader(importlib.abc.Loader):
    """Creates the package as its own loader would, but runs its ``__init__`` on first need."""

    def __init__(self, real: importlib.abc.Loader) -> None:
        self.real = real

    def __getattr__(self, attr: str) -> Any:  # get_code, get_source, get_resource_reader, ...
        return getattr(self.real, attr)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.real.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        lock = threading.RLock()  # another thread waits for the __init__; its own imports re-enter
        state = {"running": False, "done": False}
        name, real = module.__name__, self.real

        def __getattr__(attr: str) -> Any:
            if attr.startswith("__"):  # probes of dunders (copy, pickle, typing) never load anything
                raise AttributeError(attr)
            sub = f"{name}.{attr}"
            if sub in sys.modules or importlib.util.find_spec(sub) is not None:
                return importlib.import_module(sub)
            with lock:
                if not state["running"]:
                    state["running"] = True
                    try:
                        real.exec_module(module)
                        state["done"] = True
                    finally:
                        state["running"] = state["done"]
                        if state["done"] and module.__dict__.get("__getattr__") is __getattr__:
                            del module.__dict__["__getattr__"]
            try:
                return module.__dict__[attr]
            except KeyError:
                raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None

        module.__dict__["__getattr__"] = __getattr__


class LazyTypesFinder(importlib.abc.MetaPathFinder):
    """Finds ``openai.types`` packages as the path finder does, with :class:`_LazyPackageLoader`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not lazy(fullname):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return spec  # a plain module: imported as usual
        spec.loader = _LazyPackageLoader(spec.loader)
        return spec


def install() -> bool:
    """Make ``openai.types`` lazy, unless the SDK is imported already; True if installed (now or before)."""
    if any(isinstance(finder, LazyTypesFinder) for finder in sys.meta_path):
        return True
    if "openai" in sys.modules:  # too late: its types are loaded; nothing to save
        return False
    sys.meta_path.insert(0, LazyTypesFinder())
    return True


def loaded_in_full(package: str) -> bool:
    """Whether a lazy package's ``__init__`` has run (always True for one imported normally)."""
    module = sys.modules.get(package)
    return module is not None and "__getattr__" not in module.__dict__
