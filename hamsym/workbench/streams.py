"""Streams to learn from: signals over time, a teacher network, arrays, files, datasets.

Everything here produces either whole arrays of shape (T, n) (for ``Integrator.run``),
chunks of them (``chunks`` / ``run_chunks``: fixed memory, any length), or per-step
tuples (``samples``: what ``Integrator.run_stream`` takes). Time is sampled every
``delta``: step k is time k * delta, the Euler step of the integrator.

    sig = streams.sines([0.05, 0.08], amps=[1, 0.5]) + 0.1 * streams.square(0.02)
    Y = sig.take(10_000, delta=0.1)                  # (10000, 1)
    bank.run(Y)                                      # a network with a target only
    learner.run_stream(streams.samples(streams.from_file("big.npy", n_inputs=4)))
    U, Y = streams.lagged(series, lags=8, horizon=1)  # the next value from the last 8
    Z = streams.Standardizer().transform(U)          # each row with the statistics before it
"""

from __future__ import annotations

import itertools

import numpy as np

from .lags import lagged  # noqa: F401  (time series: inputs from a series' last values)
from .welford import Standardizer, standardize  # noqa: F401  (online standardisation)
from .stream_files import FileStream, from_file, split  # noqa: F401  (files: their own module)

# -- signals of time ------------------------------------------------------------------------------


class Signal:
    """A function of time t (an array of shape (T,)) with values of shape (T, n)."""

    def __init__(self, fn, n=1, name="signal"):
        self.fn, self.n, self.name = fn, n, name

    def __call__(self, t):
        out = np.asarray(self.fn(np.asarray(t, dtype=float)), dtype=float)
        return out.reshape(len(t), self.n)

    def take(self, steps, delta, start=0):
        """Values at steps start, ..., start + steps - 1 (times k * delta): (steps, n)."""
        return self(np.arange(start, start + steps) * float(delta))

    def chunks(self, delta, chunk=4096, steps=None):
        """Consecutive blocks of `take`, endless when steps is None."""
        for start in itertools.count(0, chunk):
            if steps is not None and start >= steps:
                return
            yield self.take(chunk if steps is None else min(chunk, steps - start), delta, start)

    def __add__(self, other):
        if isinstance(other, Signal):
            if other.n != self.n:
                raise ValueError(f"cannot add signals of widths {self.n} and {other.n}")
            return Signal(lambda t: self(t) + other(t), self.n, f"{self.name} + {other.name}")
        return Signal(lambda t: self(t) + float(other), self.n, f"{self.name} + {other}")

    __radd__ = __add__

    def __mul__(self, c):
        c = float(c)
        return Signal(lambda t: c * self(t), self.n, f"{c:g} * {self.name}")

    __rmul__ = __mul__

    def __repr__(self):
        return f"Signal({self.name}, width {self.n})"


def _column(values):
    return np.atleast_1d(np.asarray(values, dtype=float))


def sines(freqs, amps=1.0, phases=0.0):
    """sum_i amps_i sin(2 pi freqs_i t + phases_i); frequencies in cycles per unit time."""
    f, a, p = np.broadcast_arrays(_column(freqs), _column(amps), _column(phases))
    return Signal(lambda t: np.sin(2 * np.pi * np.outer(t, f) + p) @ a, 1,
                  "sines(" + ", ".join(f"{x:g}" for x in f) + ")")


def square(freq, amp=1.0, phase=0.0):
    """A square wave of the given frequency: amp * sign(sin(2 pi freq t + phase))."""
    return Signal(lambda t: amp * np.where(np.sin(2 * np.pi * freq * t + phase) >= 0, 1.0, -1.0),
                  1, f"square({freq:g})")


def sawtooth(freq, amp=1.0):
    """A sawtooth rising from -amp to amp once per period."""
    return Signal(lambda t: amp * (2 * np.mod(freq * t, 1.0) - 1), 1, f"sawtooth({freq:g})")


def chirp(f0, f1, duration, amp=1.0):
    """A linear chirp: frequency from f0 at t = 0 to f1 at t = duration, then f1 on."""
    def fn(t):
        tc = np.minimum(t, duration)
        phase = 2 * np.pi * (f0 * tc + (f1 - f0) * tc ** 2 / (2 * duration) + f1 * (t - tc))
        return amp * np.sin(phase)
    return Signal(fn, 1, f"chirp({f0:g}->{f1:g})")


def noise(std=1.0, n=1, seed=0):
    """Gaussian white noise (fresh draws on every call, from one seeded generator)."""
    rng = np.random.default_rng(seed)
    return Signal(lambda t: std * rng.normal(size=(len(t), n)), n, f"noise({std:g})")


# -- a teacher network ----------------------------------------------------------------------------

class Teacher:
    """A fixed random network y = B tanh(A u) (+ noise) that a learner can imitate.

    Inputs u ~ N(0, 1) are drawn fresh for every step, so the stream never repeats.
    """

    def __init__(self, n_in, n_hidden, n_out, *, seed=0, noise=0.0):
        rng = np.random.default_rng(seed)
        self.A = rng.normal(size=(n_hidden, n_in)) / np.sqrt(n_in)
        self.B = rng.normal(size=(n_out, n_hidden)) / np.sqrt(n_hidden)
        self.n_in, self.noise, self._rng = n_in, noise, np.random.default_rng(seed + 1)

    def __call__(self, U):
        Y = np.tanh(np.asarray(U, dtype=float) @ self.A.T) @ self.B.T
        return Y + self.noise * self._rng.normal(size=Y.shape) if self.noise else Y

    def take(self, steps):
        U = self._rng.normal(size=(steps, self.n_in))
        return U, self(U)

    def chunks(self, chunk=4096, steps=None):
        """(U, Y) blocks, endless when steps is None."""
        for start in itertools.count(0, chunk):
            if steps is not None and start >= steps:
                return
            yield self.take(chunk if steps is None else min(chunk, steps - start))


# -- arrays and files -----------------------------------------------------------------------------

def from_arrays(*arrays, chunk=4096):
    """Blocks (a[i:i+chunk], b[i:i+chunk], ...) of equally long arrays (memmaps welcome:
    only one block is read at a time)."""
    length = len(arrays[0])
    if any(len(a) != length for a in arrays):
        raise ValueError(f"streams of different lengths: {[len(a) for a in arrays]}")
    for start in range(0, length, chunk):
        yield tuple(np.asarray(a[start:start + chunk], dtype=float) for a in arrays)


def _tuple(block):
    # a signal's chunks are single arrays: the whole sample of a target-only network
    return (block,) if isinstance(block, np.ndarray) else tuple(block)


def samples(blocks):
    """Per-step tuples (u_k, y_k) from blocks of arrays: what run_stream takes."""
    for block in blocks:
        yield from zip(*_tuple(block))


def run_chunks(learner, blocks, on_chunk=None):
    """Learn from blocks with the compiled `run` (one call per block); returns the losses
    (or, with on_chunk, hands each block's losses to it and returns the step count)."""
    out, steps = [], 0
    for block in blocks:
        losses = learner.run(*_tuple(block))
        steps += len(losses)
        if on_chunk is None:
            out.append(losses)
        else:
            on_chunk(losses)
    if on_chunk is not None:
        return steps
    return np.concatenate(out) if out else np.empty(0)


# -- real data, shipped inside packages (no download) ---------------------------------------------

def dataset(name, *, standardize=True):
    """(U, Y) of a small real dataset that ships inside a package, in its stored order.

    "diabetes" (scikit-learn, 442 x 10 -> 1, regression), "trump_approval" (river,
    1001 x 6 -> 1, a time series of approval polls), "phishing" (river, 1250 x 9 ->
    2 one-hot, classification). Needs the `datasets` or `river` extra.
    """
    if name == "diabetes":
        try:
            from sklearn.datasets import load_diabetes
        except ImportError:
            raise ImportError("the diabetes dataset ships with scikit-learn: "
                              "pip install 'hamsym[datasets]'") from None
        data = load_diabetes()
        U, Y = data.data.astype(float), data.target.astype(float)[:, None]
    elif name in ("trump_approval", "phishing"):
        try:
            from river import datasets
        except ImportError:
            raise ImportError(f"the {name} dataset ships with river: "
                              "pip install 'hamsym[river]'") from None
        source = datasets.TrumpApproval() if name == "trump_approval" else datasets.Phishing()
        rows = list(source)
        keys = list(rows[0][0])
        U = np.array([[float(x[k]) for k in keys] for x, _ in rows])
        if name == "phishing":
            label = np.array([bool(y) for _, y in rows])
            Y = np.stack([~label, label], axis=1).astype(float)
        else:
            Y = np.array([[float(y)] for _, y in rows])
    else:
        raise ValueError(f"unknown dataset {name!r}; known: diabetes, trump_approval, phishing")
    if standardize:
        U = (U - U.mean(0)) / np.where(U.std(0) > 0, U.std(0), 1.0)
        if name != "phishing":
            Y = (Y - Y.mean(0)) / Y.std(0)
    return U, Y
