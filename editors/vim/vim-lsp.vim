" gpt-ls for Vim with prabirshrestha/vim-lsp: put this in ~/.vimrc (after the plugin).
if executable('gpt-ls')
  augroup gpt_ls
    autocmd!
    autocmd User lsp_setup call lsp#register_server({
    \ 'name': 'gpt-ls',
    \ 'cmd': {server_info -> ['gpt-ls']},
    \ 'allowlist': ['markdown', 'text', 'python', 'gitcommit'],
    \ 'initialization_options': {'model': 'gpt-4.1-mini'},
    \ 'workspace_config': {'gpt-ls': {'model': 'gpt-4.1-mini'}},
    \ })
  augroup END
endif

" Select text, then :'<,'>LspCodeAction and pick "GPT: Ask" (or Explain / Draft email).
xnoremap <leader>ga :LspCodeAction<CR>
" After "GPT: Explain selection", hover shows the explanation.
nnoremap <leader>gk :LspHover<CR>
" Commands without a selection.
command! GptNew call lsp#send_request('gpt-ls', {'method': 'workspace/executeCommand',
\ 'params': {'command': 'gpt-ls.newConversation', 'arguments': []}})
command! GptHistory call lsp#send_request('gpt-ls', {'method': 'workspace/executeCommand',
\ 'params': {'command': 'gpt-ls.showHistory', 'arguments': []}})
command! GptCancel call lsp#send_request('gpt-ls', {'method': 'workspace/executeCommand',
\ 'params': {'command': 'gpt-ls.cancel', 'arguments': []}})
