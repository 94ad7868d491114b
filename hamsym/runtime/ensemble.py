"""Many learners at once: K learners of one module stepped in one compiled call.

Ensemble stacks K learners along a leading axis (weights, states, costates and work
buffers (K, ...), each hyperparameter a (K,) array) and steps them in one compiled
call whose outer loop, over the learners, is spread over Numba's threads. Learner i
runs the very step() kernel an Integrator runs, on views of its own rows, so it
computes bit for bit what the Integrator of the same seed and hyperparameters would.
"""

import operator
import warnings
from time import perf_counter as clock

import numba
import numpy as np

from . import checkpoint, checks, feed, interrupt, per_weight, revive
from . import progress as bars
from .live import Arrays, PerLearner, whole_hyper

# Seconds of compiled work between two looks for Ctrl-C. Longer than an Integrator's
# slice: every learner's arrays pass through the cache once per slice (64 learners of
# 64-256-256-10: 90 MB, about 9 ms), a cost that a 50 ms slice would feel.
SLICE = 0.2


class DivergenceWarning(RuntimeWarning):
    """Learners of an Ensemble had a loss that is not finite (see Ensemble.diverged)."""


class Ensemble:
    """K independent learners of this module, stepped together in one compiled call.

    Ensemble(K, seeds=None, weights=None, states=None, costates=None, dtype=DTYPE,
    check_finite=True, recent=1000, **hyper): learner i draws its weights from seeds[i]
    exactly as Integrator(seed=seeds[i]) does (seeds default to 0..K-1; K defaults to
    len(seeds)). A hyperparameter or param is one value for all learners or a sequence
    of K; weights, states and costates given by name are one array of the declared
    shape (copied to every learner) or of shape (K, ...). .weights, .states, .costates
    hold live (K, ...) arrays (learner i is row i), .hyper a tuple of K values per
    name, .step_count a (K,) array.

    run(...) steps every learner over one shared stream ((T, n) per input and target)
    or over its own ((K, T, n)), or a mix, and returns the (K, T) losses. The learners
    are spread over Numba's threads (numba.set_num_threads); each is bit for bit the
    Integrator of the same seed and hyperparameters after the same steps.

    Divergence: with check_finite, a learner whose loss is not finite stops after that
    step (applied and counted, as Integrator's DivergenceError says) and is frozen: it
    takes no further steps, its later losses are NaN, the others go on untouched.
    .diverged is the (K,) mask of learners that ever had a non-finite loss,
    .diverged_at the step (in each learner's count) where it first happened (-1 if
    never); run() warns (DivergenceWarning) when learners diverge. With
    check_finite=False no learner is frozen (they are still reported). With
    check_finite, data that is not finite (nan, inf) is refused, as Integrator does.

    recent: how many of each learner's latest losses are kept (across runs) for
    recent_loss() and best().
    """

    _t = None                                   # the module's Tables, set by its subclass
    _learner = None                             # the module's Integrator

    def __init__(self, K=None, *, seeds=None, weights=None, states=None, costates=None,
                 dtype=None, check_finite=True, recent=1000, **hyper):
        t = self._t
        if seeds is None:
            if K is None:
                raise TypeError("Ensemble needs K (the number of learners) or seeds")
            seeds = range(operator.index(K))
        seeds = tuple(seeds)
        K = len(seeds) if K is None else operator.index(K)
        if K < 1 or len(seeds) != K:
            raise ValueError(f"K = {K} learners with {len(seeds)} seeds: need K >= 1 and one "
                             "seed per learner")
        self.dtype = checks.float_dtype(t.dtype if dtype is None else dtype)
        self.K, self.seeds = K, seeds
        hyper = per_weight.expand(hyper, t)
        self.hyper = {**t.hyper, **t.params, **hyper}
        drawn = []
        if set(t.weights) - set(weights or {}):   # weights drawn as Integrator draws them
            drawn = [self._learner(seed=s, dtype=self.dtype).weights for s in seeds]
        self.weights = self._stacked("weight", t.weights, weights,
                                     lambda name: np.stack([w[name] for w in drawn]))
        self.states = self._stacked("state", t.states, states, None)
        self.costates = self._stacked("costate", t.costates, costates, None)
        self.work = {name: np.zeros((K,) + shape, self.dtype) for name, shape in t.work.items()}
        self.check_finite = check_finite
        self._step_count = np.zeros(K, np.int64)
        self._diverged = np.zeros(K, bool)
        self._diverged_at = np.full(K, -1, np.int64)
        self.recent = operator.index(recent)
        if self.recent < 1:
            raise ValueError(f"recent = {recent}: keep at least one loss per learner")
        self._recent = np.zeros((K, 0), np.float64)
        self._slice = 16                        # steps per slice, adapted to SLICE

    def _stacked(self, kind, declared, values, default):
        values = dict(values or {})
        unknown = set(values) - set(declared)
        if unknown:
            raise KeyError(f"unknown {kind}(s) {sorted(unknown)}; declared: {list(declared)}")
        out = {}
        for name, shape in declared.items():
            what = f"{kind} {name!r}"
            if name not in values:
                a = default(name) if default else np.zeros((self.K,) + shape, self.dtype)
            elif np.shape(values[name]) == (self.K,) + shape:
                a = checks.fit(values[name], (self.K,) + shape, self.dtype, what, True)
            else:
                try:
                    one = checks.fit(values[name], shape, self.dtype, what, False)
                except ValueError:
                    raise ValueError(f"{what} has shape {np.shape(values[name])}: expected "
                                     f"{shape} (every learner) or {(self.K,) + shape} "
                                     "(one per learner)") from None
                a = np.array(np.broadcast_to(one, (self.K,) + shape))
            out[name] = a
        return Arrays(kind, {n: (self.K,) + s for n, s in declared.items()}, self.dtype, out)

    # the dicts are replaced only as a whole, with every name checked
    weights = property(lambda self: self._weights,
                       lambda self, v: setattr(self, "_weights", self._whole(v, "_weights")))
    states = property(lambda self: self._states,
                      lambda self, v: setattr(self, "_states", self._whole(v, "_states")))
    costates = property(lambda self: self._costates,
                        lambda self, v: setattr(self, "_costates", self._whole(v, "_costates")))
    hyper = property(lambda self: self._hyper, lambda self, v: setattr(
        self, "_hyper", PerLearner(self.K, whole_hyper(v, self._t.known), self._t.known)))

    def _whole(self, values, attr):
        if isinstance(values, Arrays) and not hasattr(self, attr):
            return values                       # built by _stacked
        old = getattr(self, attr)
        missing = set(old) - set(values)
        if missing:
            raise KeyError(f"{old._what}s {sorted(missing)} missing; declared: {list(old)}")
        out = Arrays(old._what, old._declared, self.dtype, {})
        out.update(values)
        return out

    step_count = property(lambda self: self._step_count.copy(),
                          doc="(K,) steps applied to each learner (a copy)")
    diverged = property(lambda self: self._diverged.copy(),
                        doc="(K,) learners that had a loss that is not finite (a copy)")
    diverged_at = property(lambda self: self._diverged_at.copy(),
                           doc="(K,) the step of each learner's first non-finite loss, -1 if none")

    def __len__(self):
        return self.K

    def __repr__(self):
        return (f"<{self._t.module}.Ensemble of {self.K} learners, {self.dtype.name}, "
                f"{int(self._diverged.sum())} diverged>")

    def _scalars(self):
        """{name: (K,) float64}: what step() gets per learner (theta_neurons None: theta)."""
        s = self._hyper.scalars
        if s is None:
            h = self._hyper
            each = [per_weight.resolve({n: v[i] for n, v in h.items()}, self._t.per_weight)
                    for i in range(self.K)]
            s = {name: np.array([one[name] for one in each], np.float64) for name in h}
            self._hyper.scalars = s
        return s

    def _streams(self, values):
        """{name: C-ordered stream of shape (1, T, ...) (shared) or (K, T, ...)}."""
        data = self._t.data
        if len(values) != len(data):
            raise TypeError(f"expected {len(data)} streams ({', '.join(data)}), "
                            f"got {len(values)}")
        out, length = {}, None
        for value, (name, shape) in zip(values, data.items()):
            a = np.ascontiguousarray(checks.real(value, name), dtype=self.dtype)
            if a.ndim == 1 and shape == (1,):
                a = a[:, None]
            if a.ndim == len(shape) + 1:
                a = a[None]                    # one stream for every learner
            if a.ndim != len(shape) + 2 or a.shape[0] not in (1, self.K) or a.shape[2:] != shape:
                want = ", ".join(map(str, shape))
                raise ValueError(f"{name}: expected a stream of shape (T, {want}) shared by the "
                                 f"learners or ({self.K}, T, {want}), one per learner; got shape "
                                 f"{np.shape(value)}")
            if length not in (None, a.shape[1]):
                raise ValueError("all streams must have the same length")
            length = a.shape[1]
            out[name] = a
        return out, length or 0

    def run(self, *streams, progress=None):
        """Every learner over the streams (the module's inputs and targets, in order),
        one step per row; returns the (K, T) losses.

        Each stream has shape (T, n) (shared by all learners) or (K, T, n) (row i for
        learner i). A frozen (diverged) learner's losses are NaN. Ctrl-C stops it between
        two steps: Interrupted carries .steps (rows done by the learners that were still
        active) and their (K, steps) .losses. progress: as in Integrator.run; the bar
        counts rows and shows the lowest mean loss of a learner in the latest slice."""
        data, length = self._streams(streams)
        if self.check_finite:           # a shared stream indexed as the user gave it
            checks.refuse_not_finite([a[0] if len(a) == 1 else a for a in data.values()],
                                     list(data))
        losses = np.full((self.K, length), np.nan)
        diverged = self._diverged.copy()
        bar, owned = bars.progress_bar(progress, length)
        try:
            done, pressed = self._drive(data, losses, bar=bar)
        finally:
            if owned:
                bar.close()
        self._warn_diverged(diverged)
        if pressed:
            raise interrupt.Interrupted(done, self.step_count, losses[:, :done].copy())
        return losses

    def run_stream(self, samples, *, chunk=1024, on_chunk=None, progress=None):
        """Every learner over one iterable of samples shared by all of them, of any
        length, in fixed memory: run() for a stream that never ends or does not fit.

        A sample is what Integrator.run_stream takes (a tuple of one array per input and
        target, or the array itself when there is one name), checked the same way (an
        error names the sample's index, after the samples before it were applied). The
        samples are copied into chunk buffers and each chunk runs as run() would run it.
        on_chunk(losses) sees each chunk's (K, n) losses (a reused array: copy what you
        keep; recent_loss() and best() see them too). Returns the rows applied by this
        call. A diverged learner is frozen (a warning at the end, as in run()); once all
        are, the call returns. Ctrl-C raises Interrupted: .steps, .losses (the chunk under
        way), .unapplied (samples read but not applied). progress: as in run() (the bar's
        total is len(samples) when known)."""
        chunk = operator.index(chunk)
        if chunk < 1:
            raise ValueError(f"chunk = {chunk}: must be at least 1")
        names = list(self._t.data.items())
        buffers = [np.zeros((1, chunk) + shape, self.dtype) for _, shape in names]
        losses = np.empty((self.K, chunk))
        diverged = self._diverged.copy()
        rows = 0
        bar, owned = bars.progress_bar(progress, bars.length_of(samples))
        try:
            with interrupt.CtrlC() as ctrl_c:
                for n in feed.chunks(
                        samples, names, [b[0] for b in buffers], chunk, ctrl_c,
                        lambda unapplied: interrupt.Interrupted(
                            rows, self.step_count, losses[:, :0].copy(), unapplied),
                        lambda: f"step_count = {self.step_count.tolist()}",
                        finite=bool(self.check_finite)):
                    whole = n == chunk      # else contiguous copies: a slice would compile anew
                    data = {name: b if whole else np.ascontiguousarray(b[:, :n])
                            for (name, _), b in zip(names, buffers)}
                    part = losses if whole else np.empty((self.K, n))
                    part.fill(np.nan)
                    done, pressed = self._drive(data, part, ctrl_c, bar)
                    rows += done
                    if on_chunk is not None and done:
                        on_chunk(part[:, :done])
                    if pressed:
                        raise interrupt.Interrupted(rows, self.step_count,
                                                    part[:, :done].copy(), n - done)
                    if self.check_finite and self._diverged.all():
                        break
        finally:
            if owned:
                bar.close()
            self._warn_diverged(diverged)
        return rows

    def _warn_diverged(self, before):
        """Warn of the learners that diverged since `before` (the .diverged of then)."""
        new = np.flatnonzero(self._diverged & ~before)
        if new.size:
            warnings.warn(f"learners {new.tolist()} had a loss that is not finite, at steps "
                          f"{self._diverged_at[new].tolist()}; " + (
                              "they are frozen there" if self.check_finite else
                              "they went on (check_finite=False)") +
                          ": see Ensemble.diverged", DivergenceWarning, stacklevel=3)

    def _drive(self, data, losses, ctrl_c=None, bar=None):
        """The rows of the streams in compiled slices of about SLICE seconds, looking for
        Ctrl-C between slices and recording divergence. Returns (rows done, Ctrl-C?)."""
        if ctrl_c is None:
            with interrupt.CtrlC() as ctrl_c:
                return self._drive(data, losses, ctrl_c, bar)
        found = {"weights": self._weights, "states": self._states, "costates": self._costates,
                 "hyper": self._scalars(), "work": self.work, "data": data}
        args = tuple(found[kind][key] for kind, key in self._t.ensemble_roles)
        guard = bool(self.check_finite)
        active = ~self._diverged if guard else np.ones(self.K, bool)
        done = np.zeros(self.K, np.int64)
        total, k = losses.shape[1], 0
        threads = numba.get_num_threads()
        try:
            while k < total and active.any() and not ctrl_c.pressed:
                # no more threads than learners to step: an idle OpenMP thread spins
                # at the slice's end and takes a core from the others
                numba.set_num_threads(min(threads, int(active.sum())))
                n = min(self._slice, total - k)
                started = clock()
                self._t.ensemble_span(*args, losses, active, done, k, k + n, guard)
                took = clock() - started
                bad = ~np.isfinite(losses[:, k:k + n])   # frozen learners' rows stay NaN
                new = bad.any(axis=1) & ~self._diverged
                self._diverged_at[new] = (self._step_count + bad.argmax(axis=1))[new]
                self._diverged |= new
                self._step_count += done - k
                if bar is not None:
                    bars.tick_best(bar, losses[:, k:k + n])
                k += n
                self._slice = max(1, min(4 * n, int(n * SLICE / took) if took > 0 else 4 * n))
        finally:
            numba.set_num_threads(threads)
        self._recent = np.concatenate([self._recent, losses[:, max(0, k - self.recent):k]],
                                      axis=1)[:, -self.recent:]
        return k, ctrl_c.pressed and k < total

    # -- the learners --------------------------------------------------------------------
    def recent_loss(self, window=None):
        """(K,) each learner's mean loss over its last `window` steps, across run() calls
        (default: all kept, at most `recent`); NaN for a learner that diverged."""
        kept = self._recent.shape[1]
        if kept == 0:
            raise ValueError("the learners have taken no step yet")
        window = kept if window is None else operator.index(window)
        if not 1 <= window <= self.recent:
            raise ValueError(f"window = {window}: must be between 1 and recent = {self.recent}")
        mean = self._recent[:, -window:].mean(axis=1)
        mean[self._diverged] = np.nan
        return mean

    def best(self, window=None):
        """The index of the learner with the lowest recent_loss(window): the mean over its
        last `window` steps (default: all kept, at most `recent`, 1000 unless set at
        construction); learners that diverged are never chosen. ensemble[i] is a copy."""
        mean = self.recent_loss(window)
        if np.isnan(mean).all():
            raise ValueError("every learner diverged")
        return int(np.nanargmin(mean))

    def learner(self, i):
        """Learner i as an Integrator: a copy (weights, states, costates, hyperparameters,
        step_count, dtype, check_finite); changing it leaves the ensemble as it is."""
        i = operator.index(i)
        if not -self.K <= i < self.K:
            raise IndexError(f"learner {i}: the ensemble has {self.K} learners")
        i %= self.K
        learner = self._learner(
            weights={n: a[i] for n, a in self._weights.items()},
            states={n: a[i] for n, a in self._states.items()},
            costates={n: a[i] for n, a in self._costates.items()}, dtype=self.dtype,
            check_finite=self.check_finite, **{n: v[i] for n, v in self._hyper.items()})
        learner.step_count = int(self._step_count[i])
        return learner

    __getitem__ = learner

    def __iter__(self):
        return (self.learner(i) for i in range(self.K))

    def predict(self, *streams, steps=None, keep_states=False):
        """Every learner running on its own, learning nothing: Integrator.predict of each
        (the same compiled loop, so the same bits), stacked: {name: (K, T, ...)}. An input
        stream of shape (T, n) is shared, one of shape (K, T, n) gives learner i its row
        i. The states advance as in Integrator.predict unless keep_states."""
        inputs = self._t.inputs
        out = {}
        for i in range(self.K):
            rows = [s[i] if np.ndim(s) == len(shape) + 2 else s
                    for s, shape in zip(streams, inputs.values())] + list(streams[len(inputs):])
            one = self.learner(i)
            got = one.predict(*rows, steps=steps, keep_states=keep_states)
            for name, a in one.states.items():
                self._states[name][i] = a
            for name, a in got.items():
                out.setdefault(name, []).append(a)
        return {name: np.stack(arrays) for name, arrays in out.items()}

    @classmethod
    def from_learners(cls, learners, *, check_finite=None, recent=1000):
        """An ensemble of copies of these Integrators of this module (same dtype): their
        weights, states, costates, hyperparameters and step counts. check_finite: that of
        the first learner unless given. .seeds are None (unknown)."""
        learners = list(learners)
        if not learners:
            raise ValueError("from_learners needs at least one learner")
        for i, one in enumerate(learners):
            if not isinstance(one, cls._learner):
                raise TypeError(f"learner {i} is a {type(one).__name__}, not an Integrator of "
                                f"module {cls._t.module}")
            if one.dtype != learners[0].dtype:
                raise ValueError(f"learner {i} is {one.dtype.name}, learner 0 "
                                 f"{learners[0].dtype.name}: an ensemble has one dtype")

        def stack(kind):
            return {n: np.stack([getattr(one, kind)[n] for one in learners])
                    for n in getattr(learners[0], kind)}
        ensemble = cls(len(learners), seeds=[None] * len(learners), weights=stack("weights"),
                       states=stack("states"), costates=stack("costates"),
                       dtype=learners[0].dtype, recent=recent,
                       check_finite=learners[0].check_finite if check_finite is None
                       else check_finite,
                       **{n: [one.hyper[n] for one in learners] for n in learners[0].hyper})
        ensemble._step_count[:] = [one.step_count for one in learners]
        return ensemble

    # -- checkpoints ---------------------------------------------------------------------
    def _state(self):
        """Everything that makes this ensemble: JSON-able metadata and the arrays (copies)."""
        meta = dict(K=self.K, hyper={n: list(v) for n, v in self._hyper.items()},
                    step_count=self._step_count.tolist(), diverged=self._diverged.tolist(),
                    diverged_at=self._diverged_at.tolist(), dtype=self.dtype.name,
                    check_finite=bool(self.check_finite), recent=self.recent,
                    seeds=[int(s) if isinstance(s, (int, np.integer)) else None
                           for s in self.seeds])
        arrays = {f"{kind}.{name}": a.copy() for kind in ("weights", "states", "costates")
                  for name, a in getattr(self, kind).items()}
        return meta, arrays, self._recent.copy()

    @classmethod
    def _from_state(cls, state):
        meta, arrays, recent = state
        given = {kind: {key.split(".", 1)[1]: a for key, a in arrays.items()
                        if key.startswith(kind + ".")}
                 for kind in ("weights", "states", "costates")}
        ensemble = cls(meta["K"], seeds=meta["seeds"], dtype=meta["dtype"],
                       check_finite=meta["check_finite"], recent=meta["recent"],
                       **given, **meta["hyper"])
        ensemble._step_count[:] = meta["step_count"]
        ensemble._diverged[:] = meta["diverged"]
        ensemble._diverged_at[:] = meta["diverged_at"]
        ensemble._recent = np.array(recent, np.float64)
        return ensemble

    def __reduce__(self):
        return revive.reduce(self, "ensemble", self._state())

    def save(self, path):
        """Write the whole ensemble to one .npz file (written whole or not at all): the
        (K, ...) arrays, hyperparameters, step counts, seeds, divergence, the recent losses,
        dtype and this module's SPEC_HASH. Ensemble.restore(path) reads it back."""
        meta, arrays, recent = self._state()
        return checkpoint.write(path, self._t, "ensemble", meta, {**arrays, "_recent": recent})

    @classmethod
    def restore(cls, path, **hyper):
        """The ensemble saved at path by save(), checked whole before anything is built
        (as Integrator.restore); hyper: overrides (one value or one per learner)."""
        t = cls._t
        meta, arrays = checkpoint.read(path, t, "ensemble")
        K = meta.get("K")
        if isinstance(K, bool) or not isinstance(K, int) or K < 1:
            raise checkpoint.CheckpointError(path, f"K: {K!r}, expected an integer >= 1")

        def per_learner(check):
            def each(p, name, value):
                if not isinstance(value, list) or len(value) != K:
                    raise checkpoint.CheckpointError(p, f"{name}: expected {K} values")
                return [check(p, name, v) for v in value]
            return each

        def seed(p, name, value):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise checkpoint.CheckpointError(p, f"{name}: {value!r}, expected an integer")
            return value

        def at(p, name, value):
            if isinstance(value, bool) or not isinstance(value, int) or value < -1:
                raise checkpoint.CheckpointError(p, f"{name}: {value!r}, expected a step or -1")
            return value

        meta = checkpoint.fields(path, meta, {
            "K": lambda p, n, v: v, "hyper": checkpoint.hyper_values(t.known, K),
            "step_count": per_learner(checkpoint.count), "diverged": per_learner(checkpoint.flag),
            "diverged_at": per_learner(at), "dtype": checkpoint.dtype_name,
            "check_finite": checkpoint.flag, "recent": checkpoint.count,
            "seeds": per_learner(seed)})
        if meta["recent"] < 1:
            raise checkpoint.CheckpointError(path, "recent: must be at least 1")
        recent = arrays.pop("_recent", None)
        if recent is None or recent.ndim != 2 or recent.shape[0] != K or \
                recent.shape[1] > meta["recent"]:
            raise checkpoint.CheckpointError(
                path, f"_recent: expected ({K}, <= {meta['recent']}) losses, found "
                      f"{None if recent is None else recent.shape}")
        state = checkpoint.arrays_of(path, arrays, {"weights": t.weights, "states": t.states,
                                                    "costates": t.costates},
                                     meta["dtype"], lead=(K,))
        hyper = per_weight.expand(hyper, t)
        unknown = set(hyper) - set(t.known)
        if unknown:
            raise TypeError(f"unknown hyperparameter(s) {sorted(unknown)}; known: {t.known}")
        meta["hyper"] = {**meta["hyper"], **hyper}
        meta["dtype"] = meta["dtype"].name
        arrays = {f"{kind}.{name}": a for kind, table in state.items()
                  for name, a in table.items()}
        return cls._from_state((meta, arrays, recent))
