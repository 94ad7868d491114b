"""Numerically safe forms of a custom activation and of its derivative.

A formula that SymPy derives is exact but not always computable in floating
point: the derivative of swish, t / (1 + exp(-t)), is t exp(-t) / (1 + exp(-t))^2 +
1 / (1 + exp(-t)), and exp(-t) overflows for t < -709, giving inf / inf = nan where
the true value is about 0. Before a custom activation is accepted, its printed code
is evaluated at probe points from -1000 to 1000 and compared with SymPy's
high-precision value. If it is off where the true value is a finite float, the
same formula is tried rewritten in exp(-|t|) on each side of 0 (so no exponential
of a large positive number is ever taken); if that fails too, the activation is
refused with the point where it breaks.
"""

from __future__ import annotations

import math
import types

import numpy as np
import sympy

from ..errors import DeclarationError

PROBES = (-1000.0, -710.0, -100.0, -30.0, -5.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 5.0, 30.0, 100.0,
          710.0, 1000.0)

# numpy's functions overflow to inf (as compiled code does); math's raise instead
_MATH = types.SimpleNamespace(**{n: getattr(np, n, getattr(math, n)) for n in dir(math)
                                 if not n.startswith("_")})


def _evaluate(code, value):
    with np.errstate(all="ignore"):
        f = eval(f"lambda t: {code}", {"math": _MATH, "max": max, "min": min})  # our own printout
        try:
            return float(f(np.float64(value)))
        except (ZeroDivisionError, OverflowError, ValueError):
            return math.nan


def _broken_at(expr, t, code):
    """The first probe where code is off although expr is a finite float there, else None."""
    for value in PROBES:
        true = expr.evalf(30, subs={t: value})
        if not true.is_real or not true.is_finite or abs(true) > 1e300:
            continue
        true = float(true)
        got = _evaluate(code, value)
        if not math.isfinite(got) or abs(got - true) > 1e-9 * max(1.0, abs(true)):
            return value, true, got
    return None


def _in_exponentials(expr, t, sign):
    """expr for sign*t >= 0, written with exp(-|k t|) only: every exponential becomes a
    power of q = exp(-sign*t) <= 1, and the rational function in q is cancelled so
    that only non-negative powers remain."""
    q = sympy.Dummy("q", positive=True)

    def to_q(e):
        k = sympy.simplify(e.args[0] / t)
        return q ** (-sign * k) if k.is_number else e
    rational = expr.rewrite(sympy.exp).replace(lambda e: isinstance(e, sympy.exp), to_q)
    if rational.has(sympy.exp):
        return None
    rational = sympy.cancel(sympy.together(rational))
    if any(p.exp.is_negative for p in rational.atoms(sympy.Pow) if p.base == q):
        return None
    return rational.subs(q, sympy.exp(-sign * t))


def safe_form(expr, t, what, printer):
    """expr itself, or an equal form that computes without overflow; printer(expr)
    gives the Python code of a candidate. Raises DeclarationError if none works."""
    broken = _broken_at(expr, t, printer(expr))
    if broken is None:
        return expr
    pos, neg = _in_exponentials(expr, t, +1), _in_exponentials(expr, t, -1)
    if pos is not None and neg is not None:
        candidate = sympy.Piecewise((pos, t >= 0), (neg, True))
        if _broken_at(expr, t, printer(candidate)) is None:
            return candidate
    at, true, got = broken
    raise DeclarationError(
        f"activation {what} = {expr}: its floating-point value at t = {at:g} is {got} where the "
        f"exact value is {true:.6g} (an intermediate overflows), and no safe rewriting was found; "
        "give a numerically safe formula (e.g. with exp(-|t|))")
