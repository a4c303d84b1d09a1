"""The benchmark suite: every figure issue 8 sets a target for, side by side in one run.

    .venv/bin/python benchmarks/run.py [--json FILE] [--quick] [--no-peers]

Start-up is timed against a bare pygls server (``benchmarks/bare_pygls.py``) and two
peers (jedi-language-server, python-lsp-server, installed into their own venv on first
use), so that the figures are ratios that survive a noisy machine. The language-server
figures come from the real ``gpt-ls`` process driven over stdio by the simulated editor
of the end-to-end tests, against the real fake OpenAI server over HTTP. Prints a table
(machine, versions, each figure against its target); asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
for _path in (ROOT / "tests", BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import fakeopenai  # noqa: E402
from e2e import editor as e2e_editor  # noqa: E402
from lsprotocol import types  # noqa: E402

PEERS_VENV = Path(tempfile.gettempdir()) / "gpt-ls-bench-peers"
PEERS = {"jedi-language-server": "jedi-language-server", "python-lsp-server": "pylsp"}
TIMED_SERVER = [sys.executable, str(BENCH / "timed_server.py")]
PARTS = ["startup", "budget", "history", "first-text", "streaming", "concurrency"]
PACKAGES = ("gpt-ls", "pygls", "lsprotocol", "openai", "tiktoken", "httpx2", "pytest-lsp")

# Reply text made of "tokens": English words, Chinese words and an emoji now and then.
TOKEN_WORDS = [" the", " model", " answer", " editor", "语言", "服务器", "，", "。", " stream", " 🙂", "\n"]


# -- results -------------------------------------------------------------------
@dataclass
class Figure:
    """One measured figure, with its target when the issue sets one."""

    section: str
    name: str
    value: float | None
    unit: str
    target: str = ""
    passed: bool | None = None
    note: str = ""


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)

    def add(self, section: str, name: str, value: float | None, unit: str, *, limit: float | None = None,
            note: str = "") -> Figure:
        """Record a figure; with ``limit`` it passes when it is at most that."""
        passed: bool | None = None
        target = ""
        if limit is not None and value is not None:
            passed = value <= limit
            target = f"≤ {limit:g} {unit}"
        fig = Figure(section, name, value, unit, target, passed, note)
        self.figures.append(fig)
        mark = "" if passed is None else (" PASS" if passed else " MISS")
        shown = "-" if value is None else f"{value:.3f}".rstrip("0").rstrip(".")
        print(f"  [{section}] {name}: {shown} {unit}{mark} {note}".rstrip(), flush=True)
        return fig

    def check(self, section: str, name: str, ok: bool, note: str = "") -> None:
        """A yes/no figure (passes when ``ok``)."""
        self.add(section, name, 1.0 if ok else 0.0, "ok" if ok else "FAILED", note=note)
        self.figures[-1].passed = ok
        self.figures[-1].target = "yes"


def percentile(samples: list[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100)."""
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


# -- machine -------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GB"
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return {
        "platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(), "memory": mem,
        "python": platform.python_version(), "packages": versions, "commit": commit,
        "load_average": os.getloadavg()[0],
    }


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) / 1024
    return out


# -- 1. start-up ---------------------------------------------------------------
def frame(obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


INITIALIZE = frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "processId": None, "rootUri": None, "capabilities": {}}})


def time_initialize(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds from spawning ``cmd`` to reading its whole ``initialize`` response."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(INITIALIZE)
        proc.stdin.flush()
        length = 0
        while True:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{cmd[-1]} exited before answering initialize")
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            elif line == b"\r\n" and length:
                break
        body = json.loads(proc.stdout.read(length))
        took = time.monotonic() - t0
        if "result" not in body:
            raise RuntimeError(f"{cmd[-1]} answered initialize with {body}")
        return took
    finally:
        proc.kill()
        proc.wait()


def peer_commands(install: bool) -> dict[str, list[str]]:
    """Commands of the peer servers, installed into their own venv when missing."""
    bin_dir = PEERS_VENV / "bin"
    missing = [p for p, exe in PEERS.items() if not (bin_dir / exe).exists()]
    if missing and install:
        print(f"  installing {', '.join(missing)} into {PEERS_VENV} …", flush=True)
        try:
            if not (bin_dir / "pip").exists():
                subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True, timeout=120)
            subprocess.run([str(bin_dir / "pip"), "install", "-q", *missing], check=True, timeout=600,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"  note: could not install the peers ({exc}); they are skipped", flush=True)
    commands = {}
    for peer, exe in PEERS.items():
        if (bin_dir / exe).exists():
            commands[peer] = [str(bin_dir / exe)]
        else:
            print(f"  note: {peer} is not installed; skipped", flush=True)
    return commands


def bench_startup(res: Results, runs: int, peers: bool) -> None:
    """Process start until the ``initialize`` response: gpt-ls against bare pygls and peers."""
    print("1. start-up", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpt-ls-bench-") as tmp:
        env = e2e_editor.server_env("http://127.0.0.1:9/v1", tmp)
        servers = {"bare pygls": [sys.executable, str(BENCH / "bare_pygls.py")],
                   "gpt-ls": [sys.executable, "-m", "gpt_ls"]}
        servers.update(peer_commands(install=peers) if peers else {})
        for cmd in servers.values():  # warm the page cache and the .pyc files
            time_initialize(cmd, env)
        samples: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(runs):  # interleaved, so that a burst of load hits every server alike
            for name, cmd in servers.items():
                samples[name].append(time_initialize(cmd, env))
    bare = statistics.median(samples["bare pygls"])
    for name, values in samples.items():
        ms = statistics.median(values) * 1000
        res.add("start-up", f"{name}: spawn → initialize response (median of {runs})", ms, "ms",
                note=f"{ms / 1000 / bare:.2f}× bare pygls")
    ratio = statistics.median(samples["gpt-ls"]) / bare
    fastest = min(samples["gpt-ls"]) / min(samples["bare pygls"])
    res.add("start-up", "gpt-ls / bare pygls (medians)", ratio, "×", limit=1.15,
            note=f"fastest runs: {fastest:.2f}×")


# -- 5. budgeting and 7. history (in-process, reusing their own benchmarks) ------
def bench_budget(res: Results, quick: bool) -> None:
    """Fitting a request built from a 1 MB document (``bench_budget.py``'s documents)."""
    print("5. budgeting", flush=True)
    try:
        import bench_budget
    except ImportError as exc:
        res.add("budget", "fit a 1 MB document", None, "ms", note=f"skipped: {exc}")
        return
    from gpt_ls import budget, tokens
    from gpt_ls.models import lookup_model

    docs = {"English": bench_budget.document(bench_budget.SIZE, bench_budget.english_line, 1),
            "Chinese": bench_budget.document(bench_budget.SIZE, bench_budget.chinese_line, 2)}
    from gpt_ls.prompts import excerpt

    models = ("gpt-4", "gpt-4o", "gpt-4.1-mini")
    for label, doc in docs.items():
        cold: dict[str, float] = {}
        warm: dict[str, float] = {}
        server: dict[str, float] = {}
        middle = len(doc) // 2
        for model in models:
            info = lookup_model(model)
            tokens.get_encoding(info.encoding)  # loading the encoding is not fitting
            c, w, v = [], [], []
            for _ in range(1 if quick else 3):
                tokens.clear_cache()
                t0 = time.perf_counter()
                budget.fit(bench_budget.render, doc, "", [], info, None)  # all of it before the selection
                t1 = time.perf_counter()
                budget.fit(bench_budget.render, doc, "", [], info, None)  # again: chunk counts cached
                t2 = time.perf_counter()
                before, after = excerpt(doc, middle, middle + 40, 40)  # what the server sends by default
                budget.fit(bench_budget.render, before, after, [], info, None)
                t3 = time.perf_counter()
                c.append(t1 - t0)
                w.append(t2 - t1)
                v.append(t3 - t2)
            cold[model], warm[model], server[model] = (statistics.median(x) * 1000 for x in (c, w, v))
        for name, figures in (("whole document before the selection, cold count cache", cold),
                              ("the same again (count cache warm)", warm),
                              ("as the server sends it (contextLines 40 around the selection)", server)):
            slowest = max(figures, key=lambda m: figures[m])
            res.add("budget", f"fit 1 MB {label}: {name}", figures[slowest], "ms", limit=50,
                    note="slowest of " + ", ".join(f"{m} {v:.0f}" for m, v in figures.items()))


def bench_history(res: Results, quick: bool) -> None:
    """Open the current conversation and list recent ones with 100,000 stored messages."""
    print("7. history", flush=True)
    import bench_history

    from gpt_ls.history.store import HistoryStore

    messages = 20_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="gpt-ls-bench-history-") as tmp:
        path = Path(tmp) / "history.db"
        t0 = time.monotonic()
        workspace = bench_history.build(path, messages, 50, 20)
        print(f"  built {messages:,} messages in {time.monotonic() - t0:.1f} s", flush=True)
        with HistoryStore.open(path) as store:
            def open_current() -> None:
                conv = store.current_conversation(workspace)
                assert conv is not None and len(store.turns(conv.id)) == 50

            current = bench_history.measure(open_current, 300)
            listing = bench_history.measure(lambda: store.list_conversations(workspace), 300)
    for name, samples in (("open the current conversation (p99)", current),
                          ("list recent conversations (p99)", listing)):
        res.add("history", f"{name}, {messages:,} messages", percentile(samples, 99), "ms",
                limit=bench_history.TARGET_MS, note=f"p50 {statistics.median(samples):.2f} ms")


# -- the language server, driven like an editor ----------------------------------------
class RemoteFake:
    """``benchmarks/fake_server.py`` in its own process, scripted over HTTP."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(BENCH / "fake_server.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def script(self, *behaviours: fakeopenai.Reply) -> None:
        """Queue replies; each request takes the next one."""
        self._call("POST", "/_script", [asdict(b) for b in behaviours])

    def stamps(self) -> list[float]:
        """``time.monotonic()`` of each content chunk sent since the last ``clear_stamps``."""
        return list(self._call("GET", "/_stamps")["content"])

    def request_stamps(self) -> list[float]:
        """``time.monotonic()`` of each chat request's arrival since the last ``clear_stamps``."""
        return list(self._call("GET", "/_stamps")["requests"])

    def clear_stamps(self) -> None:
        self._call("DELETE", "/_stamps")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Timing:
    """One request in the server's timing log: wall and CPU ms, garbage collections during it."""

    wall: float
    cpu: float
    gcs: int


def explain_slow(timings: list[Timing], limit: float) -> str:
    """Why requests over ``limit`` ms were slow: CPU spent, or waiting (GIL, preemption), or GC."""
    slow = [t for t in timings if t.wall > limit]
    if not slow:
        return ""
    waiting = sum(1 for t in slow if t.wall - t.cpu > t.cpu)
    gcs = sum(1 for t in slow if t.gcs)
    return (f"{len(slow)} over {limit:g} ms: {waiting} mostly waiting (not on CPU), "
            f"{gcs} with a GC, max CPU {max(t.cpu for t in slow):.2f} ms")


@dataclass
class Session:
    """A gpt-ls process with the simulated editor, its edit log and its timing log."""

    editor: e2e_editor.Editor
    timing_log: Path
    applied: list[tuple[float, str, str]] = field(default_factory=list)  # (time, uri, text)
    slowest: list[tuple[float, float]] = field(default_factory=list)  # (ms, sent at)

    @property
    def pid(self) -> int:
        server = self.editor.client._server
        assert server is not None
        return server.pid

    def timings(self, since: int = 0) -> list[Timing]:
        """The timing log's code-action lines from line ``since`` on."""
        lines = self.timing_log.read_text().splitlines() if self.timing_log.exists() else []
        out = []
        for line in lines[since:]:
            if line.startswith("textDocument/codeAction "):
                _, wall, cpu, gcs = line.split()
                out.append(Timing(float(wall), float(cpu), int(gcs)))
        return out

    def timing_lines(self) -> int:
        return len(self.timing_log.read_text().splitlines()) if self.timing_log.exists() else 0

    def first_edit(self, uri: str, after: float) -> float | None:
        return next((t for t, u, text in self.applied if u == uri and t >= after and text.strip()), None)

    async def wait(self, predicate: Callable[[], bool], timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise TimeoutError("the server did not get there in time")
            await asyncio.sleep(0.005)

    async def code_action(self, uri: str) -> float:
        """One ``textDocument/codeAction`` round trip, in ms."""
        rng = types.Range(types.Position(5, 0), types.Position(6, 0))
        t0 = time.monotonic()
        actions = await self.editor.code_actions(uri, rng)
        took = (time.monotonic() - t0) * 1000
        assert actions, "no code actions listed"
        return took

    async def code_actions_until(self, uri: str, done: asyncio.Event, gap: float = 0.005) -> list[float]:
        """Round trips of code-action requests sent one after another until ``done``."""
        out = []
        while not done.is_set():
            t0 = time.monotonic()
            out.append(await self.code_action(uri))
            self.slowest.append((out[-1], t0))
            await asyncio.sleep(gap)
        return out


@contextmanager
def session_env(api: RemoteFake) -> Iterator[tuple[dict[str, str], Path]]:
    with tempfile.TemporaryDirectory(prefix="gpt-ls-bench-") as tmp:
        log = Path(tmp) / "timing.log"
        extra = {"PYTHONASYNCIODEBUG": "1"} if os.environ.get("GPT_LS_BENCH_SLOW") else {}
        if os.environ.get("GPT_LS_BENCH_PROFILE"):
            extra["GPT_LS_PROFILE"] = str(Path(tempfile.gettempdir()) / f"gpt-ls-profile-{time.time():.0f}.txt")
            print(f"  profile: {extra['GPT_LS_PROFILE']}", flush=True)
        yield e2e_editor.server_env(api.url, tmp, GPT_LS_TIMING_LOG=str(log), **extra), log
        if extra:
            keep = Path(tempfile.gettempdir()) / f"gpt-ls-bench-slow-{time.time():.0f}.log"
            shutil.copy(log, keep)
            print(f"  slow callbacks: {keep}", flush=True)


async def start_session(env: dict[str, str], log: Path) -> Session:
    e2e_editor.SERVER = TIMED_SERVER  # gpt-ls itself, with only its timing log turned on
    editor = await e2e_editor.start_editor(env, e2e_editor.EditorConfig())
    session = Session(editor, log)
    original = editor.on_apply_edit

    def on_apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        now = time.monotonic()
        for dc in params.edit.document_changes or []:
            if isinstance(dc, types.TextDocumentEdit):
                text = "".join(e.new_text for e in dc.edits)
                session.applied.append((now, dc.text_document.uri, text))
        for uri, edits in (params.edit.changes or {}).items():
            session.applied.append((now, uri, "".join(e.new_text for e in edits)))
        return original(params)

    editor.on_apply_edit = on_apply_edit  # type: ignore[method-assign]
    return session


async def stop_session(session: Session) -> None:
    client = session.editor.client
    try:
        await asyncio.wait_for(client.shutdown_session(), 10)
    except Exception as exc:
        print(f"  note: shutdown: {exc}", flush=True)


def with_eol(reply: str) -> str:
    return reply if reply.endswith("\n") else reply + "\n"


def mismatch_note(got: str, expected: str) -> str:
    """Where a document differs from what it should be; both texts are kept for a diff."""
    at = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), min(len(got), len(expected)))
    keep = Path(tempfile.mkdtemp(prefix="gpt-ls-bench-mismatch-"))
    (keep / "got.txt").write_text(got, encoding="utf-8")
    (keep / "expected.txt").write_text(expected, encoding="utf-8")
    return (f"differs at offset {at}: got {got[at:at + 30]!r}, expected {expected[at:at + 30]!r} "
            f"(lengths {len(got)}, {len(expected)}; both in {keep})")


def token_delay(rate: float) -> float:
    """The fake server's pause between tokens for ``rate`` tokens/s (sleeps overshoot)."""
    samples = []
    for _ in range(20):
        t0 = time.monotonic()
        time.sleep(1 / rate)
        samples.append(time.monotonic() - t0 - 1 / rate)
    return max(0.0, 1 / rate - statistics.median(samples) - 0.0002)


def reply_tokens(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(TOKEN_WORDS) for _ in range(n)]


def long_document(lines: int) -> str:
    """A 10,000-line document with a question on its first line (mixed scripts)."""
    body = [f"def function_{i}(x):  # 第 {i} 行 🙂 return x * {i}" for i in range(1, lines)]
    return "\n".join(["What does this module do?", *body]) + "\n"


LONG_URI = "file:///bench/long.py"
WARM_URI = "file:///bench/warm.md"


def open_documents(editor: e2e_editor.Editor) -> str:
    """Open the 10,000-line document and a small one to warm up with; return the long one's text."""
    text = long_document(10_000)
    editor.open(LONG_URI, text, "python")
    editor.open(WARM_URI, "Warm up?\n")
    return text


async def ask(session: Session, uri: str, line: str) -> float:
    """Send ``gpt-ls.ask`` on ``line``; return when it was sent."""
    t0 = time.monotonic()
    result = await session.editor.run("gpt-ls.ask", uri, session.editor.range_of(uri, line))
    assert result["status"] == "started", result
    return t0


def idle_count(session: Session) -> int:
    return len([s for s in session.editor.statuses if s["running"] == 0])


async def run_and_wait(session: Session, uri: str, line: str) -> float:
    before = idle_count(session)
    t0 = await ask(session, uri, line)
    await session.editor.wait_idle(before, timeout=120)
    return t0


# -- 3. overhead to first text, 6. memory --------------------------------------------
async def sdk_ttft(api: RemoteFake, delay: float, runs: int) -> tuple[list[float], list[tuple[float, float]]]:
    """Time to the first content token when the openai SDK asks directly (warm client).

    Also, per request: ms until the request reached the server, and from the first
    token's sending to its arrival.
    """
    split: list[tuple[float, float]] = []
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=api.url, api_key="sk-test-key-0123456789", max_retries=0)
    out = []
    for i in range(runs + 1):
        api.script(fakeopenai.Reply(text="Paris is the capital.", first_delay=delay))
        api.clear_stamps()
        t0 = time.monotonic()
        stream = await client.chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": "Capital of France?"}], stream=True,
            stream_options={"include_usage": True})
        first = None
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.monotonic() - t0
        if i:  # the first one opens the connection
            assert first is not None
            out.append(first * 1000)
            arrived, sent = api.request_stamps()[0], api.stamps()[0]
            split.append(((arrived - t0) * 1000, (t0 + first - sent) * 1000))
    await client.close()
    return out, split


async def bench_first_text_and_memory(res: Results, api: RemoteFake, runs: int) -> None:
    print("3./6. overhead to first text, memory", flush=True)
    delay = 0.2
    with session_env(api) as (env, log):
        session = await start_session(env, log)
        try:
            editor = session.editor
            after_init = proc_status(session.pid)["VmRSS"]
            await asyncio.sleep(2.0)  # anything loaded in the background after initialize
            settled = proc_status(session.pid)["VmRSS"]
            res.add("memory", "RSS right after initialize", after_init, "MB", limit=100)
            res.add("memory", "RSS 2 s after initialize (idle)", settled, "MB", limit=100)

            ttfts: list[float] = []
            split: list[tuple[float, float]] = []
            cold = 0.0
            for i in range(runs + 1):
                uri = f"file:///bench/first{i}.md"
                editor.open(uri, f"Question number {i}?\n")
                if i == 0:  # as in an editor: the menu is listed, the user picks an action a second later
                    await session.code_action(uri)
                    await asyncio.sleep(1.0)
                api.script(fakeopenai.Reply(text="Paris is the capital.", first_delay=delay))
                api.clear_stamps()
                t0 = await run_and_wait(session, uri, f"Question number {i}?")
                first = session.first_edit(uri, t0)
                assert first is not None, "no edit carried the reply"
                if i:
                    arrived, sent = api.request_stamps()[0], api.stamps()[0]
                    split.append(((arrived - t0) * 1000, (first - sent) * 1000))
                if i == 0:
                    cold = (first - t0) * 1000
                    status = proc_status(session.pid)
                    res.add("memory", "RSS after the first completed action (o200k_base)", status["VmRSS"], "MB")
                else:
                    ttfts.append((first - t0) * 1000)
            sdk, sdk_split = await sdk_ttft(api, delay, runs)
            server_ms, sdk_ms = statistics.median(ttfts), statistics.median(sdk)

            def where(parts: list[tuple[float, float]]) -> str:
                before = statistics.median(p[0] for p in parts)
                after = statistics.median(p[1] for p in parts)
                return f"request reaches the API after {before:.1f} ms; first token → text {after:.1f} ms"

            res.add("first text", f"openai SDK directly: time to first token (median of {runs})", sdk_ms, "ms",
                    note=f"fake server waits {delay * 1000:.0f} ms; {where(sdk_split)}")
            res.add("first text", f"gpt-ls: executeCommand → first applyEdit with text (median of {runs})",
                    server_ms, "ms", note=where(split))
            res.add("first text", "added by gpt-ls", server_ms - sdk_ms, "ms", limit=10)
            res.add("first text", "first action after start, picked from the menu 1 s after it was listed",
                    cold - sdk_ms, "ms added")

            peak = proc_status(session.pid)["VmHWM"]
            res.add("memory", "peak RSS with o200k_base loaded", peak, "MB")
            editor.client.workspace_did_change_configuration(
                types.DidChangeConfigurationParams(settings={"gpt-ls": {"model": "gpt-4"}}))
            await asyncio.sleep(0.2)
            uri = "file:///bench/cl100k.md"
            editor.open(uri, "A question for gpt-4?\n")
            api.script(fakeopenai.Reply(text="An answer."))
            await run_and_wait(session, uri, "A question for gpt-4?")
            res.add("memory", "peak RSS with o200k_base and cl100k_base loaded", proc_status(session.pid)["VmHWM"],
                    "MB")
        finally:
            await stop_session(session)


# -- 2. code actions while streaming, 4. streaming -----------------------------------------
async def bench_streaming(res: Results, api: RemoteFake, tokens: int, rate: float) -> None:
    print(f"2./4. code actions on a 10,000-line document while {tokens} tokens stream at {rate:g}/s", flush=True)
    with session_env(api) as (env, log):
        session = await start_session(env, log)
        try:
            editor = session.editor
            uri, text = LONG_URI, open_documents(editor)
            # Warm up (the SDK, the client, the tokenizer) on another document first.
            await run_and_wait(session, WARM_URI, "Warm up?")

            mark = session.timing_lines()
            idle = [await session.code_action(uri) for _ in range(300)]
            idle_timings = session.timings(mark)
            idle_server = [t.wall for t in idle_timings]

            pieces = reply_tokens(tokens, 7)
            reply = "".join(pieces)
            api.script(fakeopenai.Reply(chunks=pieces, delay=token_delay(rate)))
            api.clear_stamps()
            done = asyncio.Event()
            before = idle_count(session)
            mark = session.timing_lines()
            t_edits = len(session.applied)
            poller = asyncio.create_task(session.code_actions_until(uri, done))
            await ask(session, uri, "What does this module do?")
            await editor.wait_idle(before, timeout=tokens / rate * 3 + 30)
            done.set()
            busy = await poller
            busy_timings = session.timings(mark)
            busy_server = [t.wall for t in busy_timings]
            edits = [t for t, u, _ in session.applied[t_edits:] if u == uri]
            # The reply goes below the question; gpt-ls ends it with a line ending if it has none.
            expected = text.replace("\n", "\n" + with_eol(reply), 1)
            got = editor.docs[uri].text
            identical = got == expected
            mismatch = "" if identical else mismatch_note(got, expected)
            sent = api.stamps()
        finally:
            await stop_session(session)

    res.add("code action", "server time p50, idle (10,000-line document)", statistics.median(idle_server), "ms")
    res.add("code action", "server time p99, idle", percentile(idle_server, 99), "ms", limit=2,
            note=explain_slow(idle_timings, 2))
    res.add("code action", "server time p50, while streaming", statistics.median(busy_server), "ms")
    res.add("code action", f"server time p99, while streaming (n={len(busy_server)})", percentile(busy_server, 99),
            "ms", limit=2, note=explain_slow(busy_timings, 2))
    res.add("code action", "server CPU time p99, while streaming", percentile([t.cpu for t in busy_timings], 99),
            "ms")
    res.add("code action", "client round trip p50, idle", statistics.median(idle), "ms")
    res.add("code action", "client round trip p99, idle", percentile(idle, 99), "ms")
    res.add("code action", "client round trip p50, while streaming", statistics.median(busy), "ms")
    res.add("code action", "client round trip p99, while streaming", percentile(busy, 99), "ms",
            note=f"max {max(busy):.1f} ms")

    span = edits[-1] - edits[0] if len(edits) > 1 else 0.0
    res.add("streaming", f"{tokens} tokens sent by the fake server over", sent[-1] - sent[0], "s",
            note=f"{(len(sent) - 1) / (sent[-1] - sent[0]):.0f} tokens/s")
    res.add("streaming", "applyEdit calls", len(edits), "edits")
    res.add("streaming", "edits per second", (len(edits) - 1) / span if span else 0.0, "edits/s", limit=10)
    res.add("streaming", "last token → last edit", (edits[-1] - sent[-1]) * 1000, "ms", limit=100)
    res.check("streaming", "document text identical to the reply", identical, mismatch)


# -- 8. concurrency --------------------------------------------------------------
async def bench_concurrency(res: Results, api: RemoteFake, actions: int) -> None:
    print(f"8. concurrency: {actions} actions at once, half cancelled", flush=True)
    with session_env(api) as (env, log):
        session = await start_session(env, log)
        try:
            editor = session.editor
            long_uri = LONG_URI
            open_documents(editor)
            cold_done = asyncio.Event()
            cold_poller = asyncio.create_task(session.code_actions_until(long_uri, cold_done))
            t_warm = await run_and_wait(session, WARM_URI, "Warm up?")
            cold_done.set()
            during_cold = await cold_poller
            first = session.first_edit(WARM_URI, t_warm)
            cold_direct = (first - t_warm) * 1000 if first is not None else None
            progress_before = set(editor.client.progress_reports)

            pieces = reply_tokens(300, 11)
            reply = "".join(pieces)
            uris = [f"file:///bench/c{i}.md" for i in range(actions)]
            originals = {}
            for i, uri in enumerate(uris):
                originals[uri] = f"Question {i} 问题 {i}?\nline two\n"
                editor.open(uri, originals[uri])
            api.script(*[fakeopenai.Reply(chunks=pieces, delay=0.01) for _ in uris])  # ~3 s each
            mark = session.timing_lines()
            done = asyncio.Event()
            poller = asyncio.create_task(session.code_actions_until(long_uri, done))
            t0 = time.monotonic()
            await asyncio.gather(*[ask(session, uri, f"Question {i} 问题 {i}?") for i, uri in enumerate(uris)])

            def tokens() -> list[str]:
                return [t for t in editor.client.progress_reports if t not in progress_before]

            await session.wait(lambda: len(tokens()) == actions and all(editor.client.progress_reports[t]
                                                                        for t in tokens()), 30)
            started = (time.monotonic() - t0) * 1000
            await asyncio.sleep(1.0)
            t_cancel = time.monotonic()
            for token in tokens()[: actions // 2]:
                editor.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))

            def ended() -> int:
                return sum(1 for t in tokens() if any(isinstance(r, types.WorkDoneProgressEnd)
                                                      for r in editor.client.progress_reports[t]))

            try:
                await session.wait(lambda: ended() == actions, 60)
            except TimeoutError:
                pass
            await editor.settle()
            done.set()
            busy = await poller
            timings = session.timings(mark)
            server = [t.wall for t in timings]
            if os.environ.get("GPT_LS_BENCH_DEBUG"):
                for ms, at in sorted(session.slowest)[-5:]:
                    print(f"  slow code action: {ms:.1f} ms, sent {at - t0:.3f} s after the start "
                          f"(cancel at {t_cancel - t0:.3f} s)")
            complete = cancelled = 0
            for uri in uris:
                first, rest = originals[uri].split("\n", 1)
                got = editor.docs[uri].text
                if got == f"{first}\n{with_eol(reply)}{rest}":
                    complete += 1
                elif "[gpt-ls: reply unfinished (cancelled)]" in got and got.startswith(first + "\n"):
                    cancelled += 1
        finally:
            await stop_session(session)
    res.add("first text", "first action after start, run directly (no menu first; fake answers at once)",
            cold_direct, "ms")
    res.add("first text", "code action round trip, max, while that first action loads the tokenizer",
            max(during_cold), "ms", note=f"n={len(during_cold)}")
    res.add("concurrency", f"all {actions} progress begun after", started, "ms")
    res.check("concurrency", f"all {actions} progress ended", ended() == actions, f"{ended()} of {actions}")
    res.check("concurrency", f"{actions - actions // 2} uncancelled replies complete in their documents",
              complete == actions - actions // 2, f"{complete} complete, {cancelled} cancelled with marker")
    res.add("concurrency", f"code action server time p99 meanwhile (n={len(server)})", percentile(server, 99), "ms",
            limit=2, note=explain_slow(timings, 2))
    res.add("concurrency", "code action server CPU time p99 meanwhile", percentile([t.cpu for t in timings], 99),
            "ms")
    res.add("concurrency", "code action client round trip p99 meanwhile", percentile(busy, 99), "ms",
            note=f"p50 {statistics.median(busy):.2f} ms")


# -- the table ---------------------------------------------------------------------
def print_table(info: dict[str, Any], res: Results, took: float) -> None:
    print()
    print(f"gpt-ls benchmarks · commit {info['commit']} · {took:.0f} s")
    print(f"machine: {info['cpu']} · {info['cpus']} CPUs · {info['memory']} · {info['platform']}")
    print(f"Python {info['python']} · " + " · ".join(f"{k} {v}" for k, v in info["packages"].items())
          + f" · load average {info['load_average']:.1f}")
    width = max(len(f.name) for f in res.figures) + 2
    print(f"{'section':<12} {'figure':<{width}} {'value':>10} {'unit':<9} {'target':<14} result")
    for f in res.figures:
        value = "-" if f.value is None else f"{f.value:.2f}"
        verdict = "" if f.passed is None else ("PASS" if f.passed else "MISS")
        note = f"  ({f.note})" if f.note else ""
        print(f"{f.section:<12} {f.name:<{width}} {value:>10} {f.unit:<9} {f.target:<14} {verdict}{note}")
    misses = [f for f in res.figures if f.passed is False]
    print(f"\n{len(misses)} target(s) missed" + (": " + "; ".join(f.name for f in misses) if misses else ""))


async def server_benchmarks(res: Results, args: argparse.Namespace) -> None:
    api = RemoteFake()
    try:
        runs = 3 if args.quick else 7
        sections: dict[str, Callable[[], Awaitable[None]]] = {
            "first-text": lambda: bench_first_text_and_memory(res, api, runs),
            "streaming": lambda: bench_streaming(res, api, 400 if args.quick else 2000, 200.0),
            "concurrency": lambda: bench_concurrency(res, api, 20),
        }
        for name, section in sections.items():
            if name not in args.parts:
                continue
            try:
                await section()
            except Exception as exc:  # report the failure and go on with the next section
                print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
                res.add("error", f"section failed: {type(exc).__name__}: {exc}", None, "")
                res.figures[-1].passed = False
    finally:
        api.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="fewer runs and a smaller store (a smoke test)")
    parser.add_argument("--no-peers", action="store_true", help="do not install or time the peer servers")
    parser.add_argument("--only", nargs="*", default=PARTS, choices=PARTS, dest="parts", metavar="PART",
                        help=f"run only these parts ({', '.join(PARTS)})")
    args = parser.parse_args()
    started = time.monotonic()
    info = machine()
    res = Results()
    if "startup" in args.parts:
        bench_startup(res, 5 if args.quick else 15, peers=not args.no_peers)
    if "budget" in args.parts:
        bench_budget(res, args.quick)
    if "history" in args.parts:
        bench_history(res, args.quick)
    if {"first-text", "streaming", "concurrency"} & set(args.parts):
        asyncio.run(server_benchmarks(res, args))
    took = time.monotonic() - started
    info["load_average_end"] = os.getloadavg()[0]
    print_table(info, res, took)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "seconds": took,
                                         "figures": [asdict(f) for f in res.figures]}, indent=2,
                                        ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
