"""The history store against real SQLite files in a temporary directory."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from gpt_ls.errors import ConversationNotFound, HistoryError
from gpt_ls.history.export import to_json, to_markdown
from gpt_ls.history.schema import MIGRATIONS
from gpt_ls.history.store import Conversation, HistoryStore, Message, workspace_key
from gpt_ls.settings import find_workspace_root

ALL_MIGRATIONS = ["m001_initial", "m002_recency_indexes", "m003_message_search", "m004_fresh_starts"]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[HistoryStore]:
    s = HistoryStore.open(db_path)
    yield s
    s.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def set_updated(path: Path, conversation_id: int, updated: str) -> None:
    """Age a conversation by hand (the store always stamps the current time)."""
    with sqlite3.connect(path) as db:
        db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (updated, conversation_id))
    db.close()


# --------------------------------------------------------------------------- open


def test_fresh_store_is_private_wal_and_fully_migrated(db_path: Path) -> None:
    store = HistoryStore.open(db_path)
    cid = store.new_conversation("/ws", "first")
    store.add_message(cid, "user", "hello")
    assert store.notice is None
    assert store.migrations() == ALL_MIGRATIONS
    assert mode(db_path.parent) == 0o700
    assert mode(db_path) == 0o600
    # SQLite gives the WAL and shared-memory files the database file's mode.
    assert mode(db_path.with_name("history.db-wal")) == 0o600
    assert mode(db_path.with_name("history.db-shm")) == 0o600
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()
    store.close()


def test_default_location_follows_gpt_ls_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPT_LS_DATA_DIR", str(tmp_path / "elsewhere"))
    with HistoryStore.open() as store:
        assert store.path == tmp_path / "elsewhere" / "history.db"
    assert (tmp_path / "elsewhere" / "history.db").is_file()


def test_existing_world_readable_file_is_tightened(db_path: Path) -> None:
    db_path.parent.mkdir()
    sqlite3.connect(db_path).close()
    os.chmod(db_path, 0o644)
    HistoryStore.open(db_path).close()
    assert mode(db_path) == 0o600


def test_reopening_runs_no_migration_twice(db_path: Path) -> None:
    HistoryStore.open(db_path).close()
    with sqlite3.connect(db_path) as raw:
        before = raw.execute("SELECT name, applied FROM _migrations ORDER BY rowid").fetchall()
    raw.close()
    HistoryStore.open(db_path).close()
    with sqlite3.connect(db_path) as raw:
        after = raw.execute("SELECT name, applied FROM _migrations ORDER BY rowid").fetchall()
    raw.close()
    assert [name for name, _ in before] == ALL_MIGRATIONS
    assert after == before


V1_SCHEMA = """
CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL);
INSERT INTO _migrations VALUES ('m001_initial', '2026-01-02T03:04:05.000000Z');
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY, workspace TEXT NOT NULL, title TEXT NOT NULL, model TEXT,
    system TEXT, created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL, content TEXT NOT NULL, action TEXT, uri TEXT, range_json TEXT,
    model TEXT, request_json TEXT, status TEXT NOT NULL DEFAULT 'complete',
    prompt_tokens INTEGER, completion_tokens INTEGER, duration_ms INTEGER,
    created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
INSERT INTO conversations VALUES
    (1, '/old', 'old one', 'gpt-4o', NULL, '2026-01-02T03:04:05.000000Z',
     '2026-01-02T03:04:06.000000Z'),
    (2, '/old', 'newer one', NULL, NULL, '2026-01-03T00:00:00.000000Z',
     '2026-01-03T00:00:01.000000Z');
INSERT INTO messages (conversation_id, role, content, status, prompt_tokens,
                      completion_tokens, created, updated) VALUES
    (1, 'user', '旧的数据库问题 about indexes', 'complete', NULL, NULL,
     '2026-01-02T03:04:05.000000Z', '2026-01-02T03:04:05.000000Z'),
    (1, 'assistant', 'An answer', 'complete', 11, 22,
     '2026-01-02T03:04:06.000000Z', '2026-01-02T03:04:06.000000Z'),
    (2, 'user', 'second', 'complete', NULL, NULL,
     '2026-01-03T00:00:01.000000Z', '2026-01-03T00:00:01.000000Z');
"""


def test_upgrades_a_v1_database_keeping_its_rows(db_path: Path) -> None:
    db_path.parent.mkdir()
    with sqlite3.connect(db_path) as raw:
        raw.executescript(V1_SCHEMA)
    raw.close()

    store = HistoryStore.open(db_path)
    assert store.notice is None
    assert store.migrations() == ALL_MIGRATIONS
    current = store.current_conversation("/old")
    assert current is not None and (current.id, current.title, current.message_count) == (
        2,
        "newer one",
        1,
    )
    assert store.turns(1) == [
        {"role": "user", "content": "旧的数据库问题 about indexes"},
        {"role": "assistant", "content": "An answer"},
    ]
    # The search index built by m003 covers rows written before it existed.
    assert [m.id for m in store.search("数据库问题")] == [1]
    assert [m.id for m in store.search("INDEXES")] == [1]
    assert store.usage_totals("/old") == {
        "prompt_tokens": 11,
        "completion_tokens": 22,
        "total_tokens": 33,
    }
    # New rows land in the upgraded schema and are searchable too.
    store.add_message(2, "assistant", "新的回答 after upgrade")
    assert [m.content for m in store.search("新的回答")] == ["新的回答 after upgrade"]
    store.close()
    with sqlite3.connect(db_path) as raw:
        indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    raw.close()
    assert {"conversations_by_workspace", "conversations_by_updated"} <= indexes


def test_every_migration_has_a_unique_name() -> None:
    names = [fn.__name__ for fn in MIGRATIONS]
    assert names == ALL_MIGRATIONS
    assert len(set(names)) == len(names)


# --------------------------------------------------------------------------- corruption


def test_garbage_file_is_moved_aside_and_a_fresh_store_opens(db_path: Path) -> None:
    db_path.parent.mkdir(mode=0o700)
    garbage = b"this is not a database at all \x00\xff" * 200
    db_path.write_bytes(garbage)

    store = HistoryStore.open(db_path)

    assert store.notice is not None
    assert "could not be read" in store.notice
    assert "fresh history" in store.notice
    moved = [p for p in db_path.parent.iterdir() if p.name.startswith("history.db.corrupt-")]
    assert len(moved) == 1
    assert moved[0].read_bytes() == garbage
    assert str(moved[0]) in store.notice
    cid = store.new_conversation("/ws", "after recovery")
    store.add_message(cid, "user", "still works")
    assert store.turns(cid) == [{"role": "user", "content": "still works"}]
    assert mode(db_path) == 0o600
    store.close()


def _store_with_pages(db_path: Path) -> tuple[int, int, int]:
    """A store big enough to span many pages; returns (conversation id, page size, pages)."""
    store = HistoryStore.open(db_path)
    cid = store.new_conversation("/ws", "doomed")
    for i in range(300):
        store.add_message(cid, "user", f"message {i} " + "x" * 500)
    store.close()
    with sqlite3.connect(db_path) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = raw.execute("PRAGMA page_size").fetchone()[0]
        pages = raw.execute("PRAGMA page_count").fetchone()[0]
    raw.close()
    return cid, page_size, pages


def test_damage_found_while_opening_moves_the_file_aside(db_path: Path) -> None:
    _, page_size, _ = _store_with_pages(db_path)
    data = bytearray(db_path.read_bytes())
    for at in range(page_size, len(data), 97):  # every page but the header page
        data[at] = (data[at] + 0x5A) % 256
    db_path.write_bytes(bytes(data))

    store = HistoryStore.open(db_path)

    assert store.notice is not None
    assert "Database disk image is malformed" in store.notice
    assert store.list_conversations() == []
    store.close()


def test_damage_found_in_use_replaces_the_store_at_once(db_path: Path) -> None:
    cid, page_size, pages = _store_with_pages(db_path)
    data = bytearray(db_path.read_bytes())
    for page in range(pages // 3, pages // 2):  # leaf pages of the messages table
        data[page * page_size : (page + 1) * page_size] = b"\x5a" * page_size
    db_path.write_bytes(bytes(data))

    store = HistoryStore.open(db_path)
    assert store.notice is None  # the open-time probe does not read these pages
    with pytest.raises(HistoryError, match=r"was damaged .* moved to .* fresh history"):
        store.turns(cid)
    assert store.notice is not None and "fresh history" in store.notice
    # The server keeps going on a fresh file.
    assert store.list_conversations() == []
    new = store.new_conversation("/ws", "fresh")
    store.add_message(new, "user", "after")
    assert store.turns(new) == [{"role": "user", "content": "after"}]
    store.close()
    moved = [p for p in db_path.parent.iterdir() if p.name.startswith("history.db.corrupt-")]
    assert len(moved) == 1


def test_unopenable_directory_is_a_history_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(HistoryError, match="Cannot create the history directory"):
        HistoryStore.open(blocker / "sub" / "history.db")


# --------------------------------------------------------------------------- conversations


def test_current_conversation_is_the_most_recently_updated_per_workspace(
    store: HistoryStore,
) -> None:
    a = store.new_conversation("/one", "a", model="gpt-4.1-mini", system="Be brief.")
    b = store.new_conversation("/one", "b")
    other = store.new_conversation("/two", "other")
    current = store.current_conversation("/one")
    assert current is not None and current.id == b
    store.add_message(a, "user", "bump a")
    current = store.current_conversation("/one")
    assert current is not None
    assert (current.id, current.title, current.model, current.system, current.message_count) == (
        a,
        "a",
        "gpt-4.1-mini",
        "Be brief.",
        1,
    )
    assert current.created.endswith("Z") and current.updated > current.created
    two = store.current_conversation("/two")
    assert two is not None and two.id == other
    assert store.current_conversation("") is None
    nows = store.new_conversation("", "no workspace")
    bucket = store.current_conversation("")
    assert bucket is not None and bucket.id == nows


def test_list_conversations_newest_first_with_limit(store: HistoryStore) -> None:
    ids = [store.new_conversation("/ws" if i % 2 else "/other", f"c{i}") for i in range(5)]
    assert [c.id for c in store.list_conversations()] == ids[::-1]
    assert [c.id for c in store.list_conversations("/ws")] == [ids[3], ids[1]]
    assert [c.id for c in store.list_conversations(limit=2)] == [ids[4], ids[3]]
    assert store.count_conversations() == 5
    assert store.count_conversations("/other") == 3


def test_messages_round_trip_with_every_field(store: HistoryStore) -> None:
    cid = store.new_conversation("/ws", "fields")
    rng = {"start": {"line": 1, "character": 2}, "end": {"line": 3, "character": 0}}
    mid = store.add_message(
        cid,
        "assistant",
        "答案 🙂",
        action="gpt-ls.explain",
        uri="file:///ws/a.py",
        range=rng,
        model="gpt-4o",
        status="error",
        prompt_tokens=10,
        completion_tokens=3,
        duration_ms=1234,
    )
    conv, messages = store.get_conversation(cid)
    assert conv.message_count == 1
    [msg] = messages
    assert (msg.id, msg.conversation_id, msg.role, msg.content) == (
        mid,
        cid,
        "assistant",
        "答案 🙂",
    )
    assert (msg.action, msg.uri, msg.range, msg.model) == (
        "gpt-ls.explain",
        "file:///ws/a.py",
        rng,
        "gpt-4o",
    )
    assert (msg.status, msg.prompt_tokens, msg.completion_tokens, msg.duration_ms) == (
        "error",
        10,
        3,
        1234,
    )
    assert msg.request is None
    assert len(msg.created) == len("2026-11-25T23:08:55.819370Z")


def test_streaming_updates_then_completion(store: HistoryStore) -> None:
    cid = store.new_conversation("/ws", "stream")
    store.add_message(cid, "user", "question")
    aid = store.add_message(cid, "assistant", "", status="partial")
    assert store.turns(cid) == [{"role": "user", "content": "question"}]
    store.update_message(aid, content="Hel", status="partial")
    store.update_message(aid, content="Hello, 世界")
    store.update_message(aid, status="complete", prompt_tokens=7, completion_tokens=4)
    store.update_message(aid, duration_ms=900)
    store.update_message(aid)  # nothing to change: a no-op, not an error
    _, [_, reply] = store.get_conversation(cid)
    assert (reply.content, reply.status, reply.prompt_tokens, reply.completion_tokens) == (
        "Hello, 世界",
        "complete",
        7,
        4,
    )
    assert reply.duration_ms == 900
    assert reply.updated > reply.created
    store.update_message(999_999, content="vanished")  # deleted meanwhile: ignored


def test_turns_are_user_and_assistant_in_order_without_empty_replies(
    store: HistoryStore,
) -> None:
    cid = store.new_conversation("/ws", "turns", system="You are terse.")
    store.add_message(cid, "system", "You are terse.")
    store.add_message(cid, "user", "q1")
    store.add_message(cid, "assistant", "a1")
    store.add_message(cid, "user", "q2")
    store.add_message(cid, "assistant", "", status="error")
    store.add_message(cid, "user", "q3")
    store.add_message(cid, "assistant", "half an ans", status="cancelled")
    assert store.turns(cid) == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "user", "content": "q3"},
        {"role": "assistant", "content": "half an ans"},
    ]


def test_bad_role_status_and_unknown_ids_are_refused(store: HistoryStore) -> None:
    cid = store.new_conversation("/ws", "x")
    with pytest.raises(ValueError, match="role must be one of"):
        store.add_message(cid, "tool", "x")
    with pytest.raises(ValueError, match="status must be one of"):
        store.add_message(cid, "user", "x", status="done")
    mid = store.add_message(cid, "user", "x")
    with pytest.raises(ValueError, match="status must be one of"):
        store.update_message(mid, status="finished")
    with pytest.raises(ConversationNotFound, match="No conversation with id 4242"):
        store.add_message(4242, "user", "x")
    with pytest.raises(ConversationNotFound, match="No conversation with id 4242"):
        store.get_conversation(4242)
    # The refused insert left nothing behind.
    assert store.get_conversation(cid)[0].message_count == 1


def test_request_is_stored_verbatim_and_there_is_no_key_column(
    store: HistoryStore, db_path: Path
) -> None:
    request = [
        {"role": "system", "content": "You are gpt-ls. Answer in 中文 when asked in 中文."},
        {"role": "user", "content": "Explain:\n```py\nx = 1  # 🙂\n```"},
        {"role": "assistant", "content": "It assigns 1."},
        {"role": "user", "content": "为什么？"},
    ]
    cid = store.new_conversation("/ws", "req", system=request[0]["content"])
    store.add_message(cid, "user", "为什么？")
    aid = store.add_message(cid, "assistant", "因为…", request=request)
    _, messages = store.get_conversation(cid)
    assert messages[1].id == aid
    assert messages[1].request == request
    assert json.loads(to_json(*store.get_conversation(cid)))["messages"][1]["request"] == request
    with sqlite3.connect(db_path) as raw:
        columns = {
            table: [r[1] for r in raw.execute(f"PRAGMA table_info({table})")]
            for table in ("conversations", "messages", "_migrations")
        }
        stored = raw.execute("SELECT request_json FROM messages WHERE id = ?", (aid,)).fetchone()
    raw.close()
    assert json.loads(stored[0]) == request
    assert "中文" in stored[0]  # stored as text, not \u escapes
    assert columns == {
        "conversations": ["id", "workspace", "title", "model", "system", "created", "updated"],
        "messages": [
            "id",
            "conversation_id",
            "role",
            "content",
            "action",
            "uri",
            "range_json",
            "model",
            "request_json",
            "status",
            "prompt_tokens",
            "completion_tokens",
            "duration_ms",
            "created",
            "updated",
        ],
        "_migrations": ["name", "applied"],
    }
    assert not any("key" in c.lower() for cols in columns.values() for c in cols)


# --------------------------------------------------------------------------- search


@pytest.fixture
def searchable(store: HistoryStore) -> dict[str, int]:
    one = store.new_conversation("/one", "one")
    two = store.new_conversation("/two", "two")
    return {
        "cjk": store.add_message(one, "user", "我们的数据库查询很慢，怎么办？"),
        "mixed": store.add_message(one, "assistant", "Add an INDEX on users(email) 🙂"),
        "quote": store.add_message(two, "user", 'He said "hello" at 100% speed_up'),
        "other": store.add_message(two, "assistant", "数据 is plural of datum"),
    }


@pytest.mark.parametrize(
    ("text", "workspace", "expected"),
    [
        ("数据库", None, ["cjk"]),  # trigram FTS: a word in the middle of a sentence
        ("数据", None, ["other", "cjk"]),  # two characters: LIKE fallback, same meaning
        ("index email", None, ["mixed"]),  # every word, any case
        ("index nothing", None, []),
        ('"hello"', None, ["quote"]),  # quotes are text, not FTS syntax
        ("100%", None, ["quote"]),  # % and _ are literal in the fallback
        ("d_up", None, ["quote"]),
        ("🙂", None, ["mixed"]),
        ("数据", "/one", ["cjk"]),
        ("datum", "/one", []),
        ("   ", None, []),
    ],
)
def test_search(
    store: HistoryStore,
    searchable: dict[str, int],
    text: str,
    workspace: str | None,
    expected: list[str],
) -> None:
    found = store.search(text, workspace=workspace)
    assert [m.id for m in found] == [searchable[k] for k in expected]


def test_search_follows_streamed_updates_and_limit(store: HistoryStore) -> None:
    cid = store.new_conversation("/ws", "s")
    aid = store.add_message(cid, "assistant", "", status="partial")
    store.update_message(aid, content="first draft about kangaroos")
    store.update_message(aid, content="final text about wombats")
    assert store.search("kangaroos") == []
    assert [m.id for m in store.search("wombats")] == [aid]
    for i in range(5):
        store.add_message(cid, "user", f"wombats {i}")
    assert len(store.search("wombats", limit=3)) == 3


# --------------------------------------------------------------------------- forgetting


def test_clear_one_workspace_then_all(store: HistoryStore, db_path: Path) -> None:
    a = store.new_conversation("/a", "a")
    store.add_message(a, "user", "secret plans for /a")
    b = store.new_conversation("/b", "b")
    store.add_message(b, "user", "notes for /b")
    store.new_conversation("/b", "b2")
    assert store.clear("/a") == 1
    assert store.search("secret plans") == []
    assert [c.id for c in store.list_conversations()] == [b + 1, b]
    assert store.clear("/nowhere") == 0
    assert store.clear() == 2
    assert store.list_conversations() == []
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    raw.close()


def fts_integrity(path: Path) -> None:
    """FTS5's own check: raises if the index disagrees with the messages table."""
    raw = sqlite3.connect(path)
    try:
        raw.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
    finally:
        raw.close()


@pytest.mark.parametrize("scope", ["/secret", None])
def test_cleared_text_leaves_no_trace_on_disk(
    store: HistoryStore, db_path: Path, scope: str | None
) -> None:
    keep = store.new_conversation("/keep", "kept")
    for i in range(40):
        store.add_message(keep, "user", f"keep me {i} " + "k" * 300)
    doomed = store.new_conversation("/secret", "PLATYPUS title")
    for i in range(20):
        store.add_message(doomed, "user", f"SECRET-PLATYPUS-{i} 秘密内容")
    reply = store.add_message(doomed, "assistant", "", status="partial")
    for i in range(10):
        store.update_message(reply, content="STREAMED-WOMBAT " * i)

    assert store.clear(scope) == (1 if scope else 2)

    # With the store still open (as a running server has it): the tables, the free pages,
    # the WAL and the search index hold none of it.
    files = [p for p in db_path.parent.iterdir() if p.name.startswith("history.db")]
    assert {p.name for p in files} >= {"history.db", "history.db-wal"}
    for f in files:
        data = f.read_bytes()
        for secret in (b"PLATYPUS", b"WOMBAT", "秘密".encode()):
            assert secret not in data, (f.name, secret)
    fts_integrity(db_path)
    assert store.search("PLATYPUS") == []
    assert len(store.search("keep me", workspace="/keep")) == (40 if scope else 0)
    # The index keeps following later writes and deletes (the delete trigger is back).
    again = store.new_conversation("/secret", "again")
    store.add_message(again, "user", "echidna")
    assert store.clear("/secret") == 1
    assert store.search("echidna") == []
    fts_integrity(db_path)


def test_prune_by_age_and_by_count(store: HistoryStore, db_path: Path) -> None:
    ancient = store.new_conversation("/ws", "ancient")
    store.add_message(ancient, "user", "old")
    week_old = store.new_conversation("/ws", "week")
    fresh = [store.new_conversation("/ws", f"fresh{i}") for i in range(3)]
    set_updated(db_path, ancient, "2020-01-01T00:00:00.000000Z")
    eight_days = datetime.now(timezone.utc) - timedelta(days=8)
    set_updated(db_path, week_old, eight_days.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

    assert store.prune("/ws", None, None) == 0
    assert store.prune("/ws", 0, 0) == 0  # 0 means "no limit", never "delete everything"
    assert store.prune("/ws", 30, None) == 1
    assert [c.title for c in store.list_conversations()] == ["fresh2", "fresh1", "fresh0", "week"]
    assert store.prune("/ws", 7, None) == 1
    assert store.prune("/ws", None, 2) == 1
    assert [c.id for c in store.list_conversations()] == [fresh[2], fresh[1]]
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    raw.close()


def test_prune_touches_only_the_workspace_it_is_given(store: HistoryStore, db_path: Path) -> None:
    mine = [store.new_conversation("/mine", f"m{i}") for i in range(3)]
    theirs = [store.new_conversation("/theirs", f"t{i}") for i in range(3)]
    for conv in (mine[0], theirs[0]):
        set_updated(db_path, conv, "2020-01-01T00:00:00.000000Z")
    assert store.prune("/mine", 30, None) == 1
    assert store.prune("/mine", None, 1) == 1
    assert [c.id for c in store.list_conversations("/mine")] == [mine[2]]
    assert [c.id for c in store.list_conversations("/theirs")] == theirs[::-1]


def test_start_fresh_marks_the_workspace_until_its_next_conversation(store: HistoryStore) -> None:
    old = store.new_conversation("/ws", "old")
    other = store.new_conversation("/other", "other")
    store.start_fresh("/ws")
    store.start_fresh("/ws")  # twice: still one mark, and no conversation row
    assert store.current_conversation("/ws") is None
    assert [c.id for c in store.list_conversations()] == [other, old]
    assert store.current_conversation("/other") is not None and store.current_conversation("/other").id == other
    new = store.new_conversation("/ws", "new")  # the next exchange's conversation clears the mark
    current = store.current_conversation("/ws")
    assert current is not None and current.id == new
    store.start_fresh("/ws")
    assert store.clear("/ws") == 2
    assert store.current_conversation("/ws") is None
    store.new_conversation("/ws", "after clear")
    store.start_fresh("/other")
    store.clear()
    store.new_conversation("/other", "after clearing all")
    current = store.current_conversation("/other")
    assert current is not None and current.title == "after clearing all"


def test_usage_totals_per_workspace(store: HistoryStore) -> None:
    a = store.new_conversation("/a", "a")
    store.add_message(a, "assistant", "x", prompt_tokens=100, completion_tokens=20)
    aid = store.add_message(a, "assistant", "y", status="partial")
    store.update_message(aid, prompt_tokens=50, completion_tokens=5)
    store.add_message(a, "user", "z")
    b = store.new_conversation("/b", "b")
    store.add_message(b, "assistant", "x", prompt_tokens=1, completion_tokens=1)
    assert store.usage_totals("/a") == {
        "prompt_tokens": 150,
        "completion_tokens": 25,
        "total_tokens": 175,
    }
    assert store.usage_totals("/empty") == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
    }


def test_closed_store_says_so(db_path: Path) -> None:
    store = HistoryStore.open(db_path)
    store.close()
    store.close()
    with pytest.raises(HistoryError, match="closed"):
        store.list_conversations()


def test_threads_sharing_one_store(store: HistoryStore) -> None:
    cid = store.new_conversation("/ws", "threads")

    def write(tag: str) -> None:
        for i in range(100):
            mid = store.add_message(cid, "assistant", "", status="partial")
            store.update_message(mid, content=f"{tag}{i}", status="complete")

    threads = [threading.Thread(target=write, args=(t,)) for t in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    contents = [t["content"] for t in store.turns(cid)]
    assert len(contents) == 400
    for tag in "abcd":
        assert [c for c in contents if c[0] == tag] == [f"{tag}{i}" for i in range(100)]


# --------------------------------------------------------------------------- workspaces


def test_workspace_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "项目 one"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    monkeypatch.chdir(tmp_path)
    assert workspace_key(None) == ""
    assert workspace_key("") == ""
    assert workspace_key(real) == str(real)
    assert workspace_key(str(real) + "/") == str(real)
    assert workspace_key("项目 one") == str(real)
    assert workspace_key(link) == str(real)
    assert workspace_key(real.as_uri()) == str(real)  # file:///…/%E9%A1%B9… from an editor


def test_find_workspace_root(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    deep = repo / "src" / "pkg"
    deep.mkdir(parents=True)
    configured = repo / "sub"
    configured.mkdir()
    (configured / ".gpt-ls.toml").write_text('model = "x"\n')
    worktree = tmp_path / "worktree"
    worktree.mkdir()
    (worktree / ".git").write_text("gitdir: /elsewhere\n")  # a linked worktree's .git file
    bare = tmp_path / "bare" / "dir"
    bare.mkdir(parents=True)

    assert find_workspace_root(deep) == repo
    assert find_workspace_root(repo) == repo
    assert find_workspace_root(configured) == configured
    assert find_workspace_root(worktree) == worktree
    markers_above = [
        p for p in bare.parents if (p / ".git").exists() or (p / ".gpt-ls.toml").exists()
    ]
    assert markers_above == []  # precondition: the temp dir is outside any repository
    assert find_workspace_root(bare) == bare


# --------------------------------------------------------------------------- export


def sample() -> tuple[Conversation, list[Message]]:
    conv = Conversation(
        id=7,
        workspace="/home/ann/proj",
        title="Why is the 数据库 slow?",
        model="gpt-4.1-mini",
        system="Be brief.\nUse English.",
        created="2026-11-25T10:00:00.000000Z",
        updated="2026-11-25T10:00:05.000000Z",
        message_count=3,
    )

    def msg(i: int, role: str, content: str, status: str = "complete", **kw: object) -> Message:
        base: dict[str, object] = {
            "action": None,
            "uri": None,
            "range": None,
            "model": None,
            "prompt_tokens": None,
            "completion_tokens": None,
            "duration_ms": None,
        }
        base.update(kw)
        return Message(
            id=i,
            conversation_id=7,
            role=role,
            content=content,
            status=status,
            created=f"2026-11-25T10:00:0{i}.000000Z",
            updated=f"2026-11-25T10:00:0{i}.000000Z",
            **base,  # type: ignore[arg-type]
        )

    return conv, [
        msg(1, "user", "Why? 🙂", action="gpt-ls.ask", uri="file:///home/ann/proj/a.sql"),
        msg(
            2,
            "assistant",
            "Missing index.",
            model="gpt-4.1-mini",
            prompt_tokens=120,
            completion_tokens=4,
            duration_ms=1500,
        ),
        msg(3, "assistant", "And also", status="partial"),
    ]


def test_to_markdown_marks_partial_replies() -> None:
    assert to_markdown(*sample()) == (
        "# Why is the 数据库 slow?\n"
        "\n"
        "- Conversation: 7\n"
        "- Workspace: /home/ann/proj\n"
        "- Model: gpt-4.1-mini\n"
        "- Started: 2026-11-25T10:00:00.000000Z\n"
        "- Updated: 2026-11-25T10:00:05.000000Z\n"
        "\n"
        "**System prompt:**\n"
        "\n"
        "> Be brief.\n"
        "> Use English.\n"
        "\n"
        "## User · 2026-11-25T10:00:01.000000Z · gpt-ls.ask · file:///home/ann/proj/a.sql\n"
        "\n"
        "Why? 🙂\n"
        "\n"
        "## Assistant · 2026-11-25T10:00:02.000000Z\n"
        "\n"
        "Missing index.\n"
        "\n"
        "<sub>gpt-4.1-mini · 120 prompt + 4 completion tokens · 1.5 s</sub>\n"
        "\n"
        "## Assistant · 2026-11-25T10:00:03.000000Z\n"
        "\n"
        "*(partial reply: the stream was interrupted)*\n"
        "\n"
        "And also\n"
    )


def test_to_json_is_the_whole_record() -> None:
    doc = json.loads(to_json(*sample()))
    assert doc["id"] == 7
    assert doc["title"] == "Why is the 数据库 slow?"
    assert [m["status"] for m in doc["messages"]] == ["complete", "complete", "partial"]
    assert doc["messages"][1] == {
        "id": 2,
        "conversation_id": 7,
        "role": "assistant",
        "content": "Missing index.",
        "action": None,
        "uri": None,
        "range": None,
        "model": "gpt-4.1-mini",
        "prompt_tokens": 120,
        "completion_tokens": 4,
        "duration_ms": 1500,
        "status": "complete",
        "created": "2026-11-25T10:00:02.000000Z",
        "updated": "2026-11-25T10:00:02.000000Z",
        "request": None,
    }
    assert "数据库" in to_json(*sample())
