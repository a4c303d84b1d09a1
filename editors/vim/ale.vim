" gpt-ls for Vim with dense-analysis/ALE: put this in ~/.vimrc.
" ALE advertises applyEdit: false and never answers workspace/applyEdit, so gpt-ls does
" not edit the buffer: it sends the whole reply as a message, which ALE shows in its
" preview window (and saves it under gpt-ls's cache dir, replies/).
call ale#linter#Define('text', {
\ 'name': 'gpt_ls',
\ 'lsp': 'stdio',
\ 'executable': 'gpt-ls',
\ 'command': '%e',
\ 'project_root': {buffer -> fnamemodify(bufname(buffer), ':p:h')},
\ 'initialization_options': {'model': 'gpt-4.1-mini'},
\})
" The same for Markdown (add any filetype the same way).
call ale#linter#Define('markdown', {
\ 'name': 'gpt_ls',
\ 'lsp': 'stdio',
\ 'executable': 'gpt-ls',
\ 'command': '%e',
\ 'project_root': {buffer -> fnamemodify(bufname(buffer), ':p:h')},
\})
let g:ale_linters = get(g:, 'ale_linters', {})
let g:ale_linters.text = ['gpt_ls']
let g:ale_linters.markdown = ['gpt_ls']
" Show the server's replies and messages (ALE shows only errors by default).
let g:ale_lsp_show_message_severity = 'information'

" Select text, then :'<,'>ALECodeAction and type the number of "GPT: Ask".
xnoremap <leader>ga :ALECodeAction<CR>
