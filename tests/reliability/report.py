"""Run the reliability suite and print its figures (one command, also part of ``pytest``).

    python tests/reliability/report.py                     # the quick run (as in `pytest -m slow`)
    python tests/reliability/report.py --examples 500 --kills 50 --full-faults   # the long run

It runs ``pytest tests/reliability`` (both lanes) in a child process with the figures written to a
JSON file, then prints them with their targets; the exit status is pytest's, or 1 when
a target is missed (a crash, a hang, a leak, a fault not survived).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def missed(figures: dict[str, int]) -> list[str]:
    """The targets the figures miss."""
    problems = [f"{name} = {figures[name]}" for name in ("crashes", "hangs", "leaks found") if figures[name]]
    if figures["faults survived"] != figures["faults tried"]:
        problems.append(f"faults survived {figures['faults survived']} of {figures['faults tried']}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, help="hypothesis examples per fuzz test (GPT_LS_FUZZ_EXAMPLES)")
    parser.add_argument("--kills", type=int, help="SIGKILL rounds (GPT_LS_KILL_ROUNDS)")
    parser.add_argument("--full-faults", action="store_true", help="every fault through gpt-ls ask too")
    parser.add_argument("pytest_args", nargs="*", help="more arguments for pytest")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.examples:
        env["GPT_LS_FUZZ_EXAMPLES"] = str(args.examples)
    if args.kills:
        env["GPT_LS_KILL_ROUNDS"] = str(args.kills)
    if args.full_faults:
        env["GPT_LS_FULL_FAULTS"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        env["GPT_LS_FIGURES_FILE"] = str(out)
        started = time.monotonic()
        command = [sys.executable, "-m", "pytest", "-q", "-m", "slow or not slow", str(HERE), *args.pytest_args]
        code = subprocess.call(command, cwd=ROOT, env=env)
        elapsed = time.monotonic() - started
        figures = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    if not figures:
        print("no figures were recorded (did the suite run?)")
        return code or 1
    print(f"\ngpt-ls reliability: {elapsed:.0f} s")
    for name, value in figures.items():
        print(f"  {name:>28}: {value}")
    problems = missed(figures)
    for problem in problems:
        print(f"  target missed: {problem}")
    return code or (1 if problems else 0)


if __name__ == "__main__":
    sys.exit(main())
