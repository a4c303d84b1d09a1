"""``gpt-ls history`` run as a real process against a real store."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gpt_ls.cli.history import register
from gpt_ls.history.store import HistoryStore


class Env:
    """A data dir and two workspaces (one a git repo, one marked by .gpt-ls.toml)."""

    def __init__(self, root: Path) -> None:
        self.data = root / "data"
        self.repo = root / "repo"
        (self.repo / ".git").mkdir(parents=True)
        (self.repo / "src" / "深").mkdir(parents=True)
        self.notes = root / "notes"
        self.notes.mkdir()
        (self.notes / ".gpt-ls.toml").write_text("")
        self.db = self.data / "history.db"

    def run(self, *args: str, cwd: Path | None = None, stdin: str = "") -> tuple[int, str, str]:
        env = {**os.environ, "GPT_LS_DATA_DIR": str(self.data), "PYTHONIOENCODING": "utf-8"}
        proc = subprocess.run(
            [sys.executable, "-m", "gpt_ls", "history", *args],
            cwd=cwd or self.repo,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
        )
        return proc.returncode, proc.stdout, proc.stderr

    def stamp(self, conversation_id: int, when: str) -> None:
        """Give a conversation and its messages fixed times, for literal expected output."""
        db = sqlite3.connect(self.db)
        with db:
            db.execute(
                "UPDATE conversations SET created = ?, updated = ? WHERE id = ?",
                (when, when, conversation_id),
            )
            db.execute(
                "UPDATE messages SET created = ?, updated = ? WHERE conversation_id = ?",
                (when, when, conversation_id),
            )
        db.close()


@pytest.fixture
def env(tmp_path: Path) -> Env:
    e = Env(tmp_path)
    with HistoryStore.open(e.db) as store:
        one = store.new_conversation(str(e.repo), "Slow 数据库", model="gpt-4.1-mini")
        store.add_message(one, "user", "Why is the query slow?")
        store.add_message(one, "assistant", "Missing index on email.", completion_tokens=5)
        two = store.new_conversation(str(e.repo), "Follow-up\nwith newline")
        store.add_message(two, "user", "And the 索引 name?")
        store.add_message(two, "assistant", "idx_users_em", status="partial")
        three = store.new_conversation(str(e.notes), "Email draft 🙂")
        store.add_message(three, "user", "Draft an email about the index")
    e.stamp(one, "2026-11-20T08:00:00.000000Z")
    e.stamp(two, "2026-11-21T09:30:00.000000Z")
    e.stamp(three, "2026-11-22T10:45:00.000000Z")
    return e


def test_list_shows_this_workspace_from_a_subdirectory(env: Env) -> None:
    code, out, err = env.run("list", cwd=env.repo / "src" / "深")
    assert (code, err) == (0, "")
    assert out == (
        "ID\tUPDATED (UTC)\tMESSAGES\tTITLE\n"
        "2\t2026-11-21 09:30\t2\tFollow-up with newline\n"
        "1\t2026-11-20 08:00\t2\tSlow 数据库\n"
    )


def test_list_all_and_limit(env: Env) -> None:
    code, out, _ = env.run("list", "--all", "--limit", "2")
    assert code == 0
    assert out == (
        "ID\tUPDATED (UTC)\tMESSAGES\tWORKSPACE\tTITLE\n"
        f"3\t2026-11-22 10:45\t1\t{env.notes}\tEmail draft 🙂\n"
        f"2\t2026-11-21 09:30\t2\t{env.repo}\tFollow-up with newline\n"
    )


def test_list_in_a_workspace_without_history(env: Env, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / ".git").mkdir(parents=True)
    code, out, _ = env.run("list", cwd=empty)
    assert code == 0
    assert out == f"No conversations in workspace {empty} (--all shows every workspace).\n"


def test_show_prints_markdown_marking_partial_replies(env: Env) -> None:
    code, out, err = env.run("show", "2")
    assert (code, err) == (0, "")
    assert out == (
        "# Follow-up\nwith newline\n"
        "\n"
        "- Conversation: 2\n"
        f"- Workspace: {env.repo}\n"
        "- Started: 2026-11-21T09:30:00.000000Z\n"
        "- Updated: 2026-11-21T09:30:00.000000Z\n"
        "\n"
        "## User · 2026-11-21T09:30:00.000000Z\n"
        "\n"
        "And the 索引 name?\n"
        "\n"
        "## Assistant · 2026-11-21T09:30:00.000000Z\n"
        "\n"
        "*(partial reply: the stream was interrupted)*\n"
        "\n"
        "idx_users_em\n"
    )


@pytest.mark.parametrize("command", ["show", "export"])
def test_unknown_id_fails_clearly(env: Env, command: str) -> None:
    code, out, err = env.run(command, "99")
    assert (code, out) == (1, "")
    assert err == (
        "gpt-ls history: no conversation with id 99 (see `gpt-ls history list --all` for the ids)\n"
    )


def test_non_numeric_id_is_a_usage_error(env: Env) -> None:
    code, _, err = env.run("show", "abc")
    assert code == 2
    assert "invalid int value: 'abc'" in err


def test_export_json_to_stdout(env: Env) -> None:
    code, out, _ = env.run("export", "1", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert (doc["id"], doc["title"], doc["model"], doc["message_count"]) == (
        1,
        "Slow 数据库",
        "gpt-4.1-mini",
        2,
    )
    assert [(m["role"], m["content"], m["status"]) for m in doc["messages"]] == [
        ("user", "Why is the query slow?", "complete"),
        ("assistant", "Missing index on email.", "complete"),
    ]


def test_export_markdown_to_a_private_file(env: Env, tmp_path: Path) -> None:
    target = tmp_path / "out" / "conv.md"
    target.parent.mkdir()
    code, out, err = env.run("export", "3", "--format", "md", "-o", str(target))
    assert (code, out) == (0, "")
    assert err == f"Wrote conversation 3 to {target}\n"
    assert target.read_text(encoding="utf-8").startswith("# Email draft 🙂\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_search_this_workspace_and_all(env: Env) -> None:
    code, out, _ = env.run("search", "index")
    assert code == 0
    assert out == "1\t2026-11-20 08:00\tassistant\tMissing index on email.\n"
    code, out, _ = env.run("search", "index", "--all")
    assert code == 0
    assert out == (
        "3\t2026-11-22 10:45\tuser\tDraft an email about the index\n"
        "1\t2026-11-20 08:00\tassistant\tMissing index on email.\n"
    )
    code, out, _ = env.run("search", "索引")
    assert (code, out) == (0, "2\t2026-11-21 09:30\tuser\tAnd the 索引 name?\n")
    code, out, _ = env.run("search", "idx_users")
    assert (code, out) == (0, "2\t2026-11-21 09:30\tassistant [partial]\tidx_users_em\n")


def test_search_finds_messages_with_every_word(env: Env) -> None:
    code, out, _ = env.run("search", "email", "index", "--all")
    assert code == 0
    assert out == (
        "3\t2026-11-22 10:45\tuser\tDraft an email about the index\n"
        "1\t2026-11-20 08:00\tassistant\tMissing index on email.\n"
    )
    code, out, err = env.run("search", "index", "platypus", "--all")
    assert (code, out, err) == (1, "", "Nothing matches 'index platypus'.\n")


def test_search_shows_a_snippet_around_the_match(env: Env) -> None:
    with HistoryStore.open(env.db) as store:
        conv = store.new_conversation(str(env.repo), "long")
        store.add_message(conv, "assistant", "前" * 100 + " the needle is here\n" + "后" * 100)
    env.stamp(conv, "2026-11-23T00:00:00.000000Z")
    code, out, _ = env.run("search", "needle")
    assert (code, out) == (
        0,
        "4\t2026-11-23 00:00\tassistant\t…"
        + "前" * 18
        + " the needle is here "
        + "后" * 32
        + "…\n",
    )


def test_search_without_match_exits_1(env: Env) -> None:
    code, out, err = env.run("search", "platypus")
    assert (code, out, err) == (1, "", "Nothing matches 'platypus'.\n")


def test_clear_needs_yes_when_not_interactive(env: Env) -> None:
    code, out, err = env.run("clear")
    assert (code, out) == (1, "")
    assert err == (
        "gpt-ls history: this would delete 3 conversation(s) in every workspace; add --yes\n"
    )
    code, out, _ = env.run("list", "--all")
    assert out.count("\n") == 4  # header + all three still there


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
@pytest.mark.parametrize(("answer", "code", "left"), [("n\n", 1, 3), ("yes\n", 0, 0)])
def test_clear_asks_on_a_terminal(env: Env, answer: str, code: int, left: int) -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gpt_ls", "history", "clear"],
            cwd=env.repo,
            env={**os.environ, "GPT_LS_DATA_DIR": str(env.data), "PYTHONIOENCODING": "utf-8"},
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(leader, answer.encode())
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    assert proc.returncode == code
    assert out.startswith("Delete 3 conversation(s) in every workspace? [y/N] ")
    with HistoryStore.open(env.db) as store:
        assert store.count_conversations() == left


def test_clear_one_workspace_then_everything(env: Env) -> None:
    code, out, _ = env.run("clear", "--workspace", str(env.notes), "--yes")
    assert (code, out) == (0, f"Deleted 1 conversation(s) in workspace {env.notes}.\n")
    code, out, _ = env.run("list", "--all")
    assert [line.split("\t")[0] for line in out.splitlines()[1:]] == ["2", "1"]
    code, out, _ = env.run("clear", "--workspace", str(env.notes), "--yes")
    assert (code, out) == (0, f"No conversations in workspace {env.notes}; nothing to clear.\n")
    code, out, _ = env.run("clear", "--yes")
    assert (code, out) == (0, "Deleted 2 conversation(s) in every workspace.\n")
    code, out, _ = env.run("list", "--all")
    assert out == "No conversations in any workspace.\n"


def test_corrupt_store_is_reported_and_replaced(env: Env) -> None:
    env.db.write_bytes(b"garbage" * 1000)
    for side in ("history.db-wal", "history.db-shm"):
        (env.data / side).unlink(missing_ok=True)
    code, out, err = env.run("list", "--all")
    assert (code, out) == (0, "No conversations in any workspace.\n")
    assert err.startswith(f"gpt-ls: The history database {env.db} could not be read (")
    assert "a fresh history was started." in err


def test_register_adds_history_to_a_main_parser() -> None:
    parser = argparse.ArgumentParser(prog="gpt-ls")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["history", "export", "4", "--format", "json"])
    assert (args.command, args.history_command, args.id, args.format) == (
        "history",
        "export",
        4,
        "json",
    )
    assert args.func.__name__ == "run"
    with pytest.raises(SystemExit):
        parser.parse_args(["history", "list", "--limit", "0"])
