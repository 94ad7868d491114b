"""Recording what a learner reads, every `every` steps, inside the compiled loop."""

from collections.abc import Mapping

import numpy as np


class Recorder(Mapping):
    """What run() and run_stream() record, every `every` steps, in their compiled loop.

    Recorder(keys, every=1, last=None); keys (a list, or one str) from the module's
    RECORD: "loss", the outputs (OUTPUTS, as forward() returns them), the states, the
    weights, and "|W|" for the Frobenius norm of weight W. learner.run(U, Y, record=rec)
    fills it (and returns the losses, as without it); run(U, Y, record=keys, every=n)
    makes one and returns (losses, recorder). rec[key] is an array of shape (rows, ...);
    rec["step"] gives each row's step in the learner's count; dict(rec) has them all.

    A row is taken at every step g of the learner's count (step_count) with
    (g + 1) % every == 0, the last step of each window of `every` steps (a run of T
    steps from step_count 0 gives T // every rows), and holds what step g reads before
    its update: the outputs and states the loss of step g reads, the weights it was
    measured with, and "loss", the loss of step g itself (one step's loss, not a mean
    over the window: run() returns every step's loss). The rows continue across calls,
    so a run split in two, or resumed from a checkpoint, records the rows of one run.

    Memory grows by the rows asked for only, never per step: rows go into preallocated
    blocks (a run() gets one block for its rows; run_stream() blocks of about 256 kB
    as rows arrive). last=N keeps the newest N rows only, in one ring allocated once:
    an endless stream in fixed memory. Reading rec[key] joins the blocks.
    """

    _BLOCK = 1 << 18            # bytes per block when the number of rows is not known
    _table = None               # the module's RECORD and DTYPE, set by its subclass
    _default_dtype = np.float64
    _metric_keys = frozenset()  # the keys of RECORD that metrics fill (runtime.metrics)

    def __init__(self, keys, every=1, *, last=None):
        keys = [keys] if isinstance(keys, str) else list(keys)
        bad = [k for k in keys if k not in self._table]
        if bad or not keys:
            raise ValueError(f"cannot record {', '.join(map(repr, bad)) or 'nothing'}: "
                             f"valid keys are {', '.join(map(repr, self._table))}")
        if len(set(keys)) != len(keys):
            raise ValueError(f"record keys repeated: {keys}")
        for name, value in (("every", every), ("last", last)):
            if value is None and name == "last":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} = {value!r}: must be an integer >= 1")
        self._keys, self.every = tuple(keys), int(every)
        self.last = None if last is None else int(last)
        self.dtype, self._blocks, self._fill, self._wrapped = None, [], 0, False

    # -- reading -------------------------------------------------------------------------
    def __getitem__(self, key):
        if key != "step" and key not in self._keys:
            raise KeyError(f"{key!r} was not recorded; recorded: {list(self)}")
        if not self._blocks:
            return np.zeros((0,) + self._table.get(key, ()), np.int64 if key == "step"
                            else self._dtype_of(key, self.dtype or self._default_dtype))
        if self.last is not None:               # the ring, oldest row first (a copy)
            a = self._blocks[0][key]
            return np.concatenate([a[self._fill:], a[:self._fill]]) if self._wrapped \
                else a[:self._fill].copy()
        if len(self._blocks) > 1:               # join the blocks once; new rows start another
            self._blocks = [{k: np.concatenate([b[k] for b in self._blocks[:-1]] +
                                               [self._blocks[-1][k][:self._fill]])
                             for k in self._blocks[0]}]
            self._fill = len(self._blocks[0]["step"])
        return self._blocks[0][key][:self._fill]

    def __iter__(self):
        return iter(("step",) + self._keys)

    def __len__(self):
        return 1 + len(self._keys)

    @property
    def rows(self):
        """The rows recorded (kept, with last=N)."""
        if self.last is not None:
            return self.last if self._wrapped else self._fill
        return sum(len(b["step"]) for b in self._blocks[:-1]) + self._fill

    def __repr__(self):
        return (f"Recorder({list(self._keys)}, every={self.every}"
                f"{'' if self.last is None else f', last={self.last}'}): {self.rows} rows")

    # -- filling, between compiled slices ------------------------------------------------
    def _dtype_of(self, key, dtype):
        return np.float64 if self._table[key] == () else dtype

    def _rows(self, g, n):
        """Rows taken in steps g .. g+n-1 of the learner's count."""
        return (g + n) // self.every - g // self.every

    def _bind(self, dtype):
        if self.dtype is None:
            self.dtype = np.dtype(dtype)
            if self.last is not None:
                self._blocks = [self._block(self.last)]
        elif self.dtype != dtype:
            raise TypeError(f"this Recorder holds {self.dtype} rows; the learner is {dtype}")

    def _block(self, rows):
        block = {"step": np.zeros(rows, np.int64)}
        for key in self._keys:
            block[key] = np.zeros((rows,) + self._table[key], self._dtype_of(key, self.dtype))
        return block

    def _reserve(self, g, n, upcoming):
        """Make room for the rows of steps g.., allocating a block if the current one is
        full (upcoming: the rows still to come in this call, if known); returns how many
        of the n steps fit."""
        if self.last is not None or self._rows(g, n) == 0:
            return n                            # the kernel wraps around the ring itself
        room = len(self._blocks[-1]["step"]) - self._fill if self._blocks else 0
        if room == 0:
            size = sum(int(np.prod(self._table[k], dtype=np.int64)) * np.dtype(
                self._dtype_of(k, self.dtype)).itemsize for k in self._keys) + 8
            room = max(upcoming or 0, self._BLOCK // size, 1)
            self._blocks.append(self._block(room))
            self._fill = 0
        return min(n, (g // self.every + room + 1) * self.every - 1 - g)

    def _args(self):
        """_row, _wrap, _r_step and the _r_ arrays of the module's _span_record, in
        RECORD order; keys not recorded get arrays with no rows (the kernel writes
        nothing there), so one compiled kernel serves every choice of keys."""
        block = self._blocks[-1] if self._blocks else {}
        empty = self._empty()
        # a list, not a tuple grown from a generator: the resized tuples would pile up on
        # Python's free list, which looks like memory growing per chunk (Integrator._arrays)
        return [self._fill, -1 if self.last is None else self.last,
                block.get("step", empty["step"])] + \
            [block[k] if k in block else empty[k] for k in self._table]

    def _empty(self):
        return self._empties_of(self.dtype)

    @classmethod
    def _empties_of(cls, dtype):
        cache = cls.__dict__.get("_empties")
        if cache is None:
            cache = {}
            cls._empties = cache
        if dtype not in cache:
            cache[dtype] = {"step": np.zeros(0, np.int64), **{
                k: np.zeros((0,) + shape, np.float64 if shape == () else dtype)
                for k, shape in cls._table.items()}}
        return cache[dtype]

    @classmethod
    def _nothing(cls, dtype):
        """The arguments of _args() for a loop that records no row (it measures)."""
        empty = cls._empties_of(dtype)
        return [0, -1, empty["step"]] + [empty[k] for k in cls._table]

    @property
    def _measures(self):
        """Whether a recorded key is a metric's, which only a measuring loop fills."""
        return any(k in self._metric_keys for k in self._keys)

    def _metrics_of(self, metrics_class):
        """The Metrics behind this Recorder's metric keys (kept across calls, so the
        baseline remembers the targets before)."""
        if getattr(self, "_measured", None) is None:
            keys = [k for k in metrics_class._table["keys"]]
            self._measured = metrics_class(keys)
        return self._measured

    def _done(self, g, n):
        rows = self._fill + self._rows(g, n)
        if self.last is not None:
            self._wrapped = self._wrapped or rows >= self.last
            rows %= self.last
        self._fill = rows
