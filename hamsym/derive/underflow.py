"""Hyperparameters too small for the arithmetic of a dtype.

An Euler step moves a weight by delta*beta * p_w, and p_w by delta*flip * gamma*dl/dw,
so one learning step scales a gradient by delta^2 * beta * gamma; a state moves by
delta * f. When one of these factors is below the smallest normal number of the
dtype (2.2e-308 in float64, 1.2e-38 in float32) the update underflows: it is zero,
or a subnormal with no precision left, and the learner silently learns nothing.
"""

from __future__ import annotations

import math

import numpy as np


def _factors(hyper):
    """(a product a step multiplies by, its log10); a zero beta or gamma switches
    learning off on purpose and is left out."""
    log = {k: math.log10(abs(float(hyper[k]))) for k in ("delta", "beta", "gamma")
           if float(hyper[k]) != 0}
    out = [("delta", log["delta"])]
    if "beta" in log:
        out.append(("delta*beta", log["delta"] + log["beta"]))
    if "gamma" in log:
        out.append(("delta*gamma", log["delta"] + log["gamma"]))
    if "beta" in log and "gamma" in log:
        out.append(("delta^2*beta*gamma", 2 * log["delta"] + log["beta"] + log["gamma"]))
    return out


def underflow(hyper, dtype="float64"):
    """None, or why the hyperparameters (a dict with delta, beta, gamma) make the updates
    underflow in dtype: the message names the values and the factor."""
    if "delta" not in hyper or not float(hyper["delta"]) > 0:
        return None
    tiny = float(np.finfo(np.dtype(dtype)).tiny)
    for name, exponent in _factors(hyper):
        if exponent < math.log10(tiny):
            values = ", ".join(f"{k}={float(hyper[k]):g}" for k in ("delta", "beta", "gamma")
                               if k in name)
            return (f"{values}: the update factor {name} = 1e{exponent:.0f} underflows in "
                    f"{np.dtype(dtype).name} (smallest normal number {tiny:.3g}), so the "
                    f"{'states' if name == 'delta' else 'weights'} would not move; "
                    "use a larger delta (or beta, gamma)")
    return None
