"""gpt-ls in real batch Emacs with eglot and editors/emacs/gpt-ls.el.

Debian's Emacs 28 with ``elpa-eglot`` (.ci/editors.sh installs them); Emacs 29+ has
eglot built in.  The tests drive eglot the way a user does (code actions, the
gpt-ls-* commands) and assert on the buffer text and the hover.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.editor_helpers import find_emacs, has_eglot, run_emacs
from tests.support.fakeopenai import FakeOpenAI, Reply

EMACS = find_emacs()


pytestmark = [
    pytest.mark.emacs,
    pytest.mark.skipif(
        not has_eglot(EMACS), reason="emacs with eglot not found: run .ci/editors.sh"
    ),
]


def test_ask_code_action_then_explain_hover(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("Intro line\n今天天气怎么样？☀️\nlast line\n", "utf-8")
    api.script(
        Reply(text="晴天，25 度 🌞", chunk_size=2),
        Reply(text="A question about *today's weather*.", chunk_size=6),
        Reply(text="Sunny, **25 °C** 🌞", chunk_size=6),
    )
    body = r"""
(let* ((server (gpt-test-open (gpt-test-param 'doc)))
       (beg (progn (goto-char (point-min)) (forward-line 1) (point)))
       (end (line-end-position))
       (actions (eglot-code-actions beg end nil nil))
       (ask (cl-find "GPT: Ask" actions
                     :key (lambda (a) (plist-get a :title)) :test #'equal))
       (command (plist-get ask :command)))
  (gpt-test-put 'server_class (symbol-name (eieio-object-class server)))
  (gpt-test-put 'titles (vconcat (mapcar (lambda (a) (plist-get a :title)) actions)))
  ;; Run it the way eglot's code-action menu does.
  (eglot-execute-command server (intern (plist-get command :command))
                         (plist-get command :arguments))
  (gpt-test-wait "the reply" (lambda () (string-match-p "25 度 🌞" (gpt-test-text))))
  (gpt-test-wait "the request to end"
                 (lambda () (eql 0 (plist-get gpt-ls-status :running))))
  (gpt-test-put 'after_ask (gpt-test-text))
  ;; Explain through the package's command, on the question line.
  (goto-char (point-min)) (forward-line 1)
  (setq gpt-ls-last-result nil)
  (gpt-ls-explain (line-beginning-position) (line-end-position))
  (gpt-test-wait "the explanation" (lambda () gpt-ls-last-result))
  (gpt-test-put 'explain_result gpt-ls-last-result)
  (let* ((params (list :textDocument (eglot--TextDocumentIdentifier)
                       :position (list :line 1 :character 2)))
         (hover (jsonrpc-request server :textDocument/hover params)))
    (gpt-test-put 'hover (eglot--hover-info (plist-get hover :contents))))
  (gpt-test-put 'after_explain (gpt-test-text))
  ;; Explain from eglot's code-action menu: the explanation shows in *gpt-ls*.
  (goto-char (point-min)) (forward-line 2)
  (let* ((explain (cl-find "GPT: Explain selection"
                           (eglot-code-actions (line-beginning-position) (line-end-position))
                           :key (lambda (a) (plist-get a :title)) :test #'equal))
         (command (plist-get explain :command)))
    (eglot-execute-command server (intern (plist-get command :command))
                           (plist-get command :arguments)))
  (gpt-test-wait "the new explanation in *gpt-ls*"
                 (lambda () (with-current-buffer "*gpt-ls*"
                              (string-match-p "Sunny" (gpt-test-text)))))
  (with-current-buffer "*gpt-ls*" (gpt-test-put 'explain_buffer (gpt-test-text))))
"""
    res = run_emacs(EMACS or "emacs", tmp_path, api.url, body, {"doc": str(doc)}).results
    assert res["server_class"] == "gpt-ls-server"
    assert list(res["titles"])[:3] == ["GPT: Ask", "GPT: Explain selection", "GPT: Draft email"]
    assert res["after_ask"] == "Intro line\n今天天气怎么样？☀️\n晴天，25 度 🌞\nlast line\n"
    assert res["after_explain"] == res["after_ask"]
    assert res["explain_buffer"] == "Sunny, **25 °C** 🌞"
    assert res["explain_result"] == "A question about *today's weather*."
    assert res["hover"].startswith(
        "A question about *today's weather*.\n\n---\n*gpt-4.1-mini · "
    )
    # Progress, as this package shows it in the echo area.
    assert "gpt-ls: Ask waiting for the model" in res["messages"]
    assert not [m for m in res["messages"] if "error" in m.lower()]
    chats = api.chat_requests()
    assert len(chats) == 3
    assert "今天天气怎么样？☀️" in json.dumps(chats[0].body, ensure_ascii=False)


def test_commands_on_a_region_email_continue_new_and_history(
    tmp_path: Path, api: FakeOpenAI
) -> None:
    doc = tmp_path / "mail.txt"
    doc.write_text("To do: 周五 午餐 🍜 with Bob, 12:30\nthanks\n", "utf-8")
    api.script(
        Reply(text="Subject: 周五午餐 🍜\n\nHi Bob,\n12:30 works.\n\nBest", chunk_size=4),
        Reply(text="Sure 👍", chunk_size=3),
        Reply(text="Fresh start 🌱"),
    )
    body = r"""
(gpt-test-open (gpt-test-param 'doc))
(goto-char (point-min))
(let* ((beg (progn (search-forward "To do: ") (point)))
       (end (progn (search-forward "12:30") (point))))
  (setq gpt-ls-status nil)
  (gpt-ls-draft-email beg end))
(gpt-test-wait "the e-mail" (lambda () (and gpt-ls-status
                                            (eql 0 (plist-get gpt-ls-status :running)))))
(gpt-test-put 'after_email (gpt-test-text))
;; Continue on the last line ("thanks"), as a region.
(goto-char (point-max)) (forward-line -1)
(setq gpt-ls-status nil)
(gpt-ls-continue (line-beginning-position) (line-end-position))
(gpt-test-wait "the follow-up" (lambda () (and gpt-ls-status
                                               (eql 0 (plist-get gpt-ls-status :running)))))
(gpt-test-put 'after_continue (gpt-test-text))
(setq gpt-ls-last-result nil)
(gpt-ls-new-conversation)
(gpt-test-wait "the new conversation" (lambda () gpt-ls-last-result))
(gpt-ls-show-history)
(gpt-test-wait "the history document"
               (lambda () (get-file-buffer (eglot--uri-to-path
                                            (or (plist-get gpt-ls-last-result :uri) "file:///x")))))
(with-current-buffer (get-file-buffer (eglot--uri-to-path (plist-get gpt-ls-last-result :uri)))
  (gpt-test-put 'history (gpt-test-text)))
(setq gpt-ls-last-result nil)
(gpt-ls-check)
(gpt-test-wait "the check" (lambda () gpt-ls-last-result))
(gpt-test-put 'check_ok (plist-get gpt-ls-last-result :ok))
"""
    res = run_emacs(EMACS or "emacs", tmp_path, api.url, body, {"doc": str(doc)}).results
    assert chat_user_text(api, 0).endswith("Selection:\n周五 午餐 🍜 with Bob, 12:30")
    assert res["after_email"] == (
        "To do: 周五 午餐 🍜 with Bob, 12:30\nSubject: 周五午餐 🍜\n\nHi Bob,\n12:30 works.\n\n"
        "Best\nthanks\n"
    )
    assert chat_user_text(api, 1).endswith("Selection:\nthanks")
    assert [m["content"] for m in api.chat_requests()[1].messages if m["role"] == "assistant"] == [
        "Subject: 周五午餐 🍜\n\nHi Bob,\n12:30 works.\n\nBest"
    ]
    assert res["after_continue"] == res["after_email"] + "Sure 👍\n"
    assert res["history"].startswith("# gpt-ls history")
    # One conversation: "New conversation" with nothing asked yet leaves no empty entry.
    assert res["history"].count(" messages · ") == 1
    assert "· 4 messages ·" in res["history"]
    assert res["check_ok"] is True
    assert [m for m in res["messages"] if "OK: gpt-4.1-mini answered in " in m]


def chat_user_text(api: FakeOpenAI, i: int) -> str:
    """The last user message of chat request ``i``: it ends with the exact selection."""
    return [m for m in api.chat_requests()[i].messages if m["role"] == "user"][-1]["content"]


def test_cancel_keeps_the_text_so_far(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "slow.txt"
    doc.write_text("Tell me a long story 📖\nafter\n", "utf-8")
    slow = "".join(f"word{i:02d} " for i in range(40))
    api.script(Reply(text=slow, chunk_size=7, delay=0.15))
    body = r"""
(gpt-test-open (gpt-test-param 'doc))
(goto-char (point-min))
(setq gpt-ls-status nil)
(gpt-ls-ask (line-beginning-position) (line-end-position))
(gpt-test-wait "the first words" (lambda () (string-match-p "word02" (gpt-test-text))))
(gpt-test-put 'mode_line_running (gpt-ls-mode-line))
(gpt-ls-cancel)
(gpt-test-wait "the request to end" (lambda () (eql 0 (plist-get gpt-ls-status :running))) 5)
(let ((deadline (+ (float-time) 0.3))) (while (< (float-time) deadline) (accept-process-output nil 0.05)))
(gpt-test-put 'at_end (gpt-test-text))
;; Nothing more may arrive (the reply would stream for 4 more seconds).
(let ((deadline (+ (float-time) 1.5))) (while (< (float-time) deadline) (accept-process-output nil 0.05)))
(gpt-test-put 'later (gpt-test-text))
(gpt-test-put 'mode_line_idle (gpt-ls-mode-line))
"""
    res = run_emacs(EMACS or "emacs", tmp_path, api.url, body, {"doc": str(doc)}).results
    assert res["later"] == res["at_end"]
    assert re.fullmatch(r"GPT\[1 \d+tok\]", res["mode_line_running"])
    assert res["mode_line_idle"] == ""
    first, inserted, marker, after = res["at_end"].split("\n", 3)
    assert first == "Tell me a long story 📖"
    assert marker == "[gpt-ls: reply unfinished (cancelled)]"
    assert after == "after\n"
    assert inserted.startswith("word00 word01 word02")
    assert slow.startswith(inserted)
    assert len(inserted) < len(slow) - 70


def test_late_answer_to_progress_create(tmp_path: Path, api: FakeOpenAI) -> None:
    # Emacs 28's jsonrpc really answers late when a synchronous request (eglot's default
    # eglot-execute-command) returns in the same read as the server's progress/create:
    # the request stays unread until more output arrives. Here the late answer is made
    # deterministic: the client takes 6 s to answer progress/create.
    doc = tmp_path / "late.txt"
    doc.write_text("Question 问题?\nend\n", "utf-8")
    api.script(Reply(text="Answer 答案"))
    body = r"""
(cl-defmethod eglot-handle-request
  ((_server gpt-ls-server) (_method (eql window/workDoneProgress/create)) &key _token)
  (sleep-for 6)
  nil)
(progn
  (gpt-test-open (gpt-test-param 'doc))
  (goto-char (point-min))
  (gpt-ls-ask (line-beginning-position) (line-end-position))
  (gpt-test-wait "the reply" (lambda () (string-match-p "答案" (gpt-test-text))) 20)
  (gpt-test-wait "the request to end" (lambda () (eql 0 (plist-get gpt-ls-status :running))))
  (gpt-test-put 'text (gpt-test-text)))
"""
    res = run_emacs(EMACS or "emacs", tmp_path, api.url, body, {"doc": str(doc)}).results
    assert res["text"] == "Question 问题?\nAnswer 答案\nend\n"
    assert not [m for m in res["messages"] if "internal error" in m]


def test_typing_elsewhere_during_streaming(tmp_path: Path, api: FakeOpenAI) -> None:
    # Eglot bumps the document version at every keystroke but sends didChange later
    # (after 0.5 s idle): gpt-ls's versioned edits must still land, intact.
    doc = tmp_path / "typing.txt"
    doc.write_text("top\nQuestion 🙂?\nbottom\n", "utf-8")
    api.script(Reply(text="Answer 答案 line one\nline two 🎉\nline three", chunk_size=3, delay=0.1))
    body = r"""
(gpt-test-open (gpt-test-param 'doc))
(goto-char (point-min)) (forward-line 1)
(setq gpt-ls-status nil)
(gpt-ls-ask (line-beginning-position) (line-end-position))
(gpt-test-wait "the first words" (lambda () (string-match-p "Answer" (gpt-test-text))))
;; Each keystroke must land while the reply still streams: only part of it is in, still running.
(defun gpt-test-streaming ()
  (if (and (eql 1 (plist-get gpt-ls-status :running))
           (not (string-match-p "line three" (gpt-test-text))))
      t :json-false))
(gpt-test-put 'streaming_above (gpt-test-streaming))
(save-excursion (goto-char (point-min)) (insert "typed above 中文\n"))
(gpt-test-wait "more of the reply" (lambda () (string-match-p "line two" (gpt-test-text))))
(gpt-test-put 'streaming_below (gpt-test-streaming))
(save-excursion (goto-char (point-max)) (insert "typed below 🙂\n"))
(gpt-test-wait "the request to end" (lambda () (eql 0 (plist-get gpt-ls-status :running))))
(gpt-test-put 'final (gpt-test-text))
"""
    res = run_emacs(EMACS or "emacs", tmp_path, api.url, body, {"doc": str(doc)}).results
    assert (res["streaming_above"], res["streaming_below"]) == (True, True), "the reply ended before the typing"
    assert res["final"] == (
        "typed above 中文\ntop\nQuestion 🙂?\nAnswer 答案 line one\nline two 🎉\nline three\n"
        "bottom\ntyped below 🙂\n"
    )
    assert not [m for m in res["messages"] if "rror" in m or "require version" in m]


def test_start_in_a_code_buffer_outside_the_default_modes(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "calc.py"
    doc.write_text("def area(r):\n    return 3.14 * r * r  # 圆的面积\n", "utf-8")
    api.script(Reply(text="# Use math.pi for precision 🎯"))
    body = r"""
(find-file (gpt-test-param 'doc))
(gpt-test-put 'mode (symbol-name major-mode))
(gpt-ls-start)
(gpt-test-wait "eglot to connect" (lambda () (eglot-current-server)))
(gpt-test-put 'server_class (symbol-name (eieio-object-class (eglot-current-server))))
(goto-char (point-min)) (forward-line 1)
(setq gpt-ls-status nil)
(gpt-ls-ask (line-beginning-position) (line-end-position))
(gpt-test-wait "the request to end" (lambda () (and gpt-ls-status
                                                    (eql 0 (plist-get gpt-ls-status :running)))))
(gpt-test-put 'text (gpt-test-text))
"""
    res = run_emacs(EMACS or "emacs", tmp_path, api.url, body, {"doc": str(doc)}).results
    assert res["mode"] == "python-mode"
    assert res["server_class"] == "gpt-ls-server"
    assert res["text"] == (
        "def area(r):\n    return 3.14 * r * r  # 圆的面积\n# Use math.pi for precision 🎯\n"
    )
    assert "File: calc.py (language: python)" in chat_user_text(api, 0)


def test_streamed_edits_leave_no_messages(tmp_path: Path, api: FakeOpenAI) -> None:
    # Eglot echoes and logs three lines per workspace/applyEdit; a streamed reply is many.
    doc = tmp_path / "quiet.txt"
    doc.write_text("Count to twelve 🔢\nend\n", "utf-8")
    reply = " ".join(f"数{i}" for i in range(1, 13))
    api.script(Reply(text=reply, chunk_size=2, delay=0.05))
    body = r"""
(gpt-test-open (gpt-test-param 'doc))
(goto-char (point-min))
(setq gpt-ls-status nil)
(gpt-ls-ask (line-beginning-position) (line-end-position))
(gpt-test-wait "the reply" (lambda () (and gpt-ls-status
                                           (eql 0 (plist-get gpt-ls-status :running)))))
(gpt-test-put 'text (gpt-test-text))
(gpt-test-put 'log (with-current-buffer "*Messages*" (buffer-string)))
"""
    run = run_emacs(EMACS or "emacs", tmp_path, api.url, body, {"doc": str(doc)})
    res = run.results
    assert res["text"] == f"Count to twelve 🔢\n{reply}\nend\n"
    for shown in (res["log"], run.stderr):  # *Messages*, and the echo area (stderr in batch)
        assert "applying" not in shown
        assert "Edit successful" not in shown
        # Progress is still shown.
        assert "gpt-ls: Ask waiting for the model" in shown


def test_history_and_check_are_shown_once_in_a_buffer(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("hello 你好 👋\n", "utf-8")
    api.script(Reply(text="Hi 嗨"))
    body = r"""
(gpt-test-open (gpt-test-param 'doc))
(goto-char (point-min))
(setq gpt-ls-status nil)
(gpt-ls-ask (line-beginning-position) (line-end-position))
(gpt-test-wait "the reply" (lambda () (and gpt-ls-status
                                           (eql 0 (plist-get gpt-ls-status :running)))))
(setq gpt-ls-last-result nil)
(gpt-ls-show-history)
(gpt-test-wait "the history" (lambda () gpt-ls-last-result))
(gpt-test-put 'history_windows
              (length (cl-remove-if-not
                       (lambda (w) (equal (buffer-name (window-buffer w)) "history.md"))
                       (window-list nil nil))))
(gpt-test-put 'history (with-current-buffer "history.md" (gpt-test-text)))
;; A second time: the rewritten file is reread without a question, still in one window.
(setq gpt-ls-last-result nil)
(gpt-ls-show-history)
(gpt-test-wait "the history again" (lambda () gpt-ls-last-result))
(gpt-test-put 'history_windows_again
              (length (cl-remove-if-not
                       (lambda (w) (equal (buffer-name (window-buffer w)) "history.md"))
                       (window-list nil nil))))
(setq gpt-ls-last-result nil)
(gpt-ls-check)
(gpt-test-wait "the check" (lambda () gpt-ls-last-result))
(gpt-test-wait "the report" (lambda () (get-buffer "*gpt-ls report*")))
(gpt-test-put 'report (with-current-buffer "*gpt-ls report*" (gpt-test-text)))
(gpt-test-put 'report_shown (and (get-buffer-window "*gpt-ls report*") t))
(gpt-test-put 'log (with-current-buffer "*Messages*" (buffer-string)))
"""
    res = run_emacs(EMACS or "emacs", tmp_path, api.url, body, {"doc": str(doc)}).results
    assert res["history"].startswith("# gpt-ls history")
    assert res["history_windows"] == 1
    assert res["history_windows_again"] == 1
    assert "# gpt-ls history" not in res["log"]
    assert res["report"].startswith("OK: gpt-4.1-mini answered in ")
    assert "Settings (value, then where it came from):" in res["report"]
    assert res["report_shown"] is True
    # One short line in the echo area, pointing at the report.
    [verdict] = [m for m in res["messages"] if "answered in" in m]
    assert re.fullmatch(
        r"gpt-ls: OK: gpt-4\.1-mini answered in \d+ ms \(all of it in \*gpt-ls report\*\)", verdict
    )
    assert "Settings (value" not in res["log"]
    assert "sk-test" not in json.dumps(res, ensure_ascii=False)


def test_summarize_from_the_code_actions_shows_its_reply(tmp_path: Path, api: FakeOpenAI) -> None:
    # Summarize's output is a hover, like Explain's: the reply shows in *gpt-ls*.
    doc = tmp_path / "report.txt"
    doc.write_text("季度收入增长 12% 📈，成本下降。\nend\n", "utf-8")
    api.script(Reply(text="Revenue up 12% 📈, costs down.", chunk_size=4))
    body = r"""
(let* ((server (gpt-test-open (gpt-test-param 'doc)))
       (summarize (cl-find "GPT: Summarize"
                           (eglot-code-actions (point-min) (line-end-position))
                           :key (lambda (a) (plist-get a :title)) :test #'equal))
       (command (plist-get summarize :command)))
  (eglot-execute-command server (intern (plist-get command :command))
                         (plist-get command :arguments))
  (gpt-test-wait "the summary in *gpt-ls*"
                 (lambda () (and (get-buffer "*gpt-ls*")
                                 (with-current-buffer "*gpt-ls*"
                                   (string-match-p "Revenue" (gpt-test-text))))))
  (gpt-test-put 'shown (with-current-buffer "*gpt-ls*" (gpt-test-text)))
  (gpt-test-put 'text (gpt-test-text)))
"""
    res = run_emacs(EMACS or "emacs", tmp_path, api.url, body, {"doc": str(doc)}).results
    assert res["shown"] == "Revenue up 12% 📈, costs down."
    assert res["text"] == "季度收入增长 12% 📈，成本下降。\nend\n"


def test_a_failed_edit_is_still_reported(tmp_path: Path, api: FakeOpenAI) -> None:
    # Quiet edits hide eglot's chatter, not failures: an edit for another version of the
    # buffer is refused, the server hears of it, says so and opens the reply as a document.
    doc = tmp_path / "locked.txt"
    doc.write_text("Question 问题?\nend\n", "utf-8")
    api.script(Reply(text="Answer 答案 🎯", chunk_size=4))
    body = r"""
(gpt-test-open (gpt-test-param 'doc))
(goto-char (point-min))
(setq gpt-ls-status nil)
(gpt-ls-ask (line-beginning-position) (line-end-position))
;; The buffer's version moves on without a didChange: the server's edits are now stale.
(setq eglot--versioned-identifier (+ eglot--versioned-identifier 50))
(gpt-test-wait "the request to end" (lambda () (and gpt-ls-status
                                                    (eql 0 (plist-get gpt-ls-status :running)))))
(gpt-test-wait "the reply document" (lambda () (cl-find-if (lambda (b) (string-match-p "-ask-" (buffer-name b)))
                                                          (buffer-list))))
(gpt-test-put 'text (gpt-test-text))
(gpt-test-put 'reply (with-current-buffer (cl-find-if (lambda (b) (string-match-p "-ask-" (buffer-name b)))
                                                      (buffer-list))
                       (gpt-test-text)))
(gpt-test-put 'log (with-current-buffer "*Messages*" (buffer-string)))
"""
    res = run_emacs(EMACS or "emacs", tmp_path, api.url, body, {"doc": str(doc)}).results
    assert res["text"] == "Question 问题?\nend\n"
    assert res["reply"] == "# GPT: Ask\n\nAnswer 答案 🎯\n"
    assert "gpt-ls could not put the whole reply into the document" in res["log"]


def _dir_locals(repo: Path, config: str) -> None:
    """A repository's .dir-locals.el setting `eglot-workspace-configuration` (applied unasked)."""
    (repo / ".dir-locals.el").write_text(
        f"((nil . ((eglot-workspace-configuration . {config}))))\n", "utf-8")


ASK_QUESTION = r"""
(defun gpt-test-ask ()
  (goto-char (point-min))
  (setq gpt-ls-status nil)
  (gpt-ls-ask (line-beginning-position) (line-end-position))
  (gpt-test-wait "the reply" (lambda () (and gpt-ls-status
                                             (eql 0 (plist-get gpt-ls-status :running))))))
"""


def test_dir_locals_cannot_set_restricted_settings(tmp_path: Path, api: FakeOpenAI) -> None:
    repo = tmp_path / "cloned repo"
    repo.mkdir()
    doc = repo / "notes.txt"
    doc.write_text("今天天气怎么样？☀️\n", "utf-8")
    marker, flat_marker = tmp_path / "PWNED", tmp_path / "PWNED-flat"
    with FakeOpenAI() as evil:
        # The gpt-ls section and a flat object (the server reads both); `model` shapes the
        # prompt only and still applies.
        _dir_locals(repo, (
            f'(:apiKeyCommand "touch {flat_marker}" :baseUrl "{evil.url}"'
            f' :gpt-ls (:apiKeyCommand "touch {marker}" :baseUrl "{evil.url}"'
            ' :headers (:X-Planted "from-the-repo") :organization "org-planted"'
            ' :historyMaxConversations 0 :model "gpt-from-dir-locals"))'))
        api.script(Reply(text="晴天 🌞"))
        body = ASK_QUESTION + r"""
(gpt-test-open (gpt-test-param 'doc))
(gpt-test-put 'local (local-variable-p 'eglot-workspace-configuration))
(gpt-test-ask)
(gpt-test-put 'text (gpt-test-text))
(gpt-test-put 'sent (json-encode (eglot--workspace-configuration-plist (eglot-current-server))))
"""
        res = run_emacs(EMACS or "emacs", tmp_path, api.url, body, {"doc": str(doc)}).results
        assert evil.requests == []
    assert res.get("error") is None
    assert res["local"] is True  # Emacs applied the repository's value without a prompt
    assert res["text"] == "今天天气怎么样？☀️\n晴天 🌞\n"
    assert not marker.exists() and not flat_marker.exists()
    chats = api.chat_requests()
    assert len(chats) == 1
    headers = {k.lower(): v for k, v in chats[0].headers.items()}
    assert "x-planted" not in headers and "openai-organization" not in headers
    assert headers["authorization"] == "Bearer sk-test"
    assert chats[0].body["model"] == "gpt-from-dir-locals"
    assert json.loads(res["sent"]) == {"gpt-ls": {"model": "gpt-from-dir-locals"}}
    said = [m for m in res["messages"] if m.startswith("gpt-ls: ignored ")]
    assert said == [
        "gpt-ls: ignored apiKeyCommand, baseUrl, headers, organization,"
        f" historyMaxConversations from the local variables of {repo}/: they choose endpoints,"
        " credentials and programs; M-x gpt-ls-allow-local-settings to use them"
    ]


def test_dir_locals_restricted_settings_apply_once_the_user_allows_them(
    tmp_path: Path, api: FakeOpenAI
) -> None:
    repo = tmp_path / "own project"
    repo.mkdir()
    doc = repo / "notes.txt"
    doc.write_text("question\n", "utf-8")
    _dir_locals(repo, '(:gpt-ls (:headers (:X-Team "mine")))')
    custom = tmp_path / "custom.el"
    api.script(Reply(text="one"), Reply(text="two"), Reply(text="three"))
    body = ASK_QUESTION + r"""
(setq custom-file (gpt-test-param 'custom))
(setq user-init-file (expand-file-name "init.el" (file-name-directory custom-file)))
(gpt-test-open (gpt-test-param 'doc))
(gpt-test-ask)
;; Declined: nothing changes.
(cl-letf (((symbol-function 'yes-or-no-p) (lambda (_prompt) nil)))
  (gpt-ls-allow-local-settings))
(gpt-test-ask)
(cl-letf (((symbol-function 'yes-or-no-p)
           (lambda (prompt) (gpt-test-put 'prompt prompt) t)))
  (gpt-ls-allow-local-settings))
(gpt-test-ask)
(gpt-test-put 'allowed (prin1-to-string gpt-ls-allowed-local-settings))
"""
    res = run_emacs(EMACS or "emacs", tmp_path, api.url, body,
                    {"doc": str(doc), "custom": str(custom)}).results
    assert res.get("error") is None
    chats = api.chat_requests()
    assert len(chats) == 3
    assert [{k.lower(): v for k, v in c.headers.items()}.get("x-team") for c in chats] == [None, None, "mine"]
    assert res["prompt"].startswith(f"gpt-ls: let the local variables of {repo}/ set headers ")
    assert str(repo) in res["allowed"]
    # Saved for the next session (the user's custom file), keyed by the value's hash.
    assert "gpt-ls-allowed-local-settings" in custom.read_text("utf-8")
