"""Values checked where they enter a learner: arrays against their declaration,
hyperparameters against what HL can use."""

import math
import warnings

import numpy as np

from .per_weight import follows


class HyperparameterWarning(UserWarning):
    """A hyperparameter value that is allowed but rarely meant."""


def real(value, what):
    """value as an array of real numbers (bool, int or float); TypeError naming `what`."""
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{what} has dtype {a.dtype}: expected real numbers")
    return a


def not_finite(arrays, names):
    """None if every value of the arrays is finite; else (name, index, value) of the
    first that is not: the one with the lowest leading index (a stream's row), the
    first array's on a tie."""
    found = None
    for a, name in zip(arrays, names):
        # one pass without a temporary: a sum of finite values is finite unless it
        # overflows, and then the exact test below finds nothing
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.add.reduce(a, axis=None) if a.size else 0.0
        if not math.isfinite(total):
            bad = np.argwhere(~np.isfinite(a))
            if len(bad) and (found is None or bad[0][0] < found[1][0]):
                index = tuple(int(i) for i in bad[0])
                found = (name, index, a[index])
    return found


def refuse_not_finite(arrays, names, escape=True):
    """ValueError naming the first value of the streams that is not finite (see
    not_finite). A call checks its streams before its first step, so a refusal changes
    nothing. escape: say that check_finite=False lets such data in."""
    bad = not_finite(arrays, names)
    if bad is not None:
        name, index, value = bad
        raise ValueError(f"{entry(name, index)} is {value}: the data must be finite numbers; "
                         "nothing was learned" +
                         (" (check_finite=False lets such data in)" if escape else ""))


def entry(name, index):
    """name[i, j], as a user indexes it."""
    return f"{name}[{', '.join(map(str, index))}]" if index else name


def fit(value, shape, dtype, what, copy):
    """value as a C-ordered array of the declared storage shape and dtype; the same
    array object when it already is one and copy is false."""
    a = real(value, what)
    if a.shape != shape and not (len(shape) == 1 and a.shape in ((shape[0], 1), (1, shape[0]))):
        raise ValueError(f"{what} has shape {a.shape}, declared {shape}")
    if copy or a.dtype != dtype or a.shape != shape or not a.flags.c_contiguous \
            or not a.flags.writeable or not a.flags.aligned:
        a = np.array(a, dtype=dtype, order="C").reshape(shape)
    return a


def hyper(name, value, known, stacklevel=4):
    """A hyperparameter or param value, checked; returns it as a float (or None).
    known: the names the module declares."""
    if name not in known:
        raise KeyError(f"unknown hyperparameter {name!r}; known: {list(known)}")
    if value is None and follows(name):     # None: theta_neurons decays like the weights',
        return None                         # a weight's own value is the global one
    if np.iscomplexobj(value):
        raise TypeError(f"{name} = {value!r}: expected a real number")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} = {value!r}: expected a real number") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} = {v}: must be finite")
    if name == "delta" and v <= 0:
        raise ValueError(f"delta = {v}: the time step must be > 0")
    if name == "flip" and v not in (-1.0, 1.0):
        raise ValueError(f"flip = {v}: must be -1 (HL's choice) or +1")
    kind = follows(name) if "__" in name else name      # beta__W1 is checked as beta
    if kind == "beta" and v < 0:
        warnings.warn(f"{name} = {v} < 0: the weights climb the loss", HyperparameterWarning,
                      stacklevel=stacklevel)
    if kind in ("theta", "theta_neurons") and v > 1:
        warnings.warn(f"{name} = {v} > 1: with flip = -1 the costate's factor 1 - {name} is "
                      "negative", HyperparameterWarning, stacklevel=stacklevel)
    return v


def initial(shape, rng, dtype):
    """A weight drawn as every learner draws it: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    fan_in = the columns of a matrix, the size of a vector."""
    bound = 1.0 / math.sqrt(shape[-1] if len(shape) == 2 else shape[0])
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def float_dtype(dtype):
    """dtype as np.float32 or np.float64; TypeError otherwise."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, not {dtype}")
    return dtype
