"""The peer language servers that start-up is compared with, installed into their own venv."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

PEERS_VENV = Path(tempfile.gettempdir()) / "gpt-ls-bench-peers"
PEERS = {"jedi-language-server": "jedi-language-server", "python-lsp-server": "pylsp"}


def peer_commands(install: bool) -> dict[str, list[str]]:
    """Commands of the peer servers, installed into their own venv when missing."""
    bin_dir = PEERS_VENV / "bin"
    missing = [p for p, exe in PEERS.items() if not (bin_dir / exe).exists()]
    if missing and install:
        print(f"  installing {', '.join(missing)} into {PEERS_VENV} …", flush=True)
        try:
            if not (bin_dir / "pip").exists():
                subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True, timeout=120)
            subprocess.run([str(bin_dir / "pip"), "install", "-q", *missing], check=True, timeout=600,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"  note: could not install the peers ({exc}); they are skipped", flush=True)
    commands = {}
    for peer, exe in PEERS.items():
        if (bin_dir / exe).exists():
            commands[peer] = [str(bin_dir / exe)]
        else:
            print(f"  note: {peer} is not installed; skipped", flush=True)
    return commands


COPILOT_DIR = Path(tempfile.gettempdir()) / "gpt-ls-bench-copilot"
COPILOT_PACKAGES = ["@github/copilot-language-server", "@github/copilot-language-server-linux-x64"]
#: The native binary of the linux-x64 package (it answers initialize without signing in).
COPILOT_BINARY = COPILOT_DIR / "node_modules/@github/copilot-language-server-linux-x64/copilot-language-server"


def copilot_command(install: bool) -> list[str] | None:
    """GitHub's copilot-language-server, installed with npm into its own folder when missing."""
    if not COPILOT_BINARY.exists() and install:
        print(f"  installing {' '.join(COPILOT_PACKAGES)} into {COPILOT_DIR} with npm …", flush=True)
        try:
            COPILOT_DIR.mkdir(exist_ok=True)
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(COPILOT_DIR),
                            *COPILOT_PACKAGES], check=True, timeout=600,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"  note: could not install copilot-language-server ({exc}); it is skipped", flush=True)
    if not COPILOT_BINARY.exists():
        print("  note: copilot-language-server is not installed; skipped", flush=True)
        return None
    return [str(COPILOT_BINARY), "--stdio"]
