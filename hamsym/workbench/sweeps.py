"""Hyperparameter sweeps: a Cartesian grid of learners run as one Ensemble on one stream."""

from __future__ import annotations

import itertools
import math

import numpy as np

from .per_weight_spec import scalar


def sweep(model, grid, stream, *, seeds=(0,), window=None, frame=None, init=None,
          return_ensemble=False, **options):
    """Run every combination of `grid` (and every seed) as one learner of one Ensemble on
    one shared stream, and tabulate the results.

    model: a Network (derived with its default hyperparameters), a derived System, or a
    generated module; options (scheme, dtype, ...) go to hs.load. grid: {name: values}
    of hyperparameters or params, e.g. {"beta": [0.1, 1.0], "theta": [0.1, 0.5]}; names
    not in the grid keep the module's defaults. stream: one array per input and target,
    in declaration order (a bare array when there is one), each of shape (T, n). seeds:
    the seeds of the initial weights, the innermost loop. init: keyword arguments of
    Ensemble (states=, weights=, check_finite=, ...).

    Returns one row per learner, in grid order (the first name varies slowest): the grid
    values, seed, final_loss (mean loss over the last `window` steps; default the last
    tenth of the stream, at least one step), mean_loss (over the whole stream) and
    diverged (NaN losses then). A pandas DataFrame if pandas is installed (frame=None),
    else a numpy structured array; frame=True requires pandas, frame=False gives the
    structured array. With return_ensemble, returns (table, ensemble).
    """
    module = _module(model, options)
    ensemble, columns = grid_ensemble(module, grid, seeds, init)
    data = stream if isinstance(stream, (tuple, list)) else (stream,)
    losses = ensemble.run(*data)
    length = losses.shape[1]
    window = max(1, length // 10) if window is None else int(window)
    if not 1 <= window <= max(length, 1):
        raise ValueError(f"window = {window}: must be between 1 and the stream's length {length}")
    with np.errstate(invalid="ignore"):
        final = losses[:, -window:].mean(axis=1) if length else np.full(ensemble.K, np.nan)
        mean = losses.mean(axis=1) if length else np.full(ensemble.K, np.nan)
    table = tabulate(columns, final, mean, ensemble.diverged, frame)
    return (table, ensemble) if return_ensemble else table


def grid_ensemble(module, grid, seeds, init=None, *, part=None, **options):
    """One Ensemble of `module` with a learner for every combination of `grid` and every
    seed (the innermost loop), and the grid's columns {name: (K,) values, "seed": (K,)}.
    init: keyword arguments of Ensemble (states=, weights=, check_finite=, ...); options:
    more of them (recent=). part: a range of the grid's rows, the learners to make (a shard)."""
    # beta.W1: W1's own beta, the module's scalar beta__W1 (generated with per_weight)
    grid = {scalar(name): _values(name, values) for name, values in dict(grid).items()}
    if "seed" in grid:
        raise ValueError("give the seeds as seeds=[...], not in the grid")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed")
    rows = list(itertools.product(*grid.values(), seeds))
    if part is not None:
        rows = rows[part.start:part.stop]
    hyper = {name: [row[j] for row in rows] for j, name in enumerate(grid)}
    ensemble = module.Ensemble(len(rows), seeds=[row[-1] for row in rows],
                               **{**dict(init or {}), **options}, **hyper)
    columns = {name: np.array([np.nan if v is None else v for v in hyper[name]], np.float64)
               for name in grid}
    columns["seed"] = np.array([row[-1] for row in rows], np.int64)
    return ensemble, columns


def grid_size(grid, seeds):
    """The number of learners (rows) of a grid and seeds."""
    return math.prod(len(_values(name, v)) for name, v in dict(grid).items()) * len(list(seeds))


def tabulate(columns, final, mean, diverged, frame=None):
    """The sweep's table: the grid's columns, then final_loss, mean_loss (NaN for the
    learners that diverged) and diverged; a DataFrame if pandas imports (frame=None) or
    is required (frame=True), else (frame=False) a numpy structured array."""
    final, mean = np.array(final, np.float64), np.array(mean, np.float64)
    final[diverged], mean[diverged] = np.nan, np.nan
    return _table({**columns, "final_loss": final, "mean_loss": mean,
                   "diverged": np.asarray(diverged, bool)}, frame)


def _module(model, options):
    if hasattr(model, "Ensemble") and hasattr(model, "SPEC_HASH"):
        if options:
            raise TypeError(f"options {sorted(options)} apply when the module is generated; "
                            "this one is generated already")
        return model
    from .. import derive, load
    from ..declare.network import Network
    from ..derive.system import System
    if isinstance(model, Network):
        model = derive(model)
    if not isinstance(model, System):
        raise TypeError(f"sweep takes a Network, a derived System or a generated module, "
                        f"not {type(model).__name__}")
    return load(model, **options)


def _values(name, values):
    if isinstance(values, (str, bytes)) or np.ndim(values) > 1:
        raise TypeError(f"grid[{name!r}] = {values!r}: give a list of values")
    values = [values] if np.ndim(values) == 0 else list(values)
    if not values:
        raise ValueError(f"grid[{name!r}] is empty")
    return values


def _table(columns, frame):
    if frame is not False:
        try:
            import pandas
        except ImportError:
            if frame:
                raise ImportError("frame=True needs pandas (pip install pandas)") from None
        else:
            return pandas.DataFrame(columns)
    table = np.zeros(len(columns["seed"]), [(name, a.dtype) for name, a in columns.items()])
    for name, a in columns.items():
        table[name] = a
    return table
