"""Figure 7, history: how fast the history store answers with 100,000 stored messages.

Target (issue 5): opening the current conversation (current_conversation + turns) and
listing recent conversations each take under 10 ms; ``figures`` is the suite's part.
Run alone, it also prints the other figures the engine cares about: opening the store,
appending, a streaming update of a long reply, search, and clearing a workspace.

    .venv/bin/python -m benchmarks.history [--messages 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.results import Results, percentile
from gpt_ls.history.schema import now
from gpt_ls.history.store import HistoryStore

TARGET_MS = 10.0
WORDS = (
    "index query slow database table column 数据库 查询 索引 为什么 很慢 function return "
    "async await error retry proxy token budget context window 🙂 email draft explain"
).split()


def text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def build(path: Path, messages: int, per_conversation: int, workspaces: int) -> str:
    """Fill a store through SQL in one transaction (the API would take minutes)."""
    HistoryStore.open(path).close()  # schema, migrations, FTS triggers
    rng = random.Random(1)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    at = now()
    conversations = messages // per_conversation
    for c in range(conversations):
        workspace = f"/home/user/project{c % workspaces}"
        cid = db.execute(
            "INSERT INTO conversations (workspace, title, model, created, updated)"
            " VALUES (?, ?, 'gpt-4.1-mini', ?, ?)",
            (workspace, text(rng, 6), at, at),
        ).lastrowid
        rows = []
        for i in range(per_conversation):
            role = "user" if i % 2 == 0 else "assistant"
            body = text(rng, rng.randint(20, 250))
            rows.append((cid, role, body, "complete", at, at))
        db.executemany(
            "INSERT INTO messages (conversation_id, role, content, status, created, updated)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    db.execute("COMMIT")
    db.close()
    return "/home/user/project0"


def measure(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm the page cache, as a running server has it
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def report(name: str, samples: list[float], target: float | None = None) -> None:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    verdict = ""
    if target is not None:
        verdict = "  OK" if p99 < target else f"  OVER the {target:.0f} ms target"
    print(f"{name:<44} p50 {p50:8.3f} ms   p99 {p99:8.3f} ms   (n={len(samples)}){verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--per-conversation", type=int, default=50)
    parser.add_argument("--workspaces", type=int, default=20)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--keep", type=Path, help="build in this directory and keep it")
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="gpt-ls-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "history.db"
    try:
        if path.exists():  # --keep DIR from an earlier run: reuse the built store
            workspace = "/home/user/project0"
            print(f"reusing {path}")
        else:
            t0 = time.perf_counter()
            workspace = build(path, args.messages, args.per_conversation, args.workspaces)
            built = time.perf_counter() - t0
            print(f"built {args.messages:,} messages in {built:.1f} s")
        size = sum(p.stat().st_size for p in folder.glob("history.db*")) / 1e6
        print(
            f"{size:.0f} MB on disk; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )

        report("open (connect, pragmas, migration check)", measure(_open_close(path), 50))
        store = HistoryStore.open(path)

        def open_current() -> None:
            conv = store.current_conversation(workspace)
            assert conv is not None
            assert len(store.turns(conv.id)) == args.per_conversation

        report("current_conversation + turns", measure(open_current, args.runs), TARGET_MS)
        report(
            "list_conversations(workspace, 20)",
            measure(lambda: store.list_conversations(workspace), args.runs),
            TARGET_MS,
        )
        report(
            "list_conversations(all, 20)",
            measure(lambda: store.list_conversations(None), args.runs),
            TARGET_MS,
        )

        conv = store.current_conversation(workspace)
        assert conv is not None
        report(
            "add_message",
            measure(lambda: store.add_message(conv.id, "user", "another question"), 200),
        )
        reply = store.add_message(conv.id, "assistant", "", status="partial")
        long = text(random.Random(2), 3000)  # ~20 KB reply, rewritten on every update
        report(
            "update_message (20 KB partial reply)",
            measure(lambda: store.update_message(reply, content=long, status="partial"), 100),
        )
        report(
            "search common words (FTS trigram)", measure(lambda: store.search("数据库 index"), 50)
        )
        report("search a word in no message (FTS)", measure(lambda: store.search("platypus"), 50))
        report("search 2 chars, common (LIKE)", measure(lambda: store.search("很慢"), 20))
        report(
            "search 2 chars, in no message (LIKE scan)", measure(lambda: store.search("袋鼠"), 5)
        )
        store.close()
        # Clearing is measured on a copy, so that a kept store stays reusable.
        shutil.copy(path, folder / "copy.db")
        with HistoryStore.open(folder / "copy.db") as copy:
            once("clear one workspace", lambda: copy.clear("/home/user/project1"))
            once("clear everything", lambda: copy.clear())
        for f in folder.glob("copy.db*"):
            f.unlink()
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def once(name: str, fn: Callable[[], int]) -> None:
    t0 = time.perf_counter()
    removed = fn()
    label = f"{name} ({removed} conversations)"
    print(f"{label:<44} once {(time.perf_counter() - t0) * 1000:8.1f} ms")


def _open_close(path: Path) -> Callable[[], None]:
    def run() -> None:
        HistoryStore.open(path).close()

    return run


def figures(res: Results, quick: bool) -> None:
    """Open the current conversation and list recent ones (p99 of 300)."""
    print("7. history", flush=True)
    messages = 20_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="gpt-ls-bench-history-") as tmp:
        path = Path(tmp) / "history.db"
        t0 = time.monotonic()
        workspace = build(path, messages, 50, 20)
        print(f"  built {messages:,} messages in {time.monotonic() - t0:.1f} s", flush=True)
        with HistoryStore.open(path) as store:
            def open_current() -> None:
                conv = store.current_conversation(workspace)
                assert conv is not None and len(store.turns(conv.id)) == 50

            current = measure(open_current, 300)
            listing = measure(lambda: store.list_conversations(workspace), 300)
    for name, samples in (("open the current conversation (p99)", current),
                          ("list recent conversations (p99)", listing)):
        res.add("history", f"{name}, {messages:,} messages", percentile(samples, 99), "ms",
                limit=TARGET_MS, note=f"p50 {statistics.median(samples):.2f} ms")


if __name__ == "__main__":
    main()
