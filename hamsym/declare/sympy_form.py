"""hamsym expressions as SymPy objects, for display, LaTeX and manipulation.

Products, sums and transposes become SymPy's own matrix expressions; activations
and the reductions SymPy lacks get small printable classes. Shapes were checked
when the hamsym expression was built, so nothing here re-validates them.

LaTeX conventions (``latex``): juxtaposition is the matrix product and scaling,
``\\circ`` the elementwise (Hadamard) product, ``^{T}`` the transpose, ``a^{T} b``
the inner product of vectors and ``\\langle A, B \\rangle`` that of matrices,
``\\|x\\|^{2}`` the sum of squares, ``\\mathbf{1}`` a vector of ones. An operand is
put in parentheses whenever it binds less tightly than the operation around it,
and a Hadamard product never shares a product with juxtaposition unparenthesized
(so a reader never needs to know which of the two binds tighter).
"""

from __future__ import annotations

import functools

import sympy
from sympy.matrices.expressions import (HadamardProduct, MatAdd, MatMul, MatrixExpr, MatrixSymbol,
                                        OneMatrix, Transpose, ZeroMatrix)
from sympy.printing.conventions import split_super_sub
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE, precedence_traditional

from . import expr as E
from . import reductions as R
from .activations import t as _T
from .rewrite import walk


# -- how an operand reads inside a product ---------------------------------------------------

def _factor(printer, x):
    """x as one factor of a product written by juxtaposition: sums, Hadamard products,
    negated terms and reductions written as products (a^T b) get parentheses."""
    s = printer._print(x)
    if s.startswith("-"):
        return f"\\left({s}\\right)"
    if isinstance(x, (MatMul, sympy.Mul)):
        return s                          # (A B) C = A B C, and scalars commute
    if precedence_traditional(x) <= PRECEDENCE["Mul"]:
        return f"\\left({s}\\right)"
    return s


def _transposed(printer, x):
    """x^T, with parentheses unless x prints as a plain name."""
    s = printer._print(x)
    if isinstance(x, MatrixSymbol) and "\\frac" not in s and "^" not in s:
        return f"{s}^{{T}}"
    return f"\\left({s}\\right)^{{T}}"


#: precedence of a scalar written as a product (a^T b, 1^T x): below Mul, so that it is
#: parenthesized as a factor of any other product, but not inside a sum or a fraction
_PRODUCT_FORM = PRECEDENCE["Mul"] - 1


class Elementwise(MatrixExpr):
    """f applied to every entry; prints as f(X)."""

    precedence = PRECEDENCE["Func"]

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
    precedence = PRECEDENCE["Func"]

    @property
    def shape(self):
        return self.args[0].shape

    def _latex(self, printer):
        return f"\\operatorname{{softmax}}\\left({printer._print(self.args[0])}\\right)"


class AllOnes(OneMatrix):
    """The all-ones matrix, printed as a bold 1 (SymPy prints a plain 1)."""

    def _latex(self, printer):
        return "\\mathbf{1}"


class _Reduction(sympy.Expr):
    is_commutative = True
    is_real = True


class SquaredNorm(_Reduction):
    precedence = PRECEDENCE["Pow"]

    def _latex(self, printer):
        return f"\\left\\|{printer._print(self.args[0])}\\right\\|^{{2}}"


class InnerProduct(_Reduction):
    """a^T b for vectors (a product: parenthesized inside other products), <A, B> for matrices."""

    @property
    def precedence(self):
        return _PRODUCT_FORM if self.args[0].shape[1] == 1 else PRECEDENCE["Atom"]

    def _latex(self, printer):
        a, b = self.args
        if a.shape[1] != 1:
            return f"\\left\\langle {printer._print(a)}, {printer._print(b)} \\right\\rangle"
        return f"{_transposed(printer, a)} {_factor(printer, b)}"


class EntrySum(_Reduction):
    """Sum of all entries: 1^T x for a vector, 1^T X 1 for a matrix."""

    precedence = _PRODUCT_FORM

    def _latex(self, printer):
        x = self.args[0]
        ones = " \\mathbf{1}" if x.shape[1] != 1 else ""
        return f"\\mathbf{{1}}^{{T}} {_factor(printer, x)}{ones}"


class CrossEntropyOf(_Reduction):
    precedence = PRECEDENCE["Func"]

    def _latex(self, printer):
        z, y = (printer._print(x) for x in self.args)
        return f"\\operatorname{{CE}}\\left({z}, {y}\\right)"


def symbol(var):
    if var.shape == ():
        return sympy.Symbol(var.name, real=True)
    return MatrixSymbol(var.name, *var.shape)


def _product(args):
    """One flat matrix product with its numbers folded in front: -(x/d) is the single term
    (-1/d) x, so a sum prints "- x/d" and never "+ -x/d". (MatMul(evaluate=True) would
    also distribute -1 over a sum, which reads worse.)"""
    flat = []
    for a in args:
        flat.extend(a.args if isinstance(a, MatMul) else (a,))
    number = sympy.Mul(*(a for a in flat if a.is_Number))
    rest = [a for a in flat if not a.is_Number]
    return MatMul(*([number] if number != 1 else []), *rest) if len(rest) > 1 or number != 1 \
        else rest[0]


@functools.lru_cache(maxsize=4096)
def to_sympy(e):
    """The SymPy form of a hamsym expression (cached: expressions are immutable).
    For LaTeX print it with `latex`, whose rules for matrix products and Hadamard
    products are stricter than SymPy's own printer."""
    if isinstance(e, E.Var):
        return symbol(e)
    if isinstance(e, E.Const):
        return e.value
    if isinstance(e, E.Zero):
        return ZeroMatrix(*e.shape)
    if isinstance(e, E.Ones):
        return AllOnes(*e.shape)
    args = [to_sympy(a) for a in e.args]
    if isinstance(e, E.Add):
        return MatAdd(*args) if not e.is_scalar else sympy.Add(*args)
    if isinstance(e, E.Scale):
        return _product(args) if not e.is_scalar else sympy.Mul(*args)
    if isinstance(e, E.Reciprocal):
        return sympy.Pow(args[0], -1)
    if isinstance(e, E.MatMul):
        return _product(args)
    if isinstance(e, E.Transpose):
        return Transpose(args[0])
    if isinstance(e, E.Hadamard):
        return HadamardProduct(*args)
    if isinstance(e, E.Apply):
        act = e.activation
        return Elementwise(sympy.Lambda(_T, act.expr), act.latex, args[0])
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


# -- LaTeX ------------------------------------------------------------------------------------

#: hyperparameters whose LaTeX name is not their own: s is the sign flip, theta_xi the
#: per-step decay of the neuron costates
SPECIAL_NAMES = {"theta_neurons": r"\theta_{\xi}", "flip": "s"}


def _plain_name(name):
    """W1 -> W_{1}, tau -> \\tau (SymPy's reading); a base of several letters that is not a
    Greek letter is set in \\mathit so that Ca reads as one name, not C times a."""
    tex = sympy.latex(sympy.Symbol(name))
    base = split_super_sub(name)[0]
    if len(base) > 1 and tex.startswith(base) and not tex.startswith("\\"):
        tex = f"\\mathit{{{base}}}" + tex[len(base):]
    return tex


def latex_name(var):
    """How a name reads in equations: W1 -> W_{1}, p_W1 -> p_{W_{1}}, dH_dh -> dH/dh."""
    if var.kind == "costate":
        return f"p_{{{_plain_name(var.name[2:])}}}"
    if var.kind == "control":
        return f"v_{{{_plain_name(var.name[2:])}}}"
    if var.kind == "message":
        return f"\\frac{{\\partial H}}{{\\partial {_plain_name(var.name[4:])}}}"
    return SPECIAL_NAMES.get(var.name) if var.kind == "hyper" and var.name in SPECIAL_NAMES \
        else _plain_name(var.name)


def symbol_names(variables):
    """SymPy symbol -> LaTeX name for the given hamsym variables."""
    return {to_sympy(v): latex_name(v) for v in variables}


class _Printer(LatexPrinter):
    """SymPy's LaTeX printer with hamsym's rules for matrix products, sums, Hadamard
    products and transposes (SymPy's own drops parentheses around a Hadamard product in a
    negated matrix product, and writes "+ -" for negated terms of nested products)."""

    def _print_MatMul(self, expr):
        args, sign = list(expr.args), ""
        if args[0].is_Number and args[0] < 0:
            sign, args[0] = "- ", -args[0]
            if args[0] == 1:
                args = args[1:]
        if sign and len(args) == 1 and precedence_traditional(args[0]) >= PRECEDENCE["Mul"]:
            return sign + self._print(args[0])  # e.g. a negated Hadamard product
        return sign + " ".join(_factor(self, a) for a in args)

    def _print_MatAdd(self, expr):
        out = []
        for i, term in enumerate(expr.args):
            s = self._print(term)
            if isinstance(term, MatAdd):
                s = f"\\left({s}\\right)"
            out.append(s if i == 0 else f"- {s[2:]}" if s.startswith("- ") else f"+ {s}")
        return " ".join(out)

    def _print_HadamardProduct(self, expr):
        def operand(x):
            s = self._print(x)
            if precedence_traditional(x) <= PRECEDENCE["Mul"] or s.startswith("-"):
                return f"\\left({s}\\right)"
            return s
        return " \\circ ".join(operand(a) for a in expr.args)

    def _print_Transpose(self, expr):
        return _transposed(self, expr.arg)


def latex(e, names=None):
    """LaTeX of a hamsym expression (or of its SymPy form); names: SymPy symbol -> LaTeX,
    by default read off the hamsym variables of e."""
    if names is None:
        names = symbol_names(n for n in walk(e) if isinstance(n, E.Var)) \
            if isinstance(e, E.Expr) else {}
    form = to_sympy(e) if isinstance(e, E.Expr) else e
    return _Printer({"symbol_names": names}).doprint(form)


def _repr_latex_(e):
    return "$\\displaystyle " + latex(e) + "$"


# Notebooks show expressions as LaTeX. The method is attached here, where the printer
# lives, so that the expression graph itself never imports SymPy's printing.
E.Expr._repr_latex_ = _repr_latex_
