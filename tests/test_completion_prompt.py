"""What a completion request sends: the bounded window, the chat and FIM prompts, stops, models; secret files."""

from __future__ import annotations

import pytest

from gpt_ls.completions import prompt
from gpt_ls.completions.model import DEFAULT_BACKOFF, MAX_BACKOFF, retry_after
from gpt_ls.lsp.completion import exact_offset, word_start
from gpt_ls.secret_files import is_secret, matches


def test_a_small_document_is_sent_whole() -> None:
    text = "def f():\n    return 1\n"
    assert prompt.window(text, 13, 1500) == prompt.Window("def f():\n    ", "return 1\n")


def test_the_window_is_bounded_by_utf8_bytes_and_cut_at_line_starts() -> None:
    lines = [f"line {i} 你好🙂\n" for i in range(200)]  # 20 bytes a line
    text = "".join(lines)
    cursor = text.index("line 100")
    win = prompt.window(text, cursor, 400)
    assert len(win.before.encode()) <= 300 and len(win.after.encode()) <= 100
    assert win.before.endswith("line 99 你好🙂\n") and win.before.startswith("line ")
    assert win.after.startswith("line 100 ") and win.after.endswith("\n")


def test_a_long_current_line_is_cut_inside_it_never_inside_a_character() -> None:
    text = "好" * 1000
    win = prompt.window(text, 500, 100)
    assert win.before == "好" * 25 and win.after == "好" * 8  # 75 and 25 bytes, 3 bytes a character


def test_with_an_exact_counter_the_window_is_trimmed_to_counts() -> None:
    text = "".join(f"x{i}\n" for i in range(1000))
    cursor = text.index("x500")

    def count(piece: str) -> int:
        return len(piece.split())  # one "token" a line here

    win = prompt.window(text, cursor, 40, count)
    assert count(win.before) <= 30 and count(win.after) <= 10
    assert win.before.endswith("x499\n") and win.after.startswith("x500\n")
    assert count(win.before) >= 25  # far more context than the byte bound gives (30 bytes: 5 lines)


def test_chat_messages_mark_the_cursor_and_name_the_file() -> None:
    related = prompt.related_excerpts([("util.py", "import os\n" * 500)], 1500)
    messages = prompt.chat_messages(prompt.Window("a = ", "\n"), "main.py", "python", False, related)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "only the text to insert" in messages[0]["content"]
    user = messages[1]["content"]
    assert user.startswith("Related file util.py:\nimport os\n")
    assert user.endswith("File main.py (python). Complete the current line, or at most the next few lines "
                         "of the current statement.\n\na = <CURSOR>\n")
    assert len(related[0].text.encode()) <= 150


def test_fim_stop_sequences_and_default_models() -> None:
    assert prompt.fim_request(prompt.Window("a", "b")) == {"prompt": "a", "suffix": "b"}
    assert prompt.stop_sequences("f(", "x)\n", invoked=False) == ["\n"]  # mid-line: the line
    assert prompt.stop_sequences("f(", "\n", invoked=False) == ["\n\n"]
    assert prompt.stop_sequences("f(", "x)\n", invoked=True) == ["\n\n\n"]
    assert prompt.model_for("chat", None) == "gpt-4.1-nano"
    assert prompt.model_for("fim", None) == "gpt-3.5-turbo-instruct"
    assert prompt.model_for("fim", "qwen2.5-coder") == "qwen2.5-coder"


@pytest.mark.parametrize(
    ("text", "line", "character", "expected"),
    [
        ("ab\n你好🙂x\n", 0, 2, 2),
        ("ab\n你好🙂x\n", 1, 2, 5),
        ("ab\n你好🙂x\n", 1, 4, 6),  # after the emoji (2 UTF-16 units)
        ("ab\n你好🙂x\n", 1, 3, None),  # inside the surrogate pair
        ("ab\n你好🙂x\n", 1, 6, None),  # past the end of the line
        ("ab\n你好🙂x\n", 2, 0, 8),  # the empty last line
        ("ab\n你好🙂x\n", 3, 0, None),  # past the end
        ("ab", -1, 0, None),
    ],
)
def test_exact_offset(text: str, line: int, character: int, expected: int | None) -> None:
    assert exact_offset(text, line, character, "utf-16") == expected


def test_word_start() -> None:
    assert word_start("print(na", 8) == 6
    assert word_start("x = 名字", 6) == 4
    assert word_start("a.b", 2) == 2


@pytest.mark.parametrize(
    ("path", "secret"),
    [(".env", True), ("app/.env.production", True), ("certs/server.pem", True), ("id_rsa", True),
     ("deploy/id_ed25519.pub", True), (".ssh/config", True), ("config/credentials", True),
     ("keys/id_work", True), ("src/id_utils.py", False),
     ("src/main.py", False), ("envoy.py", False), ("identity.py", False), ("docs/密钥说明.md", False)],
)
def test_secret_files(path: str, secret: bool) -> None:
    assert is_secret(path) is secret


def test_excluded_patterns_are_gitignore_like() -> None:
    assert matches("build/out.py", ["build/"]) and matches("a/build/out.py", ["build/"])
    assert matches("gen/a/b.py", ["gen/**"]) and not matches("src/gen/b.py", ["/gen/**"])
    assert matches("a/b.min.js", ["*.min.js"]) and not matches("a/b.js", ["*.min.js"])
    assert is_secret("vendor/x.py", ["vendor/"])


class _Response:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


class _RateLimit(Exception):
    def __init__(self, headers: dict[str, str]) -> None:
        self.response = _Response(headers)


def test_retry_after() -> None:
    assert retry_after(_RateLimit({"retry-after": "7"})) == 7
    assert retry_after(_RateLimit({"retry-after-ms": "1500"})) == 1.5
    assert retry_after(_RateLimit({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}), now=1445412500.0) == 10
    assert retry_after(_RateLimit({"retry-after": "99999"})) == MAX_BACKOFF
    assert retry_after(_RateLimit({})) == DEFAULT_BACKOFF
    assert retry_after(ValueError()) == DEFAULT_BACKOFF
