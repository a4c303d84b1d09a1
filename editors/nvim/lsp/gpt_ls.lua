-- gpt-ls: OpenAI chat models as a language server.
-- Found by `vim.lsp.enable("gpt_ls")` on the runtimepath; no setup call needed.
-- Override anything with `vim.lsp.config("gpt_ls", {...})` or `require("gpt_ls").setup{...}`.

---@type vim.lsp.Config
return {
  cmd = { 'gpt-ls' },
  -- No `filetypes`: gpt-ls is useful in every buffer that has a filetype (prose and code).
  root_markers = { '.gpt-ls.toml', '.git' },
  -- Settings travel both as initializationOptions (flat camelCase) and as the
  -- `gpt-ls` section of workspace/configuration; empty means "use gpt-ls defaults".
  init_options = vim.empty_dict(),
  settings = { ['gpt-ls'] = vim.empty_dict() },
  handlers = {
    ['gpt-ls/status'] = function(_, params, ctx)
      require('gpt_ls').on_status(params, ctx)
    end,
    -- Answers to commands run from the code-action menu (hover replies open a float).
    ['workspace/executeCommand'] = function(err, result, ctx)
      require('gpt_ls').on_command_result(err, result, ctx)
    end,
  },
  -- Actions run through gpt-ls.run ("GPT: Fix code", ...) get the diagnostics of every
  -- source on their range: Neovim's code-action context carries only gpt-ls's own.
  commands = {
    ['gpt-ls.run'] = function(command, ctx)
      require('gpt_ls').run_command(command, ctx)
    end,
  },
}
