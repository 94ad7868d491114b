"""Printing the scalar SymPy functions of activations as Numba-friendly Python.

Only scalar expressions of one variable reach this printer (matrix structure is
lowered to loops by ``lower``), so SymPy's matrix-printing traps (``Identity``
printed as ``I``, ``2*A`` as ``(2).dot(A)``) never apply. Integers print as floats so every branch has one type.
"""

from __future__ import annotations

from sympy.printing.pycode import PythonCodePrinter

from ..errors import DeclarationError


class _Printer(PythonCodePrinter):
    def __init__(self, own=False, names=None):
        super().__init__({"fully_qualified_modules": True, "standard": "python3"})
        self.own, self.names = own, names or {}

    def _print_Symbol(self, expr):
        # symbols are printed as their code names; replacing them in the expression
        # instead would rebuild it, and SymPy re-evaluates every function it rebuilds
        if expr in self.names:
            return self.names[expr]
        return super()._print_Symbol(expr)

    def _print_tanh(self, expr):
        # the generated module's _tanh vectorises (codegen/vector_math.py); libm's does not
        name = "_tanh" if self.own else "math.tanh"
        return f"{name}({self._print(expr.args[0])})"

    def _print_Integer(self, expr):
        return f"{int(expr)}.0"

    def _print_Rational(self, expr):
        return f"({int(expr.p)}.0 / {int(expr.q)}.0)"

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp.is_Integer and 0 < exp <= 4:   # numba multiplies integer powers out
            return f"{self.parenthesize(base, 100)}**{int(exp)}"
        return super()._print_Pow(expr, rational)

    def _print_Heaviside(self, expr):
        x = self._print(expr.args[0])
        at0 = self._print(expr.args[1]) if len(expr.args) > 1 else "0.5"
        return f"(1.0 if {x} > 0.0 else ({at0} if {x} == 0.0 else 0.0))"

    def _print_Max(self, expr):
        return "max(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_Min(self, expr):
        return "min(" + ", ".join(self._print(a) for a in expr.args) + ")"


def scalar_code(expr, subs, what, own=False):
    """Python source for a scalar SymPy expression, with symbols replaced by code names.

    subs maps SymPy symbols to the (already bound) local variable names; `what`
    names the activation in the error raised when a function has no Python form.
    With own, functions the generated module defines itself (_tanh) replace libm's.
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
