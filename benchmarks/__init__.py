"""The benchmark suite: ``python -m benchmarks.run`` prints every figure issue 8 sets a target for.

``run`` is the driver; each figure has its module (``startup``, ``budget``, ``history``,
``first_text``, ``streaming``, ``concurrency``). ``session`` drives the real gpt-ls process
with the simulated editor of ``tests.support``; ``fake_server`` is the fake OpenAI API in a
process of its own; ``peers`` installs the peer servers; ``results`` holds the figures and
prints the table. ``connect`` is a stand-alone benchmark outside the suite.
"""
