"""Printing the scalar SymPy functions of activations as Numba-friendly Python.

Only scalar expressions of one variable reach this printer (matrix structure is
lowered to loops by ``lower``), so SymPy's matrix-printing traps (``Identity``
printed as ``I``, ``2*A`` as ``(2).dot(A)``) never apply. Integers print as floats so every branch has one type.
"""

from __future__ import annotations

import sympy
from sympy.printing.pycode import PythonCodePrinter

from ..errors import DeclarationError


class _Printer(PythonCodePrinter):
    """With own: the generated module's functions (_tanh), and every number a literal of
    the function's float type _F (a float64 literal would widen float32 arithmetic)."""

    def __init__(self, own=False, names=None):
        super().__init__({"fully_qualified_modules": True, "standard": "python3"})
        self.own, self.names = own, names or {}

    def _print_Symbol(self, expr):
        # symbols are printed as their code names; replacing them in the expression
        # instead would rebuild it, and SymPy re-evaluates every function it rebuilds
        if expr in self.names:
            return self.names[expr]
        return super()._print_Symbol(expr)

    def _number(self, text):
        return f"_F({text})" if self.own else text

    def _print_tanh(self, expr):
        # the generated module's _tanh vectorises (hamsym/runtime/vector_math.py); libm's does not
        name = "_tanh" if self.own else "math.tanh"
        return f"{name}({self._print(expr.args[0])})"

    def _print_Integer(self, expr):
        return self._number(f"{int(expr)}.0")

    def _print_Rational(self, expr):
        text = f"{int(expr.p)}.0 / {int(expr.q)}.0"
        return self._number(text) if self.own else f"({text})"

    def _print_Float(self, expr):
        return self._number(repr(float(expr)))

    def _print_NumberSymbol(self, expr):          # pi, E, EulerGamma, ...
        return self._number(repr(float(expr))) if self.own else super()._print_NumberSymbol(expr)

    def _print_Pi(self, expr):
        return self._print_NumberSymbol(expr) if self.own else super()._print_Pi(expr)

    def _print_Exp1(self, expr):
        return self._print_NumberSymbol(expr) if self.own else super()._print_Exp1(expr)

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp.is_Integer and 0 < exp <= 4:   # numba multiplies integer powers out
            return f"{self.parenthesize(base, 100)}**{int(exp)}"
        if exp == -1:
            return f"({self._print(sympy.S.One)} / {self.parenthesize(base, 100)})"
        return super()._print_Pow(expr, rational)

    def _print_Heaviside(self, expr):
        x = self._print(expr.args[0])
        at0 = self._print(expr.args[1]) if len(expr.args) > 1 else self._number("0.5")
        one, zero = self._number("1.0"), self._number("0.0")
        return f"({one} if {x} > {zero} else ({at0} if {x} == {zero} else {zero}))"

    def _print_Max(self, expr):
        return "max(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_Min(self, expr):
        return "min(" + ", ".join(self._print(a) for a in expr.args) + ")"


def scalar_code(expr, subs, what, own=False):
    """Python source for a scalar SymPy expression, with symbols replaced by code names.

    subs maps SymPy symbols to the (already bound) local variable names; `what`
    names the activation in the error raised when a function has no Python form.
    With own, functions the generated module defines itself (_tanh) replace libm's, and
    numbers are literals of the function's float type _F.
    """
    printer = _Printer(own, subs)
    try:
        code = printer.doprint(expr)
    except Exception as err:  # SymPy's printer raises bare exceptions for unknown functions
        raise DeclarationError(f"activation {what}: no numeric code for {expr}: {err}") from None
    if printer._not_supported or code.lstrip().startswith("#"):
        raise DeclarationError(f"activation {what}: no numeric code for "
                               f"{sorted(map(str, printer._not_supported))} in {expr}")
    return code
