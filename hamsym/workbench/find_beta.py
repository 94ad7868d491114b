"""Choosing beta: a short sweep on the first samples of a stream, as one Ensemble, that
proposes the largest stable beta with a safety margin (docs/workbench.md, "Choosing
beta").

    report = hs.find_beta(mod, (U, Y), n=2000)
    print(report)                        # every beta tried, and the proposal
    learner = mod.Integrator(beta=report.beta)

The rule. Every beta of a geometric grid (default: the module's beta times 2^-8 ..
2^4) learns the same first n samples from the same start: one seed, the same
weights and states, the other hyperparameters as given. A beta is *stable* when

- no loss of the window is NaN or infinite (the learner did not diverge), and
- the mean loss of the last quarter of the window is not above the mean of the
  first quarter (learning did not make things worse).

beta_max is the largest stable beta of the unbroken run of stable betas that holds
the best one (the lowest mean loss over the last quarter): a beta that looks stable
above an unstable one is a lucky draw, not a safe choice, and small betas that
barely learn may look worse by noise, which must not end the run from below. The
proposal is beta_max / margin (margin 2: one step of the default grid), because a
short window sees only the start of a stream and a step size at the very edge of
stability diverges on the first unusual sample.

The SGD twin: non-local HL (flip = -1) on a feed-forward network of instantaneous
layers is SGD with momentum, lr = delta^2 beta gamma, momentum = 1 - theta
(docs/mathematics.md, section 8); `sgd_equivalent` writes that line for any settings.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

#: the default grid, relative to the module's beta: 2^-8 .. 2^4
GRID_POWERS = tuple(range(-8, 5))


def sgd_equivalent(hyper):
    """The SGD settings of HL's hyperparameters (a dict with gamma, beta, theta, delta
    and flip), as one line: lr = delta^2 beta gamma, momentum = 1 - theta, exact for
    the nonlocal scheme on a feed-forward network (no neuron states) with flip = -1."""
    try:
        gamma, beta, theta, delta = (float(hyper[k]) for k in ("gamma", "beta", "theta", "delta"))
    except KeyError as err:
        raise KeyError(f"sgd_equivalent needs gamma, beta, theta and delta; {err} is missing") \
            from None
    if float(hyper.get("flip", -1.0)) != -1.0:
        return "no SGD equivalent: flip = +1 ascends the Hamiltonian"
    lr = delta ** 2 * beta * gamma
    return (f"SGD equivalent: lr = delta^2 beta gamma = {lr:.4g}, momentum = 1 - theta = "
            f"{1 - theta:.4g} (exact for the nonlocal scheme on a feed-forward network)")


def hl_settings(hyper):
    """HL's settings as one line: gamma, beta, theta, delta (and flip when +1)."""
    names = ["gamma", "beta", "theta", "delta"] + (["flip"] if hyper.get("flip", -1.0) != -1.0
                                                   else [])
    return ", ".join(f"{k} = {float(hyper[k]):.4g}" for k in names)


@dataclass(frozen=True)
class BetaTrial:
    """One beta of the sweep: its mean loss over the first and last quarter of the
    window (NaN once diverged), whether it diverged, and whether it is stable."""
    beta: float
    first: float
    last: float
    diverged: bool
    stable: bool

    @property
    def ratio(self):
        """last / first: below 1 when the loss fell over the window."""
        return self.last / self.first if self.first > 0 else math.nan


@dataclass(frozen=True)
class BetaProposal:
    """What find_beta found: .beta (the proposal), .beta_max (the largest stable beta),
    .trials (every beta tried, in grid order), .edge (the smallest unstable beta above
    beta_max, or None when every larger beta of the grid was stable too), .hyper (the
    hyperparameters with the proposed beta), .samples, .margin."""
    beta: float
    beta_max: float
    edge: float | None
    trials: tuple
    hyper: dict
    samples: int
    margin: float

    @property
    def sgd(self):
        return sgd_equivalent(self.hyper)

    def table(self):
        lines = [f"{'beta':>10}  {'first':>11}  {'last':>11}  {'last/first':>10}  verdict"]
        for t in self.trials:
            verdict = "diverged" if t.diverged else ("stable" if t.stable else "worse")
            mark = "  <- beta_max" if t.beta == self.beta_max else ""
            lines.append(f"{t.beta:>10.4g}  {t.first:>11.4g}  {t.last:>11.4g}  "
                         f"{t.ratio:>10.3g}  {verdict}{mark}")
        return "\n".join(lines)

    def __str__(self):
        quarter = max(1, self.samples // 4)
        edge = (f"the smallest unstable beta above it is {self.edge:.4g}" if self.edge is not None
                else "no larger beta of the grid was unstable: the edge lies above the grid; "
                     "try larger betas")
        return "\n".join([
            f"beta sweep on the first {self.samples} samples (mean loss of the first and the "
            f"last {quarter})",
            self.table(),
            f"largest stable beta {self.beta_max:.4g} ({edge})",
            f"proposed beta = {self.beta:.4g} (beta_max / {self.margin:g})",
            f"HL: {hl_settings(self.hyper)}",
            self.sgd])


class NoStableBeta(ValueError):
    """No beta of the grid was stable on the window."""


def find_beta(model, data, *, n=2000, betas=None, seed=0, margin=2.0, init=None, **hyper):
    """Sweep beta on the first n samples of `data` and propose the largest stable one,
    divided by `margin` (the rule: this module's docstring; docs/workbench.md).

    model: a generated module (or a Network or System, generated with the defaults).
    data: the stream, one array per input and target ((T, n) each, in declaration
    order; a bare array when there is one), or an iterable of such blocks (only the
    first n rows are read). betas: the grid (default the module's beta times 2^-8 ..
    2^4). seed: of the initial weights, the same for every beta. init: keyword
    arguments of Ensemble (weights=, states=). hyper: other hyperparameters to hold
    fixed (gamma=, theta=, ...). Returns a BetaProposal; print it for the table.
    Raises NoStableBeta (a ValueError) when no beta was stable.
    """
    from .sweeps import _module
    module = _module(model, {})
    n = int(n)
    if n < 8:
        raise ValueError(f"n = {n}: the sweep compares the first and last quarter of the "
                         "window; give at least 8 samples")
    if not margin >= 1.0:
        raise ValueError(f"margin = {margin}: must be at least 1 (the proposal is beta_max / margin)")
    unknown = [k for k in hyper if k not in module.HYPER and k not in module.PARAMS]
    if unknown or "beta" in hyper:
        raise ValueError(f"{(unknown or ['beta'])[0]}: give the betas to try as betas=[...], and "
                         f"other hyperparameters by name: {list(module.HYPER)}")
    base = {**module.HYPER, **hyper}
    grid = _grid(betas, base["beta"])
    window = _first(data, n, len(module.INPUTS) + len(module.TARGETS))
    length = len(window[0])
    if length < 8:
        raise ValueError(f"the stream has {length} samples; the sweep needs at least 8")
    init = dict(init or {})
    init.pop("seed", None)
    ensemble = module.Ensemble(len(grid), seeds=[int(seed)] * len(grid), beta=list(grid),
                               **init, **hyper)
    with warnings.catch_warnings():          # divergence is what the sweep looks for
        warnings.simplefilter("ignore")
        losses = ensemble.run(*window)
    trials = judge(grid, losses, ensemble.diverged)
    beta_max, edge = choose(trials)
    chosen = {**base, "beta": beta_max / margin}
    return BetaProposal(beta=beta_max / margin, beta_max=beta_max, edge=edge,
                        trials=tuple(trials), hyper=chosen, samples=length, margin=float(margin))


def judge(grid, losses, diverged):
    """A BetaTrial per beta from the (K, T) losses of the window."""
    losses = np.asarray(losses, dtype=float)
    quarter = max(1, losses.shape[1] // 4)
    trials = []
    for beta, row, gone in zip(grid, losses, diverged):
        gone = bool(gone) or not np.isfinite(row).all()
        first = float(row[:quarter].mean()) if not gone else math.nan
        last = float(row[-quarter:].mean()) if not gone else math.nan
        trials.append(BetaTrial(float(beta), first, last, gone, not gone and last <= first))
    return trials


def choose(trials):
    """(beta_max, edge): the largest stable beta of the unbroken run of stable betas
    (in grid order) that holds the best one, and the first unstable beta above it."""
    order = sorted(range(len(trials)), key=lambda i: trials[i].beta)
    finite = [i for i in order if not trials[i].diverged]
    if not finite:
        raise NoStableBeta(_none_stable(trials, "every beta diverged"))
    best = min(finite, key=lambda i: trials[i].last)
    if not trials[best].stable:
        raise NoStableBeta(_none_stable(trials, f"even the best beta, {trials[best].beta:.4g}, "
                                                "ended the window with a higher loss than it began"))
    at = order.index(best)
    while at + 1 < len(order) and trials[order[at + 1]].stable:
        at += 1
    edge = trials[order[at + 1]].beta if at + 1 < len(order) else None
    return trials[order[at]].beta, edge


def _none_stable(trials, why):
    lo, hi = min(t.beta for t in trials), max(t.beta for t in trials)
    return (f"no stable beta between {lo:.4g} and {hi:.4g}: {why}; try smaller betas, more "
            "samples, or a standardised stream")


def _grid(betas, beta):
    if betas is None:
        if not beta > 0:
            raise ValueError(f"the module's beta is {beta}: give the betas to try")
        return [beta * 2.0 ** k for k in GRID_POWERS]
    grid = sorted(float(b) for b in np.atleast_1d(betas))
    if not grid or not all(b > 0 and math.isfinite(b) for b in grid):
        raise ValueError(f"betas {list(np.atleast_1d(betas))}: give positive, finite values")
    if len(set(grid)) != len(grid):
        raise ValueError(f"betas {grid}: a value is given twice")
    return grid


def _first(data, n, arrays):
    """The first n rows of the stream as a tuple of arrays (one per input and target)."""
    if isinstance(data, np.ndarray) or (isinstance(data, (tuple, list)) and data and
                                        all(isinstance(a, np.ndarray) for a in data)):
        parts = (data,) if isinstance(data, np.ndarray) else tuple(data)
        if len(parts) != arrays:
            raise ValueError(f"the stream has {len(parts)} arrays; the network takes {arrays} "
                             "(its inputs, then its targets)")
        return tuple(np.asarray(a[:n], dtype=float) for a in parts)
    blocks, have = [], 0
    for block in data:
        block = (block,) if isinstance(block, np.ndarray) else tuple(block)
        if len(block) != arrays:
            raise ValueError(f"a block of the stream has {len(block)} arrays; the network takes "
                             f"{arrays} (its inputs, then its targets)")
        blocks.append(tuple(np.asarray(a[:n - have], dtype=float) for a in block))
        have += len(blocks[-1][0])
        if have >= n:
            break
    if not blocks:
        raise ValueError("the stream is empty")
    return tuple(np.concatenate(parts) for parts in zip(*blocks))
