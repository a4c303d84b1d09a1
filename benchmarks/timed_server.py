"""gpt-ls exactly as ``gpt-ls`` runs it, with only its request-timing log turned on.

The log (logger ``gpt_ls.timing``, debug level) goes to the file named by
``GPT_LS_TIMING_LOG``; pygls's own debug logging stays off, so it cannot slow the
figures down. Used by ``python -m benchmarks.run``.
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

if os.environ.get("PYTHONASYNCIODEBUG"):
    # Diagnosis: asyncio names each callback that held the event loop for over 5 ms.
    slow = logging.getLogger("asyncio")
    slow.addHandler(handler)
    slow.propagate = False

if __name__ == "__main__":
    if os.environ.get("GPT_LS_TRACE_FILE"):
        # Diagnosis: every event-loop callback of at least 0.3 ms, written at exit.
        import atexit

        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from benchmarks import loop_trace

        loop_trace.install()
        loop_trace.install_dispatch()
        atexit.register(loop_trace.write, os.environ["GPT_LS_TRACE_FILE"])
    if os.environ.get("GPT_LS_PROFILE"):
        # Diagnosis: a pyinstrument profile of the whole server run, written at exit.
        import atexit

        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()

        def write_profile() -> None:
            profiler.stop()
            with open(os.environ["GPT_LS_PROFILE"], "w", encoding="utf-8") as out:
                out.write(profiler.output_text(unicode=True, show_all=False))

        atexit.register(write_profile)
    if os.environ.get("PYTHONASYNCIODEBUG"):
        import asyncio

        _new_loop = asyncio.events.new_event_loop

        def new_event_loop() -> asyncio.AbstractEventLoop:
            loop = _new_loop()
            loop.slow_callback_duration = 0.005
            return loop

        asyncio.events.new_event_loop = new_event_loop
    sys.exit(main())
