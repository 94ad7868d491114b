"""Reductions to a scalar, and softmax: the pieces losses are made of.

Each carries its vector-Jacobian rule, like the nodes of ``expr``. The functions
at the end (``sum_squares``, ``dot``, ``total``, ``softmax``,
``softmax_cross_entropy``, ``mse``) are what a declaration writes.
"""

from __future__ import annotations

from .expr import Const, Expr, Ones, ShapeError, add, as_expr, hadamard, inner, neg, scale, shape_str


class SumSquares(Expr):
    __slots__ = ()

    def _str(self):
        return f"sum_squares({self.args[0]})"

    def vjp(self, g):
        x = self.args[0]
        return ((x, scale(scale(Const(2), g), x)),)


class SumAll(Expr):
    __slots__ = ()

    def _str(self):
        return f"sum({self.args[0]})"

    def vjp(self, g):
        x = self.args[0]
        return ((x, scale(g, Ones(x.shape))),)


class Softmax(Expr):
    __slots__ = ()

    def _str(self):
        return f"softmax({self.args[0]})"

    def vjp(self, g):
        s = self
        return ((self.args[0], add(hadamard(s, g), neg(scale(inner(g, s), s)))),)


class CrossEntropy(Expr):
    """-sum_i y_i log softmax(z)_i = logsumexp(z) sum(y) - y^T z, for target scores y."""

    __slots__ = ()

    def _str(self):
        return f"softmax_cross_entropy({self.args[0]}, {self.args[1]})"

    def vjp(self, g):
        z, y = self.args
        # the target is data (checked when the loss is declared), so only z gets an adjoint
        return ((z, scale(g, add(scale(SumAll(y, shape=()), Softmax(z, shape=z.shape)), neg(y)))),)


# -- the user-facing builders of scalars -----------------------------------------------------

def _vector_or_matrix(x, fn):
    x = as_expr(x, fn)
    if x.is_scalar:
        raise ShapeError(f"{fn}(`{x}`): expected a vector or matrix, got a scalar")
    return x


def sum_squares(x):
    """Sum of squared entries: |x|^2 for a vector, the squared Frobenius norm for a matrix."""
    return SumSquares(_vector_or_matrix(x, "sum_squares"), shape=())


def mse(a, b):
    """Mean squared error: the mean of (a - b)^2 over all entries, with no 1/2, as
    PyTorch's F.mse_loss (reduction "mean"). It is sum_squares(a - b) / entries, so it
    is differentiated like sum_squares."""
    a, b = _vector_or_matrix(a, "mse"), _vector_or_matrix(b, "mse")
    if a.shape != b.shape:
        raise ShapeError(f"mse(`{a}`, `{b}`): {shape_str(a.shape)} against {shape_str(b.shape)}")
    return sum_squares(a - b) / (a.shape[0] * a.shape[1])


def dot(a, b):
    """a^T b for vectors (the Frobenius product for matrices), a scalar."""
    return inner(_vector_or_matrix(a, "dot"), _vector_or_matrix(b, "dot"))


def total(x):
    """Sum of all entries, a scalar."""
    return SumAll(_vector_or_matrix(x, "total"), shape=())


def softmax(z):
    z = _vector_or_matrix(z, "softmax")
    if z.shape[1] != 1:
        raise ShapeError(f"softmax(`{z}`): expected a column vector, got {shape_str(z.shape)}")
    return Softmax(z, shape=z.shape)


def softmax_cross_entropy(z, y):
    """Cross-entropy of softmax(z) against target scores y (one-hot or probabilities)."""
    z, y = softmax(z).args[0], _vector_or_matrix(y, "softmax_cross_entropy")
    if z.shape != y.shape:
        raise ShapeError(f"softmax_cross_entropy(`{z}`, `{y}`): logits are {shape_str(z.shape)}, "
                         f"targets are {shape_str(y.shape)}")
    return CrossEntropy(z, y, shape=())
