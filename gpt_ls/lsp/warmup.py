"""How the server loads the SDK in the background without stalling the requests it answers meanwhile.

The load is a few hundred milliseconds of pure Python in a thread, sharing the GIL with the
event loop. Two things would make a request wait for it:

* the GIL switch interval: with the default 5 ms the event loop waits up to that long every
  time it wants the GIL back; during the load it is 0.5 ms;
* the cyclic garbage collector: the load creates some 60,000 objects that live as long as
  the process, and a full collection over them (and the 50,000 of pygls and lsprotocol)
  holds the GIL for 20-150 ms here, in whichever thread happens to allocate. During the load
  the collector is off; afterwards everything loaded so far is frozen (``gc.freeze``), so
  later full collections walk only what the session itself allocates.

Freezing keeps any cyclic garbage that exists at that moment: a few hundred objects left
over from the imports, once per process.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

#: The GIL switch interval (s) while the SDK loads in the background.
SWITCH_INTERVAL = 0.0005

_frozen = False


@contextmanager
def background_load() -> Iterator[None]:
    """Around the background load: a short switch interval and no collections; then freeze the heap, once."""
    global _frozen
    interval = sys.getswitchinterval()
    collecting = gc.isenabled()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
    gc.disable()
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        if not _frozen:
            _frozen = True
            gc.freeze()
        if collecting:
            gc.enable()
