"""Run a job on tiny data, then import matplotlib, in a background thread while the job reads
its input.

A fresh process spends about 0.25 s importing matplotlib, 0.2 s importing scikit-image's
colour conversions where a job needs them (HSV, not Lab) and, for loops that run as numba JIT
code (the raster kernels), about 0.7 s loading numba's cached machine code. Pillow and GDAL
release the GIL while they decode, and the k-means loops release it while they run, so a
thread started before the read hides most of that. A call that needs JIT loops meanwhile
waits on numba's compiler lock instead of loading them twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["warm_up"]


def warm_up(load_loops: Callable[[], None]) -> threading.Event:
    """Run ``load_loops`` (the job on tiny data), then import matplotlib, in a daemon thread.

    The returned event is set once ``load_loops`` has returned or failed; a failure is ignored
    here, since the real call reports it.
    """
    loaded = threading.Event()

    def work() -> None:
        try:
            load_loops()
        except Exception:
            pass  # only a warm-up: the real call raises the real error
        finally:
            loaded.set()
        from imgclust.report import plots

        plots.load_matplotlib()

    threading.Thread(target=work, name="imgclust-warm-up", daemon=True).start()
    return loaded
