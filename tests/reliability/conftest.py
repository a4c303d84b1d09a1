"""Print the reliability figures after the run (and save them for ``report.py``)."""

from __future__ import annotations

import json
import os
from typing import Any

from tests.reliability import figures


def pytest_terminal_summary(terminalreporter: Any) -> None:
    counts = figures.snapshot()
    if not any(counts.values()):
        return
    terminalreporter.section("gpt-ls reliability figures")
    for name, value in counts.items():
        target = figures.NAMES[name]
        terminalreporter.write_line(f"{name:>30}: {value}" + (f"   (target {target})" if target else ""))
    path = os.environ.get("GPT_LS_FIGURES_FILE")
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(counts, out, indent=2)
