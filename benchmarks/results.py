"""The figures of one benchmark run, the machine they were measured on, and the printed table."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gpt-ls", "pygls", "lsprotocol", "openai", "tiktoken", "httpx2", "pytest-lsp")


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

    def failed(self, exc: Exception) -> None:
        """A part that raised: reported as a missed figure, so that the run goes on."""
        print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
        self.add("error", f"section failed: {type(exc).__name__}: {exc}", None, "")
        self.figures[-1].passed = False


def percentile(samples: list[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100)."""
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


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


def print_table(info: dict[str, Any], res: Results, took: float) -> None:
    """The machine, the versions, and every figure beside its target."""
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


def write_json(path: Path, info: dict[str, Any], res: Results, took: float) -> None:
    """The same figures, for a machine to read."""
    path.write_text(json.dumps({"machine": info, "seconds": took, "figures": [asdict(f) for f in res.figures]},
                               indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path}")
