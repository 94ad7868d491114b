"""Elementwise activations: a scalar SymPy function of one variable, and its derivative.

The derivative comes from ``sympy.diff`` (the only place where hamsym lets SymPy
differentiate: a scalar of one variable). Built-ins may also say how the
derivative reads off the activation's *output* (tanh' = 1 - F^2): the code
generator then reuses the forward buffer instead of recomputing tanh.
"""

from __future__ import annotations

import keyword

import sympy

from .expr import Apply, DeclarationError, as_expr

t = sympy.Symbol("t", real=True)      # the activation's argument
F = sympy.Symbol("F", real=True)      # the activation's output, for output forms


class Activation:
    """A scalar function applied elementwise; call it on an expression."""

    __slots__ = ("name", "expr", "latex", "output_form", "stable", "origin",
                 "_derivative", "_given_derivative", "_derivative_stable")

    def __init__(self, name, expr, *, latex=None, derivative=None, output_form=None, stable=None,
                 derivative_stable=None):
        self.name = name
        self.expr = sympy.sympify(expr)
        self.latex = latex or f"\\operatorname{{{name}}}"
        self.output_form = output_form      # derivative written in F = f(t), if it exists
        self.stable = stable                # numerically safer equal form, used for code only
        self.origin = None                  # for a derivative: the activation it derives
        self._given_derivative = derivative
        self._derivative_stable = derivative_stable
        self._derivative = None

    def __call__(self, x):
        x = as_expr(x, f"{self.name}(...)")
        return x if self.expr == t else Apply(self, x)

    def __eq__(self, other):
        return isinstance(other, Activation) and (self.name, self.expr) == (other.name, other.expr)

    def __hash__(self):
        return hash((self.name, self.expr))

    def __repr__(self):
        return f"Activation({self.name}: t -> {self.expr})"

    @property
    def derivative(self):
        if self._derivative is None:
            d = self._given_derivative if self._given_derivative is not None else sympy.diff(self.expr, t)
            self._derivative = Activation(self.name + "'", d, latex=self.latex + "'",
                                          output_form=self.output_form,
                                          stable=self._derivative_stable)
            self._derivative.origin = self
        return self._derivative



tanh = Activation("tanh", sympy.tanh(t), latex="\\tanh", output_form=1 - F**2)
_sig = 1 / (1 + sympy.exp(-t))
sigmoid = Activation("sigmoid", _sig, latex="\\sigma", derivative=_sig * (1 - _sig),
                     output_form=F * (1 - F))
# relu'(0) = 0, as in PyTorch
relu = Activation("relu", sympy.Piecewise((t, t > 0), (0, True)), latex="\\operatorname{relu}",
                  derivative=sympy.Piecewise((1, t > 0), (0, True)),
                  output_form=sympy.Piecewise((1, F > 0), (0, True)))
softplus = Activation("softplus", sympy.log(1 + sympy.exp(t)), latex="\\operatorname{softplus}",
                      derivative=1 / (1 + sympy.exp(-t)),
                      stable=sympy.Max(t, 0) + sympy.log(1 + sympy.exp(-sympy.Abs(t))))
identity = Activation("identity", t, latex="\\operatorname{id}")
sin = Activation("sin", sympy.sin(t), latex="\\sin")
cos = Activation("cos", sympy.cos(t), latex="\\cos")

BUILTIN = {a.name: a for a in (tanh, sigmoid, relu, softplus, identity, sin, cos)}

_NOT_A_DERIVATIVE = (sympy.Derivative, sympy.Subs, sympy.DiracDelta)
MAX_NODES = 400          # nodes of a custom activation's formula (softsign has 7, swish 10)
MAX_DEPTH = 40           # and its nesting


def _bounded_size(expr, name, limit):
    """Refuse a formula too large or deep for SymPy to differentiate and probe in seconds."""
    nodes, depth, stack = 0, 0, [(expr, 1)]
    while stack:
        e, level = stack.pop()
        nodes, depth = nodes + 1, max(depth, level)
        if nodes > limit or depth > MAX_DEPTH:
            raise DeclarationError(
                f"activation {name}: the formula has more than "
                + (f"{limit} nodes" if nodes > limit else f"{MAX_DEPTH} levels of nesting")
                + "; an activation is a small function of one variable")
        stack.extend((a, level + 1) for a in e.args)


def activation(fn, name=None):
    """Make an activation from a SymPy function of one variable.

    ``fn`` may be a SymPy function class (``sympy.atan``), a ``sympy.Lambda`` of one
    argument, or a Python callable mapping a SymPy symbol to an expression.
    """
    try:
        if isinstance(fn, sympy.Lambda):
            if len(fn.variables) != 1:
                raise DeclarationError(f"activation {fn}: a Lambda of one variable is needed")
            expr = fn(t)
        else:
            expr = sympy.sympify(fn(t))
    except DeclarationError:
        raise
    except Exception as err:  # a user callable can fail in any way; say which one did
        raise DeclarationError(f"activation {fn!r} could not be applied to a symbol: {err}") from err
    name = name or getattr(fn, "__name__", None) or str(fn)
    if not name.isidentifier() or keyword.iskeyword(name):
        raise DeclarationError(f"activation name {name!r} is not a valid Python identifier; "
                               "pass name='...'")
    if expr.free_symbols - {t}:
        raise DeclarationError(f"activation {name}: {expr} depends on "
                               f"{sorted(map(str, expr.free_symbols - {t}))}, not only on its argument")
    from .safe_form import Budget, safe_form
    budget = Budget(name)
    _bounded_size(expr, name, MAX_NODES)          # before SymPy differentiates it
    d = sympy.diff(expr, t)
    _bounded_size(d, name + "'", 8 * MAX_NODES)
    budget.check("differentiation")
    undefined = d.atoms(sympy.core.function.AppliedUndef)
    if d.has(*_NOT_A_DERIVATIVE) or d.has(sympy.zoo, sympy.nan) or undefined:
        raise DeclarationError(f"activation {name} = {expr} is not differentiable: "
                               f"SymPy gives d/dt = {d}")
    from ..codegen.scalar import scalar_code

    def code(e):                                # fails now, not at generation time
        return scalar_code(e, {t: "t"}, name)
    stable = safe_form(expr, t, name, code, budget)
    d_stable = safe_form(d, t, name + "'", code, budget)
    return Activation(name, expr, latex=f"\\operatorname{{{name}}}", derivative=d,
                      stable=None if stable is expr else stable,
                      derivative_stable=None if d_stable is d else d_stable)
