"""Numerically safe forms of a custom activation and of its derivative.

A formula that SymPy derives is exact but not always computable in floating
point: the derivative of swish, t / (1 + exp(-t)), is t exp(-t) / (1 + exp(-t))^2 +
1 / (1 + exp(-t)), and exp(-t) overflows for t < -709, giving inf / inf = nan where
the true value is about 0. Before a custom activation is accepted, its printed code
is evaluated at probe points from -1000 to 1000 and compared with SymPy's
high-precision value. If it is off where the true value is a finite float, known
safe forms are tried (log(cosh(x)) = |x| + log1p(exp(-2|x|)) - log 2), then the
formula rewritten in exp(-|t|) on each side of 0 (so no exponential of a large
positive number is ever taken); if none works, the activation is refused with the
point where it breaks. An activation that is infinite, undefined or not real at a
probe point is refused with that point: the network feeds it any real number.

The work is bounded: the exact value is computed node by node with every
intermediate larger than 1e1000 taken as infinite (exp(exp(exp(1000))) is never
attempted), SymPy's rewriting is tried only on small formulas with small exponents,
and all of it shares a time budget (`Budget`) that refuses the activation, naming
it, when spent.
"""

from __future__ import annotations

import math
import time
import types

import numpy as np
import sympy
from sympy.codegen.cfunctions import log1p

from ..errors import DeclarationError

PROBES = (-1000.0, -710.0, -100.0, -30.0, -5.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 5.0, 30.0, 100.0,
          710.0, 1000.0)
BUDGET = 5.0                        # seconds of symbolic work per activation
PRECISIONS = (30, 120, 480, 1100)   # digits of the exact values, more where a sum cancels
_HUGE = sympy.Float("1e1000")       # beyond this an intermediate is taken as infinite
_FLOAT_MAX = float(np.finfo(np.float64).max)
MAX_REWRITE_NODES = 300             # larger formulas are not rewritten in exp(-|t|)
MAX_RATE = 64                       # nor ones with exp(k t), |k| > MAX_RATE (degree of q)

# numpy's functions overflow to inf (as compiled code does); math's raise instead
_MATH = types.SimpleNamespace(**{n: getattr(np, n, getattr(math, n)) for n in dir(math)
                                 if not n.startswith("_")})


class Budget:
    """A deadline for the symbolic work on one activation; check() between steps."""

    def __init__(self, what, seconds=None):
        self.what, self.seconds = what, BUDGET if seconds is None else seconds
        self.end = time.monotonic() + self.seconds

    def check(self, doing):
        """doing: what is under way (a str, or a function giving it, called only if late)."""
        if time.monotonic() > self.end:
            doing = doing() if callable(doing) else doing
            raise DeclarationError(
                f"activation {self.what}: {doing} took more than {self.seconds:g} s of symbolic "
                "work; give a simpler formula")


def _evaluate(code, value):
    with np.errstate(all="ignore"):
        f = eval(f"lambda t: {code}", {"math": _MATH, "max": max, "min": min})  # our own printout
        try:
            return float(f(np.float64(value)))
        except (ZeroDivisionError, OverflowError, ValueError):
            return math.nan


def _bounded(expr, t, value, budget, prec):
    """expr at t = value, computed node by node at prec digits with intermediates beyond
    1e1000 taken as infinite: (SymPy number, whether one was, whether digits were lost:
    a sum that cancels its terms, or a periodic function of a large argument)."""
    memo, clipped, lost, stack = {}, False, False, [(expr, False)]
    digits = sympy.Float(10) ** (prec - 24)       # what a term may exceed the result by
    while stack:
        node, ready = stack.pop()
        if node in memo:
            continue
        if not ready:
            budget.check(lambda: f"evaluating it at t = {value:g}")
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if a not in memo)
            continue
        if node == t:
            v = sympy.Float(value, prec)
        elif not node.args:
            v = node.evalf(prec) if getattr(node, "is_number", False) else node
        else:
            args = [memo[a] for a in node.args]
            try:            # one operation on numbers: SymPy evaluates it (or a function fails)
                v = node.func(*args)
                if getattr(v, "is_number", False) and not v.is_Float:
                    v = v.evalf(prec)
            except Exception:
                v, clipped = sympy.nan, True
            if getattr(v, "is_number", False) and v.is_finite and all(
                    getattr(a, "is_number", False) and a.is_finite for a in args):
                if isinstance(node, sympy.Add):
                    lost |= max(abs(a) for a in args) > digits * max(1, abs(v))
                elif isinstance(node, (sympy.sin, sympy.cos, sympy.tan)):
                    lost |= abs(args[0]) > digits
        if getattr(v, "is_number", False) and v.is_finite and abs(v) > _HUGE:
            v = sympy.oo if v.is_extended_positive else sympy.zoo if not v.is_extended_real \
                else -sympy.oo
            clipped = True
        memo[node] = v
    return memo[expr], clipped, lost


def _exact(expr, t, value, budget):
    """("float", x) where expr is a finite float at t = value; ("overflow", None) where it
    is beyond the floats (or its digits cannot be had); ("singular", v) where it is
    infinite or undefined and ("complex", v) where it is not real."""
    for prec in PRECISIONS:
        v, clipped, lost = _bounded(expr, t, value, budget, prec)
        if not lost:
            break
    finite = getattr(v, "is_number", False) and v.is_finite
    if finite and v.is_extended_real:
        return ("overflow", None) if lost or abs(v) > _FLOAT_MAX else ("float", float(v))
    if clipped or lost or not getattr(v, "is_number", False):
        return "overflow", None          # too large to say, or an interval (sin of infinity)
    if finite:
        return "complex", v
    return "singular", v


def _reference(expr, t, what, budget):
    """The exact values of expr at the probes, {probe: float or None (beyond the floats)};
    an activation singular or not real at a probe is refused, naming the point."""
    out = {}
    for value in PROBES:
        kind, v = _exact(expr, t, value, budget)
        if kind == "singular":
            v = {sympy.oo: "+infinity", -sympy.oo: "-infinity", sympy.zoo: "infinite"}.get(
                v, "undefined")
            raise DeclarationError(
                f"activation {what} = {expr} is singular at t = {value:g} (its value there is "
                f"{v}): an activation must be finite at every real number, which the network "
                "may feed it")
        if kind == "complex":
            raise DeclarationError(
                f"activation {what} = {expr} is not real at t = {value:g} (its value there is "
                f"{sympy.N(v, 6)}): an activation must be real at every real number, which the "
                "network may feed it")
        out[value] = v
    return out


def _broken_at(expr, t, code, reference=None, budget=None):
    """The first probe where code is off although expr is a finite float there, else None."""
    if reference is None:
        reference = _reference(expr, t, "", budget or Budget("", math.inf))
    for value, true in reference.items():
        if true is None or abs(true) > 1e300:
            continue
        got = _evaluate(code, value)
        if not math.isfinite(got) or abs(got - true) > 1e-9 * max(1.0, abs(true)):
            return value, true, got
    return None


def _known_forms(expr):
    """expr with the compositions that have a classic safe form written in it."""
    def log_cosh(e):
        a = sympy.Abs(e.args[0].args[0])
        return a + log1p(sympy.exp(-2 * a)) - sympy.log(2)
    return expr.replace(lambda e: isinstance(e, sympy.log) and isinstance(e.args[0], sympy.cosh),
                        log_cosh)


def _size(expr):
    return sum(1 for _ in sympy.preorder_traversal(expr))


def _in_exponentials(expr, t, sign):
    """expr for sign*t >= 0, written with exp(-|k t|) only: every exponential becomes a
    power of q = exp(-sign*t) <= 1, and the rational function in q is cancelled so
    that only non-negative powers remain. None if that is not possible, or too costly
    (a large formula, or a rate k that would give a polynomial of high degree)."""
    if _size(expr) > MAX_REWRITE_NODES:
        return None
    q = sympy.Dummy("q", positive=True)

    def to_q(e):
        k = sympy.cancel(e.args[0] / t) if _size(e.args[0]) <= 50 else None
        if k is None or not k.is_number or not k.is_real or abs(k) > MAX_RATE:
            return e
        return q ** (-sign * k)
    rational = expr.rewrite(sympy.exp).replace(lambda e: isinstance(e, sympy.exp), to_q)
    if rational.has(sympy.exp) or _size(rational) > MAX_REWRITE_NODES:
        return None
    rational = sympy.cancel(sympy.together(rational))
    if any(p.exp.is_negative for p in rational.atoms(sympy.Pow) if p.base == q):
        return None
    return rational.subs(q, sympy.exp(-sign * t))


def safe_form(expr, t, what, printer, budget=None):
    """expr itself, or an equal form that computes without overflow; printer(expr)
    gives the Python code of a candidate. Raises DeclarationError, naming `what`, if
    expr is singular or not real at a probe, if no form works, or if the budget
    (a `Budget`, shared by the caller's other steps) is spent."""
    budget = budget or Budget(what)
    reference = _reference(expr, t, what, budget)
    broken = _broken_at(expr, t, printer(expr), reference)
    if broken is None:
        return expr
    known = _known_forms(expr)
    if known != expr and _broken_at(expr, t, printer(known), reference) is None:
        return known
    for form in (expr, known) if known != expr else (expr,):
        budget.check("the search for a safe form")
        pos, neg = _in_exponentials(form, t, +1), _in_exponentials(form, t, -1)
        if pos is not None and neg is not None:
            candidate = sympy.Piecewise((pos, t >= 0), (neg, True))
            if _broken_at(expr, t, printer(candidate), reference) is None:
                return candidate
    at, true, got = broken
    raise DeclarationError(
        f"activation {what} = {expr}: its floating-point value at t = {at:g} is {got} where the "
        f"exact value is {true:.6g} (an intermediate overflows or loses its digits), and no safe "
        "rewriting was found; give a numerically safe formula (e.g. with exp(-|t|))")
