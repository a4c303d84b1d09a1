"""Each editor plugin's list of restricted settings is the server's (``settings.RESTRICTED_FIELDS``).

Emacs (gpt-ls.el) and Neovim (gpt_ls/init.lua) drop these keys when a repository's own
configuration (directory-local variables, exrc) sets them; a key missing from a list would
let a repository set it. The VS Code manifest is checked in tests/vscode/test_manifest.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from gpt_ls.settings import RESTRICTED_FIELDS, camel

EDITORS = Path(__file__).resolve().parents[1] / "editors"
SERVER = {camel(name) for name in RESTRICTED_FIELDS}


def test_emacs_list_is_the_servers() -> None:
    text = (EDITORS / "emacs" / "gpt-ls.el").read_text("utf-8")
    found = re.search(r"\(defconst gpt-ls-restricted-settings\s+'\(([^)]*)\)", text)
    assert found is not None
    assert set(found.group(1).split()) == SERVER


def test_neovim_list_is_the_servers() -> None:
    text = (EDITORS / "nvim" / "lua" / "gpt_ls" / "init.lua").read_text("utf-8")
    found = re.search(r"M\.restricted = \{([^}]*)\}", text)
    assert found is not None
    assert set(re.findall(r"'(\w+)'", found.group(1))) == SERVER
