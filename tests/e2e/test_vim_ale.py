"""gpt-ls in real Vim with Debian's ALE, which advertises ``applyEdit: false``.

ALE never answers ``workspace/applyEdit``; gpt-ls must not send it, must not hang, and
must still deliver the whole reply (as a message, which ALE shows in its preview).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.editor_helpers import find_vim_ale, run_vim_ale
from tests.support.fakeopenai import FakeOpenAI, Reply

VIM = find_vim_ale()
ALE_CONFIG = Path(__file__).resolve().parents[2] / "editors" / "vim" / "ale.vim"

pytestmark = [
    pytest.mark.vim,
    pytest.mark.skipif(VIM is None, reason="vim (+job) or vim-ale not found: run .ci/editors.sh"),
]


def test_ale_code_action_ask_reply_arrives_as_a_message(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "question.txt"
    doc.write_text("intro\nWhat is 6 × 7? 你好 🙂\nend\n", "utf-8")
    api.script(Reply(text="42 — 四十二 🎉\nSecond line.", chunk_size=4))
    body = r"""
" The configuration users copy from editors/vim/ale.vim (gpt-ls found on PATH).
execute 'source ' . fnameescape(g:P.config)
execute 'edit ' . fnameescape(g:P.doc)
set filetype=text
ALELint
call WaitFor('ALE to connect', 'AleConnected()', 20000)
let g:choice = '1'
execute "normal! 2GV\<Esc>"
let s:start = reltime()
'<,'>ALECodeAction
call WaitFor('the reply', 'PreviewText() =~# "Second line"', 20000)
let g:R.seconds = reltimefloat(reltime(s:start))
let g:R.preview = PreviewText()
let g:R.buffer = join(getbufline(bufnr(g:P.doc), 1, '$'), "\n")
"""
    params = {"doc": str(doc), "config": str(ALE_CONFIG)}
    res = run_vim_ale(VIM or "vim", tmp_path, api.url, body, params).results
    assert res["menu"].startswith("Code Fixes:\n1) GPT: Ask\n2) GPT: Explain selection\n")
    assert "42 — 四十二 🎉\nSecond line." in res["preview"]
    # The buffer is untouched: ALE cannot take edits from the server.
    assert res["buffer"] == "intro\nWhat is 6 × 7? 你好 🙂\nend"
    assert res["seconds"] < 10
    assert api.chat_requests()[0].messages[-1]["content"].endswith(
        "Selection:\nWhat is 6 × 7? 你好 🙂"
    )
