-- Completions as you type for gpt-ls in Neovim.
--
-- The `completions` setting turns them on in the server (it is off by default: every
-- suggestion is a request that costs tokens). This module makes the editor ask:
--
-- * Neovim >= 0.12 has `vim.lsp.inline_completion` (ghost text): it is used when present.
-- * Neovim 0.11 has only `vim.lsp.completion`. gpt-ls answers `textDocument/completion` with
--   its suggestion as an item (`isIncomplete`, a `textEdit` inserting it at the cursor), so the
--   suggestion shows in the completion menu. Neovim's autotrigger fires only on the server's
--   trigger characters, so this module also asks as you type (any character, Chinese too;
--   the server waits for the pause), and on accepting a gpt-ls item inserts its whole text:
--   Neovim 0.11 inserts only the first word of a plain-text item.

local M = {}

M.name = 'gpt_ls'

--- Milliseconds of quiet after a keystroke before the plugin asks. Short on purpose: it only
--- gathers fast keystrokes into one request; the server waits for the pause in typing itself
--- (`completionDebounceMs`), drops a request a newer one replaces, and reuses a suggestion
--- while you type through it.
M.typing_delay = 50

--- Per buffer: { client_id, timer, completeopt (the local value before us, to restore) }.
local state = {}

local function group_name(bufnr)
  return ('gpt_ls.completion.%d'):format(bufnr)
end

--- The client's `gpt-ls` settings table (what workspace/configuration answers), or {}.
local function section(client)
  local settings = client.settings or {}
  local s = settings['gpt-ls']
  return type(s) == 'table' and s or {}
end

--- Whether `client`'s settings turn completions on.
function M.wanted(client)
  return section(client).completions == true
end

--- Whether this Neovim shows ghost text itself (0.12+).
function M.has_inline()
  return vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.enable ~= nil
end

--- Whether completions are active in `bufnr` (for statuslines).
function M.active(bufnr)
  return state[bufnr or vim.api.nvim_get_current_buf()] ~= nil
end

--- The character just before the cursor ("\n" at the start of a line).
local function char_before_cursor()
  local col = vim.api.nvim_win_get_cursor(0)[2]
  if col == 0 then
    return '\n'
  end
  local line = vim.api.nvim_get_current_line()
  local start = col + vim.str_utf_start(line, col)
  return line:sub(start, col)
end

--- Ask after typing: every typed character (InsertCharPre also fires while typeahead is
--- pending) and every other change restarts the timer. The request says what it is: a
--- character was typed (TriggerCharacter, as if every character were one of the server's
--- trigger characters, which is how Neovim's docs make autotrigger fire on every key), not
--- an explicit ask (Invoked), so the server debounces it and keeps the suggestion short.
local function on_typed(bufnr)
  local s = state[bufnr]
  if not s then
    return
  end
  s.timer:stop()
  s.timer:start(M.typing_delay, 0, vim.schedule_wrap(function()
    if state[bufnr] ~= s or vim.api.nvim_get_current_buf() ~= bufnr then
      return
    end
    local mode = vim.api.nvim_get_mode().mode
    if (mode == 'i' or mode == 'ic') and vim.fn.pumvisible() == 0 then
      vim.lsp.completion.get({
        ctx = {
          triggerKind = vim.lsp.protocol.CompletionTriggerKind.TriggerCharacter,
          triggerCharacter = char_before_cursor(),
        },
      })
    end
  end))
end

--- On accepting a gpt-ls item: replace the word Neovim inserted (the first word of a
--- plain-text item) with the item's whole text, lines and all, cursor at its end.
local function on_complete_done(bufnr, client_id)
  if vim.v.event.reason ~= 'accept' then
    return
  end
  local done = vim.v.completed_item
  local lsp = vim.tbl_get(done or {}, 'user_data', 'nvim', 'lsp')
  if type(lsp) ~= 'table' or lsp.client_id ~= client_id or type(lsp.completion_item) ~= 'table' then
    return
  end
  local item = lsp.completion_item
  if item.insertTextFormat == vim.lsp.protocol.InsertTextFormat.Snippet then
    return -- Neovim expands snippets itself, whole
  end
  local text = type(item.textEdit) == 'table' and item.textEdit.newText or item.insertText
  local word = done.word or ''
  if type(text) ~= 'string' or text == word then
    return
  end
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local line = vim.api.nvim_get_current_line()
  local start = col - #word
  if start < 0 or line:sub(start + 1, col) ~= word then
    return -- not what Neovim inserted: leave the buffer alone
  end
  local lines = vim.split(text, '\n', { plain = true })
  vim.api.nvim_buf_set_text(bufnr, row - 1, start, row - 1, col, lines)
  local last = lines[#lines]
  vim.api.nvim_win_set_cursor(0, { row + #lines - 1, (#lines == 1 and start or 0) + #last })
end

--- The completeopt gpt-ls needs: a menu even for one item, nothing inserted before the
--- user picks it (else a suggestion would be typed in for them).
local function ensure_completeopt(bufnr, s)
  local cot = vim.split(vim.api.nvim_get_option_value('completeopt', { buf = bufnr }), ',', { trimempty = true })
  local safe = vim.list_contains(cot, 'menuone')
    and (vim.list_contains(cot, 'noselect') or vim.list_contains(cot, 'noinsert'))
  if safe then
    return
  end
  s.completeopt = vim.bo[bufnr].completeopt
  for _, flag in ipairs({ 'menuone', 'noselect' }) do
    if not vim.list_contains(cot, flag) then
      table.insert(cot, flag)
    end
  end
  vim.bo[bufnr].completeopt = table.concat(cot, ',')
end

--- Turn completions on for `client` in `bufnr`.
function M.attach(client, bufnr)
  if state[bufnr] then
    return
  end
  if M.has_inline() then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr, client_id = client.id })
    state[bufnr] = { client_id = client.id, inline = true }
    return
  end
  local s = { client_id = client.id, timer = assert(vim.uv.new_timer()) }
  state[bufnr] = s
  ensure_completeopt(bufnr, s)
  vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = true })
  local group = vim.api.nvim_create_augroup(group_name(bufnr), { clear = true })
  vim.api.nvim_create_autocmd({ 'InsertCharPre', 'TextChangedI' }, {
    group = group, buffer = bufnr, callback = function() on_typed(bufnr) end,
  })
  vim.api.nvim_create_autocmd('InsertLeave', {
    group = group, buffer = bufnr, callback = function() s.timer:stop() end,
  })
  vim.api.nvim_create_autocmd('CompleteDone', {
    group = group, buffer = bufnr, callback = function() on_complete_done(bufnr, client.id) end,
  })
  vim.api.nvim_create_autocmd({ 'BufWipeout', 'LspDetach' }, {
    group = group, buffer = bufnr,
    callback = function(ev)
      if ev.event == 'BufWipeout' or (ev.data and ev.data.client_id == client.id) then
        M.detach(bufnr)
      end
    end,
  })
end

--- Turn completions off in `bufnr`.
function M.detach(bufnr)
  local s = state[bufnr]
  if not s then
    return
  end
  state[bufnr] = nil
  if s.inline then
    vim.lsp.inline_completion.enable(false, { bufnr = bufnr, client_id = s.client_id })
    return
  end
  s.timer:stop()
  s.timer:close()
  pcall(vim.api.nvim_del_augroup_by_name, group_name(bufnr))
  if vim.api.nvim_buf_is_valid(bufnr) then
    if vim.lsp.get_client_by_id(s.client_id) then
      vim.lsp.completion.enable(false, s.client_id, bufnr)
    end
    if s.completeopt ~= nil then
      vim.bo[bufnr].completeopt = s.completeopt
    end
  end
end

--- Follow `client`'s settings in every buffer it is attached to.
function M.sync(client)
  for bufnr in pairs(client.attached_buffers or {}) do
    if M.wanted(client) then
      M.attach(client, bufnr)
    else
      M.detach(bufnr)
    end
  end
end

--- Set the `completions` setting of every running gpt-ls client (and of clients started
--- later) and tell the servers through workspace/didChangeConfiguration, the normal
--- settings path: the server starts or stops answering with suggestions.
function M.set(on)
  local overrides = { completions = on }
  vim.lsp.config(M.name, { init_options = overrides, settings = { ['gpt-ls'] = overrides } })
  for _, client in ipairs(vim.lsp.get_clients({ name = M.name })) do
    local settings = vim.deepcopy(client.settings or {})
    local s = type(settings['gpt-ls']) == 'table' and settings['gpt-ls'] or {}
    s.completions = on
    settings['gpt-ls'] = s
    client.settings = settings
    client:notify('workspace/didChangeConfiguration', { settings = settings })
    M.sync(client)
  end
end

--- Whether completions are on: the first running client's setting, else the configured one.
function M.enabled()
  local client = vim.lsp.get_clients({ name = M.name })[1]
  if client then
    return M.wanted(client)
  end
  local ok, config = pcall(function() return vim.lsp.config[M.name] end)
  local s = ok and type(config) == 'table' and config.settings and config.settings['gpt-ls']
  return type(s) == 'table' and s.completions == true
end

--- Call from LspAttach: start completions in the buffer when the client's settings want them.
function M.on_attach(client, bufnr)
  if client.name == M.name and M.wanted(client) then
    M.attach(client, bufnr)
  end
end

return M
