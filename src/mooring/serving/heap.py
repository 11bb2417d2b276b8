"""Keep the cyclic garbage collector off the loaded models.

``mooring serve`` freezes what TensorFlow's import made (about 300,000 objects), but
a loaded and warmed SavedModel adds its own: about 68,000 Python objects for the Adult
model, which a full (generation-2) collection walks in 22–28 ms with the GIL held
(2 CPUs), a stall shared by every request then in the process, answered or shed.
Python starts such a collection on its own whenever enough objects have survived into
the oldest generation, so under load it recurs.

``gc.freeze()`` moves every object alive at that moment to a permanent generation that
collections skip; afterwards a full collection walks only what requests left behind.
:func:`settle` is called when a version has been loaded and warmed and when a retired
one has been drained (``[serving] gc_freeze``): unfreeze, collect what the change left
unreachable (an unloaded model's cycles included), freeze again. That one collection is
the only full-heap pause, and it happens at a deployment change, not under traffic.

Example:
    >>> seconds = settle()
    >>> seconds >= 0.0
    True
"""

from __future__ import annotations

import gc
import threading
import time

__all__ = ["settle"]

_lock = threading.Lock()


def settle() -> float:
    """Collect once and freeze what is alive; the seconds it took."""
    with _lock:
        start = time.perf_counter()
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        return time.perf_counter() - start
