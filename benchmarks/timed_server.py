"""gpt-ls exactly as ``gpt-ls`` runs it, with only its request-timing log turned on.

The log (logger ``gpt_ls.timing``, debug level) goes to the file named by
``GPT_LS_TIMING_LOG``; pygls's own debug logging stays off, so it cannot slow the
figures down. Used by ``benchmarks/run.py``.
"""

import logging
import os
import sys

from gpt_ls.cli import main

handler = logging.FileHandler(os.environ["GPT_LS_TIMING_LOG"], encoding="utf-8")
handler.setFormatter(logging.Formatter("%(message)s"))
timing = logging.getLogger("gpt_ls.timing")
timing.addHandler(handler)
timing.setLevel(logging.DEBUG)
timing.propagate = False

if __name__ == "__main__":
    sys.exit(main())
