"""Which files are indexed: ignore files, indexInclude/indexExclude, secrets, VCS folders, symlinks, limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gpt_ls.index.walk import MAX_FILE_BYTES, SECRET_PATTERNS, Rules, is_secret, walk


def make(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def names(root: Path, **kwargs: object) -> list[str]:
    return sorted(c.rel for c in walk(root, **kwargs).files)  # type: ignore[arg-type]


def test_gitignore_nested_ignore_and_negation(tmp_path: Path) -> None:
    make(tmp_path, {
        ".gitignore": "*.log\n!keep.log\nbuild/\n/top.txt\n",
        ".ignore": "vendor/\n",
        "a.py": "", "debug.log": "", "keep.log": "", "top.txt": "", "sub/top.txt": "",
        "build/out.js": "", "vendor/lib.js": "",
        "sub/.gitignore": "local.py\n!debug.log\n", "sub/local.py": "", "sub/debug.log": "", "sub/ok.py": "",
        "other/local.py": "",
        ".git/config": "", ".git/info/exclude": "excluded.md\n", "excluded.md": "",
    })
    assert names(tmp_path) == [".gitignore", ".ignore", "a.py", "keep.log", "other/local.py",
                               "sub/.gitignore", "sub/debug.log", "sub/ok.py", "sub/top.txt"]
    assert walk(tmp_path).skipped["ignored"] == 6  # debug.log, top.txt, excluded.md, build/, vendor/, sub/local.py


def test_include_limits_and_exclude_adds(tmp_path: Path) -> None:
    make(tmp_path, {"src/a.py": "", "src/b.js": "", "docs/x.md": "", "tests/t.py": ""})
    assert names(tmp_path, include=["*.py", "docs/"]) == ["docs/x.md", "src/a.py", "tests/t.py"]
    assert names(tmp_path, exclude=["tests/", "*.js"]) == ["docs/x.md", "src/a.py"]


@pytest.mark.parametrize("name", [
    ".env", ".env.local", "prod.env", "server.pem", "tls.key", "id_rsa", "id_ed25519", "id_rsa.pub", "id_deploy",
    "cert.p12", "cert.pfx", "app.keystore", ".netrc", ".npmrc", ".pypirc", ".git-credentials", "credentials",
    "aws/credentials", "gcp-credentials.json", "client_secret_123.json", "secrets.yaml", "terraform.tfstate",
    ".gpt-ls.toml", "deep/dir/.env.production",
])
def test_secrets_are_never_indexed(tmp_path: Path, name: str) -> None:
    assert is_secret(name)
    make(tmp_path, {name: "SECRET=1\n", "ok.py": ""})
    result = walk(tmp_path, include=["*"])
    assert [c.rel for c in result.files] == ["ok.py"]
    assert result.skipped["secret"] == 1


@pytest.mark.parametrize("name", ["id_utils.py", "keyboard.py", "env.py", "src/credentials_form.tsx", "main.go",
                                  "docs/keys.md"])
def test_ordinary_files_are_not_secrets(name: str) -> None:
    assert not is_secret(name)


def test_the_secret_list_covers_what_the_issue_names() -> None:
    assert {".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "*.keystore", ".netrc", ".npmrc",
            ".pypirc"} <= set(SECRET_PATTERNS)


def test_vcs_folders_large_files_and_the_file_limit(tmp_path: Path) -> None:
    make(tmp_path, {".hg/store": "", ".svn/x": "", "big.txt": "", **{f"f{i:02}.txt": "x" for i in range(12)}})
    with open(tmp_path / "big.txt", "wb") as out:
        out.truncate(MAX_FILE_BYTES + 1)
    result = walk(tmp_path, max_files=10)
    assert [c.rel for c in result.files] == [f"f{i:02}.txt" for i in range(10)]
    assert result.skipped == {"too_large": 1, "over_limit": 2}


def test_symlinks_never_lead_outside(tmp_path: Path) -> None:
    outside = make(tmp_path / "outside", {"secret.txt": "x", "dir/inner.txt": "y"})
    root = make(tmp_path / "root", {"real.txt": "z", "sub/a.txt": "a"})
    os.symlink(outside / "secret.txt", root / "out.txt")
    os.symlink(outside / "dir", root / "outdir")
    os.symlink(root / "real.txt", root / "alias.txt")
    os.symlink(root / "sub", root / "subalias")
    os.symlink(root / "missing", root / "dangling.txt")
    result = walk(root)
    assert sorted(c.rel for c in result.files) == ["alias.txt", "real.txt", "sub/a.txt"]
    assert result.skipped["outside"] == 2  # out.txt and outdir
    assert all(root.resolve() in c.path.parents for c in result.files)


def test_check_path_applies_the_folders_rules(tmp_path: Path) -> None:
    make(tmp_path, {".gitignore": "node_modules/\n", "node_modules/x/index.js": "", "src/a.py": ""})
    rules = Rules(tmp_path)
    assert rules.check_path("node_modules/x/index.js") == "ignored"
    assert rules.check_path(".git/config") == "ignored"
    assert rules.check_path("../elsewhere.py") == "outside"
    assert rules.check_path("src/.env") == "secret"
    assert rules.check_path("src/a.py") is None
