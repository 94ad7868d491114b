"""Test helper: hamsym expressions expanded to SymPy scalars, without hamsym's calculus.

This is the independent side of the derivation checks (hamsym itself never expands
to scalars). Every declared name becomes a ``sympy.Matrix`` of fresh
scalar symbols (``W1[0,1]``, ``b1[2]``) or, for a scalar, one ``Symbol``; every node
is evaluated with plain ``sympy.Matrix`` arithmetic straight from its definition.
Nothing here calls a ``vjp``, ``hamsym.derive.chain`` or ``hamsym.declare.sympy_form``; the only
hamsym object read besides the expression tree is ``act.expr`` (the activation's
own SymPy formula in ``hamsym.declare.activations.t``) and ``net.instants`` (the user's
definitions of instantaneous neurons).

It also declares the small networks the derivation tests share (all sizes <= 4),
so the SymPy and the PyTorch checks look at the same declarations.
"""

from __future__ import annotations

import numpy as np
import sympy

import hamsym as hs
from hamsym.declare import expr as E
from hamsym.declare import reductions as R
from hamsym.declare.activations import t as ACT_ARG


HYPER_NAMES = ("gamma", "beta", "theta", "theta_neurons", "flip", "delta")


def names_of(net):
    """name -> (shape, kind) of every leaf a derived system of net can mention: declared
    names (instants excepted), costates p_<x>, controls v_<w>, hyperparameters."""
    out = {v.name: (v.shape, v.kind) for v in net.vars.values() if v.kind != "instant"}
    for v in net.of_kind("state") + net.of_kind("weight"):
        out[f"p_{v.name}"] = (v.shape, "costate")
    for w in net.of_kind("weight"):
        out[f"v_{w.name}"] = (w.shape, "control")
    out.update({h: ((), "hyper") for h in HYPER_NAMES})
    return out


def random_values(names, seed):
    """name -> float64 array (a float for a scalar) for every name of names_of(net).

    Params and hyperparameters in [0.5, 1.5] (they divide: tau, delta), targets in
    [0, 1], everything else in [-1, 1]. Sorted by name, so the draw is reproducible."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(names):
        shape, kind = names[name]
        low, high = {"param": (0.5, 1.5), "hyper": (0.5, 1.5), "target": (0.0, 1.0)}.get(kind, (-1.0, 1.0))
        value = rng.uniform(low, high, size=shape or None)
        out[name] = float(value) if shape == () else value
    return out


class ScalarReference:
    """Expands the expressions of one network to SymPy scalars.

    ``ref(expr)`` is a ``sympy.Matrix`` for a vector or matrix and a SymPy scalar
    for a scalar. Instants are expanded through ``net.instants``; backward
    messages are hamsym's own intermediate results, so meeting one is an error
    (expand them first with ``System.expand``).

    With ``values`` (name -> array), every scalar is that number (a ``sympy.Float``)
    except the names or single entries listed in ``keep`` (``"W1"``, ``"W1[0,1]"``),
    which stay symbols. Fixing everything but the variable one differentiates by is
    the same partial derivative, and keeps ``sympy.diff`` of deep networks fast.
    """

    def __init__(self, net, values=None, keep=()):
        self.net = net
        self.values = values
        self.keep = set(keep)
        self._leaves = {}       # name -> (shape, kind, Symbol/Float or Matrix of them)
        self._memo = {}

    # -- leaves ---------------------------------------------------------------------
    def leaf(self, name, shape, kind):
        """The scalars of a name: one scalar for shape (), else a Matrix."""
        if name in self._leaves:
            known = self._leaves[name][:2]
            if known != (shape, kind):
                raise ValueError(f"{name} used as {known} and as {(shape, kind)}")
            return self._leaves[name][2]
        if self.values is not None and name not in self.values:
            raise KeyError(f"no value for {kind} {name!r}")

        def scalar(label, pick):
            if self.values is None or name in self.keep or label in self.keep:
                return sympy.Symbol(label)
            return sympy.Float(float(pick(self.values[name])))

        if shape == ():
            value = scalar(name, lambda v: v)
        else:
            rows, cols = shape
            label = (lambda i, j: f"{name}[{i}]") if cols == 1 else (lambda i, j: f"{name}[{i},{j}]")
            value = sympy.Matrix(rows, cols, lambda i, j: scalar(label(i, j), lambda v: v[i, j]))
        self._leaves[name] = (shape, kind, value)
        return value

    def var(self, v):
        """The scalars of a hamsym Var (any kind but instant and message)."""
        return self.leaf(v.name, v.shape, v.kind)

    def hyper(self, name):
        return self.leaf(name, (), "hyper")

    def kept(self):
        """Symbol -> its value, for every scalar that stayed a symbol."""
        out = {}
        for name, (shape, _, value) in self._leaves.items():
            if self.values is None:
                continue
            if shape == ():
                if isinstance(value, sympy.Symbol):
                    out[value] = float(self.values[name])
                continue
            for i in range(shape[0]):
                for j in range(shape[1]):
                    if isinstance(value[i, j], sympy.Symbol):
                        out[value[i, j]] = float(self.values[name][i, j])
        return out

    def numbers(self, value):
        """A scalar or Matrix of this reference as float64, kept symbols at their values."""
        sub = self.kept()
        items = [sympy.sympify(z).xreplace(sub) for z in flat(value)]
        try:
            arr = np.array([float(z) for z in items], dtype=float)
        except TypeError as err:
            raise TypeError(f"not a number after substitution: {items}") from err
        return arr.reshape(value.shape) if isinstance(value, sympy.MatrixBase) else arr.reshape(())

    # -- expressions ----------------------------------------------------------------
    def __call__(self, e):
        if e not in self._memo:
            self._memo[e] = self._expand(e)
        return self._memo[e]

    def _expand(self, e):
        if isinstance(e, E.Var):
            if e.kind == "instant":
                return self(self.net.instants[e.name])
            if e.kind == "message":
                raise ValueError(f"backward message {e.name} met; expand it with System.expand first")
            return self.var(e)
        if isinstance(e, E.Const):
            return sympy.sympify(e.value)
        if isinstance(e, E.Zero):
            return sympy.zeros(*e.shape) if e.shape != () else sympy.Integer(0)
        if isinstance(e, E.Ones):
            return sympy.ones(*e.shape)
        args = [self(a) for a in e.args]
        if isinstance(e, E.Add):
            out = args[0]
            for a in args[1:]:
                out = out + a
            return out
        if isinstance(e, E.Scale):
            c, x = args
            return x * c if isinstance(x, sympy.MatrixBase) else c * x
        if isinstance(e, E.Reciprocal):
            return 1 / args[0]
        if isinstance(e, E.MatMul):
            return args[0] * args[1]
        if isinstance(e, E.Transpose):
            return args[0].T
        if isinstance(e, E.Hadamard):
            return args[0].multiply_elementwise(args[1])
        if isinstance(e, E.Apply):
            fn = e.activation.expr
            return args[0].applyfunc(lambda z: fn.xreplace({ACT_ARG: z}))
        if isinstance(e, R.SumSquares):
            return sum((z**2 for z in args[0]), sympy.Integer(0))
        if isinstance(e, E.Inner):
            a, b = args
            return sum((x * y for x, y in zip(a, b)), sympy.Integer(0))
        if isinstance(e, R.SumAll):
            return sum(args[0], sympy.Integer(0))
        if isinstance(e, R.Softmax):
            return softmax(args[0])
        if isinstance(e, R.CrossEntropy):
            z, y = args
            s = softmax(z)
            return -sum((y[i] * sympy.log(s[i]) for i in range(len(y))), sympy.Integer(0))
        raise TypeError(f"scalar reference has no rule for {type(e).__name__}")


def softmax(z):
    exps = z.applyfunc(sympy.exp)
    total = sum(exps, sympy.Integer(0))
    return exps.applyfunc(lambda v: v / total)


def flat(value):
    """A scalar or a Matrix as a flat list of scalars (row by row)."""
    return list(value) if isinstance(value, sympy.MatrixBase) else [value]


def grad(scalar, wrt):
    """d scalar / d wrt with plain sympy.diff; wrt is a Symbol or a Matrix of Symbols."""
    if isinstance(wrt, sympy.MatrixBase):
        return wrt.applyfunc(lambda s: sympy.diff(scalar, s))
    return sympy.diff(scalar, wrt)


# -- the networks the derivation tests share --------------------------------------------

def mlp2():
    """(a) 2-layer tanh MLP with biases, squared loss and an L2 regularizer."""
    net = hs.Network("mlp2")
    u, y = net.input("u", 4), net.target("y", 2)
    W1, b1 = net.weight("W1", (3, 4)), net.weight("b1", 3)
    W2, b2 = net.weight("W2", (2, 3)), net.weight("b2", 2)
    h = net.instant("h", hs.tanh(W1 @ u + b1))
    o = net.instant("o", W2 @ h + b2)
    lam = net.param("lam", 1e-3)
    net.loss(hs.sum_squares(o - y) / 2 + lam / 2 * hs.sum_squares(W1))
    return net


def mlp3():
    """(b) 3-layer MLP: sigmoid, relu, identity; softmax cross-entropy. Narrow on purpose
    (sympy.diff through three layers and a softmax grows fast with the widths), and no
    matrix is square, so a misplaced transpose cannot pass."""
    net = hs.Network("mlp3")
    u, y = net.input("u", 3), net.target("y", 2)
    W1, b1 = net.weight("W1", (2, 3)), net.weight("b1", 2)
    W2, b2 = net.weight("W2", (3, 2)), net.weight("b2", 3)
    W3, b3 = net.weight("W3", (2, 3)), net.weight("b3", 2)
    h1 = net.instant("h1", hs.sigmoid(W1 @ u + b1))
    h2 = net.instant("h2", hs.relu(W2 @ h1 + b2))
    o = net.instant("o", hs.identity(W3 @ h2 + b3))
    net.loss(hs.softmax_cross_entropy(o, y))
    return net


def leaky():
    """(c) one neuron-state block with leaky dynamics x' = (-x + tanh(W u + b))/tau; loss on C x."""
    net = hs.Network("leaky")
    u, y = net.input("u", 4), net.target("y", 2)
    x = net.state("x", 3)
    W, b, C = net.weight("W", (3, 4)), net.weight("b", 3), net.weight("C", (2, 3))
    tau = net.param("tau", 2.0)
    net.dynamics(x, (-x + hs.tanh(W @ u + b)) / tau)
    net.loss(hs.sum_squares(C @ x - y) / 2)
    return net


def recurrent():
    """(d) recurrent state block x' = -x + tanh(A x + B u); loss on C x."""
    net = hs.Network("recurrent")
    u, y = net.input("u", 4), net.target("y", 2)
    x = net.state("x", 3)
    A, B, C = net.weight("A", (3, 3)), net.weight("B", (3, 4)), net.weight("C", (2, 3))
    net.dynamics(x, -x + hs.tanh(A @ x + B @ u))
    net.loss(hs.sum_squares(C @ x - y) / 2)
    return net


ATAN = hs.activation(sympy.atan)


def two_blocks():
    """(e) two coupled state blocks through an instant, a user activation (atan), softplus,
    dynamics using delta, a cross-entropy on a state and a regularizer."""
    net = hs.Network("two_blocks")
    u, y = net.input("u", 2), net.target("y", 2)
    x1, x2 = net.state("x1", 3), net.state("x2", 2)
    A, B, D = net.weight("A", (3, 3)), net.weight("B", (3, 2)), net.weight("D", (2, 3))
    lam = net.param("lam", 0.1)
    h = net.instant("h", ATAN(A @ x1 + B @ u))
    net.dynamics(x1, -x1 + h)
    net.dynamics(x2, (hs.softplus(D @ h) - x2) / net.delta)
    net.loss(hs.softmax_cross_entropy(x2, y) + lam * hs.sum_squares(A))
    return net


def ops():
    """(f) the operations the networks above do not differentiate through: elementwise
    product, sin, a dot product, scaling by and dividing by an expression of the
    variables, a transpose, a quadratic form summed with total, and softmax itself."""
    net = hs.Network("ops")
    u, y = net.input("u", 3), net.target("y", 2)
    x = net.state("x", 2)
    W, M, a, C = net.weight("W", (2, 3)), net.weight("M", (2, 2)), net.weight("a", 2), net.weight("C", (2, 2))
    g = net.instant("g", hs.sigmoid(W @ u) * hs.sin(M @ x))
    net.dynamics(x, -x + hs.dot(a, x) * g / (1 + hs.sum_squares(x)))
    net.loss(hs.sum_squares(hs.softmax(C @ x) - y) + hs.total(x.T @ M @ x) / 4)
    return net


NETWORKS = {
    "mlp2": mlp2,
    "mlp3": mlp3,
    "leaky": leaky,
    "recurrent": recurrent,
    "two_blocks": two_blocks,
    "ops": ops,
}
