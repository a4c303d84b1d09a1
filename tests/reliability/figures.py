"""The suite's figures: faults tried and survived, sequences fuzzed, kills, leaks.

Tests count what they did here; ``conftest.py`` prints the totals after the run and,
when ``GPT_LS_FIGURES_FILE`` is set, writes them there as JSON (``report.py`` reads it).
"""

from __future__ import annotations

import os
import threading
from collections import Counter

#: The figures in the order they are printed, with their targets ("" = no target).
NAMES = {
    "faults tried": "",
    "faults survived": "= faults tried",
    "sequences fuzzed": "",
    "fuzz steps": "",
    "malformed JSON-RPC messages": "",
    "config payloads fuzzed": "",
    "crashes": "0",
    "hangs": "0",
    "kills survived": "",
    "leaks found": "0",
    "leak checks": "",
}

_counts: Counter[str] = Counter()
_lock = threading.Lock()


def add(name: str, n: int = 1) -> None:
    """Count ``n`` more of ``name``."""
    assert name in NAMES, name
    with _lock:
        _counts[name] += n


def snapshot() -> dict[str, int]:
    """Every figure, zero when nothing counted it."""
    with _lock:
        return {name: _counts.get(name, 0) for name in NAMES}


def fuzz_examples(default: int) -> int:
    """Hypothesis examples per fuzz test: ``GPT_LS_FUZZ_EXAMPLES`` overrides the quick default."""
    raw = os.environ.get("GPT_LS_FUZZ_EXAMPLES", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


def kill_rounds(default: int) -> int:
    """SIGKILL rounds: ``GPT_LS_KILL_ROUNDS`` overrides the quick default."""
    raw = os.environ.get("GPT_LS_KILL_ROUNDS", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else default
