"""Per-weight hyperparameters: weights with their own gamma, beta and theta.

    H = gamma*L + sum_w [p_w . v_w + |v_w|^2 / (2 beta_w)]

so weight w moves with its own beta_w (v_w = -beta_w p_w), its costate decays with its
own theta_w, and its costate sees gamma_w times the gradient:

    p_w+ = (1 + flip*theta_w) p_w - delta*flip*(gamma_w/gamma) dH/dw;  w+ = w - delta*beta_w*p_w

(dH/dw is gamma times the loss's gradient, plus the states' terms on networks with
states; the neuron costates keep the global gamma, as the authors' parameter groups do).

They are declared when the module is generated (option per_weight): each named weight
gets three ordinary scalars of the module, gamma__W, beta__W, theta__W, so learners,
ensembles, checkpoints, --set and sweeps handle them as every other hyperparameter. A
value of None follows the global one; when all are equal to the global ones the step is
bit for bit the step without them. Declared names never contain '__', so the names are
unique.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..declare.network import HYPERPARAMETERS

KINDS = ("gamma", "beta", "theta")


def scalar(kind, weight):
    """The module's scalar holding weight's own value of kind (gamma, beta or theta)."""
    return f"{kind}__{weight}"


def names(system):
    """The per-weight scalars of system, weight by weight in declaration order."""
    return [scalar(k, w) for w in system.per_weight for k in KINDS]


def hyper_scalars(system):
    """The hyperparameters every kernel takes: the global ones, then the per-weight ones."""
    return list(HYPERPARAMETERS) + names(system)


def defaults(system):
    """{per-weight scalar: default value, None = follows the global one}."""
    return {scalar(k, w): values[k] for w, values in system.per_weight.items() for k in KINDS}


def coefficients(weight):
    """The prologue lines of weight's own step coefficients (as _aw, _ds, _db are the
    global ones). gamma_w/gamma is 1.0 exactly when they are equal (also at gamma = 0,
    where the gradient is zero anyway), so the step is then the global one bit for bit."""
    g, b, t = (scalar(k, weight) for k in KINDS)
    return [f"_aw_{weight} = _F(1.0 + flip * {t})",
            f"_ds_{weight} = _F(delta * flip * (1.0 if {g} == gamma else {g} / gamma))",
            f"_db_{weight} = _F(delta * {b})"]


def with_per_weight(system, per_weight):
    """system with the weights of the option per_weight given their own hyperparameters.

    per_weight: True (every weight), or an iterable of weight names (or tuples of names:
    groups), or a dict {name or tuple of names: {"gamma"/"beta"/"theta": default}}. Any
    value not given follows the global one."""
    if per_weight is None or per_weight is False:
        return system
    declared = [w.name for w in system.net.of_kind("weight")]
    if per_weight is True:
        per_weight = declared
    if isinstance(per_weight, (str, bytes)):
        raise TypeError(f"per_weight={per_weight!r}: give a list of weight names (or tuples "
                        "of them: groups), a dict of them to their values, or True")
    items = per_weight.items() if isinstance(per_weight, dict) else \
        ((key, {}) for key in per_weight)
    out = {}
    for key, values in items:
        for w in (key if isinstance(key, tuple) else (key,)):
            if w not in declared:
                raise KeyError(f"per_weight: {w!r} is not a weight of network "
                               f"{system.net.name!r}; its weights: {', '.join(declared)}")
            out[w] = {**out.get(w, dict.fromkeys(KINDS)), **_values(key, values)}
    ordered = {w: out[w] for w in declared if w in out}
    return replace(system, per_weight=ordered)


def _values(key, values):
    if not isinstance(values, dict):
        raise TypeError(f"per_weight[{key!r}] = {values!r}: expected a dict of gamma, beta "
                        "and theta values")
    for kind, v in values.items():
        if kind not in KINDS:
            raise KeyError(f"per_weight[{key!r}]: {kind!r} is not a per-weight "
                           f"hyperparameter; they are {', '.join(KINDS)}")
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                              or not math.isfinite(v)):
            raise ValueError(f"per_weight[{key!r}][{kind!r}] = {v!r}: expected a finite "
                             "number (or None: the global value)")
    return {k: None if v is None else float(v) for k, v in values.items()}
