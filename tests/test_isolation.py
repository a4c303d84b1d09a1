"""The autouse fixture in conftest.py keeps every test off the developer's own settings and history."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from gpt_ls.settings import cache_dir, config_dir, data_dir
from tests.conftest import leaks


def test_each_test_has_its_own_directories(isolated: Path, tmp_path: Path) -> None:
    assert isolated.parent == tmp_path
    for directory in (config_dir(), data_dir(), cache_dir(), Path(platformdirs.user_state_dir("gpt-ls")),
                      Path.home()):
        assert directory.is_relative_to(isolated), directory


def test_no_key_proxy_or_certificate_of_the_developer_reaches_a_test() -> None:
    own = {f"GPT_LS_{kind}_DIR" for kind in ("CONFIG", "DATA", "CACHE")} | {
        f"XDG_{kind}_HOME" for kind in ("CONFIG", "DATA", "CACHE", "STATE")}
    assert [name for name in os.environ if leaks(name) and name not in own] == []


def test_what_counts_as_a_leak() -> None:
    assert [name for name in ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "https_proxy", "ALL_PROXY", "NO_PROXY",
                              "SSL_CERT_FILE", "GPT_LS_DATA_DIR", "XDG_STATE_HOME") if not leaks(name)] == []
    assert [name for name in ("PATH", "GPT_LS_FUZZ_EXAMPLES", "GPT_LS_FULL_FAULTS", "TERM") if leaks(name)] == []
