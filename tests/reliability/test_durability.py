"""Durability and concurrency: SIGKILL mid-reply, several writers on one store, users typing.

* The real server is killed (SIGKILL) while replies stream and history is written, again
  and again on the same store: the file stays intact, nothing committed is lost, the next
  server picks up where the last one died.
* Two servers and two CLI processes write to one workspace at once: every exchange is
  there, complete, once.
* The user types above, below and inside the reply while it streams (VS Code-like and
  Neovim-like echo timing): no text of the user's is lost, and the reply is either whole
  in the document or whole in the fallback document and history.

``GPT_LS_KILL_ROUNDS=N`` kills N times instead of the quick default.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from lsprotocol import types

from tests.reliability import figures
from tests.reliability.harness import alive, cli, close_editor, integrity, open_editor, pid, stored
from tests.reliability.test_faults import cli_env
from tests.support.fakeopenai import FakeOpenAI, Reply
from tests.support.lsp_editor import Editor, EditorConfig
from tests.support.seeds import seeded

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

SLOW = {"chunk_size": 3, "delay": 0.01}


def slow_reply(tag: str, n: int = 120) -> Reply:
    """A reply that takes a second or two to stream, with text that says where it came from."""
    return Reply(text="".join(f"[{tag}:{i} 数据🙂] " for i in range(n)), **SLOW)  # type: ignore[arg-type]


async def test_sigkill_while_streaming_and_writing_history(api: FakeOpenAI, tmp_path: Path) -> None:
    db = tmp_path / "data" / "history.db"
    rounds = figures.kill_rounds(6)
    rng = seeded(9)
    committed: dict[int, tuple[str, str]] = {}  # message id -> (content, status) seen before a kill
    for round_ in range(rounds):
        editor = await open_editor(api.url, tmp_path)
        uri = f"file:///kill/{round_}.md"
        editor.open(uri, f"question {round_} 问题\nnotes {round_}\n")
        api.queue.clear()  # what the killed server never asked for
        api.script(slow_reply(f"a{round_}"), slow_reply(f"b{round_}"))
        wanted = len(api.chat_requests()) + 2
        await editor.run("gpt-ls.ask", uri, editor.range_of(uri, f"question {round_} 问题"))
        await editor.run("gpt-ls.draftEmail", uri, editor.range_of(uri, f"notes {round_}"))
        # Both replies stream (a loaded machine may take a while to send them), then the kill
        # comes somewhere in the stream, maybe mid-save.
        await editor.wait_until(lambda n=wanted: len(api.chat_requests()) >= n, "the requests never came", 30)
        await asyncio.sleep(0.3 + rng.random() * 1.5)
        before = {m.id: (m.content, m.status) for m in stored(db)}
        os.kill(pid(editor), signal.SIGKILL)
        await editor.client._server.wait()
        await editor.client.stop()
        assert integrity(db) == "ok"
        after = {m.id: (m.content, m.status) for m in stored(db)}
        # Nothing committed is lost: replies only ever grow, finished ones never change.
        lost = [i for i, (content, _) in {**committed, **before}.items()
                if i not in after or not after[i][0].startswith(content)]
        changed = [i for i, v in committed.items() if v[1] == "complete" and after[i] != v]
        assert (lost, changed) == ([], [])
        assert {s for _, s in after.values()} <= {"complete", "partial"}
        committed.update(after)
        figures.add("kills survived")
    # The store works for the next server after all those kills.
    editor = await open_editor(api.url, tmp_path)
    try:
        editor.open("file:///kill/after.md", "after the kills\n")
        api.queue.clear()
        api.script(Reply(text="Alive."))
        await editor.action("gpt-ls.ask", "file:///kill/after.md", "after the kills")
        assert editor.docs["file:///kill/after.md"].text == "after the kills\nAlive.\n"
    finally:
        await close_editor(editor)
    final = stored(db)
    assert (final[-1].content, final[-1].status) == ("Alive.", "complete")
    users_before = [i for i, m in committed.items() if i in {u.id for u in final if u.role == "user"}]
    assert len([m for m in final if m.role == "user"]) == len(users_before) + 1 >= rounds + 1
    assert integrity(db) == "ok"


async def test_sigkill_of_gpt_ls_ask_mid_reply(api: FakeOpenAI, tmp_path: Path) -> None:
    """The terminal is killed too: its partial reply stays, marked partial, the store intact."""
    env, ws = cli_env(tmp_path, api.url, {"baseUrl": api.url})
    db = tmp_path / "data" / "history.db"
    for round_ in range(max(2, figures.kill_rounds(6) // 3)):
        api.script(slow_reply(f"cli{round_}", 400))
        proc = await asyncio.create_subprocess_exec(
            *cli("ask", f"cli question {round_}"), cwd=ws, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        seen = b""
        while b"[cli%d:40 " % round_ not in seen:  # past the first save to history
            seen += await asyncio.wait_for(proc.stdout.read(200), 30)
        await asyncio.sleep(1.2)
        before = stored(db)
        proc.kill()
        await proc.wait()
        assert integrity(db) == "ok"
        after = {m.id: m for m in stored(db)}
        assert all(m.id in after and after[m.id].content.startswith(m.content) for m in before)
        last = [m for m in after.values() if m.role == "assistant"][-1]
        assert last.status == "partial"
        assert last.content.startswith(f"[cli{round_}:0 数据🙂] [cli{round_}:1 ")
        figures.add("kills survived")
    api.release_stalls()


async def test_two_servers_and_the_cli_on_one_workspace(api: FakeOpenAI, tmp_path: Path) -> None:
    """Everyone writes at once; every exchange is stored once, complete, in its conversation."""
    one = await open_editor(api.url, tmp_path)
    two = await open_editor(api.url, tmp_path)
    env, ws = cli_env(tmp_path, api.url, {"baseUrl": api.url, "maxRetries": 2})
    questions: list[str] = []

    async def editor_asks(editor: Editor, name: str) -> None:
        for i in range(4):
            uri = f"file:///shared/{name}-{i}.md"
            question = f"{name} question {i} 并发"
            questions.append(question)
            editor.open(uri, question + "\n")
            await editor.action("gpt-ls.ask" if i % 2 else "gpt-ls.continue", uri, question)
            assert editor.docs[uri].text.startswith(question + "\nEcho: ")

    async def cli_asks(i: int) -> None:
        question = f"cli question {i} 终端"
        questions.append(question)
        proc = await asyncio.create_subprocess_exec(
            *cli("ask", "-c", question), cwd=ws, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        assert out.decode() == f"Echo: {question}\n"

    try:
        await asyncio.gather(editor_asks(one, "one"), editor_asks(two, "two"), cli_asks(1), cli_asks(2))
    finally:
        await close_editor(one)
        await close_editor(two)
    db = tmp_path / "data" / "history.db"
    assert integrity(db) == "ok"
    messages = stored(db)
    users = [m for m in messages if m.role == "user"]
    replies = [m for m in messages if m.role == "assistant"]
    assert sorted(m.content for m in users) == sorted(questions)
    assert len(replies) == len(questions)
    assert all(m.status == "complete" and m.content.startswith("Echo: ") for m in replies)
    for user in users:  # each reply answers its own question
        reply = next(m for m in replies if m.id > user.id and m.conversation_id == user.conversation_id)
        assert reply.content.endswith(user.content), (user.content, reply.content[-80:])


def markers(text: str) -> list[str]:
    return [part.split("⟧")[0] for part in text.split("⟦")[1:]]


@pytest.mark.parametrize("echo_delay", [None, 0.15], ids=["vscode-like", "neovim-like"])
async def test_user_types_above_below_and_inside_the_reply_while_it_streams(
    api: FakeOpenAI, tmp_path: Path, echo_delay: float | None
) -> None:
    rng = seeded(17 if echo_delay else 5)
    # The simulated editor counts in UTF-16; Neovim's capabilities would negotiate UTF-8.
    config = EditorConfig(capabilities="neovim" if echo_delay else "visual-studio-code", echo_delay=echo_delay,
                          position_encodings=["utf-16"])
    editor = await open_editor(api.url, tmp_path, config)
    try:
        for round_, where in enumerate(["above", "below", "mixed", "inside"]):
            uri = f"file:///typing/{round_}.md"
            original = f"top line 顶\nquestion {round_}?\nbottom line 底\n"
            editor.open(uri, original)
            reply = "".join(f"<r{i} 回复😀> " for i in range(80))
            # The API holds the last pieces until the user has typed: every keystroke lands mid-reply.
            api.script(Reply(text=reply, chunk_size=5, delay=0.01, hold_after=len(reply) // 5 - 10))
            idle = editor.idle_count
            messages = len(editor.message_texts())
            shown = len(editor.client.shown_documents)
            await editor.run("gpt-ls.ask", uri, editor.range_of(uri, f"question {round_}?"))
            typed = []
            for n in range(6):
                await asyncio.sleep(0.05 + rng.random() * 0.1)
                text = editor.docs[uri].text
                head = text.index(f"question {round_}?\n") + len(f"question {round_}?\n")
                tail = text.index("bottom line 底")
                choice = where if where != "mixed" else rng.choice(["above", "below"])
                if choice == "above":  # at the start, or just before the question line
                    offset = rng.choice([0, text.index(f"question {round_}?")])
                elif choice == "below":  # right after the reply so far, or at the very end
                    offset = rng.choice([tail, len(text)])
                else:
                    while tail - head < 20:  # some reply to type into first
                        await asyncio.sleep(0.02)
                        text = editor.docs[uri].text
                        tail = text.index("bottom line 底")
                    offset = rng.randrange(head + 5, tail - 5)
                    for earlier in typed:  # never split what the user typed before
                        at = text.find(earlier)
                        if at < offset < at + len(earlier):
                            offset = at + len(earlier)
                marker = f"⟦u{round_}.{n} 用户✍️⟧"
                typed.append(marker)
                assert editor.idle_count == idle and reply not in text, "the reply ended before the user typed"
                editor.type(uri, offset, marker)
            api.resume()
            await editor.wait_idle(idle, timeout=30)
            final = editor.docs[uri].text
            # No text of the user's is lost or overwritten, in the order typed at each place.
            assert sorted(markers(final)) == sorted(m.strip("⟦⟧") for m in typed)
            assert "top line" in final and "bottom line 底" in final
            stored_reply = [m for m in stored(tmp_path / "data" / "history.db") if m.role == "assistant"][-1]
            assert (stored_reply.content, stored_reply.status) == (reply, "complete")
            if where == "inside":
                # The reply region was edited: the whole reply goes to a document, said once.
                assert len(editor.client.shown_documents) == shown + 1
                path = Path(editor.client.shown_documents[-1].uri.removeprefix("file://"))
                assert reply in path.read_text(encoding="utf-8")
                assert len(editor.message_texts()) == messages + 1
            else:
                without_user = final
                for marker in typed:
                    without_user = without_user.replace(marker, "")
                assert without_user == original.replace(f"question {round_}?\n", f"question {round_}?\n{reply}\n")
                assert len(editor.message_texts()) == messages
            editor.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
        assert alive(editor)
    finally:
        await close_editor(editor)
