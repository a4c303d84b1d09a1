"""Confined, bounded reads of workspace files; owner-only writes; the trust list."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from gpt_ls.errors import FileRefused
from gpt_ls.files import (
    foreign_owner_problem,
    inside,
    read_limited,
    read_workspace_file,
    write_private,
)
from gpt_ls.trust import TrustList, digest


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = tmp_path / "repo"
    ws.mkdir()
    (ws / "docs").mkdir()
    (ws / "docs" / "rules.md").write_text("规则: be brief 👋", encoding="utf-8")
    return ws


def test_a_file_inside_the_workspace_is_read(root: Path):
    assert read_workspace_file(root, "docs/rules.md", 1000) == "规则: be brief 👋"
    assert read_workspace_file(root, "missing.md", 1000) is None


@pytest.mark.parametrize("name", ["../secret.txt", "/etc/hostname", "docs/../../secret.txt"])
def test_names_outside_the_workspace_are_refused(root: Path, name: str):
    (root.parent / "secret.txt").write_text("private")
    with pytest.raises(FileRefused, match="outside the workspace"):
        read_workspace_file(root, name, 1000)


def test_a_symlink_out_of_the_workspace_is_refused(root: Path):
    (root.parent / "id_rsa").write_text("-----BEGIN PRIVATE KEY-----")
    (root / ".gpt-ls.md").symlink_to(root.parent / "id_rsa")
    with pytest.raises(FileRefused, match="outside the workspace"):
        read_workspace_file(root, ".gpt-ls.md", 1000)
    (root / "env").symlink_to("/proc/self/environ")
    with pytest.raises(FileRefused, match="outside the workspace"):
        read_workspace_file(root, "env", 1000)


def test_a_symlink_inside_the_workspace_is_followed(root: Path):
    (root / ".gpt-ls.md").symlink_to(root / "docs" / "rules.md")
    assert read_workspace_file(root, ".gpt-ls.md", 1000) == "规则: be brief 👋"


def test_devices_fifos_and_directories_are_not_read(root: Path, tmp_path: Path):
    with pytest.raises(FileRefused, match="not a regular file"):
        read_limited(Path("/dev/zero"), 1000)
    fifo = root / "pipe"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(FileRefused, match="not a regular file"):
        read_workspace_file(root, "pipe", 1000)
    assert time.monotonic() - started < 5  # opened non-blocking: no writer needed
    with pytest.raises(FileRefused, match="not a regular file"):
        read_workspace_file(root, "docs", 1000)


def test_a_file_over_the_limit_is_refused(root: Path):
    (root / "big.md").write_bytes(b"x" * 2049)
    with pytest.raises(FileRefused, match="larger than 2 KB"):
        read_workspace_file(root, "big.md", 2048)
    (root / "ok.md").write_bytes(b"x" * 2048)
    assert read_workspace_file(root, "ok.md", 2048) == "x" * 2048


def test_invalid_utf8_is_refused_with_a_sentence(root: Path):
    (root / "bin.md").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FileRefused, match="not UTF-8"):
        read_workspace_file(root, "bin.md", 100)


def test_inside_resolves_to_the_real_path(root: Path):
    assert inside(root, "docs/rules.md") == (root / "docs" / "rules.md").resolve()


def test_group_or_world_writable_config_is_a_problem(tmp_path: Path):
    config = tmp_path / ".gpt-ls.toml"
    config.write_text("model = 'x'")
    config.chmod(0o644)
    assert foreign_owner_problem(config) is None
    config.chmod(0o664)
    problem = foreign_owner_problem(config)
    assert problem is not None and "chmod go-w" in problem and str(config) in problem
    config.chmod(0o646)
    assert foreign_owner_problem(config) is not None


def test_written_files_are_owner_only_and_never_follow_a_symlink(tmp_path: Path):
    out = tmp_path / "export.md"
    out.write_text("old")
    out.chmod(0o644)
    write_private(out, "新的 text")
    assert out.read_text(encoding="utf-8") == "新的 text"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "planted.log"
    link.symlink_to(victim)
    with pytest.raises(FileRefused, match="symbolic link"):
        write_private(link, "overwrite")
    assert victim.read_text() == "keep me"


def test_trust_follows_the_content(tmp_path: Path, root: Path):
    trusted = TrustList(tmp_path / "data")
    config = root / ".gpt-ls.toml"
    config.write_text('baseUrl = "http://127.0.0.1:9/v1"\n')
    content = config.read_bytes()
    assert not trusted.is_trusted(config, content)
    assert trusted.trust(config) == digest(content)
    assert trusted.is_trusted(config, content)
    assert stat.S_IMODE(trusted.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(trusted.path.parent.stat().st_mode) == 0o700
    changed = content + b'apiKeyCommand = "touch /tmp/pwned"\n'
    assert not trusted.is_trusted(config, changed)
    assert list(trusted.load()) == [str(config.resolve())]
    assert trusted.untrust(config)
    assert not trusted.untrust(config)
    assert not trusted.is_trusted(config, content)


def test_a_damaged_trust_list_trusts_nothing(tmp_path: Path, root: Path):
    trusted = TrustList(tmp_path)
    trusted.path.write_text("{not json")
    config = root / ".gpt-ls.toml"
    config.write_text("model = 'x'\n")
    assert trusted.load() == {}
    assert not trusted.is_trusted(config, config.read_bytes())
    trusted.trust(config)  # trusting again repairs it
    assert trusted.is_trusted(config, config.read_bytes())
