"""Token counting with tiktoken, entirely offline.

tiktoken's own ``get_encoding`` downloads its rank files on first use, with no timeout, and
retries on every call when that fails; behind a firewall it hangs. gpt-ls never calls it. The
rank files ship in ``gpt_ls/encodings/`` and the ``tiktoken.Encoding`` is built here from them,
with the constructor arguments of ``tiktoken_ext.openai_public``. Building it directly, rather
than seeding tiktoken's cache directory, means no environment variable (``TIKTOKEN_CACHE_DIR=""``
disables tiktoken's cache), no read-only or cleaned-up cache directory and no corrupted cache
file can ever send tiktoken to the network, and nothing is written to disk.

Importing this module loads neither tiktoken nor the files: the first count does (0.2-0.9 s,
40-80 MB), once per process, and only requests that need an exact count make one (see
``budget.fit_by_bound``). If a file is missing or damaged, counts fall back to a high
estimate and a notice (:func:`encoding_notice`) says so; the exchange shows it once.

Long texts are counted in chunks cut where tokenization provably starts afresh (see
:func:`chunks`), and each chunk's count is cached, so budgeting the same large document again
costs little.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import accumulate, compress, repeat
from operator import add, mod, not_
from pathlib import Path
from typing import TYPE_CHECKING

from gpt_ls.models import ModelInfo, resolve

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    import tiktoken

log = logging.getLogger(__name__)

ENDOFTEXT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
ENDOFPROMPT = "<|endofprompt|>"


@dataclass(frozen=True)
class EncodingSpec:
    """What tiktoken needs besides the ranks, and the sha256 the ranks must have."""

    sha256: str
    pat_str: str
    special_tokens: Mapping[str, int]


#: Copied from tiktoken_ext/openai_public.py (tiktoken 0.14); tests compare them with it.
SPECS: dict[str, EncodingSpec] = {
    "cl100k_base": EncodingSpec(
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=(
            r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++"""
            r"""[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
        ),
        special_tokens={ENDOFTEXT: 100257, FIM_PREFIX: 100258, FIM_MIDDLE: 100259, FIM_SUFFIX: 100260,
                        ENDOFPROMPT: 100276},
    ),
    "o200k_base": EncodingSpec(
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str="|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        special_tokens={ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
    ),
}

#: Moves the directory the ``.tiktoken.gz`` files are read from (packagers, tests).
ENCODINGS_DIR_ENV = "GPT_LS_ENCODINGS_DIR"

_lock = threading.Lock()
_loaded: dict[str, tiktoken.Encoding | None] = {}
_notices: dict[str, str] = {}


def _read_ranks_file(name: str) -> bytes:
    """The gzipped rank file of ``name``, from the package or ``$GPT_LS_ENCODINGS_DIR``."""
    filename = f"{name}.tiktoken.gz"
    override = os.environ.get(ENCODINGS_DIR_ENV)
    if override:
        return (Path(override) / filename).read_bytes()
    from importlib import resources  # deferred, like tiktoken: only the first count pays

    return resources.files("gpt_ls.encodings").joinpath(filename).read_bytes()


def _parse_ranks(raw: bytes) -> dict[bytes, int]:
    """Parse tiktoken's format: one ``base64(token) rank`` pair per line."""
    fields = raw.split()
    if len(fields) % 2:
        raise ValueError("odd number of fields")
    decode = base64.b64decode
    return dict(zip(map(decode, fields[0::2]), map(int, fields[1::2]), strict=True))


def _load(name: str) -> tiktoken.Encoding:
    """Build the encoding from the shipped file; raises if it is unknown, missing or damaged."""
    spec = SPECS.get(name)
    if spec is None:
        raise LookupError(f"gpt-ls ships no encoding named {name!r}")
    raw = gzip.decompress(_read_ranks_file(name))
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.sha256:
        raise ValueError(f"its sha256 is {digest}, expected {spec.sha256}")
    import tiktoken  # deferred: start-up time matters more than the first count

    return tiktoken.Encoding(
        name,
        pat_str=spec.pat_str,
        mergeable_ranks=_parse_ranks(raw),
        special_tokens=dict(spec.special_tokens),
    )


def get_encoding(name: str) -> tiktoken.Encoding | None:
    """The tiktoken encoding ``name`` built offline, or None (callers then estimate)."""
    try:
        return _loaded[name]
    except KeyError:
        pass
    with _lock:
        if name not in _loaded:
            try:
                _loaded[name] = _load(name)
            except Exception as exc:  # any failure means "estimate", never a crash
                _loaded[name] = None
                _notices[name] = (
                    f"Token counts for {name} are estimates: its tokenizer data could not be "
                    f"loaded ({type(exc).__name__}: {exc}). Reinstall gpt-ls to count exactly."
                )
                log.warning("%s", _notices[name])
        return _loaded[name]


def encoding_notice(name: str) -> str | None:
    """The sentence to show once when ``name`` could not be loaded (after a count)."""
    return _notices.get(name)


def is_exact(name: str) -> bool:
    """Whether counts with ``name`` are exact (loads the encoding)."""
    return get_encoding(name) is not None


def preload(names: Iterable[str]) -> None:
    """Load encodings now (e.g. in a background thread) so the first request is quick."""
    for name in names:
        get_encoding(name)


def reset() -> None:
    """Forget loaded encodings, notices and cached counts (tests)."""
    with _lock:
        _loaded.clear()
        _notices.clear()
    clear_cache()


def clear_cache() -> None:
    """Forget cached chunk counts (benchmarks measure a cold document this way)."""
    global _cache_chars
    with _cache_lock:
        _cache.clear()
        _cache_chars = 0


# --- estimates -------------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """A count meant to stay above the real one: a token per 2 UTF-8 bytes, +1 per emoji.

    Characters outside the BMP (emoji, rare CJK) often cost a token per byte pair and
    more, hence the extra token each; everything else is at most one token per byte
    pair in practice (English is about one per 4 characters, Chinese one per character).
    """
    if not text:
        return 0
    utf8 = len(text.encode("utf-8", "surrogatepass"))
    astral = len(text.encode("utf-16-le", "surrogatepass")) // 2 - len(text)
    return -(-utf8 // 2) + astral


# --- chunked, cached counting ------------------------------------------------------------

#: Texts shorter than this are encoded in one call, uncached.
DIRECT_LIMIT = 4_096
#: Chunks shorter than this are encoded every time: cheaper than a cache entry.
CACHE_MIN_CHUNK = 32
#: A boundary after roughly one line in this many (chosen by the line's content).
CHUNK_EVERY = 64
#: A line at least this long always ends its chunk (when the next line allows it).
LONG_LINE = 2_048
#: Past this size a chunk ends at the next safe line break whatever its content.
CHUNK_MAX = 65_536
#: How many characters of chunks the count cache holds.
CACHE_CHARS = 8_000_000
#: Uncached text beyond this many characters is encoded on two threads (tiktoken
#: releases the GIL while it encodes).
PARALLEL_MIN = 65_536

_cache_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str], int] = OrderedDict()
_cache_chars = 0
_pool: ThreadPoolExecutor | None = None


def _restart_safe(line: str) -> bool:
    """Whether tokenization restarts at the start of ``line`` (which follows a newline).

    In both encodings a piece that contains a newline can only continue with more
    whitespace that reaches a newline (``\\s*[\\r\\n]``, ``\\s++$``) or, in o200k_base,
    with ``/`` (`` ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*``). So the break before a line that
    starts with neither ``/`` nor whitespace running into a line break is a piece
    boundary, and counts on either side add up exactly. (``str.isspace`` is a superset
    of the regex ``\\s``, which only makes this stricter.)
    """
    if not line or line[0] == "/":
        return False
    rest = line.lstrip()
    return bool(rest) and "\r" not in line[: len(line) - len(rest)]


def chunks(text: str) -> list[str]:
    """Cut ``text`` at safe line breaks, chosen by content so equal lines give equal chunks.

    A break is taken after a line whose hash picks it (about one in ``CHUNK_EVERY``) or
    after a long line, if the next line allows it (:func:`_restart_safe`): the same run
    of lines is cut the same way wherever it sits (in a prompt template, in a trimmed
    excerpt), so cached counts are reused. Only a chunk that grows past ``CHUNK_MAX``
    is cut by size. ``sum(count(c) for c in chunks(t)) == count(t)`` in both encodings.
    """
    lines = text.split("\n")
    last = len(lines) - 1
    # ends[i]: the offset just past line i's newline. Computed in C, like the picks.
    lengths = list(map(len, lines))
    ends = list(map(add, accumulate(lengths), range(1, len(lines) + 1)))
    # Lines whose hash is a multiple of CHUNK_EVERY, found with C-level iterators only.
    picks = set(
        compress(range(last), map(not_, map(mod, map(hash, lines[:last]), repeat(CHUNK_EVERY))))
    )
    if last and max(lengths[:last]) >= LONG_LINE:
        picks.update(i for i, n in enumerate(lengths[:last]) if n >= LONG_LINE)
    out: list[str] = []
    start = 0
    scanned = 0  # lines before this one were already considered for a cut by size

    def cut_by_size(upto: int) -> None:
        nonlocal start
        for j in range(scanned, upto):
            if ends[j] - start >= CHUNK_MAX and _restart_safe(lines[j + 1]):
                out.append(text[start : ends[j]])
                start = ends[j]

    for i in sorted(picks):
        if ends[i] - start > CHUNK_MAX:
            cut_by_size(i)
        if _restart_safe(lines[i + 1]):
            out.append(text[start : ends[i]])
            start = ends[i]
        scanned = i + 1
    if len(text) - start > CHUNK_MAX:
        cut_by_size(last)
    if start < len(text):
        out.append(text[start:])
    return out


def split_safe(text: str) -> list[str]:
    """Cut ``text`` at every line break where counts add up exactly (finer than chunks)."""
    lines = text.split("\n")
    out: list[str] = []
    start = at = 0
    for i in range(len(lines) - 1):
        at += len(lines[i]) + 1
        if _restart_safe(lines[i + 1]):
            out.append(text[start:at])
            start = at
    if start < len(text):
        out.append(text[start:])
    return out


def _encode_counts(enc: tiktoken.Encoding, pieces: list[str]) -> list[int]:
    return [len(enc.encode_ordinary(p)) for p in pieces]


def _encode_counts_parallel(enc: tiktoken.Encoding, pieces: list[str]) -> list[int]:
    """Counts of ``pieces``; big batches are split over two threads."""
    global _pool
    total = sum(map(len, pieces))
    if total < PARALLEL_MIN or len(pieces) < 2 or (os.cpu_count() or 1) < 2:
        return _encode_counts(enc, pieces)
    half, acc = 0, 0
    while acc < total // 2:
        acc += len(pieces[half])
        half += 1
    from concurrent.futures import ThreadPoolExecutor

    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpt-ls-tokens")
        pool = _pool
    first = pool.submit(_encode_counts, enc, pieces[:half])
    second = _encode_counts(enc, pieces[half:])
    return first.result() + second


def _counts(enc: tiktoken.Encoding, pieces: list[str]) -> list[int]:
    """Counts of chunks: cached ones looked up, the rest encoded (in parallel when big)."""
    global _cache_chars
    name = enc.name
    out: list[int | None] = []
    missing: list[int] = []
    with _cache_lock:
        for i, piece in enumerate(pieces):
            hit = _cache.get((name, piece)) if len(piece) >= CACHE_MIN_CHUNK else None
            if hit is None:
                missing.append(i)
            else:
                _cache.move_to_end((name, piece))
            out.append(hit)
    if missing:
        fresh = _encode_counts_parallel(enc, [pieces[i] for i in missing])
        with _cache_lock:
            for i, n in zip(missing, fresh, strict=True):
                out[i] = n
                piece = pieces[i]
                if len(piece) >= CACHE_MIN_CHUNK and (name, piece) not in _cache:
                    _cache[(name, piece)] = n
                    _cache_chars += len(piece)
            while _cache_chars > CACHE_CHARS and _cache:
                (_, old), _ = _cache.popitem(last=False)
                _cache_chars -= len(old)
    return [n for n in out if n is not None]


def count_chunks(pieces: list[str], encoding: str) -> list[int]:
    """Counts of several chunks (from :func:`chunks`), cached; estimates without tiktoken."""
    enc = get_encoding(encoding)
    if enc is None:
        return [estimate_tokens(p) for p in pieces]
    return _counts(enc, pieces)


def count_text(text: str, encoding: str) -> int:
    """Tokens in ``text`` as plain text (special-token strings count as ordinary text)."""
    enc = get_encoding(encoding)
    if enc is None:
        return estimate_tokens(text)
    if len(text) < DIRECT_LIMIT:
        return len(enc.encode_ordinary(text))
    return sum(_counts(enc, chunks(text)))


def message_overhead(info: ModelInfo) -> tuple[int, int]:
    """(tokens per message, tokens per ``name`` field) of the chat format for this model."""
    if resolve(info.name) == "gpt-3.5-turbo-0301":
        return 4, -1  # <|start|>{role/name}\n{content}<|end|>\n; a name replaces the role
    return 3, 1


#: Every reply is primed with <|start|>assistant<|message|>.
REPLY_PRIMING = 3


def count_messages(messages: list[dict[str, str]], info: ModelInfo) -> int:
    """Prompt tokens of a chat request, as the API bills them (with the format's overhead)."""
    per_message, per_name = message_overhead(info)
    total = REPLY_PRIMING
    for message in messages:
        total += per_message
        for key, value in message.items():
            total += count_text(value, info.encoding)
            if key == "name":
                total += per_name
    return total
