"""Completions in real batch Emacs 28: eglot's ``completion-at-point`` on gpt-ls's suggestion.

With ``gpt-ls-completions`` on, gpt-ls answers ``textDocument/completion`` with the model's
suggestion for the text at point; eglot's capf inserts it (C-M-i). The toggle sends the
setting through eglot's settings path (``workspace/didChangeConfiguration``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.editor_helpers import find_emacs, has_eglot, run_emacs
from tests.support.fakeopenai import FakeOpenAI, Reply

EMACS = find_emacs()


pytestmark = [
    pytest.mark.emacs,
    pytest.mark.skipif(not has_eglot(EMACS), reason="emacs with eglot not found: run .ci/editors.sh"),
]

# Emacs Lisp: complete at point the way C-M-i does, after sending the pending change (an
# interactive Emacs sends it after 0.5 s idle; batch Emacs is never idle).
COMPLETE = r"""
;; "No match" would stay 2 s on screen (sit-for), also in batch Emacs.
(setq minibuffer-message-timeout 0)
(defun gpt-test-complete ()
  "Run `completion-at-point' at point; return the text after it."
  (eglot--signal-textDocument/didChange)
  (completion-at-point)
  (gpt-test-text))
"""

FIB = "# 斐波那契数列 🐇\ndef fib(n):\n    return \n"
SUGGESTION = "n if n < 2 else fib(n - 1) + fib(n - 2)  # 递归 🌀"
CJK_SUGGESTION = "计算第 n 项 🧮\nprint(fib(10))"


def emacs(tmp_path: Path, api: FakeOpenAI, body: str, **params: object) -> dict:
    assert EMACS is not None
    return run_emacs(EMACS, tmp_path, api.url, COMPLETE + body, params).results


def test_completion_at_point_inserts_the_suggestion_exactly(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "fib.py"
    doc.write_text(FIB, "utf-8")
    api.rule("中文注释：", Reply(text=CJK_SUGGESTION))
    api.rule("def fib(n):", Reply(text=SUGGESTION))
    body = r"""
(setq gpt-ls-completions t)
(find-file (gpt-test-param 'doc))
(gpt-ls-start)
(gpt-test-wait "eglot to connect" (lambda () (eglot-current-server)))
(goto-char (point-min)) (forward-line 2) (end-of-line)
(gpt-test-put 'first (gpt-test-complete))
(gpt-test-put 'point_at_end (eolp))
(end-of-line) (insert "\n# 中文注释：")
(gpt-test-put 'second (gpt-test-complete))
"""
    res = emacs(tmp_path, api, body, doc=str(doc))
    assert res["first"] == f"# 斐波那契数列 🐇\ndef fib(n):\n    return {SUGGESTION}\n"
    assert res["point_at_end"] is True
    assert res["second"] == (
        f"# 斐波那契数列 🐇\ndef fib(n):\n    return {SUGGESTION}\n# 中文注释：{CJK_SUGGESTION}\n"
    )
    assert len(api.chat_requests()) == 2


def test_toggle_sends_the_setting_and_off_stops_suggestions(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("# 笔记 Notes\n今天\n", "utf-8")
    api.rule("笔记", Reply(text="学习 LSP 📚"))
    body = r"""
(gpt-test-open (gpt-test-param 'doc))
(goto-char (point-min)) (forward-line 1) (end-of-line)
(gpt-test-put 'default (gpt-test-complete))
(gpt-ls-toggle-completions)
(gpt-test-put 'sent_on (json-encode (eglot--workspace-configuration-plist (eglot-current-server))))
(gpt-test-put 'on (gpt-test-complete))
(gpt-ls-toggle-completions)
(gpt-test-put 'sent_off (json-encode (eglot--workspace-configuration-plist (eglot-current-server))))
(insert " ")
(gpt-test-put 'off (gpt-test-complete))
"""
    res = emacs(tmp_path, api, body, doc=str(doc))
    assert res["default"] == "# 笔记 Notes\n今天\n"
    assert json.loads(res["sent_on"]) == {"gpt-ls": {"completions": True}}
    assert res["on"] == "# 笔记 Notes\n今天学习 LSP 📚\n"
    assert json.loads(res["sent_off"]) == {"gpt-ls": {"completions": False}}
    assert res["off"] == "# 笔记 Notes\n今天学习 LSP 📚 \n"
    # Asked once: while completions were on.
    assert len(api.chat_requests()) == 1
    assert [m for m in res["messages"] if m.startswith("gpt-ls: completions")] == [
        "gpt-ls: completions as you type on (each suggestion is a request that costs tokens)",
        "gpt-ls: completions as you type off",
    ]
