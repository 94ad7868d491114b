"""Coverage is paused while Numba compiles.

Numba's compiler is Python: under coverage's tracer (Python 3.11 has no cheap
sys.monitoring) a compile takes about half as long again, and compiles are most of the
suite's time. What runs inside a compile is Numba's code, and the typing-time bodies of
the runtime's overloads, which the kernels' tests exercise anyway.
"""

import coverage
import numba.core.event as ev


class _Paused(ev.Listener):
    """Stops the process's coverage at the start of the outermost compile, and starts it
    again at its end (compiles nest: a kernel compiles the functions it calls)."""

    def __init__(self):
        self.depth, self.cov = 0, None

    def on_start(self, event):
        if self.depth == 0:
            self.cov = coverage.Coverage.current()
            if self.cov is not None:
                self.cov.stop()
        self.depth += 1

    def on_end(self, event):
        self.depth -= 1
        if self.depth == 0 and self.cov is not None:
            self.cov.start()
            self.cov = None


def install():
    ev.register("numba:compile", _Paused())
