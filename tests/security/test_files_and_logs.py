"""Files gpt-ls writes are owner-only and never written through a symlink; logs hold events.

On gpt-ls 0.1 the ``--log-file`` was created 0644 and held whole documents and replies at
``-v``, and the values of custom headers; ``history export -o`` kept an existing file's
0644 mode and wrote through a symlink; a ``history.db`` symlink was followed.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpt_ls.errors import FileRefused, HistoryError
from gpt_ls.history.store import HistoryStore
from gpt_ls.logs import setup_logging
from gpt_ls.secrets import mask
from tests.support.fakeopenai import FakeOpenAI
from tests.support.fakeopenai import Reply as FakeReply
from tests.support.lsp_editor import EditorConfig, server_env, start_editor

DOC_TEXT = "The launch code is TANGERINE-42."
REPLY_TEXT = "It is PLUM-77 now."
HEADER_VALUE = "team-secret-0042"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_a_new_log_file_is_owner_only_and_an_existing_one_is_tightened(tmp_path: Path) -> None:
    fresh = tmp_path / "logs" / "fresh.log"
    setup_logging(1, str(fresh))
    logging.getLogger("gpt_ls.test").info("an event")
    assert (mode(fresh), mode(fresh.parent)) == (0o600, 0o700)
    assert fresh.read_text().endswith("INFO gpt_ls.test: an event\n")
    old = tmp_path / "old.log"
    old.write_text("earlier line\n")
    old.chmod(0o644)
    setup_logging(1, str(old))
    logging.getLogger("gpt_ls.test").info("appended")
    assert mode(old) == 0o600
    assert old.read_text().startswith("earlier line\n") and old.read_text().endswith("appended\n")


@pytest.mark.usefixtures("restore_logging")
def test_a_log_file_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("untouched\n")
    link = tmp_path / "gpt-ls.log"
    link.symlink_to(target)
    with pytest.raises(FileRefused, match="is a symbolic link; gpt-ls does not write through it"):
        setup_logging(1, str(link))
    assert target.read_text() == "untouched\n"
    done = subprocess.run([sys.executable, "-m", "gpt_ls", "--log-file", str(link)], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"gpt-ls: --log-file: {link} is a symbolic link; gpt-ls does not write "
                           "through it.\n")
    assert target.read_text() == "untouched\n"


@pytest.mark.parametrize("verbose", ["-v", "-vv"])
async def test_the_log_holds_events_at_v_and_text_only_at_vv_never_header_values(
    api: FakeOpenAI, tmp_path: Path, verbose: str
) -> None:
    log_file = tmp_path / "server.log"
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    api.script(FakeReply(text=REPLY_TEXT))
    config = EditorConfig(initialization_options={"headers": {"X-Team-Token": HEADER_VALUE}})
    editor = await start_editor(server_env(api.url, str(tmp_path)), config, workspace.as_uri(),
                                args=(verbose, "--log-file", str(log_file)))
    try:
        uri = (workspace / "notes.md").as_uri()
        editor.open(uri, DOC_TEXT + "\n", "markdown")
        await editor.action("gpt-ls.ask", uri, DOC_TEXT)
        assert REPLY_TEXT in editor.docs[uri].text
    finally:
        await editor.client.shutdown_session()
        await editor.client.stop()
    assert api.chat_requests()[0].headers["x-team-token"] == HEADER_VALUE  # the header was sent
    log = log_file.read_text()
    assert mode(log_file) == 0o600
    assert HEADER_VALUE not in log
    assert "Sending data" in log  # the events are there either way
    if verbose == "-v":
        assert "TANGERINE" not in log and "PLUM" not in log
        assert "Sending data: … (shown at -vv)" in log
    else:
        first = log.splitlines()[0]
        assert first.endswith("WARNING gpt_ls.logs: debug logging (-vv): this log holds document text, "
                              "prompts and replies; use -v for events only")
        # The reply streams in pieces (the first as soon as it arrives): each edit sent is logged.
        streamed = "".join(re.findall(r'"newText": "((?:[^"\\]|\\.)*)"', log))
        assert "TANGERINE-42" in log and "PLUM-77" in streamed


@pytest.mark.parametrize("text", [
    '{"initializationOptions": {"headers": {"X-Team-Token": "team-secret-0042"}, "model": "m"}}',
    "initialization_options={'headers': {'X-Team-Token': 'team-secret-0042'}, 'model': 'm'}",
])
def test_header_values_are_masked_in_a_log_line_before_they_are_known(text: str) -> None:
    masked = mask(text)
    assert HEADER_VALUE not in masked and "[REDACTED]" in masked and "'model'" in masked.replace('"', "'")


def export(output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpt_ls", "history", "export", "1", "-o", str(output)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)


@pytest.fixture
def one_conversation() -> None:
    with HistoryStore.open() as store:
        conv = store.new_conversation("/w", "a question", model="m")
        store.add_message(conv, "user", "private question")


@pytest.mark.usefixtures("one_conversation")
def test_export_over_an_existing_0644_file_makes_it_0600(tmp_path: Path) -> None:
    out = tmp_path / "export.md"
    out.write_text("an older, longer export that must not survive in part\n" * 10)
    out.chmod(0o644)
    done = export(out)
    assert done.returncode == 0, done.stderr
    assert mode(out) == 0o600
    assert "private question" in out.read_text() and "older" not in out.read_text()


@pytest.mark.usefixtures("one_conversation")
def test_export_refuses_to_write_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("untouched\n")
    target.chmod(0o644)
    link = tmp_path / "export.md"
    link.symlink_to(target)
    done = export(link)
    assert done.returncode == 1
    assert done.stderr == f"gpt-ls history: {link} is a symbolic link; gpt-ls does not write through it.\n"
    assert (target.read_text(), mode(target)) == ("untouched\n", 0o644)


@pytest.mark.parametrize("suffix", ["", "-wal"])
def test_a_history_database_that_is_a_symlink_is_refused(tmp_path: Path, suffix: str) -> None:
    data = Path(os.environ["GPT_LS_DATA_DIR"])
    data.mkdir(parents=True)
    target = tmp_path / "elsewhere.db"
    target.write_bytes(b"")
    target.chmod(0o644)
    link = data / f"history.db{suffix}"
    link.symlink_to(target)
    with pytest.raises(HistoryError) as caught:
        HistoryStore.open()
    assert str(caught.value) == (
        f"The history file {link} is a symbolic link; gpt-ls does not open history through one. "
        "Replace it with the file it points to (or remove it to start a fresh history), or set "
        "GPT_LS_DATA_DIR to another directory.")
    assert (target.read_bytes(), mode(target), link.is_symlink()) == (b"", 0o644, True)
