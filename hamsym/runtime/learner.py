"""One learner of a generated module: its arrays, checked inputs, the compiled loops
driven in slices (Ctrl-C between them), recording, prediction and checkpoints.

The class here is the same for every network: a module's Integrator is a subclass
whose `_t` holds the module's tables and kernels (runtime.module.build).
"""

import math
import warnings
from time import perf_counter as clock

import numpy as np

from . import checkpoint, checks, feed, interrupt, per_weight, revive, views
from . import metrics as measure
from . import progress as bars
from .live import Arrays, Fixed, Hyper, whole_hyper

SLICE = 0.05    # seconds of compiled work between two looks for Ctrl-C
_NEVER = np.iinfo(np.int64).max     # _span_record's `every` when it records no row


class Integrator:
    """State of one learner: weights, neuron states, costates, hyperparameters.

    Integrator(seed=0, weights=None, states=None, costates=None, dtype=DTYPE,
    check_finite=True, **hyper): weights are drawn from the seed unless given by
    name; states and costates start at zero unless given; hyperparameters and params
    default to the module's HYPER and PARAMS. Arrays are exposed by declared name in
    .weights, .states and .costates (costates keyed by their variable's name); they are
    live, updated in place, and an array assigned to a name is checked against its
    declaration. .hyper checks values when set (finite; delta > 0; flip = +-1).
    .step_count counts the steps applied. check_finite: step, run and run_stream
    raise DivergenceError at the first loss that is not finite, and run and
    run_stream refuse data that is not finite (nan, inf) before learning from it.

    The data arguments of step(), run() and forward() are the module's inputs and
    targets in declaration order (INPUTS, then TARGETS; forward and predict: INPUTS).
    """

    _t = None                                   # the module's Tables, set by its subclass

    def __init__(self, *, seed=0, weights=None, states=None, costates=None, dtype=None,
                 check_finite=True, **hyper):
        t = self._t
        self.dtype = checks.float_dtype(t.dtype if dtype is None else dtype)
        hyper = per_weight.expand(hyper, t)
        unknown = set(hyper) - set(t.known)
        if unknown:
            raise TypeError(f"unknown hyperparameter(s) {sorted(unknown)}; known: {t.known}")
        rng = np.random.default_rng(seed)
        self.weights = self._given("weight", t.weights, weights,
                                   lambda name, shape: checks.initial(shape, rng, self.dtype))
        self.states = self._given("state", t.states, states,
                                  lambda name, shape: np.zeros(shape, self.dtype))
        self.costates = self._given("costate", t.costates, costates,
                                    lambda name, shape: np.zeros(shape, self.dtype))
        self.hyper = {**t.hyper, **t.params, **hyper}
        self.work = {name: np.zeros(shape, self.dtype) for name, shape in t.work.items()}
        self.step_count = 0
        self.check_finite = check_finite
        self._warned = False
        self._slice = 16                    # steps per compiled slice, adapted to SLICE

    def _given(self, kind, declared, values, default):
        values = dict(values or {})
        unknown = set(values) - set(declared)
        if unknown:
            raise KeyError(f"unknown {kind}(s) {sorted(unknown)}; declared: {list(declared)}")
        return Arrays(kind, declared, self.dtype, {
            name: checks.fit(values[name], shape, self.dtype, f"{kind} {name!r}", True)
            if name in values else default(name, shape) for name, shape in declared.items()})

    # the dicts are replaced only as a whole, with every name checked
    weights = property(lambda self: self._weights, lambda self, v: self._replace(
        "_weights", self._whole("weight", self._t.weights, v)))
    states = property(lambda self: self._states, lambda self, v: self._replace(
        "_states", self._whole("state", self._t.states, v)))
    costates = property(lambda self: self._costates, lambda self, v: self._replace(
        "_costates", self._whole("costate", self._t.costates, v)))
    hyper = property(lambda self: self._hyper, lambda self, v: self._replace(
        "_hyper", Hyper(whole_hyper(v, self._t.known), self._t.known)))

    def _replace(self, table, value):
        setattr(self, table, value)
        Fixed.edition += 1                      # step() binds the new table
        Arrays.replaced += 1

    def _whole(self, kind, declared, values):
        if isinstance(values, Arrays) and values._declared is declared and \
                values._dtype == self.dtype:
            return values
        missing = set(declared) - set(values)
        if missing:
            raise KeyError(f"{kind}s {sorted(missing)} missing; declared: {list(declared)}")
        out = Arrays(kind, declared, self.dtype, {})
        out.update(values)
        return out

    def _arrays(self):
        # from a list: tuple(generator) grows its tuple by resizing, and the resized ones
        # pile up on Python's free list, which would look like memory growing per chunk
        return tuple([getattr(self, table)[key] for table, key in self._t.arrays])

    def _scalars(self):
        s = self._hyper.scalars
        if s is None:
            h = per_weight.resolve(dict(self._hyper), self._t.per_weight)
            s = self._hyper.scalars = tuple(float(h[n]) for n in self._t.scalars)
        return s

    def _check_frozen(self, stacklevel=4):
        t = self._t
        if t.weights and not self._warned and (
                self._hyper["beta"] == 0 or (t.scheme == "local" and t.reset_weight_costate
                                             and not t.fresh_weight_costate)):
            warnings.warn("the weights are frozen: " + (
                "beta = 0" if self._hyper["beta"] == 0 else
                "scheme 'local' moves them with a costate that was reset to zero"),
                stacklevel=stacklevel)
            self._warned = True

    def _data(self, values, names, stream):
        if len(values) != len(names):
            raise TypeError(f"expected {len(names)} arrays ({', '.join(names)}), "
                            f"got {len(values)}")
        out = []
        for value, (name, shape) in zip(values, names.items()):
            if type(value) is np.ndarray and value.dtype == self.dtype and value.shape == (
                    value.shape[:1] if stream else ()) + shape and value.flags.c_contiguous:
                out.append(value)               # the common case: nothing to convert
                continue
            a = np.ascontiguousarray(checks.real(value, name), dtype=self.dtype)
            want = ((a.shape[0] if a.ndim else 0,) if stream else ()) + shape
            if a.shape != want and not (stream and a.ndim == 1 and shape == (1,)):
                if stream and a.ndim == len(shape):
                    raise ValueError(
                        f"{name}: run takes streams of shape (T, {', '.join(map(str, shape))}), "
                        f"one row per step; got shape {a.shape}, one sample? "
                        f"(step() takes one sample; {name}[None] is a stream of one)")
                raise ValueError(f"{name}: expected shape {want}, got {a.shape}")
            out.append(a.reshape(want))
        return out

    # -- one step from Python ------------------------------------------------------------
    # what step() passes the compiled code, brought up to date by _bind()
    _edition = _replaced = -1                   # Fixed.edition, Arrays.replaced then
    _held = _table = _scaled = None

    def step(self, *sample):
        """One step on one sample (the module's inputs and targets, in order); returns
        the loss before the update."""
        if self._edition != Fixed.edition:      # first step, or an array or value was set
            self._bind()
        try:            # Numba's dispatch checks the sample's type, dtype and layout
            loss = self._stepper(self._table, *sample)
        except (TypeError, ValueError):
            loss = self._refused(*sample)
        self.step_count += 1
        if loss - loss and self.check_finite:   # nan, so true, unless the loss is finite
            raise self._diverged(loss, sample)
        return loss

    # step() for one and for two data arrays (an input and a target: most networks),
    # without packing the sample into a tuple: on a small network the packing is a tenth
    # of the call. runtime.module.build gives a module's Integrator the one its data take.
    def _step_1(self, a):
        if self._edition != Fixed.edition:
            self._bind()
        try:
            loss = self._stepper(self._table, a)
        except (TypeError, ValueError):
            loss = self._refused(a)
        self.step_count += 1
        if loss - loss and self.check_finite:
            raise self._diverged(loss, (a,))
        return loss

    def _step_2(self, a, b):
        if self._edition != Fixed.edition:
            self._bind()
        try:
            loss = self._stepper(self._table, a, b)
        except (TypeError, ValueError):
            loss = self._refused(a, b)
        self.step_count += 1
        if loss - loss and self.check_finite:
            raise self._diverged(loss, (a, b))
        return loss

    _step_1.__doc__ = _step_2.__doc__ = step.__doc__

    def _diverged(self, loss, sample):
        """The DivergenceError of step() for a loss that is not finite, naming the
        sample's first value that is not finite if there is one. (Checking each sample
        before its step would double a small network's step time; the error says that
        the step was applied.)"""
        cause = None
        for name, a in zip(self._t.data, sample):
            bad = checks.not_finite([np.asarray(a, np.float64)], [name])
            if bad is not None:
                cause = (f"the sample's {checks.entry(name, bad[1])} is {bad[2]}: the data "
                         "must be finite numbers")
                break
        return interrupt.DivergenceError(self.step_count - 1, 0, np.array([loss]), cause)

    def _compiled_step(self):
        return views.stepper(self._t.bound_step, list(self._t.data.values()) or [(0,)],
                             self.dtype, self._t.steppers)

    def _refused(self, *sample):
        """step() on a sample the compiled step refused (another dtype or shape, strided,
        read-only, not an array): converted, or refused with a clear error. As a refusal
        costs ~40 us in Numba, the next samples are checked in Python until one needs
        nothing."""
        self._stepper = self._checked
        return self._checked(self._table, *sample)

    def _checked(self, table, *sample):
        data = self._t.data
        if not data:                            # a network that reads no data
            if sample:
                raise TypeError(f"this network reads no data; step() takes no arrays, "
                                f"got {len(sample)}")
            return self._compiled_step()(table, self._like)
        if len(sample) == len(data) and all(
                type(a) is np.ndarray and a.dtype == self.dtype and a.shape == shape and
                a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
                for a, shape in zip(sample, data.values())):
            self._stepper = self._compiled_step()
        else:
            sample = [np.array(a) for a in self._data(sample, data, stream=False)]
        return self._compiled_step()(table, *sample)

    def _bind(self):
        """Bring what step() passes the compiled code up to date: the data addresses of
        the arrays in the learner's tables (held, so that they outlive the table) when an
        array was set anywhere, the scalars when a hyperparameter was (warning, as run()
        does, if that froze the weights)."""
        bound = self._t.bound
        edition, replaced = Fixed.edition, Arrays.replaced
        if self._held is None:
            self._held = [None] * len(bound)
            self._table = np.zeros(len(bound) + len(self._t.scalars), np.int64)
            self._like = np.zeros(0, self.dtype)
            # without data the compiled step takes an empty array of the dtype instead
            self._stepper = self._compiled_step() if self._t.data else self._checked
        if self._replaced != replaced:
            for i, (table, name, shape) in enumerate(bound):
                a = getattr(self, table)[name]
                if a is self._held[i]:
                    continue
                # checked when set; this sees arrays put in around the checks: the
                # compiled step writes through these addresses, trusting shape and dtype
                if not (type(a) is np.ndarray and a.dtype == self.dtype and a.shape == shape
                        and a.flags.c_contiguous and a.flags.writeable and a.flags.aligned):
                    raise TypeError(f"{table.lstrip('_')}[{name!r}] is not a writable, aligned, "
                                    f"C-ordered {self.dtype} array of shape {shape}; assign "
                                    "arrays through the learner's dicts, which check them")
                self._held[i] = a
                self._table[i] = a.ctypes.data
            self._replaced = replaced
        if self._scaled is None or self._scaled is not self._hyper.scalars:
            self._check_frozen()
            self._table[len(bound):] = np.array(self._scalars(), np.float64).view(np.int64)
            self._scaled = self._hyper.scalars
        self._edition = edition

    # -- what the network computes -------------------------------------------------------
    def _forward_buffers(self):
        if not hasattr(self, "_fwd"):
            self._fwd = {name: np.zeros(shape, self.dtype)
                         for name, shape in self._t.forward_buffers.items()}
        return self._fwd

    def forward(self, *inputs):
        """What the network computes now: {instant name: array}, for the given inputs
        (the module's INPUTS, in order). Weights, states and costates are left as they
        are."""
        t = self._t
        buffers = self._forward_buffers()
        data = self._data(inputs, t.inputs, stream=False)
        arrays = {**self.weights, **self.states, **dict(zip(t.inputs, data)), **buffers}
        h = dict(zip(t.scalars, self._scalars()))
        t.forward(*(arrays[name] if name in arrays else h[name] for name in t.forward_args))
        return {name: buffers[buffer].copy() for name, buffer in t.outputs.items()}

    def predict(self, *streams, steps=None, keep_states=False):
        """The network running on its own, learning nothing.

        predict(*input_streams) with streams of shape (T, n), one per input (the module's
        INPUTS; a network without inputs: predict(steps=T)), returns {name: array of
        shape (T, ...)}: each output (OUTPUTS: the instantaneous neurons that read no
        target) and each state at every step k, the values the loss of step k reads.
        Between rows the states advance as run() advances them (the same sweep);
        weights, costates and step_count do not change. keep_states=True puts the states
        back as they were when it returns.
        """
        t = self._t
        if not t.inputs and (streams or steps is None):
            raise TypeError("this network has no input: say how many steps, predict(steps=T)")
        data = self._data(streams, t.inputs, stream=True)
        if data:
            total = data[0].shape[0]
            if any(d.shape[0] != total for d in data) or steps not in (None, total):
                raise ValueError("all streams (and steps, if given) must have the same length")
        else:
            total = int(steps)
            if total < 0:
                raise ValueError(f"steps = {steps}: must be >= 0")
        buffers = self._forward_buffers()
        if not hasattr(self, "_ahead"):
            self._ahead = {name: np.zeros(shape, self.dtype)
                           for name, shape in t.advance_buffers.items()}
        shapes = {**{name: t.forward_buffers[buffer] for name, buffer in t.outputs.items()},
                  **t.states}
        record = {name: np.zeros((total,) + shape, self.dtype) for name, shape in shapes.items()}
        kept = {name: a.copy() for name, a in self._states.items()} if keep_states else None
        try:
            t.predict(*self._weights.values(), *self._states.values(), *data, *self._scalars(),
                      *buffers.values(), *self._ahead.values(), *record.values(), 0, total)
        finally:
            if kept is not None:
                for name, a in kept.items():
                    self._states[name][...] = a
        return record

    # -- learning from streams -----------------------------------------------------------
    def _drive(self, data, losses, ctrl_c=None, record=None, bar=None, exact=False,
               metrics=None):
        """One step per row of the streams in data, in compiled slices of about SLICE
        seconds, looking for Ctrl-C between slices. Returns (steps done, None or why it
        stopped early: "diverged" or "interrupted"). record: a Recorder, filled by the
        slices (exact: give it one block for this call's rows); bar: a progress bar,
        advanced after each slice; metrics: a Metrics, measured by the slices (the call
        is one of its rows)."""
        if ctrl_c is None:
            with interrupt.CtrlC() as ctrl_c:
                return self._drive(data, losses, ctrl_c, record, bar, exact, metrics)
        t = self._t
        args = (*self._arrays(), *data, *self._scalars(), *self.work.values(), losses)
        guard, total, k = bool(self.check_finite), losses.shape[0], 0
        if record is not None and metrics is None and record._measures:
            metrics = record._metrics_of(self._metrics_class)
        if record is not None or metrics is not None:
            # only loops that ask for them record or measure: _span is the fast path
            every, rows = (record.every, record) if record is not None else (_NEVER, None)
            if rows is not None:
                record._bind(self.dtype)
            forward_args = (rows is not None and any(key in t.outputs for key in record._keys),
                            *self._forward_buffers().values())
            measured = (measure.off_args(t.metrics) if metrics is None else
                        metrics._args(total)) + tuple(self._prediction_buffers())
            before = None if metrics is None else (metrics._sum.copy(), metrics._fresh)
        while k < total and not ctrl_c.pressed:
            n = min(self._slice, total - k)
            started = clock()
            if record is None and metrics is None:
                done = t.span(*args, k, k + n, guard)
            elif record is None:
                done = t.span_record(*args, k, k + n, guard, self.step_count, every,
                                     *forward_args, *measured, *self._no_record())
            else:
                g = self.step_count
                n = record._reserve(g, n, record._rows(g, total - k) if exact else None)
                done = t.span_record(*args, k, k + n, guard, g, every, *forward_args,
                                     *measured, *record._args())
                record._done(g, done - k)
            took = clock() - started
            self.step_count += done - k
            if bar is not None:
                bars.tick(bar, losses[k:done])
            k = done
            if guard and not math.isfinite(losses[k - 1]):
                break
            self._slice = max(1, min(4 * n, int(n * SLICE / took) if took > 0 else 4 * n))
        if metrics is not None:
            metrics._close(self.step_count, k, *before)
        if guard and k and not math.isfinite(losses[k - 1]):
            return k, "diverged"
        return k, "interrupted" if ctrl_c.pressed else None

    def _prediction_buffers(self):
        if not hasattr(self, "_pred"):
            self._pred = [np.zeros(shape, self.dtype)
                          for shape in self._t.metrics.get("buffers", {}).values()]
        return self._pred

    def _no_record(self):
        """The Recorder arguments of _span_record when nothing is recorded."""
        return self._recorder_class._nothing(self.dtype)

    _metrics_class = None                       # the module's Metrics

    def _metrics(self, metrics):
        """The Metrics that metrics= asks for (None if none)."""
        if metrics is None or isinstance(metrics, self._metrics_class):
            return metrics
        return self._metrics_class(metrics)

    def _stopped(self, why, steps, losses, unapplied=0):
        if why == "diverged":
            return interrupt.DivergenceError(self.step_count - 1, steps - 1, losses)
        return interrupt.Interrupted(steps, self.step_count, losses, unapplied)

    def run_stream(self, samples, *, chunk=1024, on_chunk=None, record=None, every=None,
                   progress=None, metrics=None):
        """Learn from an iterable of per-step samples (the module's inputs and targets),
        of any length.

        A sample is a tuple (or list) of one array per name, or the array itself when
        there is one name. Each is checked (count, shape, real numbers: an error names
        the field and the sample's index, after the samples before it were applied;
        with check_finite, values that are not finite are refused so too),
        copied into fixed chunk buffers, and each chunk runs in compiled code, so memory
        does not grow with the stream. on_chunk(losses) sees each chunk's losses (a
        reused array: copy what you keep). Returns the step count of this call; with
        record=keys, (step count, Recorder). Ctrl-C raises Interrupted and a non-finite
        loss DivergenceError (see run()); what was recorded before stays recorded.

        record, every, progress, metrics: as in run(); metrics get one row per chunk
        (Metrics.table()). Memory grows only by the rows recorded
        (blocks of about 256 kB, allocated as rows arrive), never per step; for an
        endless stream pass Recorder(keys, every, last=N): the newest N rows, in memory
        allocated once. The bar counts steps (its total is len(samples) when known).
        """
        chunk = _positive(chunk, "chunk")
        names = list(self._t.data.items())
        recorder = self._recorder(record, every)
        measured = self._metrics(metrics)
        buffers = [np.zeros((chunk,) + shape, self.dtype) for _, shape in names]
        losses = np.zeros(chunk, np.float64)
        self._check_frozen(3)
        bar, owned = _bar(progress, samples)
        try:
            steps = self._stream(samples, chunk, on_chunk, names, buffers, losses, recorder,
                                 bar, measured)
        finally:
            if owned:
                bar.close()
        return _returns(steps, (recorder, record), (measured, metrics))

    def _stream(self, values, chunk, on_chunk, names, buffers, losses, recorder, bar,
                metrics=None):
        steps = 0
        with interrupt.CtrlC() as ctrl_c:
            for n in feed.chunks(
                    values, names, buffers, chunk, ctrl_c,
                    lambda unapplied: interrupt.Interrupted(steps, self.step_count,
                                                            losses[:0].copy(), unapplied),
                    lambda: f"step_count = {self.step_count}", finite=bool(self.check_finite)):
                part = losses[:n]
                done, why = self._drive([b[:n] for b in buffers] if n < chunk else buffers,
                                        part, ctrl_c, recorder, bar, metrics=metrics)
                steps += done
                if on_chunk is not None and done:
                    on_chunk(part[:done])
                if why:
                    raise self._stopped(why, steps, part[:done].copy(), n - done)
        return steps

    def run(self, *streams, record=None, every=None, progress=None, metrics=None):
        """Steps over streams of shape (T, n), one per input and target (the module's
        INPUTS then TARGETS), one row per step; returns the T losses.

        losses[k] is the loss of step k measured before its update: each sample is
        first a test of the learner as it stands, then a lesson (progressive, or
        test-then-train, validation), so the losses are out-of-sample errors.

        record: keys of RECORD (e.g. ["loss", "h", "|W1|"]) to record every `every`
        steps (default 1) in the compiled loop; run then returns (losses, Recorder).
        Or a Recorder, which is filled (rows accumulate across calls) and run returns
        the losses alone. Each row holds what step g reads before its update, at the
        steps g of the learner's count with (g + 1) % every == 0 (T // every rows from
        step_count 0); its "loss" is the loss of step g, not a window mean (Recorder).

        progress: a tqdm bar showing steps/s and the mean loss of the latest slice,
        updated between compiled slices. None: on when stderr is a terminal and tqdm is
        installed (off in CI, pipes and Jupyter, whose stderr is no terminal); True: on
        (ImportError without tqdm); a dict: tqdm options (file=, desc=, ...); or a bar
        of yours, advanced and left open.

        metrics: keys of METRICS["keys"] ("mae", "rmse"; "accuracy") or a Metrics: the
        prediction the loss compares with the target, and a naive baseline, measured
        at each step before its update, as the loss is (Metrics); keys make one, which
        run returns last. Only a call that asks for metrics (or records one) computes
        them.

        Ctrl-C stops it between two steps within a fraction of a second: Interrupted
        (a KeyboardInterrupt) says how many steps were applied and carries their
        losses. With check_finite, the first loss that is not finite raises
        DivergenceError (that step applied). Rows recorded before either are kept.
        With check_finite, streams holding a value that is not finite (nan, inf) are
        refused before any step: ValueError naming the first."""
        recorder = self._recorder(record, every)
        measured = self._metrics(metrics)
        self._check_frozen()
        data = self._data(streams, self._t.data, stream=True)
        losses = np.empty(data[0].shape[0] if data else 0, np.float64)
        if any(d.shape[0] != losses.shape[0] for d in data):
            raise ValueError("all streams must have the same length")
        if self.check_finite:
            checks.refuse_not_finite(data, list(self._t.data))
        bar, owned = _bar(progress, losses)
        try:
            done, why = self._drive(data, losses, None, recorder, bar, exact=True,
                                    metrics=measured)
        finally:
            if owned:
                bar.close()
        if why:
            raise self._stopped(why, done, losses[:done].copy())
        return _returns(losses, (recorder, record), (measured, metrics))

    def _recorder(self, record, every):
        """The Recorder that record= asks for (None if none)."""
        if record is None:
            if every is not None:
                raise TypeError("every= says how often to record: give record= too")
            return None
        if isinstance(record, self._recorder_class):
            if every is not None and every != record.every:
                raise ValueError(f"every = {every!r}, but the Recorder records every "
                                 f"{record.every} steps")
            return record
        return self._recorder_class(record, 1 if every is None else every)

    _recorder_class = None                      # the module's Recorder

    # -- checkpoints ---------------------------------------------------------------------
    def _state(self):
        return {"weights": {k: v.copy() for k, v in self._weights.items()},
                "states": {k: v.copy() for k, v in self._states.items()},
                "costates": {k: v.copy() for k, v in self._costates.items()},
                "hyper": dict(self._hyper), "step_count": self.step_count,
                "dtype": self.dtype.name, "check_finite": bool(self.check_finite)}

    @classmethod
    def _from_state(cls, state):
        learner = cls(weights=state["weights"], states=state["states"],
                      costates=state["costates"], dtype=state["dtype"],
                      check_finite=state["check_finite"], **state["hyper"])
        learner.step_count = int(state["step_count"])
        return learner

    def save(self, path):
        """Write a checkpoint to one .npz file (written whole or not at all): weights,
        states, costates, hyperparameters and params, step_count, dtype and this module's
        SPEC_HASH and STRUCTURE. Integrator.restore(path) reads it back. Returns the
        path."""
        state = self._state()
        meta = {k: state[k] for k in ("hyper", "step_count", "dtype", "check_finite")}
        arrays = {f"{kind}.{name}": a for kind in ("weights", "states", "costates")
                  for name, a in state[kind].items()}
        return checkpoint.write(path, self._t, "learner", meta, arrays)

    @classmethod
    def restore(cls, path, **hyper):
        """The learner saved at path by save(). The file is checked whole before anything
        is built (every array present with its declared shape and dtype, the values
        finite, nothing unknown): CheckpointError names the file and the field. It may
        come from a module that differs only in default hyperparameters; its own values
        are restored, except those given here (hyper: overrides, checked as in
        Integrator())."""
        t = cls._t
        meta, arrays = checkpoint.read(path, t, "learner")
        meta = checkpoint.fields(path, meta, {
            "hyper": checkpoint.hyper_values(t.known), "step_count": checkpoint.count,
            "dtype": checkpoint.dtype_name, "check_finite": checkpoint.flag})
        state = checkpoint.arrays_of(path, arrays, {"weights": t.weights, "states": t.states,
                                                    "costates": t.costates}, meta["dtype"])
        hyper = per_weight.expand(hyper, t)
        unknown = set(hyper) - set(t.known)
        if unknown:
            raise TypeError(f"unknown hyperparameter(s) {sorted(unknown)}; known: {t.known}")
        state.update(meta, hyper={**meta["hyper"], **hyper})
        state["dtype"] = meta["dtype"].name
        return cls._from_state(state)

    def __reduce__(self):
        return revive.reduce(self, "learner", self._state())


def _returns(result, *made):
    """result, followed by each (object, what was asked) the call made from keys."""
    extra = tuple(obj for obj, asked in made if obj is not None and obj is not asked)
    return (result, *extra) if extra else result


def _positive(value, name):
    import operator
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} = {value!r}: expected an integer") from None
    if value < 1:
        raise ValueError(f"{name} = {value}: must be at least 1")
    return value


def _bar(progress, total):
    """The progress bar of a call over `total` (an array, or an iterable of samples)."""
    length = total.shape[0] if isinstance(total, np.ndarray) else bars.length_of(total)
    return bars.progress_bar(progress, length)

