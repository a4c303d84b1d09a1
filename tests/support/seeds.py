"""Random loops that can be replayed: each prints its seed, and ``GPT_LS_FUZZ_SEED`` sets it.

pytest shows a failing test's output, so the seed of a failure is in the log (CI's too);
``GPT_LS_FUZZ_SEED=N python -m pytest -m "slow or not slow" tests/…::test_x`` replays it.
"""

from __future__ import annotations

import os
import random

SEED_ENV = "GPT_LS_FUZZ_SEED"


def seeded(default: int) -> random.Random:
    """A ``Random`` seeded from ``$GPT_LS_FUZZ_SEED``, else ``default``; the seed is printed."""
    raw = os.environ.get(SEED_ENV, "")
    seed = int(raw) if raw.lstrip("-").isdigit() else default
    print(f"random seed {seed}: replay with {SEED_ENV}={seed}")
    return random.Random(seed)
