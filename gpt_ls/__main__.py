"""``python -m gpt_ls`` runs the same entry point as the ``gpt-ls`` script."""

from gpt_ls.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
