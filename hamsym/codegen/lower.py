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

Arithmetic stays in the learner's float type: every function of lowered code opens
with ``_F``, the float type of its arrays (``float_prologue``), writes each float
literal as ``_F(c)`` and rebinds its scalars (hyperparameters, params) to ``_F``. A
bare 1.0 is a float64 in Numba, and one float64 operand widens a float32 expression
and every loop it is in to float64 (docs/precision.md).
"""

from __future__ import annotations

import re
from collections import Counter

from ..declare import expr as E
from ..declare import reductions as R
from ..declare.rewrite import walk
from ..declare.activations import F, t
from .scalar import scalar_code


# threads="auto" (the default): a loop nest is split across threads from this many
# multiply-adds (or weight entries) on; below, waking the threads at every loop costs
# more than they save (2 idle cores: 1024-1024-1024-10 ran 1.38x and 1.53x faster,
# once 0.81x; 4096-4096-10 1.23x to 1.95x; a small layer gains nothing)
PARALLEL_WORK = 1 << 20
COLUMN_BLOCK, MAX_BLOCKS = 256, 64    # column blocks of a threaded update pass (column_blocks)


def lit(value):
    """A float literal in the function's float type _F (see float_prologue)."""
    return f"_F({float(value)!r})"


def float_prologue(args, lines, scalars, coefficients=False):
    """The opening lines of a function of lowered code with these arguments and body
    lines: _F, the float type of its first array argument (the learner's dtype), then,
    with coefficients, the step's coefficients of p and x (from the float64
    hyperparameters, rounded once to _F), then the scalars the body reads, in _F."""
    arrays = [a for a in args if a not in scalars]
    out = [f"_F = {arrays[0]}.dtype.type" if arrays else "_F = numba.float64"]
    if coefficients:
        out += ["_aw = _F(1.0 + flip * theta)", "_ax = _F(1.0 + flip * theta_neurons)",
                "_ds = _F(delta * flip)", "_db = _F(delta * beta)"]
    body = "\n".join(lines)
    out += [f"{a} = _F({a})" for a in args if a in scalars and re.search(rf"\b{a}\b", body)]
    return out


def lanes(k):
    """Independent partial sums of a dot product of length k (see Lowering.dot): enough
    to keep the vector adders busy on long rows, few on short ones, where adding the
    lanes up at the end would cost more than the products."""
    return 4 if k < 64 else 8 if k < 256 else 16


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

    def __init__(self, uses, counter=None, threads=None):
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
        # work from which a row loop runs on all threads (numba.prange; None: never), and
        # whether any does (the kernel then compiles with parallel=True)
        self.threads, self.threaded = threads, False

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
            return lit(e.value)
        if isinstance(e, E.Zero):
            return lit(0.0)
        if isinstance(e, E.Ones):
            return lit(1.0)
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
            return f"({lit(1.0)} / {self.at(e.args[0], i, j, pre)})"
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
                return "(" + scalar_code(act.output_form, {F: self.at(out, i, j, pre)}, act.name,
                                         own=True) + ")"
        arg = self.fresh("a")
        pre.append(f"{arg} = {self.at(x, i, j, pre)}")
        body = act.stable if act.stable is not None else act.expr
        return "(" + scalar_code(body, {t: arg}, act.name, own=True) + ")"

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
        work = sum(m.args[0].shape[0] * m.args[0].shape[1] for m in fuse) or (
            e.shape[0] * e.shape[1] if 1 not in e.shape else 0)
        self._loops(e.shape, lambda i, j, depth: self._store(e, name, i, j, depth, fuse), work)
        return name

    def _store(self, e, name, i, j, depth, fuse):
        for k, mv in enumerate(sorted(fuse, key=str)):
            acc = f"_acc{k}"
            w, v = mv.args
            self.row_dot(acc, w, i, v, depth)
            self.inline[mv] = acc
        pre = []
        value = self.at(e, i, j, pre)
        self.inline.clear()
        for line in pre:
            self.emit(line, depth)
        self.emit(f"{self.ref(name, e.shape, i, j)} = {value}", depth)

    def dot(self, acc, k, term, depth):
        """Emit `acc = sum over _r < k of term(r)` (term(r): code of one product at index
        code r). Long sums keep L = lanes(k) independent partial sums, lane u taking r = u
        mod L in order below the last whole block, the rest going to lane 0, added
        pairwise at the end: the additions no longer wait for each other, and the
        order is fixed in the source (IEEE, no fastmath), so the bits do not depend on
        how LLVM compiles the kernel. The module's _dot (row_dot) keeps this order."""
        n = lanes(k)
        if k < 2 * n:
            self.emit(f"{acc} = {lit(0.0)}", depth)
            self.emit(f"for _r in range({k}):", depth)
            self.emit(f"{acc} += {term('_r')}", depth + 1)
            return
        parts = [f"{acc}_{u}" for u in range(n)]
        for part in parts:
            self.emit(f"{part} = {lit(0.0)}", depth)
        whole = k - k % n
        self.emit(f"for _r in range(0, {whole}, {n}):", depth)
        for u, part in enumerate(parts):
            self.emit(f"{part} += {term('_r' if u == 0 else f'_r + {u}')}", depth + 1)
        for r in range(whole, k):                      # the remainder, into lane 0
            self.emit(f"{parts[0]} += {term(str(r))}", depth)
        while len(parts) > 1:
            parts = [f"({a} + {b})" for a, b in zip(parts[::2], parts[1::2])]
        self.emit(f"{acc} = {parts[0]}", depth)

    def split(self, work, rows):
        """Run a loop of `rows` independent rows (`work` multiply-adds) on all threads?"""
        if self.threads is None or rows < 2 or work < max(self.threads, 1):
            return False
        self.threaded = True
        return True

    def row_dot(self, acc, a, i, b, depth):
        """acc = row i of the matrix a times the vector b (both read by index). When a is
        a stored C-ordered matrix and b a stored vector, the module's _dot does it with
        vector instructions, in the same order as dot() writes it out."""
        k = a.shape[1]
        term = lambda r: f"{self.at(a, i, r, [])} * {self.at(b, r, '0', [])}"
        arrays = [self._stored_name(a, matrix=True), self._stored_name(b, matrix=False)]
        if k < 2 * lanes(k) or None in arrays:
            self.dot(acc, k, term, depth)
            return
        term("0")                                    # registers the reads, checks their order
        self.emit(f"{acc} = _dot({arrays[0]}, {i}, {arrays[1]}, {lanes(k)})", depth)

    def _stored_name(self, e, matrix):
        """The array holding e in its own layout (a matrix row-major, a vector 1-D), else None."""
        if isinstance(e, E.Transpose) and not matrix and isinstance(e.args[0], E.Var):
            e = e.args[0]                            # a vector's transpose: the same 1-D array
        if isinstance(e, E.Var):
            name = e.name
        elif e in self.known and e.shape != ():
            name = self.known[e]
        else:
            return None
        if matrix != (1 not in e.shape):
            return None
        return name

    def _loops(self, shape, body, work=0):
        """Loop over every entry of shape; body(i, j, depth) gets index code for the
        entry (a loop variable, or "0" along a dimension of size 1). With `work` over the
        threads threshold, the rows are shared among threads: body must write nothing
        that another row writes (each row's arithmetic is the same either way)."""
        n, m = shape
        rows = "numba.prange" if self.split(work, n) else "range"
        if m == 1:                       # column vectors, and 1x1
            self.emit(f"for _i in {rows}({n}):")
            body("_i", "0", 1)
        elif n == 1:                     # row vectors
            self.emit(f"for _j in range({m}):")
            body("0", "_j", 1)
        else:
            self.emit(f"for _i in {rows}({n}):")
            self.emit(f"for _j in range({m}):", 1)
            body("_i", "_j", 2)

    def column_blocks(self, shape, body, work):
        """Like _loops over a matrix, for a body that also accumulates along columns
        (a message W.T @ v, summed over rows i): with threads, each thread takes a block
        of columns and walks every row, so the sums over i keep their order and no two
        threads write one entry."""
        n, m = shape
        if not self.split(work, m):
            self._loops(shape, body)
            return
        # a fixed number of blocks (numba.get_num_threads() here would keep Numba from
        # caching the kernel and its callers); prange deals them out to the threads
        blocks = max(2, min(m // COLUMN_BLOCK, MAX_BLOCKS))
        self.emit(f"for _c in numba.prange({blocks}):")
        self.emit(f"for _i in range({n}):", 1)
        # unsigned bounds: Numba then needs no negative-index wraparound on _j, which
        # would keep LLVM from vectorising the loop
        self.emit(f"for _j in range(numba.uint64(_c * {m} // {blocks}), "
                  f"numba.uint64((_c + 1) * {m} // {blocks})):", 2)
        body("_i", "_j", 3)

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
            self.dot("_acc", k, lambda r: f"{self.at(a, '0', r, [])} * {self.at(b, r, '0', [])}", 0)
            self.emit(f"{name}[0] = _acc")
            return name

        def body(i, j, depth):
            if m == 1:
                self.row_dot("_acc", a, i, b, depth)
            else:
                self.dot("_acc", k, lambda r: f"{self.at(a, i, r, [])} * {self.at(b, r, j, [])}", depth)
            self.emit(f"{self.ref(name, e.shape, i, j)} = _acc", depth)
        self._loops(e.shape, body, n * k * m)
        return name

    def _sum(self, e, name):
        name = name or self.fresh("s")
        x = e.args[0]
        self.prepare(e.args[0])
        if isinstance(e, E.Inner):
            self.prepare(e.args[1])
        self.emit(f"{name} = {lit(0.0)}")

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
        self.emit(f"_se = {lit(0.0)}")
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
        for acc in ("_se", "_sy", "_yz"):
            self.emit(f"{acc} = {lit(0.0)}")
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
