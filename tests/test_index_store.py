"""The index store: incremental updates, overlays, damage, read-only folders, owner-only files, odd files."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpt_ls.errors import WorkspaceIndexError
from gpt_ls.index import db, indexer
from gpt_ls.index.store import WorkspaceIndex
from gpt_ls.settings import Settings
from tests.test_index_walk import make


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make(tmp_path / "ws", {"a.py": "def alpha():\n    return 1\n", "b.md": "# Beta\n\nbeta text\n",
                                  "c.txt": "gamma words\n"})


@pytest.fixture
def index(root: Path) -> Iterator[WorkspaceIndex]:
    idx = WorkspaceIndex.open(root, Settings())
    yield idx
    idx.close()


def counts(report: object) -> tuple[int, int, int]:
    return report.indexed, report.unchanged, report.removed  # type: ignore[attr-defined]


def test_incremental_counts(root: Path, index: WorkspaceIndex) -> None:
    assert counts(index.update()) == (3, 0, 0)
    assert counts(index.update()) == (0, 3, 0)
    (root / "a.py").write_text("def alpha():\n    return 2  # changed\n")
    (root / "d.py").write_text("def delta():\n    pass\n")
    (root / "c.txt").unlink()
    os.utime(root / "b.md", ns=(1, 1))  # touched, same content: read again, not re-indexed
    report = index.update()
    assert counts(report) == (2, 1, 1)
    assert index.files() == ["a.py", "b.md", "d.py"]
    assert index.search("delta")[0].chunk.path == "d.py"
    assert index.search("gamma") == []
    assert "Indexed 2 files" in report.summary() and "1 removed" in report.summary()


def test_update_of_named_files(root: Path, index: WorkspaceIndex) -> None:
    index.update()
    (root / "a.py").write_text("def omega():\n    pass\n")
    (root / "b.md").unlink()
    (root / ".env").write_text("KEY=1\n")
    report = index.update([str(root / "a.py"), "b.md", ".env", "missing.py", "/etc/passwd"])
    assert counts(report) == (1, 0, 1)
    assert report.skipped == {"secret": 1, "outside": 1}
    assert index.search("omega")[0].chunk.path == "a.py"
    assert index.search("alpha") == []


def test_overlay_takes_precedence_over_the_file(root: Path, index: WorkspaceIndex) -> None:
    index.update()
    index.set_overlay("a.py", "def unsaved_function():\n    pass\n")
    assert index.search("unsaved_function")[0].chunk.path == "a.py"
    assert index.search("alpha") == []
    assert counts(index.update()) == (0, 3, 0)  # the overlay stays what a.py is
    assert index.search("unsaved_function")
    index.set_overlay(str(root / "new.py"), "def brand_new():\n    pass\n")  # not on disk yet
    assert index.search("brand_new")[0].chunk.path == "new.py"
    index.set_overlay("a.py", None)
    assert index.search("alpha")[0].chunk.path == "a.py"
    assert index.search("unsaved_function") == []
    index.set_overlay(".env", "KEY=1\n")  # a secret stays out, open or not
    outside = root.parent / "outside.py"
    outside.write_text("def far_away():\n    pass\n")
    os.symlink(outside, root / "link.py")
    index.set_overlay("link.py", "def far_away():\n    pass\n")  # its text is not the workspace's
    assert index.files() == ["a.py", "b.md", "c.txt", "new.py"]
    assert index.update().skipped == {"outside": 1}


def test_binary_invalid_utf8_unreadable_and_large_files_are_counted(root: Path, index: WorkspaceIndex,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    make(root, {"img.png": b"\x89PNG", "blob.dat2": b"abc\x00def", "latin.txt": "café naïve\n".encode("latin-1"),
                "noise.txt": bytes(range(128, 256)) * 4, "secret.txt": "hidden words\n"})
    with open(root / "huge.min.js", "wb") as out:  # 50 MB, sparse
        out.truncate(50 * 1024 * 1024)
    os.chmod(root / "secret.txt", 0)
    real = indexer.read_file

    def denied(candidate: indexer.Candidate) -> tuple[bytes, int, int]:
        if candidate.rel == "secret.txt":  # what chmod 0 does, also when the tests run as root
            raise PermissionError(13, "Permission denied")
        return real(candidate)

    monkeypatch.setattr(indexer, "read_file", denied)
    report = index.update()
    assert report.skipped["unreadable"] == 1
    assert report.skipped["binary"] == 3 and report.skipped["too_large"] == 1
    assert report.invalid_utf8 == 1
    assert index.search("caf")[0].chunk.path == "latin.txt"
    assert "latin.txt" in index.files() and "huge.min.js" not in index.files()


def test_files_deleted_or_changed_while_indexing(root: Path, index: WorkspaceIndex,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real = indexer.read_file

    def racing(candidate: indexer.Candidate) -> tuple[bytes, int, int]:
        if candidate.rel == "b.md":
            (root / "b.md").unlink()
        if candidate.rel == "c.txt":
            (root / "c.txt").write_text("grown " * 1000)
        return real(candidate)

    monkeypatch.setattr(indexer, "read_file", racing)
    report = index.update()
    assert report.skipped == {"vanished": 1} and report.indexed == 2
    assert "1 deleted while indexing" in report.summary()
    monkeypatch.setattr(indexer, "read_file", real)
    assert counts(index.update()) == (0, 2, 0)


def test_cancel_keeps_what_was_written(root: Path, index: WorkspaceIndex) -> None:
    cancel = threading.Event()
    seen: list[tuple[int, int, str]] = []

    def progress(done: int, total: int, path: str) -> None:
        seen.append((done, total, path))
        if done == 1:
            cancel.set()

    report = index.update(progress=progress, cancel=cancel)
    assert report.cancelled and report.indexed == 1
    assert seen[:2] == [(0, 3, ""), (1, 3, "a.py")]
    assert not index.built
    assert counts(index.update()) == (2, 1, 0)
    assert index.built


def test_files_are_owner_only_and_never_through_a_symlink(root: Path, index: WorkspaceIndex, tmp_path: Path) -> None:
    index.update()
    assert stat.S_IMODE(index.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(index.path.parent.stat().st_mode) == 0o700
    index.close()
    index.path.unlink()
    Path(f"{index.path}-wal").unlink(missing_ok=True)
    os.symlink(tmp_path / "elsewhere.sqlite", index.path)
    with pytest.raises(WorkspaceIndexError, match="symbolic link"):
        WorkspaceIndex.open(root, Settings())
    assert not (tmp_path / "elsewhere.sqlite").exists()


def test_a_damaged_index_is_moved_aside_and_rebuilt(root: Path, index: WorkspaceIndex) -> None:
    index.update()
    path = index.path
    index.close()
    for side in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        side.unlink(missing_ok=True)
    path.write_bytes(b"this is not a database" * 100)
    again = WorkspaceIndex.open(root, Settings())
    assert again.notice and "damaged" in again.notice and ".old" in again.notice
    assert Path(f"{path}.old").read_bytes().startswith(b"this is not")
    report = again.update()
    assert report.indexed == 3 and report.notice and "damaged" in report.summary()
    assert again.search("alpha")
    again.close()


def test_an_outdated_index_is_rebuilt(root: Path, index: WorkspaceIndex) -> None:
    index.update()
    index.close()
    with sqlite3.connect(index.path) as conn:
        conn.execute(f"PRAGMA user_version = {db.SCHEMA_VERSION + 1}")
    again = WorkspaceIndex.open(root, Settings())
    assert again.notice and "another version" in again.notice
    assert not again.built and again.update().indexed == 3
    again.close()


def test_a_read_only_data_folder(root: Path, index: WorkspaceIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    index.update()
    index.close()
    folder = index.path.parent
    os.chmod(folder, 0o500)
    if os.geteuid() == 0:  # root writes anywhere: make the check see what a user would
        monkeypatch.setattr(db, "_writable_dir", lambda folder: False)
    try:
        ro = WorkspaceIndex.open(root, Settings())
        assert ro.readonly and ro.notice and "read-only" in ro.notice
        assert ro.search("alpha")[0].chunk.path == "a.py"
        with pytest.raises(WorkspaceIndexError, match="read-only"):
            ro.update()
        ro.close()
        other = root.parent / "other"
        other.mkdir()
        with pytest.raises(WorkspaceIndexError, match=r"cannot be written.*GPT_LS_DATA_DIR"):
            WorkspaceIndex.open(other, Settings())
    finally:
        os.chmod(folder, 0o700)


def test_status_clear_files_and_chunk_texts(root: Path, index: WorkspaceIndex) -> None:
    assert not index.status().built and "No index yet" in index.status().summary()
    index.update()
    status = index.status()
    assert (status.built, status.files, status.chunks) == (True, 3, 3)
    assert "3 files, 3 chunks" in status.summary() and status.last and status.last.indexed == 3
    texts = list(index.chunk_texts(batch=2))
    assert [t.path for t in texts] == ["a.py", "b.md", "c.txt"] and len({t.hash for t in texts}) == 3
    assert index.chunks([texts[0].id])[texts[0].id].text == "def alpha():\n    return 1"
    index.clear()
    assert index.files() == [] and not index.status().built and index.search("alpha") == []


def test_settings_limit_the_index(root: Path) -> None:
    make(root, {"src/x.py": "def x_func(): pass\n", "gen/y.py": "def y_func(): pass\n"})
    settings = Settings(index_include=("src/", "*.md"), index_exclude=("*.md",), index_max_files=5)
    with WorkspaceIndex.open(root, settings) as idx:
        idx.update()
        assert idx.files() == ["src/x.py"]


@pytest.mark.slow
def test_a_workspace_of_100000_files_stops_at_the_limit(tmp_path: Path) -> None:
    root = tmp_path / "huge"
    for i in range(100):
        folder = root / f"d{i:03}"
        folder.mkdir(parents=True)
        for j in range(1000):
            (folder / f"f{j:04}.txt").write_text(f"file {i} {j} word{i}x{j}\n")
    with WorkspaceIndex.open(root, Settings()) as idx:
        report = idx.update(jobs=2)
        assert (report.indexed, report.skipped) == (50_000, {"over_limit": 50_000})
        assert "50,000 over the indexMaxFiles limit" in report.summary()
        assert idx.search("word49x999")[0].chunk.path == "d049/f0999.txt"
        assert idx.update().unchanged == 50_000


def test_damage_found_while_in_use_moves_the_index_aside(root: Path, index: WorkspaceIndex,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    index.update()
    real = index._conn

    class Damaged:
        """The connection as SQLite reports a page it finds malformed in the middle of a search."""

        def execute(self, sql: str, *args: object) -> object:
            if "MATCH" in sql:
                raise sqlite3.DatabaseError("database disk image is malformed")
            return real.execute(sql, *args)  # type: ignore[union-attr]

        def close(self) -> None:
            real.close()  # type: ignore[union-attr]

        in_transaction = False

    index._conn = Damaged()  # type: ignore[assignment]
    with pytest.raises(WorkspaceIndexError, match=r"was damaged.*moved to .*old.*rebuilt by the next update"):
        index.search("alpha")
    assert Path(f"{index.path}.old").exists()
    assert index.search("alpha") == [] and not index.built
    assert index.update().indexed == 3 and index.search("alpha")
