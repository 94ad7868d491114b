"""The expression graph a network is declared in.

Nodes are matrices (rows, cols), column vectors (n, 1) and scalars (shape ``()``).
Every node checks shapes when it is built, so a mismatch is reported at the line
that wrote it and in the user's own names. Each operation carries its local
vector-Jacobian rule (``vjp``), as in micrograd; ``chain`` composes them.
SymPy's matrix expressions are not used here: their ``.diff`` is unreliable and
their shape errors do not name the operands.

Reductions (norms, sums, softmax) are in ``reductions``; walking and rewriting
graphs in ``rewrite``. Operators follow NumPy: ``@`` is the matrix product, ``*`` is elementwise
(Hadamard) between equal shapes and scaling when one side is a scalar.
"""

from __future__ import annotations

import numbers

import sympy

from ..errors import DeclarationError, ShapeError  # noqa: F401 (re-exported)


def shape_str(shape):
    return "scalar" if shape == () else f"{shape[0]}x{shape[1]}"


def as_expr(value, where):
    """value as an expression; where (a str, or a function giving one: printing a large
    expression costs, so operators pass it lazily) says where it appeared, for errors."""
    if isinstance(value, Expr):
        return value
    if isinstance(value, (numbers.Real, sympy.Number)) and not isinstance(value, bool):
        return Const(value)
    where = where() if callable(where) else where
    raise DeclarationError(f"{where}: cannot use {value!r} ({type(value).__name__}); "
                           "expected a hamsym expression or a real number")


class Expr:
    """Immutable node; equality is structural so equal subexpressions are shared."""

    __slots__ = ("args", "shape", "_hash")
    prec = 100          # printing precedence: atoms bind tightest

    def __init__(self, *args, shape):
        self.args = args
        self.shape = shape
        self._hash = hash((type(self).__name__, self._key()))

    def _key(self):
        return self.args

    def __eq__(self, other):
        return self is other or (type(self) is type(other) and self._hash == other._hash
                                 and self._key() == other._key())

    def __hash__(self):
        return self._hash

    @property
    def is_scalar(self):
        return self.shape == ()

    # -- operators -------------------------------------------------------------
    def __add__(self, other):
        return add(self, as_expr(other, lambda: f"{self} + ..."))

    def __radd__(self, other):
        return add(as_expr(other, lambda: f"... + {self}"), self)

    def __sub__(self, other):
        return add(self, neg(as_expr(other, lambda: f"{self} - ...")))

    def __rsub__(self, other):
        return add(as_expr(other, lambda: f"... - {self}"), neg(self))

    def __neg__(self):
        return neg(self)

    def __mul__(self, other):
        return multiply(self, as_expr(other, lambda: f"{self} * ..."))

    def __rmul__(self, other):
        return multiply(as_expr(other, lambda: f"... * {self}"), self)

    def __truediv__(self, other):
        other = as_expr(other, lambda: f"{self} / ...")
        if not other.is_scalar:
            raise ShapeError(f"cannot divide `{self}` by the {shape_str(other.shape)} `{other}`: "
                             "only division by a scalar is defined")
        return scale(reciprocal(other), self)

    def __rtruediv__(self, other):
        other = as_expr(other, lambda: f"... / {self}")
        if not self.is_scalar:
            raise ShapeError(f"cannot divide by the {shape_str(self.shape)} `{self}`: "
                             "only division by a scalar is defined")
        return scale(other, reciprocal(self)) if other.is_scalar else scale(reciprocal(self), other)

    def __matmul__(self, other):
        return matmul(self, as_expr(other, lambda: f"{self} @ ..."))

    def __rmatmul__(self, other):
        return matmul(as_expr(other, lambda: f"... @ {self}"), self)

    @property
    def T(self):
        return transpose(self)

    # -- calculus and printing -----------------------------------------------------
    def vjp(self, g):
        """Pairs (child, contribution to the child's adjoint) given this node's adjoint g."""
        raise NotImplementedError(type(self).__name__)

    def children(self):
        return tuple(a for a in self.args if isinstance(a, Expr))

    def __str__(self):
        return self._str()

    def __repr__(self):
        return f"<{type(self).__name__} {shape_str(self.shape)}: {self}>"

    def _wrap(self, child, prec=None):
        s = child._str()
        return f"({s})" if child.prec < (self.prec if prec is None else prec) else s


# -- leaves --------------------------------------------------------------------------

class Var(Expr):
    """A declared name: input, target, weight, state, instant, param, costate, message."""

    __slots__ = ("name", "kind")

    def __init__(self, name, shape, kind):
        self.name, self.kind = name, kind
        super().__init__(shape=shape)

    def _key(self):
        return (self.name, self.kind, self.shape)

    def _str(self):
        return self.name

    def vjp(self, g):
        return ()


class Const(Expr):
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = sympy.nsimplify(value) if isinstance(value, float) and float(value).is_integer() \
            else sympy.sympify(value)
        super().__init__(shape=())

    def _key(self):
        return (self.value,)

    @property
    def prec(self):
        return 100 if self.value >= 0 and self.value.is_Integer else 50

    def _str(self):
        return str(self.value)

    def vjp(self, g):
        return ()


class _Filled(Expr):
    """A constant matrix given by its shape alone."""

    __slots__ = ()

    def __init__(self, shape):
        super().__init__(shape=shape)

    def _key(self):
        return (self.shape,)

    def vjp(self, g):
        return ()


class Zero(_Filled):
    __slots__ = ()

    def _str(self):
        return "0"


class Ones(_Filled):
    """The all-ones matrix; appears in the adjoint of a sum of entries."""

    __slots__ = ()

    def _str(self):
        return f"ones{self.shape}"


def is_zero(e):
    return isinstance(e, Zero) or (isinstance(e, Const) and e.value == 0)


def is_const(e, value):
    return isinstance(e, Const) and e.value == value


# -- linear structure -----------------------------------------------------------------

class Add(Expr):
    __slots__ = ()
    prec = 10

    def _str(self):
        out = self._wrap(self.args[0])
        for t in self.args[1:]:
            if isinstance(t, Scale) and isinstance(t.args[0], Const) and t.args[0].value < 0:
                out += " - " + self._wrap(scale(Const(-t.args[0].value), t.args[1]), 11)
            else:
                out += " + " + self._wrap(t)
        return out

    def vjp(self, g):
        return tuple((t, g) for t in self.args)


def add(*terms):
    flat = []
    for t in terms:
        flat.extend(t.args if isinstance(t, Add) else (t,))
    shapes = {t.shape for t in flat}
    if len(shapes) > 1:
        raise ShapeError("cannot add terms of different shapes: " +
                         ", ".join(f"`{t}` is {shape_str(t.shape)}" for t in flat))
    kept = [t for t in flat if not is_zero(t)]
    for t in list(kept):                       # x + (s - x) = s
        if t in kept and neg(t) in kept and not isinstance(t, Const):
            kept.remove(t)
            kept.remove(neg(t))
    consts = [t for t in kept if isinstance(t, Const)]
    if len(consts) > 1:         # fold numbers so 1/2 + 1/2 prints as 1
        kept = [t for t in kept if not isinstance(t, Const)] + [Const(sum(c.value for c in consts))]
        kept = [t for t in kept if not is_zero(t)]
    if not kept:
        shape = flat[0].shape
        return Const(0) if shape == () else Zero(shape)
    return kept[0] if len(kept) == 1 else Add(*kept, shape=kept[0].shape)


class Scale(Expr):
    """Scalar c times x (x of any shape, scalars included)."""

    __slots__ = ()
    prec = 30

    def _str(self):
        c, x = self.args
        tight = 31 if isinstance(x, Add) or not x.is_scalar and isinstance(x, Hadamard) else 30
        if is_const(c, -1):
            return "-" + self._wrap(x, tight)
        if isinstance(c, Reciprocal):
            return f"{self._wrap(x, tight)}/{self._wrap(c.args[0], 31)}"
        if isinstance(x, Reciprocal):
            return f"{self._wrap(c, tight)}/{self._wrap(x.args[0], 31)}"
        return f"{self._wrap(c)}*{self._wrap(x, tight)}"

    def vjp(self, g):
        c, x = self.args
        return ((x, scale(c, g)), (c, inner(g, x)))


def scale(c, x):
    if not c.is_scalar:
        raise ShapeError(f"`{c}` is {shape_str(c.shape)}, not a scalar, in a scaling of `{x}`")
    if x.is_scalar and isinstance(x, Const) and not isinstance(c, Const):
        c, x = x, c                                  # keep the number in front
    if is_zero(c) or is_zero(x):
        return Const(0) if x.shape == () else Zero(x.shape)
    if is_const(c, 1):
        return x
    if isinstance(c, Const) and isinstance(x, Const):
        return Const(c.value * x.value)
    if isinstance(x, Scale):
        inner_c, inner_x = x.args
        if isinstance(inner_c, Reciprocal) and inner_c.args[0] == c:     # c * (y / c) = y
            return inner_x
        if isinstance(c, Const) and isinstance(inner_c, Const):
            return scale(Const(c.value * inner_c.value), inner_x)
        if isinstance(inner_c, Const):               # numbers float to the front
            return scale(inner_c, scale(c, inner_x))
    if isinstance(c, Scale) and isinstance(c.args[0], Const):
        return scale(c.args[0], scale(c.args[1], x))
    return Scale(c, x, shape=x.shape)


def neg(x):
    return scale(Const(-1), x)


class Reciprocal(Expr):
    __slots__ = ()

    def _str(self):
        return f"1/{self._wrap(self.args[0])}"

    def vjp(self, g):
        (s,) = self.args
        return ((s, neg(scale(g, reciprocal(scale(s, s))))),)


def reciprocal(s):
    if isinstance(s, Const):
        if s.value == 0:
            raise DeclarationError("division by zero")
        return Const(1 / s.value)
    return Reciprocal(s, shape=())


class MatMul(Expr):
    __slots__ = ()
    prec = 40

    def _str(self):
        a, b = self.args
        return f"{self._wrap(a)} @ {self._wrap(b, 41)}"

    def vjp(self, g):
        a, b = self.args
        return ((a, matmul(g, transpose(b))), (b, matmul(transpose(a), g)))


def matmul(a, b):
    if a.is_scalar or b.is_scalar:
        raise ShapeError(f"`@` needs matrices or vectors, got `{a}` ({shape_str(a.shape)}) "
                         f"@ `{b}` ({shape_str(b.shape)}); use `*` to scale by a scalar")
    if a.shape[1] != b.shape[0]:
        raise ShapeError(f"cannot multiply `{a}` ({shape_str(a.shape)}) @ `{b}` ({shape_str(b.shape)}): "
                         f"{a.shape[1]} columns against {b.shape[0]} rows")
    shape = (a.shape[0], b.shape[1])
    if is_zero(a) or is_zero(b):
        return Zero(shape)
    if isinstance(a, Scale):                         # pull scalars out: c (A B)
        return scale(a.args[0], matmul(a.args[1], b))
    if isinstance(b, Scale):
        return scale(b.args[0], matmul(a, b.args[1]))
    return MatMul(a, b, shape=shape)


class Transpose(Expr):
    __slots__ = ()

    def _str(self):
        return f"{self._wrap(self.args[0])}.T"

    def vjp(self, g):
        return ((self.args[0], transpose(g)),)


def transpose(a):
    """Transposes stay on the expression they transpose (code reads them by swapped
    index), so a transposed layer output is still recognized as that output."""
    if a.is_scalar:
        return a
    shape = (a.shape[1], a.shape[0])
    if isinstance(a, Transpose):
        return a.args[0]
    if isinstance(a, (Zero, Ones)):
        return type(a)(shape)
    if isinstance(a, Scale):
        return scale(a.args[0], transpose(a.args[1]))
    return Transpose(a, shape=shape)


class Hadamard(Expr):
    __slots__ = ()
    prec = 30

    def _str(self):
        a, b = self.args
        return f"{self._wrap(a)} * {self._wrap(b, 31)}"

    def vjp(self, g):
        a, b = self.args
        return ((a, hadamard(g, b)), (b, hadamard(g, a)))


def hadamard(a, b):
    if a.shape != b.shape:
        raise ShapeError(f"elementwise product needs equal shapes: `{a}` is {shape_str(a.shape)}, "
                         f"`{b}` is {shape_str(b.shape)}")
    if is_zero(a) or is_zero(b):
        return Zero(a.shape)
    if isinstance(a, Ones):
        return b
    if isinstance(b, Ones):
        return a
    if isinstance(a, Scale):
        return scale(a.args[0], hadamard(a.args[1], b))
    if isinstance(b, Scale):
        return scale(b.args[0], hadamard(a, b.args[1]))
    return Hadamard(a, b, shape=a.shape)


def multiply(a, b):
    """NumPy's `*`: scaling when one side is a scalar, else elementwise."""
    if a.is_scalar:
        return scale(a, b)
    if b.is_scalar:
        return scale(b, a)
    return hadamard(a, b)


class Apply(Expr):
    """An activation applied elementwise."""

    __slots__ = ("activation",)

    def __init__(self, activation, x):
        self.activation = activation
        super().__init__(x, shape=x.shape)

    def _key(self):
        return (self.activation, self.args)

    def _str(self):
        return f"{self.activation.name}({self.args[0]})"

    def vjp(self, g):
        x = self.args[0]
        d = self.activation.derivative
        if d.expr.is_Number:                      # a linear activation: just scale
            return ((x, scale(Const(d.expr), g)),)
        return ((x, hadamard(g, Apply(d, x))),)


# -- reductions to a scalar, and softmax --------------------------------------------------

class Inner(Expr):
    """Sum of the elementwise product: a^T b for vectors, the Frobenius product for matrices."""

    __slots__ = ()

    def _str(self):
        return f"dot({self.args[0]}, {self.args[1]})"

    def vjp(self, g):
        a, b = self.args
        return ((a, scale(g, b)), (b, scale(g, a)))


def inner(a, b):
    if a.shape != b.shape:
        raise ShapeError(f"dot needs equal shapes: `{a}` is {shape_str(a.shape)}, "
                         f"`{b}` is {shape_str(b.shape)}")
    if a.is_scalar:
        return scale(a, b)
    if is_zero(a) or is_zero(b):
        return Const(0)
    if isinstance(a, Scale):
        return scale(a.args[0], inner(a.args[1], b))
    if isinstance(b, Scale):
        return scale(b.args[0], inner(a, b.args[1]))
    return Inner(a, b, shape=())
