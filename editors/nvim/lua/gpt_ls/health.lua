-- :checkhealth gpt_ls — answers "why is nothing happening?" without reading logs.
local M = {}

local function resolved_cmd()
  local ok, config = pcall(function()
    return vim.lsp.config.gpt_ls
  end)
  if ok and type(config) == 'table' and type(config.cmd) == 'table' then
    return config.cmd, config
  end
  return { 'gpt-ls' }, ok and config or nil
end

--- The user's gpt-ls config file, where the server looks for it (GPT_LS_CONFIG_DIR moves it).
function M.user_config_file()
  local dir = vim.env.GPT_LS_CONFIG_DIR
  if not dir or dir == '' then
    if vim.fn.has('mac') == 1 then
      dir = vim.fs.joinpath(vim.env.HOME or '~', 'Library', 'Application Support', 'gpt-ls')
    elseif vim.fn.has('win32') == 1 then
      dir = vim.fs.joinpath(vim.env.LOCALAPPDATA or '', 'gpt-ls', 'gpt-ls')
    else
      local xdg = vim.env.XDG_CONFIG_HOME
      if not xdg or xdg == '' then
        xdg = vim.fs.joinpath(vim.env.HOME or '~', '.config')
      end
      dir = vim.fs.joinpath(xdg, 'gpt-ls')
    end
  end
  return vim.fs.joinpath(dir, 'config.toml')
end

--- The key settings (apiKey, apiKeyCommand) assigned in TOML file `path`, as a list.
--- A line scan, not a TOML parser: enough to tell whether the server will find a key.
function M.key_settings_in(path)
  local ok, lines = pcall(vim.fn.readfile, path)
  local found = {}
  if not ok then
    return found
  end
  for _, line in ipairs(lines) do
    local key = line:match('^%s*["\']?([%w_]+)["\']?%s*=%s*[^%s]')
    local name = ({ apiKey = 'apiKey', api_key = 'apiKey', apiKeyCommand = 'apiKeyCommand',
      api_key_command = 'apiKeyCommand' })[key or '']
    if name and not vim.list_contains(found, name) then
      table.insert(found, name)
    end
  end
  return found
end

function M.check()
  local h = vim.health
  h.start('gpt-ls: Neovim')
  if vim.fn.has('nvim-0.11') == 1 then
    h.ok('Neovim ' .. tostring(vim.version()))
  else
    h.error('Neovim 0.11 or newer is needed (vim.lsp.config / vim.lsp.enable)')
  end
  if vim.lsp.is_enabled and vim.lsp.is_enabled('gpt_ls') then
    h.ok('vim.lsp.enable("gpt_ls") has been called')
  else
    h.warn('gpt_ls is not enabled', { 'Add vim.lsp.enable("gpt_ls") (or require("gpt_ls").setup{}) to init.lua' })
  end

  h.start('gpt-ls: server')
  local cmd, config = resolved_cmd()
  local exe = cmd[1]
  if vim.fn.executable(exe) == 1 then
    h.ok(('server command: %s (%s)'):format(table.concat(cmd, ' '), vim.fn.exepath(exe)))
    -- The whole command plus --version: `python -m gpt_ls --version` names gpt-ls too.
    local argv = vim.list_extend(vim.deepcopy(cmd), { '--version' })
    local ok_run, proc = pcall(vim.system, argv, { text = true })
    local out = ok_run and proc:wait(15000) or { code = -1, stderr = tostring(proc) }
    if out.code == 0 then
      h.ok('version: ' .. vim.trim(out.stdout or ''))
    else
      h.warn(('`%s` failed: %s'):format(table.concat(argv, ' '),
        vim.trim((out.stderr or '') .. (out.stdout or ''))))
    end
  else
    h.error(('`%s` not found on PATH'):format(exe), {
      'pipx install /path/to/gpt-ls (or pip install /path/to/gpt-ls) and make sure its bin directory is on PATH',
      'or set the command: require("gpt_ls").setup{ cmd = { "/path/to/python", "-m", "gpt_ls" } }',
    })
  end

  h.start('gpt-ls: API key')
  local settings = config and config.settings and config.settings['gpt-ls'] or {}
  local user_file = M.user_config_file()
  local in_file = M.key_settings_in(user_file)
  if type(settings) == 'table' and (settings.apiKey or settings.apiKeyCommand) then
    h.ok('apiKey / apiKeyCommand set in the Neovim settings (not shown)')
  elseif #in_file > 0 then
    h.ok(('%s set in %s (not run or shown here; :GptCheck tests it)'):format(
      table.concat(in_file, ' and '), user_file))
  elseif vim.env.OPENAI_API_KEY and vim.env.OPENAI_API_KEY ~= '' then
    h.ok('OPENAI_API_KEY is set (not shown)')
  else
    h.warn('no API key in the settings and OPENAI_API_KEY is unset', {
      'export OPENAI_API_KEY=sk-... before starting Neovim, or set apiKeyCommand in ' .. user_file,
    })
  end
  if vim.env.OPENAI_BASE_URL and vim.env.OPENAI_BASE_URL ~= '' then
    h.info('OPENAI_BASE_URL = ' .. vim.env.OPENAI_BASE_URL)
  end

  h.start('gpt-ls: clients')
  local clients = vim.lsp.get_clients({ name = 'gpt_ls' })
  if #clients == 0 then
    h.info('no gpt-ls client running (it starts when a buffer with a filetype opens)')
  end
  for _, client in ipairs(clients) do
    local bufs = vim.tbl_keys(client.attached_buffers)
    h.ok(('client %d: position encoding %s, %d buffer(s), root %s'):format(
      client.id, client.offset_encoding, #bufs, client.root_dir or '(single file)'))
  end

  h.start('gpt-ls: completions as you type')
  local completion = require('gpt_ls.completion')
  local how = completion.has_inline() and 'ghost text (vim.lsp.inline_completion)'
    or 'the completion menu after a pause in typing (vim.lsp.completion; Neovim 0.11 has no inline completion)'
  if completion.enabled() then
    h.ok('on: suggestions show as ' .. how)
  else
    h.info('off (each suggestion costs tokens): :GptCompletions or setup{ completions = true } turns them on; '
      .. 'they would show as ' .. how)
  end
end

return M
