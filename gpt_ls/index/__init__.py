"""The workspace index: which files (walk), their chunks (chunks), identifier-aware terms (terms), the
SQLite FTS5 store (db, store), incremental updates (indexer), ranked search (search), cold builds in a child
process (worker); semantic ranking (embed, vectors, fusion, semantic); the context a question is sent with
(context), the selection's file and the files it imports (neighbours, imports), its citations, mentions.
``gpt_ls.index.store.WorkspaceIndex`` is the facade.
"""
