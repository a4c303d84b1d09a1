-- gpt-ls for Neovim >= 0.11: optional setup, user commands and progress display.
--
-- Everything here talks to the server through its LSP commands (`gpt-ls.ask`, ...);
-- the server does the work and streams the reply back as workspace/applyEdit.

local M = {}

M.name = 'gpt_ls'

--- Defaults of the options `setup()` accepts (server settings live under `settings`).
M.defaults = {
  -- Server command; nil keeps `lsp/gpt_ls.lua`'s `{ 'gpt-ls' }`.
  cmd = nil,
  -- gpt-ls settings, camelCase as on the wire, e.g. { model = 'gpt-4.1-mini', contextLines = 40 }.
  settings = {},
  -- Restrict to these filetypes (nil: every buffer that has a filetype).
  filetypes = nil,
  -- Call vim.lsp.enable('gpt_ls') from setup().
  enable = true,
  -- Show work-done progress ("gpt-ls: Ask 120 tokens") in the message area.
  progress = true,
  -- Open the result of every action whose output is a hover (Explain, Summarize, your own
  -- `output = "hover"` actions) in a floating window; it also stays as the hover (`K`).
  explain_float = true,
  -- Completions as you type (the `completions` setting; each suggestion costs tokens):
  -- true turns them on, false off, nil follows `settings.completions` (off by default).
  -- `:GptCompletions` toggles them while Neovim runs.
  completions = nil,
}

M.options = vim.deepcopy(M.defaults)

--- The last `gpt-ls/status` notification, for statuslines.
M.last_status = { running = 0, tokens = 0, message = '' }

--- Action commands: user command name -> server command and title.
M.actions = {
  GptAsk = { command = 'gpt-ls.ask', title = 'GPT: Ask' },
  GptExplain = { command = 'gpt-ls.explain', title = 'GPT: Explain selection' },
  GptEmail = { command = 'gpt-ls.draftEmail', title = 'GPT: Draft email' },
  GptContinue = { command = 'gpt-ls.continue', title = 'GPT: Continue conversation' },
}

local function notify(msg, level)
  vim.notify('gpt-ls: ' .. msg, level or vim.log.levels.INFO)
end

--- Why no gpt-ls client is attached to `bufnr`, and what to do about it.
local function not_attached_reason(bufnr)
  if not (vim.lsp.is_enabled and vim.lsp.is_enabled(M.name)) then
    return 'not enabled: add vim.lsp.enable("gpt_ls") (or require("gpt_ls").setup{}) to init.lua'
  end
  local filetype = vim.bo[bufnr].filetype
  if filetype == '' then
    -- vim.lsp.enable starts servers on the FileType event, which such a buffer never fires.
    return 'this buffer has no filetype, and Neovim starts language servers only in buffers '
      .. 'that have one: set one (e.g. :setfiletype text or :setfiletype markdown) and run '
      .. 'the command again'
  end
  local ok, config = pcall(function() return vim.lsp.config[M.name] end)
  local filetypes = ok and type(config) == 'table' and config.filetypes or nil
  if filetypes and not vim.list_contains(filetypes, filetype) then
    return ('not started for filetype "%s": the gpt_ls config lists only %s'):format(
      filetype, table.concat(filetypes, ', '))
  end
  return 'not attached to this buffer (did the server fail to start?); see :checkhealth gpt_ls'
end

--- The gpt-ls client attached to `bufnr`, or nil (with a message saying what to do).
function M.client(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local client = vim.lsp.get_clients({ bufnr = bufnr, name = M.name })[1]
  if not client then
    notify(not_attached_reason(bufnr), vim.log.levels.ERROR)
  end
  return client
end

--- For commands that need no document: this buffer's client, else any running one.
local function any_client()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = vim.lsp.get_clients({ bufnr = bufnr, name = M.name })[1]
    or vim.lsp.get_clients({ name = M.name })[1]
  if not client then
    notify('no gpt-ls client is running; see :checkhealth gpt_ls', vim.log.levels.ERROR)
  end
  return client
end

--- Byte column `col` (0-based) of `line` in the client's position encoding.
local function to_encoding(line, col, encoding)
  col = math.max(0, math.min(col, #line))
  if col == 0 then
    return 0
  end
  local ok, idx = pcall(vim.str_utfindex, line, encoding, col, false)
  if ok and idx then
    return idx
  end
  return col
end

--- Byte column just past the character that starts at byte `col` of `line`.
local function char_end(line, col)
  if col >= #line then
    return #line
  end
  return col + 1 + vim.str_utf_end(line, col + 1)
end

--- The selection a command applies to: {mode, srow, scol, erow, ecol}, rows 1-based,
--- columns 0-based bytes, `ecol` at the start of the last selected character.
--- A live visual selection (a `<Cmd>` mapping) wins; then the last visual selection when
--- it matches `line1..line2`; else whole lines.
function M.selection(bufnr, line1, line2)
  local mode = vim.api.nvim_get_mode().mode:sub(1, 1)
  if mode == 'v' or mode == 'V' or mode == '\22' then
    local a, b = vim.fn.getpos('v'), vim.fn.getpos('.')
    if b[2] < a[2] or (b[2] == a[2] and b[3] < a[3]) then
      a, b = b, a
    end
    vim.api.nvim_feedkeys(vim.keycode('<Esc>'), 'nx', false)
    return { mode = mode, srow = a[2], scol = a[3] - 1, erow = b[2], ecol = b[3] - 1 }
  end
  local vs = vim.api.nvim_buf_get_mark(bufnr, '<')
  local ve = vim.api.nvim_buf_get_mark(bufnr, '>')
  local vmode = vim.fn.visualmode()
  if vmode ~= '' and vs[1] == line1 and ve[1] == line2 then
    return { mode = vmode, srow = line1, scol = vs[2], erow = line2, ecol = ve[2] }
  end
  return { mode = 'V', srow = line1, scol = 0, erow = line2, ecol = 0 }
end

--- The LSP range of selection `sel` (see M.selection) in position `encoding`.
--- Linewise selections end at the end of their last line, like `V` in code actions.
function M.range(bufnr, sel, encoding)
  local function getline(row)
    return vim.api.nvim_buf_get_lines(bufnr, row - 1, row, false)[1] or ''
  end
  local sline, eline = getline(sel.srow), getline(sel.erow)
  local scol, ecol = 0, #eline
  if sel.mode ~= 'V' then
    scol = math.min(sel.scol, #sline)
    if vim.o.selection == 'exclusive' then
      ecol = math.min(sel.ecol, #eline)
    else
      ecol = char_end(eline, sel.ecol)
    end
  end
  return {
    start = { line = sel.srow - 1, character = to_encoding(sline, scol, encoding) },
    ['end'] = { line = sel.erow - 1, character = to_encoding(eline, ecol, encoding) },
  }
end

local function on_error(err)
  local msg = type(err) == 'table' and (err.message or vim.inspect(err)) or tostring(err)
  notify(msg, vim.log.levels.ERROR)
end

--- Show a command's text result (a hover-output action's reply) in a floating window.
local function show_markdown(result)
  local text = result
  if type(result) == 'table' then
    -- gpt-ls answers {id, status, text}; accept hover-like shapes too.
    text = result.text or result.value
      or (type(result.contents) == 'table' and result.contents.value) or result.contents
  end
  if type(text) ~= 'string' or text == '' then
    return
  end
  vim.lsp.util.open_floating_preview(vim.split(text, '\n', { plain = true }), 'markdown', {
    border = 'rounded',
    focus_id = 'gpt_ls_explain',
    max_width = math.max(40, math.floor(vim.o.columns * 0.8)),
  })
end

--- Whether `result` of server command `command` is a reply shown as hover: the server says
--- `output = "hover"` (Explain, Summarize, user actions); a server that names no output
--- shows Explain's as hover.
function M.is_hover(command, result)
  if type(result) ~= 'table' then
    return false
  end
  if result.output ~= nil then
    return result.output == 'hover'
  end
  return command == 'gpt-ls.explain'
end

--- Show the answer of server command `command`: a hover reply opens in a float.
function M.show_result(command, result)
  if M.options.explain_float and M.is_hover(command, result) then
    show_markdown(result)
  end
end

--- Handler of command answers when no `on_result` was given (the code-action menu):
--- errors become a message, a hover reply opens in a float.
function M.on_command_result(err, result, ctx)
  if err then
    on_error(err)
  else
    M.show_result(ctx and ctx.params and ctx.params.command, result)
  end
end

--- LSP diagnostics of every source (pyright, ruff, nvim-lint, ...) on the lines of `range`.
--- Neovim 0.11 puts only the requesting client's own diagnostics in a code action's context.
function M.diagnostics(bufnr, range)
  local found = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    if d.lnum <= range['end'].line and (d.end_lnum or d.lnum) >= range.start.line then
      table.insert(found, d)
    end
  end
  return vim.lsp.diagnostic.from(found)
end

--- Client-side handler of `gpt-ls.run` (code actions such as "GPT: Fix code"): add the
--- editor's diagnostics for the range as the 4th argument, then run it on the server.
function M.run_command(command, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if not client then
    return
  end
  local args = vim.deepcopy(command.arguments or {})
  local uri, range = args[2], args[3]
  if type(uri) == 'string' and type(range) == 'table' and range.start and range['end'] then
    local diagnostics = M.diagnostics(vim.uri_to_bufnr(uri), range)
    if #diagnostics > 0 then
      local options = type(args[4]) == 'table' and args[4] or {}
      options.diagnostics = diagnostics
      args[4] = options
    end
  end
  -- client:request, not exec_cmd: exec_cmd would call this handler again.
  client:request('workspace/executeCommand', { command = command.command, arguments = args },
    M.on_command_result, ctx.bufnr)
end

--- Run server command `command` with `arguments`; `on_result(result)` gets the reply.
function M.exec(client, command, title, arguments, bufnr, on_result)
  client:exec_cmd({ title = title, command = command, arguments = arguments }, { bufnr = bufnr },
    function(err, result)
      if err then
        on_error(err)
      elseif on_result then
        on_result(result)
      end
    end)
end

--- Run action `name` (a key of M.actions) on lines line1..line2 of the current buffer.
function M.action(name, line1, line2)
  local spec = M.actions[name]
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    return
  end
  local range = M.range(bufnr, M.selection(bufnr, line1, line2), client.offset_encoding)
  M.exec(client, spec.command, spec.title, { vim.uri_from_bufnr(bufnr), range }, bufnr,
    function(result)
      M.show_result(spec.command, result)
    end)
end

--- :GptNew — start a fresh conversation for this workspace.
function M.new_conversation()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if client then
    -- The server confirms with a message of its own.
    M.exec(client, 'gpt-ls.newConversation', 'GPT: New conversation',
      { vim.uri_from_bufnr(bufnr) }, bufnr, nil)
  end
end

--- :GptHistory — the server opens recent conversations (window/showDocument).
function M.history()
  local client = any_client()
  if client then
    M.exec(client, 'gpt-ls.showHistory', 'GPT: Show history', {}, nil, nil)
  end
end

--- :GptCheck — test the connection to the API and report the result.
function M.check()
  local client = any_client()
  if not client then
    return
  end
  -- The server shows its report (settings in effect, latency) as a message itself.
  M.exec(client, 'gpt-ls.check', 'GPT: Check connection', {}, nil, function(result)
    M.last_check = result
  end)
end

--- :GptCancel — cancel every running request (the text already inserted stays).
function M.cancel()
  for _, client in ipairs(vim.lsp.get_clients({ name = M.name })) do
    M.exec(client, 'gpt-ls.cancel', 'GPT: Cancel', {}, nil, nil)
  end
end

--- Handler of the server's `gpt-ls/status` notification.
function M.on_status(params, _)
  if type(params) == 'table' then
    M.last_status = params
  end
  vim.api.nvim_exec_autocmds('User', { pattern = 'GptLsStatus', modeline = false })
end

--- Short text for a statusline: '' when idle, else e.g. 'GPT 1 running, 120 tok'.
function M.statusline()
  local s = M.last_status
  if not s.running or s.running == 0 then
    return ''
  end
  return ('GPT %d running, %d tok'):format(s.running, s.tokens or 0)
end

local function on_progress(ev)
  local client = vim.lsp.get_client_by_id(ev.data.client_id)
  if not client or client.name ~= M.name then
    return
  end
  local value = ev.data.params.value
  if type(value) ~= 'table' then
    return
  end
  local parts = { value.title or '', value.message or '' }
  if value.kind == 'end' then
    parts = { value.message or 'done' }
  end
  local text = vim.trim(table.concat(parts, ' '))
  vim.api.nvim_echo({ { text } }, false, {})
end

--- :GptCompletions [on|off] — turn completions as you type on or off (no argument: toggle).
function M.completions(arg)
  local completion = require('gpt_ls.completion')
  local on
  if arg == 'on' or arg == 'off' then
    on = arg == 'on'
  elseif arg == nil or arg == '' or arg == 'toggle' then
    on = not completion.enabled()
  else
    notify('GptCompletions takes on, off or nothing (toggle), not "' .. arg .. '"', vim.log.levels.ERROR)
    return
  end
  M.options.settings.completions = on
  completion.set(on)
  notify('completions as you type ' .. (on and 'on (each suggestion is a request that costs tokens)' or 'off'))
end

--- Create the user commands (idempotent; plugin/gpt_ls.lua calls it at startup).
function M.create_commands()
  for name, _ in pairs(M.actions) do
    vim.api.nvim_create_user_command(name, function(o)
      M.action(name, o.line1, o.line2)
    end, { range = true, desc = 'gpt-ls: ' .. M.actions[name].title })
  end
  vim.api.nvim_create_user_command('GptNew', M.new_conversation,
    { desc = 'gpt-ls: start a new conversation' })
  vim.api.nvim_create_user_command('GptHistory', M.history,
    { desc = 'gpt-ls: show recent conversations' })
  vim.api.nvim_create_user_command('GptCheck', M.check,
    { desc = 'gpt-ls: test the connection to the API' })
  vim.api.nvim_create_user_command('GptCancel', M.cancel,
    { desc = 'gpt-ls: cancel running requests' })
  vim.api.nvim_create_user_command('GptCompletions', function(o) M.completions(o.args) end, {
    nargs = '?', complete = function() return { 'on', 'off', 'toggle' } end,
    desc = 'gpt-ls: completions as you type on, off or toggled',
  })
  vim.api.nvim_create_autocmd('LspAttach', {
    group = vim.api.nvim_create_augroup('gpt_ls.completion', { clear = true }),
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if client then
        require('gpt_ls.completion').on_attach(client, ev.buf)
      end
    end,
  })
  local group = vim.api.nvim_create_augroup('gpt_ls.progress', { clear = true })
  vim.api.nvim_create_autocmd('LspProgress', {
    group = group,
    callback = function(ev)
      if M.options.progress then
        on_progress(ev)
      end
    end,
  })
end

--- Settings that decide where requests go, which credentials, headers and programs are used
--- and what is deleted: the same list as the server's RESTRICTED_FIELDS (a test checks it).
M.restricted = {
  'apiKey', 'apiKeyCommand', 'apiKeyCommandTimeout', 'baseUrl', 'organization', 'project', 'headers',
  'azureEndpoint', 'azureApiVersion', 'azureDeployment', 'proxy',
  'history', 'historyRetentionDays', 'historyMaxConversations', 'embeddingModel', 'completions',
}

--- Files a repository brings that Neovim (exrc) or lazy.nvim run as configuration.
local PROJECT_FILES = { ['.nvim.lua'] = true, ['.nvimrc'] = true, ['.exrc'] = true, ['.lazy.lua'] = true }

--- The project-local config file (exrc, .lazy.lua) that is calling setup(), or nil.
function M.project_caller()
  for level = 3, 60 do
    local info = debug.getinfo(level, 'S')
    if not info then
      return nil
    end
    local src = info.source or ''
    if src:sub(1, 1) == '@' and PROJECT_FILES[vim.fs.basename(src:sub(2))] then
      return vim.fn.fnamemodify(src:sub(2), ':p')
    end
  end
  return nil
end

--- Remove the restricted keys from `settings` (in place), with one warning naming them and `file`.
function M.drop_restricted(settings, file)
  local dropped = {}
  for _, key in ipairs(M.restricted) do
    if settings[key] ~= nil then
      table.insert(dropped, key)
      settings[key] = nil
    end
  end
  if #dropped > 0 then
    vim.notify(
      ('gpt-ls: ignored %s from the project-local config %s: a repository must not choose endpoints, '
        .. 'credentials or programs; set them in your own init.lua or ~/.config/gpt-ls/config.toml')
        :format(table.concat(dropped, ', '), file),
      vim.log.levels.WARN
    )
  end
  return dropped
end

--- Optional: configure and enable gpt-ls. `opts` as in M.defaults.
--- Called from a project-local config (exrc's .nvim.lua, .lazy.lua), restricted settings are dropped.
function M.setup(opts)
  M.options = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts or {})
  local o = M.options
  local caller = M.project_caller()
  if o.completions ~= nil then
    o.settings.completions = o.completions
  end
  if caller then
    M.drop_restricted(o.settings, caller)
  end
  local settings = next(o.settings) and o.settings or vim.empty_dict()
  local config = { init_options = settings, settings = { ['gpt-ls'] = settings } }
  if o.cmd then
    config.cmd = o.cmd
  end
  if o.filetypes then
    config.filetypes = o.filetypes
  end
  vim.lsp.config(M.name, config)
  -- Running servers learn new settings at once.
  for _, client in ipairs(vim.lsp.get_clients({ name = M.name })) do
    client.settings = config.settings
    client:notify('workspace/didChangeConfiguration', { settings = config.settings })
    require('gpt_ls.completion').sync(client)
  end
  M.create_commands()
  if o.enable then
    vim.lsp.enable(M.name)
  end
end

return M
