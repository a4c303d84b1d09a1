"""Offline token counting: known counts, the chat format, chunking, fallbacks, no network."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt_ls import tokens
from gpt_ls.models import lookup_model

ENCODINGS_DIR = Path(tokens.__file__).parent / "encodings"
ROOT = Path(__file__).resolve().parent.parent

SAMPLES = {
    "english": "The quick brown fox jumps over the lazy dog.",
    "chinese": "我们的语言服务器把模型放进编辑器中。",
    "emoji": "👋🌍🎉👍🏽",
    "code": "def add(a, b):\n    return a + b\n",
    "mixed": "Hello, 世界! 👋",
    "special": "<|endoftext|>",
}


@pytest.fixture(autouse=True)
def _cold_cache() -> Iterator[None]:
    """Every test counts with an empty chunk cache."""
    tokens.clear_cache()
    yield


@pytest.mark.parametrize(
    ("sample", "encoding", "expected"),
    [
        ("english", "cl100k_base", 10),
        ("english", "o200k_base", 10),
        ("chinese", "cl100k_base", 15),
        ("chinese", "o200k_base", 11),
        ("emoji", "cl100k_base", 15),
        ("emoji", "o200k_base", 9),
        ("code", "cl100k_base", 12),
        ("code", "o200k_base", 12),
        ("mixed", "cl100k_base", 9),
        ("mixed", "o200k_base", 6),
        ("special", "cl100k_base", 7),  # a special token's text is ordinary text
        ("special", "o200k_base", 7),
    ],
)
def test_known_counts(sample: str, encoding: str, expected: int) -> None:
    assert tokens.count_text(SAMPLES[sample], encoding) == expected


def test_known_token_ids() -> None:
    # The examples of OpenAI's "How to count tokens with tiktoken" notebook.
    cl100k = tokens.get_encoding("cl100k_base")
    o200k = tokens.get_encoding("o200k_base")
    assert cl100k is not None and o200k is not None
    assert cl100k.encode_ordinary("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert o200k.encode_ordinary("tiktoken is great!") == [83, 8251, 2488, 382, 2212, 0]
    assert cl100k.encode_ordinary("hello world") == [15339, 1917]
    assert o200k.encode_ordinary("hello world") == [24912, 2375]


def test_empty_text() -> None:
    assert tokens.count_text("", "o200k_base") == 0
    assert tokens.estimate_tokens("") == 0


def test_chat_vector() -> None:
    messages = [{"role": "user", "content": "Hello!"}]
    assert tokens.count_messages(messages, lookup_model("gpt-3.5-turbo")) == 9
    assert tokens.count_messages(messages, lookup_model("gpt-4o")) == 9


def test_chat_format_overheads() -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "name": "ann", "content": "Hello!"},
    ]
    # 3 priming + (3 + system 1 + "You are terse." 4) + (3 + user 1 + ann 1 + name 1 + 2)
    assert tokens.count_messages(messages, lookup_model("gpt-4")) == 19
    # gpt-3.5-turbo-0301: 4 a message, and a name replaces the role (-1).
    # 3 + (4 + 1 + 4) + (4 + 1 + 1 - 1 + 2)
    assert tokens.count_messages(messages, lookup_model("gpt-3.5-turbo-0301")) == 19
    hello = [{"role": "user", "content": "Hello!"}]
    assert tokens.count_messages(hello, lookup_model("gpt-3.5-turbo-0301")) == 10
    assert tokens.count_messages([], lookup_model("gpt-4")) == 3


def test_import_loads_nothing() -> None:
    code = (
        "import sys, gpt_ls.tokens as t, gpt_ls.budget, gpt_ls.models, gpt_ls.cli.tokens;"
        "print('tiktoken' in sys.modules, t._loaded);"
        "t.preload(['cl100k_base']);"
        "print('tiktoken' in sys.modules, sorted(t._loaded))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout == "False {}\nTrue ['cl100k_base']\n"


def test_long_text_counts_exactly_in_chunks() -> None:
    lines = [f"    x{i} = compute({i}, '数据{i}')  # 👍 step {i}" for i in range(3_000)]
    text = "\n".join(["def main():", *lines, "", "/* tail */", "main()"]) + "\n"
    for name in ("cl100k_base", "o200k_base"):
        enc = tokens.get_encoding(name)
        assert enc is not None
        whole = len(enc.encode_ordinary(text))
        assert tokens.count_text(text, name) == whole
        assert tokens.count_text(text, name) == whole  # again, from the cache
        assert len(tokens.chunks(text)) > 1


LINE = st.lists(
    st.sampled_from([*"ab Z9/.;'\t\r\u3000我们，😀é\u00a0-_\x1c", "'s", "  ", "//", "\r\n"]),
    max_size=8,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(LINE, min_size=1, max_size=12), st.booleans())
def test_chunk_boundaries_never_change_the_count(lines: list[str], trailing: bool) -> None:
    text = "\n".join(lines) + ("\n" if trailing else "")
    saved = tokens.CHUNK_EVERY
    tokens.CHUNK_EVERY = 1  # a boundary at every break the rule allows
    try:
        pieces = tokens.chunks(text)
    finally:
        tokens.CHUNK_EVERY = saved
    assert "".join(pieces) == text
    assert tokens.split_safe(text) == pieces
    for name in ("cl100k_base", "o200k_base"):
        enc = tokens.get_encoding(name)
        assert enc is not None
        assert sum(len(enc.encode_ordinary(p)) for p in pieces) == len(enc.encode_ordinary(text))


def test_unsafe_breaks_are_not_cut() -> None:
    saved = tokens.CHUNK_EVERY
    tokens.CHUNK_EVERY = 1
    try:
        # No cut before a blank line, a line starting with "/", or indentation that
        # runs into a line break; a cut before "b", "x" and the indented "  y".
        assert tokens.chunks("a;\n\nb\n// c\n  \nx\n  y") == [
            "a;\n\n",
            "b\n// c\n  \n",
            "x\n",
            "  y",
        ]
        assert tokens.split_safe("a;\n\nb\n// c\n  \nx\n  y") == tokens.chunks(
            "a;\n\nb\n// c\n  \nx\n  y"
        )
    finally:
        tokens.CHUNK_EVERY = saved


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_estimate_is_not_below_the_real_count(sample: str) -> None:
    text = SAMPLES[sample] * 3
    estimate = tokens.estimate_tokens(text)
    assert estimate >= tokens.count_text(text, "cl100k_base")
    assert estimate >= tokens.count_text(text, "o200k_base")


def test_estimate_values() -> None:
    assert tokens.estimate_tokens("abcdefg") == 4  # 7 bytes
    assert tokens.estimate_tokens("世界") == 3  # 6 bytes
    assert tokens.estimate_tokens("hi 👋") == 5  # 7 bytes, one character outside the BMP


def _tiktoken_file_name(name: str) -> str:
    url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    return hashlib.sha1(url.encode()).hexdigest()


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_same_encoding_as_tiktoken_itself(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tiktoken's own constructor, fed our file through its cache, agrees with ours."""
    import tiktoken
    import tiktoken_ext.openai_public as public

    raw = gzip.decompress((ENCODINGS_DIR / f"{name}.tiktoken.gz").read_bytes())
    (tmp_path / _tiktoken_file_name(name)).write_bytes(raw)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # fail fast if it ever tried
    reference = getattr(public, name)()
    ours = tokens.get_encoding(name)
    assert ours is not None
    assert ours._pat_str == reference["pat_str"]
    assert ours._special_tokens == reference["special_tokens"]
    assert ours._mergeable_ranks == reference["mergeable_ranks"]
    official = tiktoken.Encoding(**reference)
    text = " ".join(SAMPLES.values())
    assert ours.encode_ordinary(text) == official.encode_ordinary(text)


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_shipped_file_has_tiktokens_hash(name: str) -> None:
    raw = gzip.decompress((ENCODINGS_DIR / f"{name}.tiktoken.gz").read_bytes())
    expected = {
        "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    }
    assert hashlib.sha256(raw).hexdigest() == expected[name]


def test_missing_file_falls_back_to_an_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(tokens.ENCODINGS_DIR_ENV, str(tmp_path))
    tokens.reset()
    try:
        assert tokens.get_encoding("o200k_base") is None
        assert tokens.count_text("abcdefg", "o200k_base") == 4
        assert tokens.is_exact("o200k_base") is False
        notice = tokens.encoding_notice("o200k_base")
        assert notice is not None
        assert notice.startswith(
            "Token counts for o200k_base are estimates: its tokenizer data could not be "
            "loaded (FileNotFoundError:"
        )
        assert notice.endswith("Reinstall gpt-ls to count exactly.")
        tokens.count_text("more", "o200k_base")
        assert [r.getMessage() for r in caplog.records].count(notice) == 1  # said once
        info = lookup_model("gpt-4o")
        # 3 priming + 3 + "user" (2 by estimate) + "Hello!" (3 by estimate)
        assert tokens.count_messages([{"role": "user", "content": "Hello!"}], info) == 11
    finally:
        monkeypatch.delenv(tokens.ENCODINGS_DIR_ENV)
        tokens.reset()
    assert tokens.is_exact("o200k_base") is True


def test_corrupt_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = gzip.decompress((ENCODINGS_DIR / "cl100k_base.tiktoken.gz").read_bytes())
    (tmp_path / "cl100k_base.tiktoken.gz").write_bytes(gzip.compress(raw[:-40]))
    monkeypatch.setenv(tokens.ENCODINGS_DIR_ENV, str(tmp_path))
    tokens.reset()
    try:
        assert tokens.get_encoding("cl100k_base") is None
        notice = tokens.encoding_notice("cl100k_base")
        assert notice is not None and "(ValueError: its sha256 is " in notice
        assert "expected 223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7" in notice
    finally:
        monkeypatch.delenv(tokens.ENCODINGS_DIR_ENV)
        tokens.reset()


def test_unknown_encoding_estimates() -> None:
    assert tokens.get_encoding("p50k_base") is None
    assert tokens.count_text("abcdef", "p50k_base") == 3
    assert tokens.encoding_notice("p50k_base") == (
        "Token counts for p50k_base are estimates: its tokenizer data could not be loaded "
        "(LookupError: gpt-ls ships no encoding named 'p50k_base'). "
        "Reinstall gpt-ls to count exactly."
    )


OFFLINE_SCRIPT = """
import json, time
from gpt_ls import tokens
from gpt_ls.models import lookup_model
start = time.monotonic()
result = {
    "vector": tokens.count_messages([{"role": "user", "content": "Hello!"}],
                                    lookup_model("gpt-3.5-turbo")),
    "cl100k": tokens.count_text("我们的语言服务器把模型放进编辑器中。", "cl100k_base"),
    "o200k": tokens.count_text("我们的语言服务器把模型放进编辑器中。", "o200k_base"),
    "exact": [tokens.is_exact("cl100k_base"), tokens.is_exact("o200k_base")],
    "seconds": time.monotonic() - start,
}
print(json.dumps(result))
"""


def test_counts_exactly_with_no_way_to_the_network(tmp_path: Path) -> None:
    """Empty tiktoken caches and proxies that swallow every connection: still exact, quick."""
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(64)  # accepts TCP connections, never answers: a download would hang
    proxy = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
    (tmp_path / "tiktoken").mkdir()
    (tmp_path / "gym").mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "TIKTOKEN_CACHE_DIR": str(tmp_path / "tiktoken"),
        "DATA_GYM_CACHE_DIR": str(tmp_path / "gym"),
        "TMPDIR": str(tmp_path),
        "GPT_LS_CACHE_DIR": str(tmp_path / "cache"),
    }
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        env[var] = env[var.lower()] = proxy
    started = time.monotonic()
    try:
        out = subprocess.run(
            [sys.executable, "-c", OFFLINE_SCRIPT],
            env=env,
            cwd=str(ROOT),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        blackhole.close()
    elapsed = time.monotonic() - started
    result = json.loads(out.stdout)
    assert (result["vector"], result["cl100k"], result["o200k"]) == (9, 15, 11)
    assert result["exact"] == [True, True]
    assert result["seconds"] < 10
    assert elapsed < 30
    assert list((tmp_path / "tiktoken").iterdir()) == []  # nothing downloaded, nothing cached


# --- gpt-ls tokens -------------------------------------------------------------------------


def _cli(args: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GPT_LS_CONFIG_DIR": str(cwd / "config")}
    return subprocess.run(
        [sys.executable, "-m", "gpt_ls", "tokens", *args],
        input=stdin,
        cwd=str(cwd),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_counts_a_file(tmp_path: Path) -> None:
    # 11 + 12 tokens: "。\n" is one token, as "。" alone was
    (tmp_path / "notes.md").write_text(SAMPLES["chinese"] + "\n" + SAMPLES["code"], "utf-8")
    out = _cli(["notes.md", "--model", "gpt-4o"], tmp_path)
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout == (
        "23 tokens in notes.md for gpt-4o (o200k_base, exact; 0.0% of the 128,000-token "
        "context window)\n"
    )


def test_cli_counts_stdin_with_the_configured_model(tmp_path: Path) -> None:
    (tmp_path / ".gpt-ls.toml").write_text('model = "gpt-4-0613"\n', "utf-8")
    out = _cli(["-"], tmp_path, stdin=SAMPLES["emoji"] * 100)
    assert out.returncode == 0
    assert out.stdout == (
        "1,500 tokens in stdin for gpt-4-0613 (cl100k_base, exact; 18.3% of the 8,192-token "
        "context window)\n"
    )


def test_cli_unknown_model_and_missing_file(tmp_path: Path) -> None:
    out = _cli(["-", "-m", "llama3"], tmp_path, stdin="hello world")
    assert out.returncode == 0
    assert out.stdout.startswith(
        "2 tokens in stdin for llama3 (cl100k_base, approximate: llama3's tokenizer is unknown, "
        "cl100k_base is a guess;")
    assert out.stderr.startswith("Model 'llama3' is not in gpt-ls's table")
    out = _cli(["missing.txt"], tmp_path)
    assert out.returncode == 1
    assert out.stderr == "gpt-ls tokens: cannot read missing.txt: No such file or directory\n"


def test_cli_run_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from gpt_ls.cli import tokens as cli_tokens

    monkeypatch.setenv("GPT_LS_CONFIG_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    parser = argparse.ArgumentParser(prog="gpt-ls")
    cli_tokens.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["tokens", "bad.txt", "--model", "o3"])
    assert args.func is cli_tokens.run
    assert args.func(args) == 1
    assert (
        capsys.readouterr().err == "gpt-ls tokens: bad.txt is not UTF-8 text (invalid start byte)\n"
    )
    (tmp_path / "ok.txt").write_text("tiktoken is great!", "utf-8")
    assert cli_tokens.run(parser.parse_args(["tokens", "ok.txt", "--model", "o3"])) == 0
    assert capsys.readouterr().out == (
        "6 tokens in ok.txt for o3 (o200k_base, exact; 0.0% of the 200,000-token context window)\n"
    )


def test_cli_says_approximate_when_the_encoding_is_a_guess(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from gpt_ls.cli import tokens as cli_tokens

    monkeypatch.setenv("GPT_LS_CONFIG_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.txt").write_text("tiktoken is great!", "utf-8")
    parser = argparse.ArgumentParser(prog="gpt-ls")
    cli_tokens.register(parser.add_subparsers(dest="command"))
    assert cli_tokens.run(parser.parse_args(["tokens", "ok.txt", "--model", "llama3"])) == 0
    out = capsys.readouterr()
    assert "not in gpt-ls's table" in out.err
    assert out.out == (
        "6 tokens in ok.txt for llama3 (cl100k_base, approximate: llama3's tokenizer is unknown, "
        "cl100k_base is a guess; 0.1% of the 8,192-token context window)\n"
    )
    assert cli_tokens.exactness("gpt-4o", "o200k_base", True) == "exact"
    monkeypatch.setattr(tokens, "is_exact", lambda name: False)
    assert cli_tokens.exactness("gpt-4o", "o200k_base", True) == (
        "approximate: the o200k_base tokenizer data could not be loaded")
