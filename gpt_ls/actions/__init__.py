"""The actions: the catalog as data, the editor port, the runner and the reply's delivery (no LSP here)."""
