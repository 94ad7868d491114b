"""From a declared network to Hamilton's equations (docs/mathematics.md, sections 2-5).

    H      = gamma*l + sum_x p_x . f_x + sum_w p_w . v_w + |v_w|^2 / (2 beta)
    v_w*   = -beta p_w                                  (dH/dv = 0)
    H_red  = gamma*l + sum_x p_x . f_x - (beta/2) sum_w |p_w|^2

    x'   =  f_x                     p_x' = flip * (theta_neurons/delta * p_x - dH/dx)
    w'   = -beta p_w                p_w' = flip * (theta/delta * p_w - dH/dw)

theta here is the per-step decay of the authors' code, so the continuous rate is
theta/delta and the Euler step reads p+ = (1 + flip*theta) p - delta*flip*dH/dx.
"""

from __future__ import annotations

import math
import numbers
import warnings

import sympy

from .chain import gradients
from ..declare.expr import Const, DeclarationError, Var, Zero, add, inner, neg, reciprocal, scale
from ..declare.network import HYPER
from ..declare.reductions import sum_squares
from .system import Equation, System
from .underflow import underflow

DEFAULTS = dict(gamma=1.0, beta=1.0, theta=0.1, theta_neurons=None, flip=-1.0, delta=0.1)


def costate(var):
    return Var(f"p_{var.name}", var.shape, "costate")


def control(var):
    return Var(f"v_{var.name}", var.shape, "control")


def _hyper_values(net, values):
    out = {}
    for name, default in DEFAULTS.items():
        value = values.pop(name, default)
        if name == "theta_neurons" and value is None:   # follows theta unless given
            out[name] = None
            continue
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or \
                not math.isfinite(value):
            raise DeclarationError(f"derive({net.name}): {name}={value!r} must be a finite "
                                   "real number")
        out[name] = float(value)
    if values:
        raise DeclarationError(f"derive({net.name}): unknown hyperparameter(s) {sorted(values)}; "
                               f"known: {list(DEFAULTS)}")
    if out["flip"] not in (-1.0, 1.0):
        raise DeclarationError(f"derive({net.name}): flip must be -1 (HL) or +1, got {out['flip']}")
    if out["delta"] <= 0:
        raise DeclarationError(f"derive({net.name}): delta must be positive, got {out['delta']}")
    why = underflow(out)
    if why:
        raise DeclarationError(f"derive({net.name}): {why}")
    if out["beta"] < 0:
        warnings.warn(f"derive({net.name}): beta={out['beta']} < 0 moves the weights up the "
                      "gradient", stacklevel=3)
    for name in ("theta", "theta_neurons"):
        if out[name] is not None and not 0 <= out[name] <= 1:
            warnings.warn(f"derive({net.name}): {name}={out[name]} is outside [0, 1]: the costate "
                          f"is multiplied by {1 + out['flip'] * out[name]:g} per step", stacklevel=3)
    return out


def _loss_reaches_a_weight(net):
    seen, todo = set(), list(net.leaves(net.loss_expr))
    while todo:
        v = todo.pop()
        if v.kind == "weight":
            return True
        if v.kind == "state" and v not in seen:
            seen.add(v)
            todo.extend(net.leaves(net.dynamics_of[v.name]))
    return False


def derive(net, **hyper):
    """Derive the Hamiltonian, the control law and Hamilton's equations of `net`.

    Keyword-only hyperparameters (their values become the defaults of generated
    integrators; the equations stay symbolic in them): gamma, beta, theta (per-step
    decay of the weight costates), theta_neurons (of the neuron costates; defaults to
    theta), flip (-1: HL's time reversal), delta (the Euler step).
    """
    net.check_complete()
    values = _hyper_values(net, dict(hyper))
    gamma, beta, theta, theta_x, flip = (HYPER[k] for k in
                                         ("gamma", "beta", "theta", "theta_neurons", "flip"))
    delta = net.delta
    states, weights = net.of_kind("state"), net.of_kind("weight")
    if not weights and not states:
        raise DeclarationError(f"network {net.name!r} declares no weights and no states: "
                               "nothing to learn or integrate")
    if weights and not _loss_reaches_a_weight(net):
        warnings.warn(f"network {net.name!r}: the loss `{net.loss_expr}` depends on no weight, "
                      "directly or through the states, so the weights will not learn", stacklevel=2)
    f = {x: net.dynamics_of[x.name] for x in states}
    p = {v: costate(v) for v in states + weights}
    v = {w: control(w) for w in weights}

    coupling = add(*(inner(p[x], f[x]) for x in states)) if states else Const(0)
    running = scale(gamma, net.loss_expr)
    h_reduced = add(running, coupling,
                    *(neg(scale(scale(Const(sympy.Rational(1, 2)), beta), sum_squares(p[w]))) for w in weights))
    h_full = add(running, coupling, *(inner(p[w], v[w]) for w in weights),
                 *(scale(reciprocal(scale(Const(2), beta)), sum_squares(v[w])) for w in weights))

    seeds = [(net.loss_expr, gamma)] + [(f[x], p[x]) for x in states]
    grads, messages = gradients(seeds, states + weights, net.instants)
    dH = {var: g if g is not None else Zero(var.shape) for var, g in grads.items()}

    rate = lambda th: scale(th, reciprocal(delta))      # noqa: E731  continuous decay rate
    equations = []
    for x in states:
        equations.append(Equation(x, f[x], "state"))
    for w in weights:
        equations.append(Equation(w, neg(scale(beta, p[w])), "weight"))
    for var in states + weights:
        th = theta_x if var.kind == "state" else theta
        rhs = scale(flip, add(scale(rate(th), p[var]), neg(dH[var])))
        equations.append(Equation(p[var], rhs, "costate"))

    return System(
        net=net, hyper=values, hamiltonian=h_reduced, hamiltonian_full=h_full,
        control_law=[Equation(v[w], neg(scale(beta, p[w])), "control") for w in weights],
        equations=equations, gradients=dH, messages=messages, costates=p)

