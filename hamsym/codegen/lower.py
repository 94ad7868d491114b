"""Lowering matrix expressions to loops over arrays.

An expression of shape (n, m) is printed *at an index* (i, j): sums, scalings,
Hadamard products, activations and outer products become one scalar expression
inside a single loop, so a layer's elementwise work is fused. Only reductions
(a matrix product with an inner dimension > 1, a norm, a dot, a softmax) need a
loop of their own and a buffer: they are "materialized" once and then read by
index. A matrix-vector product used exactly once is fused into the row loop of
the expression that uses it (the forward pass of a layer is then one loop).

Vectors (n, 1) live in 1-D arrays, matrices in 2-D C-ordered arrays, scalars in
locals. All sizes are compile-time constants in the emitted code.
"""

from __future__ import annotations

from collections import Counter

from .. import expr as E
from .. import reductions as R
from ..rewrite import walk
from ..activations import F, t
from .scalar import scalar_code


def _is_reduction(e):
    return (isinstance(e, E.MatMul) and e.args[0].shape[1] > 1) or isinstance(
        e, (R.SumSquares, E.Inner, R.SumAll, R.Softmax, R.CrossEntropy))


def storage_shape(shape):
    """Storage shape: vectors (either orientation) are 1-D."""
    if shape == ():
        return ()
    n, m = shape
    return (n * m,) if 1 in (n, m) else (n, m)


def evaluated_children(node, stored):
    """Children whose values the code computes: a derivative that reads off a
    stored output (tanh' = 1 - h^2) reads that output instead of its argument."""
    act = getattr(node, "activation", None)
    if act is not None and act.origin is not None and act.output_form is not None:
        out = E.Apply(act.origin, node.args[0])
        if out in stored:
            return (out,)
    return node.children()


def walk_evaluated(root, stored):
    """Nodes evaluated for root, children first; stored nodes are not entered."""
    return walk(root, lambda n: evaluated_children(n, stored)
                  if n is root or n not in stored else ())


class ReadAfterWrite(Exception):
    """Code would read a weight after its update in this step (or a message before it
    is computed): the caller lowers again without fusing messages."""


class Lowering:
    """Accumulates the body of a step function: lines of code and work buffers."""

    def __init__(self, uses, counter=None):
        # temporaries are numbered module-wide (one counter shared by every kernel of a
        # module), so a buffer one kernel stores for another is never reused as a temporary
        self._count = Counter() if counter is None else counter
        self.lines = []
        self.buffers = {}       # name -> storage shape
        self.known = {}         # Expr -> name of the array or local holding it
        self.inline = {}        # Expr -> scalar code valid inside the current loop only
        self.read = set()       # names of stored values the code reads
        self._pending, self._waiting = frozenset(), {}
        self.frozen = set()     # weights already updated in this step: reading them is a bug
        self.uses = uses        # Expr -> number of places using it, to decide fusion

    # -- names ---------------------------------------------------------------------------
    def fresh(self, prefix):
        """A new generated name: _t<n> (buffers), _s<n> (scalars), _a<n> (arguments).
        User names never start with '_', so these cannot meet a declared name."""
        n = self._count[prefix]
        self._count[prefix] += 1
        return f"_{prefix}{n}"

    def emit(self, line, depth=0):
        self.lines.append("    " * depth + line)

    def buffer(self, name, shape):
        shape = storage_shape(shape)
        if self.buffers.setdefault(name, shape) != shape:
            raise AssertionError(f"buffer {name} written with shapes {self.buffers[name]} and {shape}")
        return name

    # -- reading an expression at an index -------------------------------------------------
    @staticmethod
    def ref(name, shape, i, j):
        if shape == ():
            return name
        n, m = shape
        if m == 1:
            return f"{name}[{i}]"
        if n == 1:
            return f"{name}[{j}]"
        return f"{name}[{i}, {j}]"

    def at(self, e, i, j, pre):
        """Code for entry (i, j) of e; temporaries needed first are appended to `pre`."""
        if e in self.inline:
            return self.inline[e]
        if e in self.known:
            self.read.add(self.known[e])
            return self.ref(self.known[e], e.shape, i, j)
        if isinstance(e, E.Var):
            if e in self.frozen:
                raise ReadAfterWrite(e.name)
            return self.ref(e.name, e.shape, i, j)
        if e in self.pending:
            raise ReadAfterWrite(str(e))
        if isinstance(e, E.Const):
            return repr(float(e.value))
        if isinstance(e, E.Zero):
            return "0.0"
        if isinstance(e, E.Ones):
            return "1.0"
        if isinstance(e, E.Add):
            out = self.at(e.args[0], i, j, pre)
            for a in e.args[1:]:
                if isinstance(a, E.Scale) and E.is_const(a.args[0], -1):
                    out += " - " + self.at(a.args[1], i, j, pre)
                else:
                    out += " + " + self.at(a, i, j, pre)
            return f"({out})"
        if isinstance(e, (E.Scale, E.Hadamard)):
            a, b = e.args
            return f"({self.at(a, i, j, pre)} * {self.at(b, i, j, pre)})"
        if isinstance(e, E.Reciprocal):
            return f"(1.0 / {self.at(e.args[0], i, j, pre)})"
        if isinstance(e, E.Transpose):
            return self.at(e.args[0], j, i, pre)
        if isinstance(e, E.MatMul) and e.args[0].shape[1] == 1:       # outer product
            a, b = e.args
            return f"({self.at(a, i, '0', pre)} * {self.at(b, '0', j, pre)})"
        if isinstance(e, E.Apply):
            return self._activation(e, i, j, pre)
        raise AssertionError(f"{type(e).__name__} `{e}` reached elementwise code unmaterialized")

    def _activation(self, e, i, j, pre):
        act, x = e.activation, e.args[0]
        if act.origin is not None and act.output_form is not None:
            out = E.Apply(act.origin, x)
            if out in self.known:             # f' read off f's stored output
                return "(" + scalar_code(act.output_form, {F: self.at(out, i, j, pre)}, act.name) + ")"
        arg = self.fresh("a")
        pre.append(f"{arg} = {self.at(x, i, j, pre)}")
        body = act.stable if act.stable is not None else act.expr
        return "(" + scalar_code(body, {t: arg}, act.name) + ")"

    # -- materializing -------------------------------------------------------------------
    def prepare(self, e, fuse=()):
        """Materialize the reductions inside e (except the matvecs in `fuse`)."""
        for node in walk_evaluated(e, self.known):
            if node in self.known or node in fuse or self._waits(node):
                continue
            if _is_reduction(node):
                self.materialize(node)

    @property
    def pending(self):
        """Messages not computed yet: what needs them must wait."""
        return self._pending

    @pending.setter
    def pending(self, messages):
        self._pending, self._waiting = frozenset(messages), {}

    def _waits(self, node):
        """Does node need a pending message? (memoized bottom-up per pending set)"""
        if not self._pending:
            return False
        memo = self._waiting
        for n in walk(node, lambda m: () if m in memo else m.children()):
            if n not in memo:
                memo[n] = n in self._pending or any(memo[c] for c in n.children())
        return memo[node]

    def operand(self, e):
        """Make e readable by index cheaply: a declared array or a stored buffer."""
        if isinstance(e, E.Var) or e in self.known:
            return e
        if isinstance(e, E.Transpose) and isinstance(e.args[0], E.Var):
            return e
        self.materialize(e)
        return e

    def materialize(self, e, name=None):
        if e in self.known:
            return self.known[e]
        if isinstance(e, E.MatMul) and e.args[0].shape[1] > 1:
            name = self._matmul(e, name)
        elif isinstance(e, (R.SumSquares, E.Inner, R.SumAll)):
            name = self._sum(e, name)
        elif isinstance(e, R.Softmax):
            name = self._softmax(e, name)
        elif isinstance(e, R.CrossEntropy):
            name = self._cross_entropy(e, name)
        else:
            name = self.assign(e, name)
        self.known[e] = name
        return name

    def store(self, e, name):
        """Materialize e into the buffer `name` itself: a buffer another kernel reads
        by name must be written even when e is already stored under another name."""
        got = self.materialize(e, name=name)
        if got != name:
            self.read.add(got)
            self.buffer(name, e.shape)
            self._loops(e.shape, lambda i, j, depth: self.emit(
                f"{self.ref(name, e.shape, i, j)} = {self.ref(got, e.shape, i, j)}", depth))
        return name

    def fusable(self, e):
        """Matvecs W @ v used once, with W a declared matrix, read at the row index of
        e (outside any transpose or other reduction): fused into e's row loop."""
        out, stack = set(), [e]
        while stack:
            n = stack.pop()
            if n in self.known or isinstance(n, E.Transpose):
                continue
            if isinstance(n, E.MatMul) and n.shape[1] == 1 and n.shape[0] > 1 and \
                    n.args[0].shape[1] > 1 and isinstance(n.args[0], E.Var) and self.uses[n] == 1:
                out.add(n)
            elif not _is_reduction(n):
                stack.extend(evaluated_children(n, self.known))
        return out

    def hoist(self, e):
        """Store the vector factors of a matrix-shaped e that call activations, so a
        loop over (i, j) evaluates them n + m times instead of n * m."""
        if e.shape == () or 1 in e.shape:
            return
        stack = [e]
        while stack:
            n = stack.pop()
            if n in self.known or isinstance(n, E.Var) or self._waits(n) or (
                    isinstance(n, E.Transpose) and n.args[0] in self.known):
                continue
            if n.shape != () and 1 in n.shape and any(
                    isinstance(m, E.Apply) for m in walk_evaluated(n, self.known)):
                self.materialize(n)
            elif not _is_reduction(n):
                stack.extend(evaluated_children(n, self.known))

    def assign(self, e, name=None):
        """Evaluate e elementwise into a new buffer `name` (or local, for scalars)."""
        # a call in the row loop costs more than fusing a matvec into it saves
        calls = any(isinstance(n, E.Apply) for n in walk_evaluated(e, self.known))
        fuse = self.fusable(e) if e.shape != () and e.shape[1] == 1 and not calls else set()
        self.prepare(e, fuse)
        self.hoist(e)
        for m in fuse:
            self.operand(m.args[1])
        if e.shape == ():
            name = name or self.fresh("s")
            pre = []
            value = self.at(e, "0", "0", pre)
            for line in pre:
                self.emit(line)
            self.emit(f"{name} = {value}")
            return name
        name = name or self.fresh("t")
        self.buffer(name, e.shape)
        self._loops(e.shape, lambda i, j, depth: self._store(e, name, i, j, depth, fuse))
        return name

    def _store(self, e, name, i, j, depth, fuse):
        for k, mv in enumerate(sorted(fuse, key=str)):
            acc = f"_acc{k}"
            w, v = mv.args
            self.emit(f"{acc} = 0.0", depth)
            self.emit(f"for _r in range({w.shape[1]}):", depth)
            self.emit(f"{acc} += {w.name}[{i}, _r] * {self.at(v, '_r', '0', [])}", depth + 1)
            self.inline[mv] = acc
        pre = []
        value = self.at(e, i, j, pre)
        self.inline.clear()
        for line in pre:
            self.emit(line, depth)
        self.emit(f"{self.ref(name, e.shape, i, j)} = {value}", depth)

    def _loops(self, shape, body):
        """Loop over every entry of shape; body(i, j, depth) gets index code for the
        entry (a loop variable, or "0" along a dimension of size 1)."""
        n, m = shape
        if m == 1:                       # column vectors, and 1x1
            self.emit(f"for _i in range({n}):")
            body("_i", "0", 1)
        elif n == 1:                     # row vectors
            self.emit(f"for _j in range({m}):")
            body("0", "_j", 1)
        else:
            self.emit(f"for _i in range({n}):")
            self.emit(f"for _j in range({m}):", 1)
            body("_i", "_j", 2)

    def _matmul(self, e, name):
        a, b = (self.operand(x) for x in e.args)
        n, k = a.shape
        m = b.shape[1]
        name = name or self.fresh("t")
        self.buffer(name, e.shape)
        if m == 1 and n > 1 and isinstance(a, E.Transpose) and a not in self.known:
            # W.T @ v: walk W by rows (contiguous) and scatter, instead of strided columns
            self.emit(f"for _i in range({n}):")
            self.emit(f"{name}[_i] = 0.0", 1)
            self.emit(f"for _r in range({k}):")
            self.emit(f"_c = {self.at(b, '_r', '0', [])}", 1)
            self.emit(f"for _i in range({n}):", 1)
            self.emit(f"{name}[_i] += {self.at(a.args[0], '_r', '_i', [])} * _c", 2)
            return name

        if (n, m) == (1, 1):                                     # a.T @ b, a 1x1 matrix
            self.emit("_acc = 0.0")
            self.emit(f"for _r in range({k}):")
            self.emit(f"_acc += {self.at(a, '0', '_r', [])} * {self.at(b, '_r', '0', [])}", 1)
            self.emit(f"{name}[0] = _acc")
            return name

        def body(i, j, depth):
            self.emit("_acc = 0.0", depth)
            self.emit(f"for _r in range({k}):", depth)
            self.emit(f"_acc += {self.at(a, i, '_r', [])} * {self.at(b, '_r', j, [])}", depth + 1)
            self.emit(f"{self.ref(name, e.shape, i, j)} = _acc", depth)
        self._loops(e.shape, body)
        return name

    def _sum(self, e, name):
        name = name or self.fresh("s")
        x = e.args[0]
        self.prepare(e.args[0])
        if isinstance(e, E.Inner):
            self.prepare(e.args[1])
        self.emit(f"{name} = 0.0")

        def body(i, j, depth):
            pre = []
            if isinstance(e, R.SumSquares):
                v = self.at(x, i, j, pre)
                term = "_v * _v"
            elif isinstance(e, E.Inner):
                v = f"{self.at(x, i, j, pre)} * {self.at(e.args[1], i, j, pre)}"
                term = "_v"
            else:
                v = self.at(x, i, j, pre)
                term = "_v"
            for line in pre:
                self.emit(line, depth)
            self.emit(f"_v = {v}", depth)
            self.emit(f"{name} += {term}", depth)
        self._loops(x.shape, body)
        return name

    def _softmax(self, e, name):
        z = self.operand(e.args[0])
        n = z.shape[0]
        name = name or self.fresh("t")
        self.buffer(name, e.shape)
        self._max(z)
        self.emit("_se = 0.0")
        self.emit(f"for _i in range({n}):")
        self.emit(f"{name}[_i] = math.exp({self.at(z, '_i', '0', [])} - _mx)", 1)
        self.emit(f"_se += {name}[_i]", 1)
        self.emit(f"for _i in range({n}):")
        self.emit(f"{name}[_i] /= _se", 1)
        return name

    def _cross_entropy(self, e, name):
        # logsumexp(z) * sum(y) - y.z, with the max subtracted for range safety
        z, y = self.operand(e.args[0]), self.operand(e.args[1])
        n = z.shape[0]
        name = name or self.fresh("s")
        zi, yi = self.at(z, "_i", "0", []), self.at(y, "_i", "0", [])
        self._max(z)
        self.emit("_se = 0.0")
        self.emit("_sy = 0.0")
        self.emit("_yz = 0.0")
        self.emit(f"for _i in range({n}):")
        self.emit(f"_se += math.exp({zi} - _mx)", 1)
        self.emit(f"_sy += {yi}", 1)
        self.emit(f"_yz += {yi} * {zi}", 1)
        self.emit(f"{name} = (_mx + math.log(_se)) * _sy - _yz")
        return name

    def _max(self, z):
        """_mx = the largest entry of the vector z (subtracted before exp, for range)."""
        self.emit(f"_mx = {self.at(z, '0', '0', [])}")
        self.emit(f"for _i in range(1, {z.shape[0]}):")
        self.emit(f"_mx = max(_mx, {self.at(z, '_i', '0', [])})", 1)


def count_uses(exprs, named):
    """In how many of the given expressions each node is evaluated.

    Nodes in `named` (instant definitions, stored under their names) are not
    looked into except at their own definition, and a derivative that reads off
    a stored output (tanh' = 1 - h^2) does not evaluate its argument again.
    """
    uses = Counter()
    for root in exprs:
        uses.update(walk_evaluated(root, named))
    return uses
