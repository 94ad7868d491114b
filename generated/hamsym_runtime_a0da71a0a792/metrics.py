"""Metrics and a naive baseline beside each, measured in the compiled loop as the loss
is: at step k, before its update (progressive validation)."""

import math

import numpy as np

# the baselines each kind of loss offers, the default first
BASELINES = {"regression": ("mean", "last"), "classification": ("majority",)}
_SAID = {"mean": "the running mean of the targets", "last": "the last target (the previous "
         "step's)", "majority": "the most frequent class so far"}


class Metrics:
    """Figures of the model and of a naive baseline, per step, summed in compiled code.

    Metrics(keys=None, baseline=None): keys from the module's METRICS["keys"] ("mae" and
    "rmse" for a regression loss, "accuracy" for softmax cross-entropy; default all);
    baseline "mean" (the running mean of the targets, the default) or "last" (the
    previous step's target: the naive forecast of a time series) for regression,
    "majority" (the most frequent class so far) for classification. The first step
    measured (the learner's first with this Metrics) has no target before it to
    predict from, so neither the model nor the baseline is counted there: both are
    measured over the same steps (.steps counts them).

    learner.run(U, Y, metrics=m) and run_stream(..., metrics=m) fill it (and return
    what they return without it); metrics=keys makes one and returns it last. At each
    step k the prediction the loss compares with the target (METRICS["prediction"]) is
    computed before the update, as the loss is, and the baseline predicts from the
    targets before k only. m.summary() gives each figure over every step measured,
    m.table() one row per call of run() or chunk of run_stream() ("step": the last step
    of each, then each figure over that chunk; `<key>_baseline` beside `<key>`), and
    str(m) a table of both. The state (the baseline's memory, the sums) continues
    across calls, so a run split in two measures as one run.
    """

    _table = None               # the module's METRICS, set by its subclass

    def __init__(self, keys=None, *, baseline=None):
        t = self._table
        if t["kind"] is None:
            raise ValueError(f"metrics: this network offers none: {t['reason']}")
        keys = list(t["keys"]) if keys is None else [keys] if isinstance(keys, str) else list(keys)
        bad = [k for k in keys if k not in t["keys"]]
        if bad or not keys:
            what = f"{bad[0]!r} is not offered" if bad else "none given"
            raise ValueError(f"metrics: {what} for this network's {t['kind']} loss; its "
                             f"metrics are {', '.join(map(repr, t['keys']))}")
        if len(set(keys)) != len(keys):
            raise ValueError(f"metrics: repeated in {keys}")
        offered = BASELINES[t["kind"]]
        baseline = offered[0] if baseline is None else baseline
        if baseline not in offered:
            raise ValueError(f"baseline = {baseline!r}: a {t['kind']} loss offers "
                             f"{', '.join(map(repr, offered))}")
        self.keys, self.baseline = tuple(keys), baseline
        self._state = np.zeros(t["state"])
        self._sum = np.zeros(t["columns"])
        self.steps = 0                          # steps measured
        self._chunks = []                       # (last step, steps, sums of the chunk)
        self._units = None

    @property
    def _fresh(self):
        """No target seen yet: the next step measured is the first."""
        return self._state[0] == 0

    @property
    def kind(self):
        return self._table["kind"]

    # -- reading -------------------------------------------------------------------------
    def _figures(self, sums, steps):
        """{key: figure, key_baseline: figure} from the column sums of `steps` steps."""
        out = {}
        for key in self.keys:
            if steps == 0:
                out[key] = out[f"{key}_baseline"] = math.nan
                continue
            col = {"mae": 0, "rmse": 1, "accuracy": 0}[key]
            other = col + (len(sums) // 2)
            root = math.sqrt if key == "rmse" else float
            out[key] = root(sums[col] / steps)
            out[f"{key}_baseline"] = root(sums[other] / steps)
        return out

    def summary(self):
        """Each figure and its baseline's over every step measured."""
        return self._figures(self._sum, self.steps)

    def table(self):
        """{"step": the last step of each chunk, key: figure over the chunk, ...}: one
        row per call of run() or chunk of run_stream()."""
        columns = {"step": np.array([c[0] for c in self._chunks], np.int64)}
        rows = [self._figures(sums, steps) for _, steps, sums in self._chunks]
        for key in [k for key in self.keys for k in (key, f"{key}_baseline")]:
            columns[key] = np.array([r[key] for r in rows], np.float64)
        return columns

    def describe_baseline(self):
        return _SAID[self.baseline]

    def __str__(self):
        figures = self.summary()
        width = max(len(k) for k in self.keys + ("metric",))
        lines = [f"{'metric':<{width}}  {'model':>11}  {'baseline':>11}   "
                 f"(over {self.steps} steps, each measured before its update; baseline: "
                 f"{self.describe_baseline()})"]
        lines += [f"{k:<{width}}  {figures[k]:>11.6g}  {figures[k + '_baseline']:>11.6g}"
                  for k in self.keys]
        return "\n".join(lines)

    def __repr__(self):
        return (f"Metrics({list(self.keys)}, baseline={self.baseline!r}): "
                f"{self.steps} steps measured")

    # -- filling, around the compiled slices ----------------------------------------------
    def original_units(self, target, centre, scale):
        """Measure the next call's steps in other units: the prediction p (in the units
        of the target stream the learner reads) as p * scale + centre against `target`,
        each of shape (T, entries) for the call's T steps (a standardised stream: hamsym
        run passes the target before standardisation and its statistics). Returns self."""
        n = self._table["entries"]
        arrays = [np.ascontiguousarray(np.asarray(a, np.float64).reshape(len(a), n))
                  for a in (target, centre, scale)]
        if len({len(a) for a in arrays}) != 1:
            raise ValueError("original_units: target, centre and scale of different lengths")
        self._units = tuple(arrays)
        return self

    def _args(self, steps):
        """_m_ arguments of _span_record for a call of `steps` steps."""
        units = self._units
        if units is None:
            units = _empty(self._table["entries"])[1:]
        elif len(units[0]) != steps:
            raise ValueError(f"original_units was given {len(units[0])} rows for a call of "
                             f"{steps} steps")
        y, centre, scale = units
        return (True, self.baseline == "last", self._state, self._sum, y, scale, centre)

    def _close(self, step_count, steps, before, fresh):
        """A call (or chunk) of `steps` steps ended at step_count: its row. fresh: the
        call began with the first step measured, which counts for neither."""
        self._units = None
        steps -= bool(fresh and steps)
        if steps:
            self.steps += steps
            self._chunks.append((step_count - 1, steps, self._sum - before))

    def _snapshot(self):
        return (self._state.copy(), self._sum.copy(), self.steps, len(self._chunks))

    def _restore(self, snapshot):
        state, sums, steps, chunks = snapshot
        self._state[...], self._sum[...], self.steps = state, sums, steps
        del self._chunks[chunks:]

    def _dump(self):
        """What a resumed run needs to measure on as one run: JSON-ready."""
        return {"keys": list(self.keys), "baseline": self.baseline, "steps": self.steps,
                "state": self._state.tolist(), "sum": self._sum.tolist(),
                "chunks": [[s, n, sums.tolist()] for s, n, sums in self._chunks]}

    def _load(self, dumped):
        """Continue from _dump()'s; False (nothing changed) if it measured other things."""
        if not isinstance(dumped, dict) or dumped.get("keys") != list(self.keys) or \
                dumped.get("baseline") != self.baseline or \
                len(dumped.get("state", ())) != len(self._state):
            return False
        self._state[...] = dumped["state"]
        self._sum[...] = dumped["sum"]
        self.steps = int(dumped["steps"])
        self._chunks = [(int(s), int(n), np.array(sums, np.float64))
                        for s, n, sums in dumped["chunks"]]
        return True


_EMPTIES = {}


def _empty(entries):
    """The _m_ arguments of a loop that measures nothing (never read), and empty units."""
    if entries not in _EMPTIES:
        z = np.zeros((0, entries))
        _EMPTIES[entries] = (np.zeros(0), z, z, z)
    return _EMPTIES[entries]


def off_args(table):
    """_m_ arguments of _span_record when no metric is measured."""
    if table["kind"] is None:
        return ()
    empty, y, scale, centre = _empty(table["entries"])
    return (False, False, empty, empty, y, scale, centre)
