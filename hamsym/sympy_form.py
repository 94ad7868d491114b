"""hamsym expressions as SymPy objects, for display, LaTeX and manipulation.

Products, sums and transposes become SymPy's own matrix expressions; activations
and the reductions SymPy lacks get small printable classes. Shapes were checked
when the hamsym expression was built, so nothing here re-validates them.
"""

from __future__ import annotations

import functools

import sympy
from sympy.matrices.expressions import (HadamardProduct, MatAdd, MatMul, MatrixExpr, MatrixSymbol,
                                        OneMatrix, Transpose, ZeroMatrix)

from . import expr as E
from . import reductions as R


class Elementwise(MatrixExpr):
    """f applied to every entry; prints as f(X)."""

    def __new__(cls, fn, latex, arg):
        latex = sympy.Symbol(latex) if isinstance(latex, str) else latex
        return super().__new__(cls, fn, latex, arg)

    @property
    def shape(self):
        return self.args[2].shape

    def _entry(self, i, j, **kw):
        return self.args[0](self.args[2][i, j])

    def _latex(self, printer):
        return f"{self.args[1].name}\\left({printer._print(self.args[2])}\\right)"

    def _sympystr(self, printer):
        return f"{self.args[1].name.lstrip(chr(92))}({printer._print(self.args[2])})"


class SoftmaxOf(MatrixExpr):
    @property
    def shape(self):
        return self.args[0].shape

    def _latex(self, printer):
        return f"\\operatorname{{softmax}}\\left({printer._print(self.args[0])}\\right)"


class _Reduction(sympy.Expr):
    is_commutative = True
    is_real = True


class SquaredNorm(_Reduction):
    def _latex(self, printer):
        return f"\\left\\|{printer._print(self.args[0])}\\right\\|^{{2}}"


class InnerProduct(_Reduction):
    def _latex(self, printer):
        a, b = (printer._print(x) for x in self.args)
        if self.args[0].shape[1] != 1:
            return f"\\left\\langle {a}, {b} \\right\\rangle"
        if not isinstance(self.args[0], MatrixSymbol):
            a = f"\\left({a}\\right)"
        return f"{a}^{{T}} {b}"


class EntrySum(_Reduction):
    def _latex(self, printer):
        return f"\\mathbf{{1}}^{{T}} {printer._print(self.args[0])}"


class CrossEntropyOf(_Reduction):
    def _latex(self, printer):
        z, y = (printer._print(x) for x in self.args)
        return f"\\operatorname{{CE}}\\left({z}, {y}\\right)"


def symbol(var):
    if var.shape == ():
        return sympy.Symbol(var.name, real=True)
    return MatrixSymbol(var.name, *var.shape)


@functools.lru_cache(maxsize=4096)
def to_sympy(e):
    """The SymPy form of a hamsym expression (cached: expressions are immutable)."""
    if isinstance(e, E.Var):
        return symbol(e)
    if isinstance(e, E.Const):
        return e.value
    if isinstance(e, E.Zero):
        return ZeroMatrix(*e.shape)
    if isinstance(e, E.Ones):
        return OneMatrix(*e.shape)
    args = [to_sympy(a) for a in e.args]
    if isinstance(e, E.Add):
        return MatAdd(*args) if not e.is_scalar else sympy.Add(*args)
    if isinstance(e, E.Scale):
        return MatMul(*args) if not e.is_scalar else sympy.Mul(*args)
    if isinstance(e, E.Reciprocal):
        return sympy.Pow(args[0], -1)
    if isinstance(e, E.MatMul):
        return MatMul(*args)
    if isinstance(e, E.Transpose):
        return Transpose(args[0])
    if isinstance(e, E.Hadamard):
        return HadamardProduct(*args)
    if isinstance(e, E.Apply):
        act = e.activation
        return Elementwise(sympy.Lambda(_t(), act.expr), act.latex, args[0])
    if isinstance(e, R.SumSquares):
        return SquaredNorm(*args)
    if isinstance(e, E.Inner):
        return InnerProduct(*args)
    if isinstance(e, R.SumAll):
        return EntrySum(*args)
    if isinstance(e, R.Softmax):
        return SoftmaxOf(*args)
    if isinstance(e, R.CrossEntropy):
        return CrossEntropyOf(*args)
    raise TypeError(f"no SymPy form for {type(e).__name__}")


def _t():
    from .activations import t
    return t
