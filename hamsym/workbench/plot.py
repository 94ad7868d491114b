"""Figures of learning over time (the `plot` extra: matplotlib, imported when called).

    fig = plot.losses({"local": l1, "nonlocal": l2}, window=500)
    fig.savefig("examples/out/losses.png")
"""

from __future__ import annotations

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'hamsym[plot]'") from None
    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg") and not _interactive():
        matplotlib.use("Agg")             # scripts and CI: write files, open no window
    import matplotlib.pyplot as plt
    return plt


def _interactive():
    import sys
    return hasattr(sys, "ps1") or "ipykernel" in sys.modules


def moving_average(x, window):
    """Mean of the last `window` values at each step (fewer at the start)."""
    x = np.asarray(x, dtype=float)
    c = np.concatenate([[0.0], np.cumsum(x)])
    k = np.arange(1, len(x) + 1)
    lo = np.maximum(k - window, 0)
    return (c[k] - c[lo]) / (k - lo)


def _figure(ax, size=(7, 3.5)):
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
    return ax.figure, ax


def _save(fig, save):
    if save is not None:
        from pathlib import Path
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(save, dpi=120)
    return fig


def losses(curves, *, window=200, delta=None, steps=None, log=True, ax=None, title=None,
           ylabel="loss", save=None):
    """Loss per step (faint) and its moving average (solid), one colour per curve.

    curves: {label: losses} or one array; delta: label the axis in time instead of steps;
    steps: the step of each value, when they are not 0, 1, 2, ... (one value every HOLD
    steps, say): an array, or a function of the number of values giving one.
    """
    fig, ax = _figure(ax)
    if not isinstance(curves, dict):
        curves = {"loss": curves}
    for i, (label, values) in enumerate(curves.items()):
        values = np.asarray(values, dtype=float)
        if steps is not None:
            x = np.asarray(steps(len(values)) if callable(steps) else steps, dtype=float)
            if x.shape != values.shape:
                raise ValueError(f"steps has {x.size} values, curve {label!r} {values.size}")
            x = x * (delta or 1)
        else:
            x = np.arange(len(values)) * (delta or 1)
        colour = f"C{i}"
        ax.plot(x, values, color=colour, alpha=0.15, lw=0.5)
        ax.plot(x, moving_average(values, window), color=colour, lw=1.5,
                label=f"{label} (mean of {window} {'values' if steps is not None else 'steps'})")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("time" if delta else "step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return _save(fig, save)


def signal(target, generated, *, delta=1.0, start=0, split=None, ax=None, title=None, save=None):
    """A target signal against what the network generates; `split` marks where learning
    stopped (the network runs free after it)."""
    fig, ax = _figure(ax, (8, 3))
    target, generated = (np.asarray(a, dtype=float).reshape(len(a), -1) for a in (target, generated))
    t = (start + np.arange(len(target))) * delta
    for j in range(target.shape[1]):
        ax.plot(t, target[:, j], color="k", lw=1.2, label="target" if j == 0 else None)
        ax.plot(t, generated[:, j], color="C3", lw=1, ls="--", label="network" if j == 0 else None)
    if split is not None:
        ax.axvline(split * delta, color="C7", ls=":", lw=1)
        ax.text(split * delta, ax.get_ylim()[1], " free-running", va="top", fontsize="small")
    ax.set_xlabel("time")
    ax.legend(fontsize="small", loc="lower left")
    if title:
        ax.set_title(title)
    return _save(fig, save)


def frequencies(history, *, delta=1.0, every=1, targets=(), ax=None, title=None, save=None):
    """Learned frequencies over time: history is (T, n) angular frequencies (radians per
    unit time, as the oscillator bank's weight w), shown in cycles per unit time."""
    fig, ax = _figure(ax)
    history = np.asarray(history, dtype=float)
    t = np.arange(len(history)) * delta * every
    ax.plot(t, history / (2 * np.pi), lw=1)
    for f in targets:
        ax.axhline(f, color="k", ls=":", lw=1)
    ax.set_xlabel("time")
    ax.set_ylabel("frequency (cycles / unit time)")
    if title:
        ax.set_title(title)
    return _save(fig, save)
