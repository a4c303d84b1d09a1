"""The conversation store: one SQLite file per user, conversations kept apart by workspace.

The model remembers nothing, so a conversation continues only if its earlier turns are
sent again; this package keeps every exchange on disk, durably and privately:

* ``schema``: the tables, as named migrations recorded in ``_migrations`` and applied in
  order on open, and the time format stored in them;
* ``db``: the one database (stdlib ``sqlite3``) at ``settings.data_dir() / "history.db"``
  (``GPT_LS_DATA_DIR`` moves it), created 0600 inside a 0700 directory; WAL journal,
  ``synchronous=NORMAL`` and a busy timeout, and every write in its own ``BEGIN IMMEDIATE``
  transaction, so the language server, a second editor window and the CLI can write at the
  same moment and a killed process never leaves a torn row; a database that cannot be read
  is moved aside (renamed with a timestamp) and a fresh one started;
* ``store``: ``HistoryStore``, the conversations and messages read and written by the
  server and the CLI; the sentence explaining a recovery is ``store.notice``;
* ``retention``: forgetting (``clear``, the retention settings), scrubbed from the file;
* ``usage``: the tokens spent, per workspace and per model;
* ``export``: a conversation as Markdown or JSON.

Every failure reaches callers as ``HistoryError`` (a ``GptLsError``, in ``gpt_ls.errors``),
never as a raw ``sqlite3`` exception, so the server can show it and carry on without history.
"""
