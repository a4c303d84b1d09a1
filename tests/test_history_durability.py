"""The store under real processes: SIGKILL mid-stream, and several writers at once."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpt_ls.history.store import HistoryStore
from tests.support.seeds import seeded

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

# A child that records one complete exchange, then streams a reply until it is killed.
# Each update rewrites the whole reply and its completion_tokens in one transaction, so a
# torn write would show as content that does not match the token count.
STREAMER = r"""
import sys, time
from pathlib import Path
from gpt_ls.history.store import HistoryStore

db, conv, it, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

def delta(i):
    return f"[{it}:{i}] 数据🙂 " + "x" * (i % 37)

store = HistoryStore.open(Path(db))
store.add_message(conv, "user", f"question {it} 问题")
store.add_message(conv, "assistant", f"answer {it} 回答", prompt_tokens=it, completion_tokens=1)
store.add_message(conv, "user", f"follow-up {it}")
aid = store.add_message(conv, "assistant", "", status="partial",
                        request=[{"role": "user", "content": f"follow-up {it}"}])
text = ""
i = 0
while True:
    text += delta(i)
    i += 1
    store.update_message(aid, content=text, status="partial", completion_tokens=i)
    if i == 10:
        print("streaming", aid, flush=True)
    if pause:
        time.sleep(pause)
"""


def expected_reply(it: int, n: int) -> str:
    return "".join(f"[{it}:{i}] 数据🙂 " + "x" * (i % 37) for i in range(n))


def integrity(path: Path) -> str:
    """SQLite's check of the whole file, plus FTS5's check of the search index."""
    raw = sqlite3.connect(path)
    try:
        result = str(raw.execute("PRAGMA integrity_check").fetchone()[0])
        raw.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
        return result
    finally:
        raw.close()


def test_sigkill_while_streaming_never_corrupts(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    with HistoryStore.open(db) as store:
        conv = store.new_conversation("/ws", "killed repeatedly")
    rng = seeded(5)
    seen: dict[int, tuple[str, str, str]] = {}  # message id -> (role, content, status)
    for it in range(10):
        pause = 0.0 if it % 2 else 0.002  # odd rounds write flat out
        child = subprocess.Popen(
            [sys.executable, "-c", STREAMER, str(db), str(conv), str(it), str(pause)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("streaming "), child.stderr.read() if child.stderr else line
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL

        assert integrity(db) == "ok"
        with HistoryStore.open(db) as store:
            assert store.notice is None
            _, messages = store.get_conversation(conv)
        assert len(messages) == 4 * (it + 1)
        # Everything from earlier rounds is exactly as it was.
        for msg in messages:
            if msg.id in seen:
                assert (msg.role, msg.content, msg.status) == seen[msg.id]
        question, answer, follow_up, reply = messages[-4:]
        assert (question.content, question.status) == (f"question {it} 问题", "complete")
        assert (answer.content, answer.status) == (f"answer {it} 回答", "complete")
        assert follow_up.content == f"follow-up {it}"
        assert reply.status == "partial"
        assert reply.request == [{"role": "user", "content": f"follow-up {it}"}]
        assert reply.completion_tokens is not None and reply.completion_tokens >= 10
        assert reply.content == expected_reply(it, reply.completion_tokens)
        seen.update({m.id: (m.role, m.content, m.status) for m in messages})


# A child that waits for "go" on stdin, then appends (and streams into) many messages.
WRITER = r"""
import sys
from pathlib import Path
from gpt_ls.history.store import HistoryStore

db, conv, tag, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
store = HistoryStore.open(Path(db))
print("ready", flush=True)
sys.stdin.readline()
for i in range(count):
    store.add_message(conv, "user", f"{tag} q{i}")
    aid = store.add_message(conv, "assistant", "", status="partial")
    store.update_message(aid, content=f"{tag} a{i} 部分", status="partial")
    store.update_message(aid, content=f"{tag} a{i} 完成", status="complete", completion_tokens=1)
store.close()
print("done", flush=True)
"""


def start_together(args_list: list[list[str]]) -> list[subprocess.Popen[str]]:
    """Start the children, wait until each is ready, then release them at once."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in args_list
    ]
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    return children


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    with HistoryStore.open(db) as store:
        conv = store.new_conversation("/ws", "shared")
    count = 300
    tags = ["server", "cli", "window2"]
    children = start_together([[WRITER, str(db), str(conv), tag, str(count)] for tag in tags])
    for child in children:
        out, err = child.communicate(timeout=120)
        assert (child.returncode, out, err) == (0, "done\n", "")

    assert integrity(db) == "ok"
    with HistoryStore.open(db) as store:
        conv_row, messages = store.get_conversation(conv)
        turns = store.turns(conv)
    assert conv_row.message_count == len(messages) == 2 * count * len(tags)
    assert len(turns) == 2 * count * len(tags)
    # The writers really overlapped: their rows interleave in the table.
    order = [m.content.split(" ")[0] for m in messages]
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches >= len(tags), f"writers ran one after another ({switches} switches)"
    for tag in tags:
        mine = [m for m in messages if m.content.startswith(tag + " ")]
        expected = []
        for i in range(count):
            expected += [(f"{tag} q{i}", "complete"), (f"{tag} a{i} 完成", "complete")]
        assert [(m.content, m.status) for m in mine] == expected


OPENER = r"""
import sys
from pathlib import Path
from gpt_ls.history.store import HistoryStore

print("ready", flush=True)
sys.stdin.readline()
store = HistoryStore.open(Path(sys.argv[1]))
conv = store.new_conversation("/ws", sys.argv[2])
for i in range(50):
    store.add_message(conv, "user", f"{sys.argv[2]} {i}")
print(store.notice, flush=True)
"""


@pytest.mark.parametrize("round_", range(3))
def test_processes_creating_the_same_fresh_store_at_once(tmp_path: Path, round_: int) -> None:
    db = tmp_path / "fresh" / "history.db"
    names = [f"p{i}" for i in range(4)]
    children = start_together([[OPENER, str(db), name] for name in names])
    for child in children:
        out, err = child.communicate(timeout=60)
        assert (child.returncode, out, err) == (0, "None\n", "")
    with HistoryStore.open(db) as store:
        assert store.migrations() == [
            "m001_initial",
            "m002_recency_indexes",
            "m003_message_search",
            "m004_fresh_starts",
        ]
        convs = store.list_conversations(limit=10)
        assert sorted(c.title for c in convs) == names
        assert all(c.message_count == 50 for c in convs)
