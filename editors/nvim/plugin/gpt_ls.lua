-- gpt-ls user commands (:GptAsk, :GptExplain, ...) without any setup call.
if vim.g.loaded_gpt_ls or vim.fn.has('nvim-0.11') == 0 then
  return
end
vim.g.loaded_gpt_ls = true
require('gpt_ls').create_commands()
