"""Online standardisation: Welford's running mean and variance, one value at a time.

Each row is standardised with the statistics of the rows before it, then added to
them, so a standardised stream never reads its own future (and a value never reads
itself). With warmup=N the statistics stop after the first N rows (frozen).
"""

from __future__ import annotations

import math

import numpy as np


class NotFiniteError(ValueError):
    """A value that is not a finite number: it would spoil the statistics for good."""

    def __init__(self, row, column, value):
        super().__init__(f"row {row}, column {column}: {value} is not a finite number")
        self.row, self.column, self.value = row, column, value


class Standardizer:
    """Running per-column mean and variance (Welford) of a stream of rows, and the
    standardisation z = (x - mean) / std that they give.

    Standardizer(width=None, warmup=None). transform(X) standardises the rows of X
    (T, width) in order, each with the mean and the population standard deviation of
    all rows before it (0 while that deviation is 0: the first two rows, or a constant
    column), and learns them unless frozen (warmup rows seen). inverse() maps
    standardised values (a prediction, say) back to the original units. The updates
    run row by row in compiled code, so the statistics do not depend on how the stream
    is cut into blocks: a run split in two gives the bits of one run.
    """

    def __init__(self, width=None, *, warmup=None):
        if warmup is not None and (isinstance(warmup, bool) or
                                   not isinstance(warmup, (int, np.integer)) or warmup < 1):
            raise ValueError(f"warmup = {warmup!r}: must be an integer >= 1 (or None: never "
                             "frozen)")
        self.warmup = None if warmup is None else int(warmup)
        self.count = 0
        self.mean = self.m2 = None
        if width is not None:
            self._start(int(width))

    def _start(self, width):
        self.mean, self.m2 = np.zeros(width), np.zeros(width)

    @property
    def width(self):
        return None if self.mean is None else len(self.mean)

    @property
    def frozen(self):
        """True once warmup rows were learned: the statistics no longer move."""
        return self.warmup is not None and self.count >= self.warmup

    @property
    def var(self):
        """Population variance of the rows learned (0 before any)."""
        return self.m2 / self.count if self.count else np.zeros_like(self.m2)

    @property
    def std(self):
        return np.sqrt(self.var)

    def transform(self, X, *, stats=False):
        """X standardised row by row (the rows are learned as they go); with stats,
        also the (centre, scale) each row was standardised with, for inverse()."""
        X = np.asarray(X, dtype=float)
        flat = X.ndim == 1
        rows = X[:, None] if flat else X
        if rows.ndim != 2:
            raise ValueError(f"expected rows of shape (T, n) or (T,), got {X.shape}")
        if self.mean is None:
            self._start(rows.shape[1])
        if rows.shape[1] != self.width:
            raise ValueError(f"rows of {rows.shape[1]} columns; this Standardizer has "
                             f"{self.width}")
        rows = np.ascontiguousarray(rows)
        Z, centre, scale = (np.empty_like(rows) for _ in range(3))
        count = np.array([self.count], np.int64)
        kept = self.mean.copy(), self.m2.copy()
        done = _kernel()(rows, count, self.mean, self.m2, -1 if self.warmup is None
                         else self.warmup, Z, centre, scale)
        if done < len(rows):                  # refused whole: the statistics as they were
            self.mean[:], self.m2[:] = kept
            j = int(np.flatnonzero(~np.isfinite(rows[done]))[0])
            raise NotFiniteError(done, j, rows[done, j])
        self.count = int(count[0])
        shape = (lambda a: a[:, 0]) if flat else (lambda a: a)
        return (shape(Z), shape(centre), shape(scale)) if stats else shape(Z)

    def inverse(self, Z, centre=None, scale=None):
        """Standardised values back in the original units: Z * scale + centre, with the
        (centre, scale) rows transform(stats=True) gave, or the current statistics."""
        Z = np.asarray(Z, dtype=float)
        if centre is None and scale is None:
            centre, scale = self.mean, self.std
        elif centre is None or scale is None:
            raise TypeError("give both centre and scale, or neither")
        return Z * scale + centre

    def state(self):
        """The statistics as arrays (for a checkpoint); Standardizer.from_state reads them."""
        return {"count": np.array(self.count, np.int64),
                "warmup": np.array(-1 if self.warmup is None else self.warmup, np.int64),
                "mean": np.array(self.mean if self.mean is not None else np.zeros(0)),
                "m2": np.array(self.m2 if self.m2 is not None else np.zeros(0))}

    @classmethod
    def from_state(cls, state):
        warmup = int(state["warmup"])
        scaler = cls(warmup=None if warmup < 0 else warmup)
        if len(state["mean"]):
            scaler.mean = np.array(state["mean"], dtype=float)
            scaler.m2 = np.array(state["m2"], dtype=float)
        scaler.count = int(state["count"])
        return scaler

    def __repr__(self):
        frozen = ", frozen" if self.frozen else ""
        return f"Standardizer(width={self.width}, count={self.count}, warmup={self.warmup}{frozen})"


def standardize(blocks, scalers):
    """Blocks of a stream with array i of each block standardised by scalers[i] (a
    Standardizer, or None to pass that array through), as Standardizer.transform does."""
    scalers = list(scalers)
    for block in blocks:
        block = (block,) if isinstance(block, np.ndarray) else tuple(block)
        if len(block) != len(scalers):
            raise ValueError(f"blocks of {len(block)} arrays, {len(scalers)} scalers")
        yield tuple(a if s is None else s.transform(a) for a, s in zip(block, scalers))


def _rows(X, count, mean, m2, warmup, Z, centre, scale):
    """Welford, row by row: standardise with the statistics so far, then learn the row
    (unless warmup >= 0 rows are learned). Returns the rows done: len(X), or the index
    of the first row with a value that is not finite (then left unlearned)."""
    n = count[0]
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            if not math.isfinite(X[i, j]):
                count[0] = n
                return i
        for j in range(X.shape[1]):
            s = math.sqrt(m2[j] / n) if n > 0 else 0.0
            centre[i, j] = mean[j]
            scale[i, j] = s
            Z[i, j] = (X[i, j] - mean[j]) / s if s > 0.0 else 0.0
        if warmup < 0 or n < warmup:
            n += 1
            for j in range(X.shape[1]):
                d = X[i, j] - mean[j]
                mean[j] += d / n
                m2[j] += d * (X[i, j] - mean[j])
    count[0] = n
    return X.shape[0]


_COMPILED = []


def _kernel():
    if not _COMPILED:                       # numba only when a stream is standardised
        import numba
        _COMPILED.append(numba.njit(cache=True, nogil=True)(_rows))
    return _COMPILED[0]
