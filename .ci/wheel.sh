#!/usr/bin/env bash
# Build the wheel, install it into a fresh venv (and with pipx), and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
.venv/bin/python -m build --wheel --outdir "$out/dist" . >/dev/null
wheel="$(ls "$out"/dist/gpt_ls-*.whl)"
# Capture the listing first: `producer | grep -q` under pipefail fails with SIGPIPE (141)
# whenever grep exits before the producer has written everything.
listing="$(.venv/bin/python -m zipfile -l "$wheel")"
grep -q "gpt_ls/encodings/o200k_base.tiktoken.gz" <<<"$listing"
grep -q "gpt_ls/py.typed" <<<"$listing"
python3 -m venv "$out/venv"
"$out/venv/bin/pip" install -q "$wheel"
"$out/venv/bin/gpt-ls" --version
echo "Hello, 世界 👋" | "$out/venv/bin/gpt-ls" tokens --model gpt-4o
# Without a key, ask fails with the sentence that says what to set.
if env -u OPENAI_API_KEY HOME="$out" GPT_LS_DATA_DIR="$out/data" "$out/venv/bin/gpt-ls" ask "Hello!" 2>"$out/err"; then
    echo "gpt-ls ask without a key should fail" >&2; exit 1
fi
grep -q "OPENAI_API_KEY" "$out/err"
if [ "${CI:-}" = "true" ] || command -v pipx >/dev/null; then
    "$out/venv/bin/pip" install -q pipx
    PIPX_HOME="$out/pipx" PIPX_BIN_DIR="$out/bin" "$out/venv/bin/pipx" install -q "$wheel" >/dev/null
    "$out/bin/gpt-ls" --version
fi
echo "wheel ok: $(basename "$wheel")"
