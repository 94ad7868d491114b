"""Stopping between two steps: Ctrl-C and divergence."""

import signal
import threading


class CtrlC:
    """Inside the block, Ctrl-C (SIGINT) sets .pressed instead of raising; main thread only."""

    def __enter__(self):
        self.pressed, self._installed = False, False
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._press)
            self._installed = True
        return self

    def _press(self, signum, frame):
        self.pressed = True

    def __exit__(self, *exc):
        if self._installed:
            signal.signal(signal.SIGINT,
                          self._old if self._old is not None else signal.default_int_handler)
        return False


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped run() or run_stream() between two steps.

    .steps: the steps this call applied; .step_count: the learner's count after them;
    .losses: their losses (run_stream: those of the chunk under way); .unapplied
    (run_stream): samples taken from the stream but not applied."""

    def __init__(self, steps, step_count, losses, unapplied=0):
        super().__init__(f"interrupted after {steps} steps of this call; the learner is "
                         f"between two steps, at step_count = {step_count}" + (
                             f"; {unapplied} samples read from the stream were not applied"
                             if unapplied else ""))
        self.steps, self.step_count, self.losses = steps, step_count, losses
        self.unapplied = unapplied


class DivergenceError(FloatingPointError):
    """A step's loss was not finite. .step: its index in the learner's count; .index: its
    index in this call; .steps: the steps this call applied (that one included);
    .losses: their losses."""

    def __init__(self, step, index, losses, cause=None):
        super().__init__(
            f"the loss is {losses[-1]} at step {step} (index {index} of this call)"
            f"{'' if cause is None else ': ' + cause}. That step "
            f"was applied: the learner holds its result (possibly non-finite) and counts it, "
            f"step_count = {step + 1}. Integrator(check_finite=False) turns this check off")
        self.step, self.index, self.steps, self.losses = step, index, index + 1, losses
