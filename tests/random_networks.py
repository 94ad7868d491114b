"""Random networks declared through hamsym's public API, and an independent PyTorch
float64 reference of one HL step for every scheme.

A network is plain data (a *spec*): an ordered list of declarations, the dynamics
and the loss, every expression a small tree of tuples such as
``("act", "tanh", ("+", ("@", ("v", "W1"), ("v", "u")), ("v", "b1")))``.
The same tree is read three ways: as hamsym expressions (`build_network`), as
float64 torch closures (`TorchModel`), and as Python source (`network_source`, for
reproducers). Which states each dynamics reads and which states and weights each
loss term reads are computed here from the trees, never asked of hamsym.

A *case* is a spec plus a scheme, groups, hyperparameters, resets and the number of
steps to check; `random_case(seed)` draws one, `check_case(case, workdir)` runs it
against the reference and raises `CaseFailure` (with a category) on any difference.
Importable without pytest; torch is imported lazily by the reference only.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
import zlib
from pathlib import Path

import numpy as np

# ------------------------------------------------------------------------------------
# activations: (hamsym factory, torch function, source text)

_CUSTOM = {
    # name: (sympy expression builder of t, torch function, source of the hs.activation call)
    "atan": (lambda sp, t: sp.atan(t), lambda th, z: th.atan(z), "hs.activation(sympy.atan)"),
    "softsign": (lambda sp, t: t / (1 + sp.Abs(t)), lambda th, z: z / (1 + z.abs()),
                 'hs.activation(lambda t: t / (1 + sympy.Abs(t)), name="softsign")'),
    "gauss": (lambda sp, t: sp.exp(-t ** 2), lambda th, z: th.exp(-z ** 2),
              'hs.activation(lambda t: sympy.exp(-t**2), name="gauss")'),
    "swish": (lambda sp, t: t / (1 + sp.exp(-t)), lambda th, z: z * th.sigmoid(z),
              'hs.activation(lambda t: t / (1 + sympy.exp(-t)), name="swish")'),
    "rational": (lambda sp, t: t / (1 + t ** 2), lambda th, z: z / (1 + z ** 2),
                 'hs.activation(lambda t: t / (1 + t**2), name="rational")'),
}
BUILTIN_ACTS = ("tanh", "sigmoid", "relu", "softplus", "identity", "sin", "cos")
ACTS = BUILTIN_ACTS + tuple(_CUSTOM)
_hs_acts = {}


def hs_activation(name):
    import hamsym as hs
    if name not in _hs_acts:
        if name in BUILTIN_ACTS:
            _hs_acts[name] = getattr(hs, name)
        else:
            import sympy
            expr = _CUSTOM[name][0]
            _hs_acts[name] = hs.activation(lambda t: expr(sympy, t), name=name)
    return _hs_acts[name]


def torch_activation(name, z):
    import torch
    if name in _CUSTOM:
        return _CUSTOM[name][1](torch, z)
    return {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
            "softplus": lambda v: torch.log1p(torch.exp(v)), "identity": lambda v: v,
            "sin": torch.sin, "cos": torch.cos}[name](z)


def act_source(name):
    return f"hs.{name}" if name in BUILTIN_ACTS else name


# ------------------------------------------------------------------------------------
# expression trees

def V(name):
    return ("v", name)


def C(value):
    return ("c", float(value))


DELTA = ("delta",)
SCALAR_OPS = ("sumsq", "ce", "dot", "total")


def children(e):
    if e[0] in ("v", "c", "delta"):
        return []
    if e[0] == "act":
        return [e[2]]
    return list(e[1:])


def rebuild(e, kids):
    if e[0] in ("v", "c", "delta"):
        return e
    if e[0] == "act":
        return ("act", e[1], kids[0])
    return (e[0], *kids)


def walk(e):
    yield e
    for k in children(e):
        yield from walk(k)


def names_in(e):
    return {n[1] for n in walk(e) if n[0] == "v"}


def shape_of(e, shapes):
    """Shape of a tree: () for a scalar, (rows, cols) otherwise (shapes: name -> shape)."""
    op = e[0]
    if op == "v":
        return tuple(shapes[e[1]])
    if op in ("c", "delta") or op in SCALAR_OPS:
        return ()
    if op in ("+", "-"):
        return shape_of(e[1], shapes)
    if op in ("neg", "act", "softmax"):
        return shape_of(e[-1], shapes)
    if op == "*":
        a, b = shape_of(e[1], shapes), shape_of(e[2], shapes)
        return b if a == () else a
    if op == "/":
        return shape_of(e[1], shapes)
    if op == "@":
        return (shape_of(e[1], shapes)[0], shape_of(e[2], shapes)[1])
    if op == "T":
        s = shape_of(e[1], shapes)
        return s if s == () else (s[1], s[0])
    raise ValueError(op)


def to_hamsym(e, env, net):
    op = e[0]
    if op == "v":
        return env[e[1]]
    if op == "c":
        return e[1]
    if op == "delta":
        return net.delta
    if op == "act":
        return hs_activation(e[1])(to_hamsym(e[2], env, net))
    a = [to_hamsym(k, env, net) for k in e[1:]]
    import hamsym as hs
    return {"+": lambda: a[0] + a[1], "-": lambda: a[0] - a[1], "neg": lambda: -a[0],
            "*": lambda: a[0] * a[1], "/": lambda: a[0] / a[1], "@": lambda: a[0] @ a[1],
            "T": lambda: a[0].T, "sumsq": lambda: hs.sum_squares(a[0]), "softmax": lambda: hs.softmax(a[0]),
            "ce": lambda: hs.softmax_cross_entropy(a[0], a[1]), "dot": lambda: hs.dot(a[0], a[1]),
            "total": lambda: hs.total(a[0])}[op]()


def to_source(e):
    op = e[0]
    if op == "v":
        return e[1]
    if op == "c":
        return repr(e[1])
    if op == "delta":
        return "net.delta"
    if op == "act":
        return f"{act_source(e[1])}({to_source(e[2])})"
    a = [to_source(k) for k in e[1:]]
    return {"+": lambda: f"({a[0]} + {a[1]})", "-": lambda: f"({a[0]} - {a[1]})",
            "neg": lambda: f"(-{a[0]})", "*": lambda: f"({a[0]} * {a[1]})",
            "/": lambda: f"({a[0]} / {a[1]})", "@": lambda: f"({a[0]} @ {a[1]})",
            "T": lambda: f"{a[0]}.T", "sumsq": lambda: f"hs.sum_squares({a[0]})",
            "softmax": lambda: f"hs.softmax({a[0]})",
            "ce": lambda: f"hs.softmax_cross_entropy({a[0]}, {a[1]})",
            "dot": lambda: f"hs.dot({a[0]}, {a[1]})", "total": lambda: f"hs.total({a[0]})"}[op]()


def to_torch(e, env, instants, memo, delta):
    """Evaluate a tree on torch tensors; instants (name -> tree) are expanded, memoized."""
    import torch
    op = e[0]
    if op == "v":
        name = e[1]
        if name in instants:
            if name not in memo:
                memo[name] = to_torch(instants[name], env, instants, memo, delta)
            return memo[name]
        return env[name]
    if op == "c":
        return e[1]
    if op == "delta":
        return delta
    if op == "act":
        return torch_activation(e[1], to_torch(e[2], env, instants, memo, delta))
    a = [to_torch(k, env, instants, memo, delta) for k in e[1:]]
    if op == "+":
        return a[0] + a[1]
    if op == "-":
        return a[0] - a[1]
    if op == "neg":
        return -a[0]
    if op == "*":
        return a[0] * a[1]
    if op == "/":
        return a[0] / a[1]
    if op == "@":
        return a[0] @ a[1]
    if op == "T":
        return a[0].T
    if op == "sumsq":
        return (a[0] ** 2).sum()
    if op == "softmax":
        return torch.softmax(a[0], dim=0)
    if op == "ce":
        return -(a[1] * torch.log_softmax(a[0], dim=0)).sum()
    if op == "dot":
        return (a[0] * a[1]).sum()
    if op == "total":
        return a[0].sum()
    raise ValueError(op)


def tuplify(e):
    """JSON turns tuples into lists; trees are tuples again after this."""
    if isinstance(e, list):
        return tuple(tuplify(k) for k in e)
    return e


# ------------------------------------------------------------------------------------
# a spec: {"name", "decls": [[kind, name, payload]], "dyn": [[state, tree]], "loss": tree}

class Spec:
    def __init__(self, d):
        self.name = d["name"]
        self.decls = [(k, n, tuplify(p) if k == "instant" else
                       (tuple(p) if isinstance(p, (list, tuple)) else p)) for k, n, p in d["decls"]]
        self.dyn = [(x, tuplify(f)) for x, f in d["dyn"]]
        self.loss = tuplify(d["loss"])

    def to_dict(self):
        return {"name": self.name, "decls": [list(d) for d in self.decls],
                "dyn": [list(d) for d in self.dyn], "loss": self.loss}

    def of_kind(self, kind):
        return [n for k, n, _ in self.decls if k == kind]

    @property
    def kinds(self):
        return {n: k for k, n, _ in self.decls}

    @property
    def shapes(self):
        out = {}
        for k, n, p in self.decls:
            if k == "param":
                out[n] = ()
            elif k == "instant":
                out[n] = shape_of(p, out)
            else:
                out[n] = tuple(p)
        return out

    @property
    def instants(self):
        return {n: p for k, n, p in self.decls if k == "instant"}

    @property
    def params(self):
        return {n: p for k, n, p in self.decls if k == "param"}

    def leaves(self, e):
        """Declared names a tree reads, looking through instants (our own walk)."""
        inst, out, todo, seen = self.instants, set(), [e], set()
        while todo:
            for n in names_in(todo.pop()):
                if n in seen:
                    continue
                seen.add(n)
                if n in inst:
                    todo.append(inst[n])
                else:
                    out.add(n)
        return out


def build_network(spec):
    """The hamsym Network of a spec, through the public API only."""
    import hamsym as hs
    net = hs.Network(spec.name)
    env = {}
    for kind, name, p in spec.decls:
        if kind == "input":
            env[name] = net.input(name, p[0])
        elif kind == "target":
            env[name] = net.target(name, p[0])
        elif kind == "weight":
            env[name] = net.weight(name, p if p[1] != 1 or _rng_flag(name) else p[0])
        elif kind == "state":
            env[name] = net.state(name, p[0])
        elif kind == "param":
            env[name] = net.param(name, p)
        elif kind == "instant":
            env[name] = net.instant(name, to_hamsym(p, env, net))
    for x, f in spec.dyn:
        net.dynamics(env[x], to_hamsym(f, env, net))
    net.loss(to_hamsym(spec.loss, env, net))
    return net


def _rng_flag(name):
    """Column weights are declared either as (n, 1) or as n (the same shape): by name hash."""
    return zlib.crc32(name.encode()) % 2 == 0


def network_source(spec):
    """Python source declaring the spec's network (`net`) with hamsym."""
    lines = [f"net = hs.Network({spec.name!r})"]
    acts = sorted({n[1] for e in [p for k, _, p in spec.decls if k == "instant"] +
                   [f for _, f in spec.dyn] + [spec.loss] for n in walk(e) if n[0] == "act"}
                  & set(_CUSTOM))
    pre = [f"{a} = {_CUSTOM[a][2]}" for a in acts]
    for kind, name, p in spec.decls:
        if kind in ("input", "target", "state"):
            lines.append(f"{name} = net.{kind}({name!r}, {p[0]})")
        elif kind == "weight":
            shape = tuple(p) if p[1] != 1 or _rng_flag(name) else p[0]
            lines.append(f"{name} = net.weight({name!r}, {shape!r})")
        elif kind == "param":
            lines.append(f"{name} = net.param({name!r}, {p!r})")
        else:
            lines.append(f"{name} = net.instant({name!r}, {to_source(p)})")
    for x, f in spec.dyn:
        lines.append(f"net.dynamics({x}, {to_source(f)})")
    lines.append(f"net.loss({to_source(spec.loss)})")
    return "\n".join(pre + lines)


# ------------------------------------------------------------------------------------
# structure computed from the trees: loss terms, dependencies, SCCs, partial ownership

def _is_scalar_factor(e, shapes):
    return shape_of(e, shapes) == ()


def split_terms(e, shapes, factor=None):
    """Top-level terms of the loss: the terms of a sum; a scalar times a sum (or a sum
    divided by a scalar, or negated) is distributed. Returns trees."""
    op = e[0]

    def scaled(t):
        return t if factor is None else ("*", factor, t)

    def combine(f):
        return f if factor is None else ("*", factor, f)
    if op == "+":
        return split_terms(e[1], shapes, factor) + split_terms(e[2], shapes, factor)
    if op == "-":
        return split_terms(e[1], shapes, factor) + split_terms(e[2], shapes, combine(C(-1)))
    if op == "neg":
        return split_terms(e[1], shapes, combine(C(-1)))
    if op == "*" and e[2][0] in ("+", "-", "neg") and _is_scalar_factor(e[1], shapes):
        return split_terms(e[2], shapes, combine(e[1]))
    if op == "*" and e[1][0] in ("+", "-", "neg") and _is_scalar_factor(e[2], shapes):
        return split_terms(e[1], shapes, combine(e[2]))
    if op == "/" and e[1][0] in ("+", "-", "neg"):
        return split_terms(e[1], shapes, combine(("/", C(1), e[2])))
    return [scaled(e)]


def state_deps(spec):
    """state -> set of states its dynamics reads (through instants)."""
    states = set(spec.of_kind("state"))
    return {x: spec.leaves(f) & states for x, f in spec.dyn}


def scc_order(states, deps):
    """Strongly connected components of the graph restricted to `states` (a list in
    declaration order), dependencies first, ties by the first state's declaration order."""
    index = {x: i for i, x in enumerate(states)}
    reach = {x: {z for z in deps[x] if z in index} for x in states}
    changed = True
    while changed:                               # transitive closure (graphs are tiny)
        changed = False
        for x in states:
            new = set().union(*(reach[z] for z in reach[x])) | reach[x]
            if new != reach[x]:
                reach[x], changed = new, True
    comps, placed = [], set()
    for x in states:
        if x in placed:
            continue
        comp = [z for z in states if z == x or (z in reach[x] and x in reach[z])]
        placed.update(comp)
        comps.append(comp)
    order, done = [], set()
    while len(order) < len(comps):
        ready = [c for c in comps if id(c) not in done and
                 all(z in c or any(z in o for o in order) for x in c for z in reach[x])]
        first = min(ready, key=lambda c: index[c[0]])
        order.append(first)
        done.add(id(first))
    return order


class Ownership:
    """Partial scheme: the loss terms and weights of every group, or the weight that
    two groups use (the library must refuse it)."""

    def __init__(self, spec, groups):
        shapes = spec.shapes
        states = spec.of_kind("state")
        weights = set(spec.of_kind("weight"))
        decl_index = {x: i for i, x in enumerate(states)}
        group_of = {x: g for g, grp in enumerate(groups) for x in grp}
        self.terms = split_terms(spec.loss, shapes)
        reads = [spec.leaves(t) for t in self.terms]
        owner = [None] * len(self.terms)
        users = {w: set() for w in weights}
        for x, f in spec.dyn:
            for w in spec.leaves(f) & weights:
                users[w].add(group_of[x])
        for i, r in enumerate(reads):
            st = [x for x in states if x in r]
            if st:
                owner[i] = group_of[max(st, key=decl_index.get)]
                for w in r & weights:
                    users[w].add(owner[i])
        for i, r in enumerate(reads):
            if owner[i] is None:
                owned = sorted({g for w in r & weights for g in users[w]})
                owner[i] = owned[0] if owned else len(groups) - 1
        for i, r in enumerate(reads):
            for w in r & weights:
                users[w].add(owner[i])
        self.owner = owner
        self.shared = sorted(w for w, g in users.items() if len(g) > 1)
        self.weights_of = {g: sorted(w for w in weights if users[w] == {g}) for g in range(len(groups))}


# ------------------------------------------------------------------------------------
# random specs

class _Gen:
    def __init__(self, rng, name):
        self.r = rng
        self.name = name
        self.decls = []
        self.shapes = {}
        self.count = {}

    def fresh(self, prefix):
        self.count[prefix] = self.count.get(prefix, 0) + 1
        return f"{prefix}{self.count[prefix]}"

    def declare(self, kind, prefix, payload):
        name = self.fresh(prefix)
        self.decls.append((kind, name, payload))
        self.shapes[name] = () if kind == "param" else (
            shape_of(payload, self.shapes) if kind == "instant" else tuple(payload))
        return name

    def p(self, prob):
        return self.r.random() < prob

    def width(self):
        return 1 if self.p(0.35) else int(self.r.integers(2, self.max_width + 1))

    def act(self, identity_prob=0.1):
        if self.p(identity_prob):
            return "identity"
        pool = ["tanh"] * 4 + ["sigmoid"] * 2 + ["relu", "softplus", "sin", "cos"] + list(_CUSTOM)
        return pool[int(self.r.integers(len(pool)))]

    def weights_of_shape(self, shape):
        return [n for k, n, p in self.decls if k == "weight" and tuple(p) == shape]

    def linear(self, src, n_src, n_out):
        e = self._linear(src, n_src, n_out)
        if self.p(0.1):                                   # (x.T @ W.T).T, the same map
            return ("T", ("@", ("T", e[2]), ("T", e[1])))
        return e

    def _linear(self, src, n_src, n_out):
        shared = self.weights_of_shape((n_out, n_src))
        transposed = self.weights_of_shape((n_src, n_out))
        if shared and self.p(0.15):
            return ("@", V(shared[int(self.r.integers(len(shared)))]), src)
        if transposed and self.p(0.2):
            return ("@", ("T", V(transposed[int(self.r.integers(len(transposed)))])), src)
        if n_out == 1 and n_src > 1 and self.p(0.4):       # a column weight used as c.T @ x
            return ("@", ("T", V(self.declare("weight", "c", (n_src, 1)))), src)
        return ("@", V(self.declare("weight", "W", (n_out, n_src))), src)

    def bias(self, n):
        biases = [b for b in self.weights_of_shape((n, 1)) if b.startswith("b")]
        if biases and self.p(0.15):
            return V(biases[0])
        return V(self.declare("weight", "b", (n, 1)))

    def affine(self, srcs, n_out, bias_prob=0.6):
        e = None
        for src, n_src in srcs:
            term = self.linear(src, n_src, n_out)
            e = term if e is None else ("+", e, term)
        if self.p(bias_prob):
            e = ("+", e, self.bias(n_out))
        return e

    def gate(self, e, n):
        """Optional scaling by a param or a constant, or Hadamard with a weight vector."""
        u = self.r.random()
        if u < 0.12:
            return ("*", V(self.declare("param", "alpha", round(float(self.r.uniform(0.5, 1.5)), 3))), e)
        if u < 0.22:
            return ("*", V(self.declare("weight", "g", (n, 1))), e)
        if u < 0.3:
            return ("/", e, C(2.0))
        return e

    def layer(self, srcs, n_out, identity_prob=0.1):
        a = self.act(identity_prob)
        pre = self.affine(srcs, n_out)
        if a != "identity" and self.p(0.05):
            return ("softmax", pre)
        out = self.gate(pre if a == "identity" else ("act", a, pre), n_out)
        if a in ("tanh", "sigmoid", "sin", "cos", "atan", "softsign", "gauss", "rational") and self.p(0.06):
            out = ("*", ("/", ("dot", out, out), C(n_out)), out)      # scaled by a scalar of itself
        return out

    def maybe_instant(self, e, prob=0.8):
        return V(self.declare("instant", "h", e)) if self.p(prob) else e


def random_spec(seed, name=None, small=False):
    """A random spec; small: shallower and at most 6 weights and 2 states (the fixed test
    set, where Numba's compile time counts)."""
    for attempt in range(100):
        spec, ce = _draw_spec(np.random.default_rng(seed if attempt == 0 else [seed, attempt]),
                              name or f"rn{seed}", small)
        if not small or (len(spec.of_kind("weight")) <= 6 and len(spec.of_kind("state")) <= 2):
            return spec, ce
    raise RuntimeError(f"no small spec from seed {seed}")


def _draw_spec(r, name, small):
    g = _Gen(r, name)
    g.max_width = 5 if small else 9
    nu, ny = g.width(), g.width()
    g.decls += [("input", "u", (nu, 1)), ("target", "y", (ny, 1))]
    g.shapes.update(u=(nu, 1), y=(ny, 1))
    depth = int(r.choice([1, 2, 3], p=[.45, .4, .15])) if small else \
        int(r.choice([1, 2, 3, 4], p=[.3, .35, .2, .15]))
    dyn = {}
    states = []                     # (name, width) in declaration order
    signals = [(V("u"), nu)]
    if g.p(0.35):                                        # instantaneous layers only
        for layer in range(depth):
            n = ny if layer == depth - 1 else g.width()
            srcs = [signals[-1]]
            if len(signals) > 1 and g.p(0.25):
                srcs.append(signals[int(r.integers(len(signals) - 1))])
            e = g.layer(srcs, n, identity_prob=0.5 if layer == depth - 1 else 0.1)
            signals.append((g.maybe_instant(e, 0.85), n))
        z = signals[-1][0]
    else:
        for layer in range(depth):
            kind = r.choice(["delay", "leaky", "general", "osc", "instant"], p=[.3, .2, .25, .13, .12]) \
                if layer else r.choice(["delay", "leaky", "general", "osc"], p=[.34, .23, .28, .15])
            n = g.width()
            src = signals[-1] if not (len(signals) > 1 and g.p(0.2)) else \
                signals[int(r.integers(len(signals)))]
            if kind == "instant":
                signals.append((g.maybe_instant(g.layer([src], n), 0.9), n))
                continue
            if kind == "osc":
                a, b = g.declare("state", "a", (n, 1)), g.declare("state", "s", (n, 1))
                states += [(a, n), (b, n)]
                k = V(g.declare("weight", "k", (n, 1))) if g.p(0.6) else \
                    V(g.declare("param", "omega", round(float(r.uniform(0.5, 2)), 3)))
                fa = ("*", k, V(b))
                if g.p(0.7):
                    fa = ("+", fa, g.affine([src], n, 0.3))
                fb = ("neg", ("*", k, V(a)))
                if g.p(0.5):
                    fb = ("-", fb, ("*", V(g.declare("param", "damp", round(float(r.uniform(0.1, 0.5)), 3))), V(b)))
                dyn[a], dyn[b] = fa, fb
                signals.append(([V(a), V(b), ("+", V(a), V(b))][int(r.integers(3))], n))
                continue
            x = g.declare("state", "x", (n, 1))
            states.append((x, n))
            if kind == "delay":
                dyn[x] = ("/", ("-", g.layer([src], n), V(x)), DELTA)
            elif kind == "leaky":
                tau = V(g.declare("param", "tau", round(float(r.uniform(1.2, 3)), 3)))
                srcs = [src] + ([(V(x), n)] if g.p(0.4) else [])
                dyn[x] = ("/", ("+", ("neg", V(x)), g.layer(srcs, n)), tau)
            else:
                same = [z for z, m in states if m == n]
                choice = int(r.integers(4))
                if choice == 0:
                    A = g.weights_of_shape((n, n))
                    A = V(A[0]) if A and g.p(0.3) else V(g.declare("weight", "A", (n, n)))
                    dyn[x] = ("+", ("@", A, V(x)), g.layer([src], n))
                elif choice == 1:
                    z = same[int(r.integers(len(same)))]
                    # a product of states, gated: a raw x * x runs off to -inf within a few steps
                    dyn[x] = ("-", g.layer([src], n), ("*", V(x), ("act", "sigmoid", V(z))))
                elif choice == 2:
                    dyn[x] = ("-", g.affine([src], n), V(x))
                else:
                    kp = V(g.declare("param", "kappa", round(float(r.uniform(0.3, 1.5)), 3)))
                    dyn[x] = ("+", ("neg", ("*", kp, V(x))), g.layer([src], n))
            signals.append((g.maybe_instant(("act", g.act(), V(x)), 0.3) if g.p(0.2) else V(x), n))
        # feedback: an earlier state reads a later one (through V or a forward weight's transpose)
        for i, (xi, ni) in enumerate(states):
            later = states[i + 1:]
            if later and g.p(0.25):
                xj, nj = later[int(r.integers(len(later)))]
                tw = g.weights_of_shape((nj, ni))
                W = ("T", V(tw[0])) if tw and g.p(0.5) else V(g.declare("weight", "F", (ni, nj)))
                dyn[xi] = ("+", dyn[xi], ("@", W, V(xj)))
        srcs = [signals[-1]]
        if len(states) > 1 and g.p(0.3):
            srcs.append((V(states[0][0]), states[0][1]))
        z = g.maybe_instant(g.affine(srcs, ny, 0.5), 0.5)

    # the loss: a main term on the output and regularizers
    ce = g.p(0.25)
    if ce:
        main = ("ce", z, V("y"))
    else:
        main = [("/", ("sumsq", ("-", z, V("y"))), C(2.0)),
                ("*", C(0.5), ("sumsq", ("-", z, V("y")))),
                ("dot", z, V("y")),
                ("total", ("*", z, V("y"))),
                ("sumsq", ("-", ("act", g.act(0), z), V("y")))][int(r.integers(5))]
    terms = [main]
    weights = [n for k, n, _ in g.decls if k == "weight"]
    for _ in range(int(r.integers(0, 3 if small else 4))):
        u = r.random()
        if u < 0.4 and weights:
            w = V(weights[int(r.integers(len(weights)))])
            lam = V(g.declare("param", "lam", round(float(r.uniform(0.01, 0.2)), 3))) if g.p(0.5) \
                else C(round(float(r.uniform(0.01, 0.2)), 3))
            terms.append([("*", lam, ("sumsq", w)), ("*", lam, ("dot", w, w)),
                          ("/", ("total", ("*", w, w)), C(10.0))][int(r.integers(3))])
        elif u < 0.75 and states:
            x, n = states[int(r.integers(len(states)))]
            terms.append([("*", C(0.1), ("sumsq", V(x))),
                          ("*", C(0.2), ("total", ("act", g.act(0), V(x)))),
                          ("/", ("dot", V(x), V(x)), C(4.0))][int(r.integers(3))])
        elif states and g.p(0.5):
            x, n = states[int(r.integers(len(states)))]
            terms.append(("/", ("sumsq", ("-", g.affine([(V(x), n)], ny, 0.3), V("y"))), C(2.0)))
        else:
            inst = [n for k, n, _ in g.decls if k == "instant"]
            if inst:
                h = inst[int(r.integers(len(inst)))]
                terms.append(("*", C(0.05), ("sumsq", V(h))))
    if len(terms) > 2 and g.p(0.3):
        factor = V(g.declare("param", "mu", round(float(r.uniform(0.3, 1.0)), 3))) if g.p(0.5) else C(0.5)
        terms = terms[:-2] + [("*", factor, ("+", terms[-2], terms[-1]))]
    loss = terms[0]
    for t in terms[1:]:
        loss = ("+", loss, t)
    spec = Spec({"name": g.name, "decls": g.decls, "dyn": [(x, dyn[x]) for x, _ in states], "loss": loss})
    return spec, ce


# ------------------------------------------------------------------------------------
# a case: spec + scheme + hyperparameters + what to run

def random_case(seed, small=False):
    spec, ce = random_spec(seed, small=small)
    r = np.random.default_rng([seed, 1])
    states = spec.of_kind("state")
    scheme = str(r.choice(["local", "nonlocal", "partial"], p=[.4, .35, .25])) if states else \
        str(r.choice(["local", "nonlocal"]))
    groups = None
    if scheme == "partial":
        k = int(r.integers(min(2, len(states)), min(3, len(states)) + 1))
        assign = list(range(k)) + [int(r.integers(k)) for _ in states[k:]]
        r.shuffle(assign)
        if r.random() < 0.5:                              # contiguous groups, often
            assign = sorted(assign)
        groups = [[x for x, a in zip(states, assign) if a == g] for g in range(k)]
        groups = [grp for grp in groups if grp]
        if r.random() < 0.5:
            groups = groups[::-1]
        # merge groups that share a weight, mostly: refusals stay a minority
        while len(groups) > 1 and Ownership(spec, groups).shared and r.random() < 0.7:
            groups = [groups[0] + groups[1]] + groups[2:]
    flip = -1.0 if r.random() < 0.7 else 1.0       # +1 ascends: keep its steps small
    hyper = dict(gamma=round(float(r.uniform(0.5, 1.5)), 3),
                 beta=round(float(r.uniform(0.2, 1.0 if flip < 0 else 0.4)), 3),
                 theta=round(float(r.uniform(0.0, 0.5)), 3), flip=flip,
                 delta=round(float(r.uniform(0.05, 0.3 if flip < 0 else 0.15)), 3))
    if r.random() < 0.5:
        hyper["theta_neurons"] = round(float(r.uniform(0.0, 0.5)), 3)
    over = {}
    if r.random() < 0.35:
        for key in ("gamma", "beta", "theta", "theta_neurons", "flip", "delta"):
            if r.random() < 0.4:
                over[key] = -hyper["flip"] if key == "flip" else round(float(r.uniform(0.05, 0.3)), 3)
                if key == "theta_neurons" and r.random() < 0.3:
                    over[key] = None                      # None: the neurons decay like the weights
        for name, value in spec.params.items():
            if r.random() < 0.5:
                over[name] = round(value * float(r.uniform(0.8, 1.2)), 3)
    if over.get("flip") == 1.0:
        over.update(beta=min(over.get("beta", 0.3), 0.3), delta=min(over.get("delta", 0.1), 0.15))
    reset_n = bool(r.random() < 0.15)
    reset_w = bool(r.random() < 0.15)
    # the local scheme with weights moving by the new p_w (the authors' local=False);
    # drawn last, so the cases drawn before it stay as they were
    fresh = scheme == "local" and bool(r.random() < 0.3)
    return {"id": seed, "seed": seed, "spec": spec.to_dict(), "scheme": scheme, "groups": groups,
            "hyper": hyper, "over": over, "reset_n": reset_n, "reset_w": reset_w, "ce": ce,
            "fresh": fresh, "steps": 3, "run_T": 3, "stream_T": 3}


def describe(case):
    spec = Spec(case["spec"])
    kinds = [k for k, _, _ in spec.decls]
    return (f"{case['scheme']}{'' if not case['groups'] else ' ' + str(case['groups'])}, "
            f"{kinds.count('state')} states, {kinds.count('weight')} weights, "
            f"{kinds.count('instant')} instants, flip {case['over'].get('flip', case['hyper']['flip'])}"
            f"{', reset_n' if case['reset_n'] else ''}{', reset_w' if case['reset_w'] else ''}"
            f"{', fresh p_w' if case.get('fresh') else ''}")


def expected_refusal(case):
    """The weights of which the library must refuse one (partial: two groups use it), or None."""
    if case["scheme"] != "partial":
        return None
    return Ownership(Spec(case["spec"]), case["groups"]).shared or None


def effective_hyper(case):
    spec = Spec(case["spec"])
    h = {"theta_neurons": None, **case["hyper"], **spec.params}
    h.update(case["over"])
    if h["theta_neurons"] is None:
        h["theta_neurons"] = h["theta"]
    return h


def _value_rng(seed, name):
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def initial_values(case):
    """Random weights, states, costates (declared shapes) and data streams, by name, so
    that dropping a declaration keeps the other values."""
    spec, seed = Spec(case["spec"]), case["seed"]
    shapes = spec.shapes
    vals = {"w": {}, "pw": {}, "x": {}, "px": {}}
    for w in spec.of_kind("weight"):
        s = shapes[w]
        fan = s[1] if s[1] > 1 else s[0]
        vals["w"][w] = _value_rng(seed, w).normal(size=s) * 0.8 / math.sqrt(fan)
        vals["pw"][w] = _value_rng(seed, "p_" + w).normal(size=s) * 0.5
    for x in spec.of_kind("state"):
        vals["x"][x] = _value_rng(seed, x).normal(size=shapes[x]) * 0.5
        vals["px"][x] = _value_rng(seed, "p_" + x).normal(size=shapes[x]) * 0.5
    T = case["steps"] + case["run_T"] + case["stream_T"]
    U = _value_rng(seed, "u").normal(size=(T,) + shapes["u"][:1])
    Y = _value_rng(seed, "y").normal(size=(T,) + shapes["y"][:1])
    if case.get("ce"):
        Y = np.exp(Y) / np.exp(Y).sum(axis=1, keepdims=True)
    return vals, U, Y


# ------------------------------------------------------------------------------------
# the reference step (torch float64, autograd of H)

class TorchModel:
    def __init__(self, spec, hyper):
        self.spec = spec
        self.h = hyper
        self.instants = spec.instants
        self.dyn = dict(spec.dyn)
        self.states = spec.of_kind("state")
        self.terms = split_terms(spec.loss, spec.shapes)

    def _env(self, x, w, u, y):
        import torch
        env = {**x, **w, "u": u, "y": y}
        for k in self.spec.params:
            env[k] = torch.tensor(float(self.h[k]), dtype=torch.float64)
        return env

    def parts(self, x, w, u, y, states=None, terms=None):
        """(f of the given states, the given loss terms) at these values."""
        env, memo = self._env(x, w, u, y), {}
        d = self.h["delta"]
        f = {s: to_torch(self.dyn[s], env, self.instants, memo, d)
             for s in (self.states if states is None else states)}
        ts = [to_torch(self.terms[i], env, self.instants, memo, d)
              for i in (range(len(self.terms)) if terms is None else terms)]
        return f, ts

    def loss(self, x, w, u, y):
        env = self._env(x, w, u, y)
        return to_torch(self.spec.loss, env, self.instants, {}, self.h["delta"])

    def hamiltonian(self, x, p, w, u, y, states=None, terms=None):
        import torch
        f, ts = self.parts(x, w, u, y, states, terms)
        h = torch.zeros((), dtype=torch.float64)
        for t in ts:
            h = h + self.h["gamma"] * t
        for s, fs in f.items():
            h = h + (p[s] * fs).sum()
        return h

    def grad(self, wrt, x, p, w, u, y, states=None, terms=None):
        """dH/d(names in wrt) at (x, p, w)."""
        import torch
        x = {k: v.detach().clone().requires_grad_(k in wrt) for k, v in x.items()}
        w = {k: v.detach().clone().requires_grad_(k in wrt) for k, v in w.items()}
        h = self.hamiltonian(x, p, w, u, y, states, terms)
        leaves = [x[k] if k in x else w[k] for k in wrt]
        if not h.requires_grad:
            return {k: torch.zeros_like(v) for k, v in zip(wrt, leaves)}
        gs = torch.autograd.grad(h, leaves, allow_unused=True)
        return {k: torch.zeros_like(v) if g is None else g for k, v, g in zip(wrt, leaves, gs)}

    def f(self, x, w, u, y, states):
        return self.parts(x, w, u, y, states, [])[0]


def _sweep_states(model, order, x, w, u, y, d):
    """The states one Euler step ahead, component by component in `order`: a component
    reads the new values of the components before it (Gauss-Seidel between them)."""
    xs = dict(x)
    for comp in order:
        fc = model.f(xs, w, u, y, comp)
        for k in comp:
            xs[k] = x[k] + d * fc[k]
    return xs


def reference_step(case, model, vals, u, y):
    """One HL step as SEMANTICS prescribes; returns (loss at step k, new values)."""
    import torch
    h = model.h
    s, d, beta = h["flip"], h["delta"], h["beta"]
    ax, aw = 1 + s * h["theta_neurons"], 1 + s * h["theta"]
    x, p, w, pw = vals["x"], vals["px"], vals["w"], vals["pw"]
    states, weights = list(x), list(w)
    loss = float(model.loss(x, w, u, y))
    spec = model.spec
    deps = state_deps(spec)
    scheme = case["scheme"]
    if scheme == "local":
        fx = model.f(x, w, u, y, states)
        g = model.grad(states + weights, x, p, w, u, y)
        new = {"x": {k: x[k] + d * fx[k] for k in states},
               "px": {k: ax * p[k] - d * s * g[k] for k in states},
               "pw": {k: aw * pw[k] - d * s * g[k] for k in weights}}
        moves = new["pw"] if case.get("fresh") else pw     # fresh: the weights take the new p_w
        new["w"] = {k: w[k] - d * beta * moves[k] for k in weights}
    elif scheme == "nonlocal":
        order = scc_order(states, deps)
        xs = _sweep_states(model, order, x, w, u, y, d)
        ps = dict(p)
        for comp in reversed(order):
            g = model.grad(comp, xs, ps, w, u, y)
            for k in comp:
                ps[k] = ax * p[k] - d * s * g[k]
        g = model.grad(weights, xs, ps, w, u, y)
        pw_new = {k: aw * pw[k] - d * s * g[k] for k in weights}
        new = {"x": xs, "px": ps, "pw": pw_new, "w": {k: w[k] - d * beta * pw_new[k] for k in weights}}
    else:
        groups = case["groups"]
        own = Ownership(spec, groups)
        terms_of = {gi: [i for i, o in enumerate(own.owner) if o == gi] for gi in range(len(groups))}
        new = {"x": {}, "px": {}, "pw": {}, "w": {}}
        for gi, grp in enumerate(groups):
            grp = [z for z in states if z in grp]
            order = scc_order(grp, deps)
            xs = _sweep_states(model, order, x, w, u, y, d)
            cross = {k: torch.zeros_like(x[k]) for k in grp}
            for vi, vgrp in enumerate(groups):
                if vi != gi:
                    gv = model.grad(grp, x, p, w, u, y, states=vgrp, terms=terms_of[vi])
                    for k in grp:
                        cross[k] = cross[k] + gv[k]
            ps = dict(p)
            for comp in reversed(order):
                g = model.grad(comp, xs, ps, w, u, y, states=grp, terms=terms_of[gi])
                for k in comp:
                    ps[k] = ax * p[k] - d * s * (g[k] + cross[k])
            mine = own.weights_of[gi]
            g = model.grad(mine, xs, ps, w, u, y, states=grp, terms=terms_of[gi]) if mine else {}
            for k in grp:
                new["x"][k], new["px"][k] = xs[k], ps[k]
            for k in mine:
                new["pw"][k] = aw * pw[k] - d * s * g[k]
                new["w"][k] = w[k] - d * beta * new["pw"][k]
        for k in weights:                         # a weight no group uses: only decays
            if k not in new["w"]:
                new["pw"][k] = aw * pw[k]
                new["w"][k] = w[k] - d * beta * new["pw"][k]
    if case["reset_n"]:
        new["px"] = {k: torch.zeros_like(v) for k, v in new["px"].items()}
    if case["reset_w"]:
        new["pw"] = {k: torch.zeros_like(v) for k, v in new["pw"].items()}
    new = {key: {k: v.detach() for k, v in part.items()} for key, part in new.items()}
    return loss, new


# ------------------------------------------------------------------------------------
# running a case against the reference

class CaseFailure(AssertionError):
    def __init__(self, category, message, phase=None):
        super().__init__(f"[{category}] {message}")
        self.category = category
        self.message = message
        self.phase = phase


ATOL = 1e-10


def _close(got, want, slack=0.0):
    scale = 1.0 + float(np.max(np.abs(want))) if np.size(want) else 1.0
    err = float(np.max(np.abs(got - want))) if np.size(want) else 0.0
    return err <= ATOL * scale + slack, err


# The reference is run twice, the second time from values moved by PERTURB (relative):
# how far the two end up apart measures how much this network amplifies a rounding
# difference; SLACK turns that into the spread of errors of ~100 ulp at the start.
PERTURB = 1e-12
SLACK = 1e-14 / PERTURB


def _perturbed(ref, seed=0):
    import torch
    rng = np.random.default_rng(seed)
    return {key: {name: v * (1 + PERTURB * torch.tensor(rng.choice([-1.0, 1.0], size=tuple(v.shape))))
                  for name, v in part.items()} for key, part in ref.items()}


def _spread(ref, twin):
    if twin is None:
        return {}
    return {(key, name): SLACK * float((v - twin[key][name]).abs().max()) if v.numel() else 0.0
            for key, part in ref.items() for name, v in part.items()}


def _compare(learner, spec_shapes, ref, loss_got, loss_want, where, twin=None, loss_twin=None):
    big = max([abs(loss_want)] + [float(v.abs().max()) for part in ref.values() for v in part.values()])
    if not math.isfinite(big) or big > 1e8:
        raise CaseFailure("unstable reference", f"{where}: the reference reaches {big:.3g}")
    spread = _spread(ref, twin)
    slack = SLACK * abs(loss_want - loss_twin) if loss_twin is not None else 0.0
    ok, err = _close(np.array(loss_got), np.array(loss_want), slack)
    if not ok:
        raise CaseFailure("wrong loss", f"{where}: loss {loss_got!r} != reference {loss_want!r}")
    for key, live, label in (("x", learner.states, "state"), ("px", learner.costates, "state costate"),
                             ("w", learner.weights, "weight"), ("pw", learner.costates, "weight costate")):
        for name, want in ref[key].items():
            got = np.asarray(live[name]).reshape(spec_shapes[name])
            want = want.numpy()
            ok, err = _close(got, want, spread.get((key, name), 0.0))
            if not ok or not np.all(np.isfinite(got)):
                raise CaseFailure(f"wrong {label}",
                                  f"{where}: {label} {name!r} off by {err:.3g} "
                                  f"(got {got.ravel()[:4]}, want {want.ravel()[:4]})")


def _resync(learner, spec_shapes, ref):
    """The reference's values replaced by the learner's (same names and shapes)."""
    import torch
    live = {"x": learner.states, "px": learner.costates, "w": learner.weights,
            "pw": learner.costates}
    return {key: {name: torch.tensor(np.asarray(live[key][name]).reshape(spec_shapes[name]),
                                     dtype=want.dtype)
                  for name, want in part.items()} for key, part in ref.items()}


def load_module(case, workdir, tag=""):
    """hs.derive + hs.load of the case's network; raises what hamsym raises."""
    import hamsym as hs
    spec = Spec(case["spec"])
    net = build_network(spec)
    system = hs.derive(net, **case["hyper"])
    options = dict(scheme=case["scheme"], reset_neuron_costate=case["reset_n"],
                   reset_weight_costate=case["reset_w"])
    if case.get("fresh"):
        options["fresh_weight_costate"] = True
    if case["groups"] is not None:
        options["groups"] = case["groups"]
    path = Path(workdir) / f"{spec.name}{tag}.py"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hs.FrozenWeightsWarning)
        return hs.load(system, path, **options)


def check_case(case, workdir, tag=""):
    """Run a case against the reference. Returns 'ok' or 'refused'; raises CaseFailure."""
    import torch
    import hamsym as hs
    spec = Spec(case["spec"])
    refusal = expected_refusal(case)
    try:
        mod = load_module(case, workdir, tag)
    except hs.DeclarationError as err:
        if refusal is not None and any(f"'{w}'" in str(err) or f"`{w}`" in str(err) for w in refusal):
            return "refused"
        raise CaseFailure("declaration error", f"{type(err).__name__}: {err}") from err
    except Exception as err:
        raise CaseFailure(f"derive/load {type(err).__name__}", str(err).splitlines()[0][:300]) from err
    if refusal is not None:
        raise CaseFailure("missing refusal", f"weight(s) {refusal} used by two groups, "
                                             "and the library accepted it")
    shapes = spec.shapes
    vals, U, Y = initial_values(case)
    hyper = effective_hyper(case)
    model = TorchModel(spec, hyper)
    storage = {**mod.WEIGHTS, **mod.STATES}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hs.FrozenWeightsWarning)
        warnings.filterwarnings("ignore", "the weights are frozen")
        try:
            learner = mod.Integrator(seed=0, weights={k: v.reshape(storage[k]) for k, v in vals["w"].items()},
                                     states={k: v.reshape(storage[k]) for k, v in vals["x"].items()},
                                     **case["over"])
            for k, v in {**vals["pw"], **vals["px"]}.items():
                learner.costates[k][...] = v.reshape(storage[k])
        except Exception as err:
            raise CaseFailure(f"Integrator {type(err).__name__}", str(err).splitlines()[0][:300]) from err
        tv = {key: {k: torch.tensor(v) for k, v in part.items()} for key, part in vals.items()}
        t = 0

        def reference(t, tv):
            u, y = torch.tensor(U[t]).reshape(shapes["u"]), torch.tensor(Y[t]).reshape(shapes["y"])
            return reference_step(case, model, tv, u, y)

        for i in range(case["steps"]):
            loss_want, tv = reference(t, tv)
            try:
                loss_got = learner.step(U[t], Y[t])
            except Exception as err:
                raise CaseFailure(f"step {_exc_name(err)}", _exc_text(err), "step") from err
            _compare(learner, shapes, tv, loss_got, loss_want, f"step {i + 1}")
            # each step is checked from where the learner is: with flip = +1 the costates
            # grow every step, and so would the rounding difference of two exact programs
            tv = _resync(learner, shapes, tv)
            t += 1
        twin = _perturbed(tv)
        for phase, T in (("run", case["run_T"]), ("run_stream", case["stream_T"])):
            if not T:
                continue
            wants, twins, seen = [], [], []
            for i in range(T):
                seen.append(tv)                     # what step i reads
                loss_want, tv = reference(t + i, tv)
                loss_twin, twin = reference(t + i, twin)
                wants.append(loss_want)
                twins.append(loss_twin)
            try:
                if phase == "run" and case.get("record"):
                    keys = ["loss", *learner.states, *learner.weights]
                    got, rec = learner.run(U[t:t + T], Y[t:t + T], record=keys)
                    _compare_record(rec, shapes, seen, wants, twins)
                elif phase == "run":
                    got = np.asarray(learner.run(U[t:t + T], Y[t:t + T]))
                else:
                    chunks = []
                    n = learner.run_stream(zip(U[t:t + T], Y[t:t + T]), chunk=2,
                                           on_chunk=lambda ls: chunks.append(np.array(ls)))
                    got = np.concatenate(chunks)[:T] if chunks else np.zeros(0)
                    if n != T:
                        raise CaseFailure("run_stream count", f"run_stream returned {n}, not {T}")
            except CaseFailure:
                raise
            except Exception as err:
                raise CaseFailure(f"{phase} {_exc_name(err)}", _exc_text(err), phase) from err
            _compare(learner, shapes, tv, got[-1] if len(got) else np.nan, wants[-1],
                     f"{phase} ({T} steps)", twin, twins[-1])
            for i in range(T):
                if i < len(got) and not _close(np.array(got[i]), np.array(wants[i]),
                                               SLACK * abs(wants[i] - twins[i]))[0]:
                    raise CaseFailure("wrong loss", f"{phase}: loss of step {i + 1} {got[i]!r} != {wants[i]!r}")
            t += T
    return "ok"


# ------------------------------------------------------------------------------------
# float32: the same networks learning in single precision

EPS32 = float(np.finfo(np.float32).eps)       # 2^-23
# A float32 value may carry F32_ROUNDINGS roundings' worth of error per step checked, each
# amplified as the network amplifies a relative EPS32 change of what it starts from.
F32_ROUNDINGS = 16
F32_TWINS = 2


def _as_float32(vals):
    return {key: {k: np.asarray(v, np.float32) for k, v in part.items()} for key, part in vals.items()}


def _twin_start(tv, hyper, seed):
    """tv and the hyperparameters and params, each value moved by EPS32 relative, signs at random."""
    import torch
    rng = np.random.default_rng([seed, 32])
    twin = {key: {k: v * (1 + EPS32 * torch.tensor(rng.choice([-1.0, 1.0], size=tuple(v.shape))))
                  for k, v in part.items()} for key, part in tv.items()}
    moved = {k: (v if k == "flip" or v is None else v * (1 + EPS32 * rng.choice([-1.0, 1.0])))
             for k, v in hyper.items()}
    return twin, moved


def _f32_tolerance(want, twins):
    """F32_ROUNDINGS * (EPS32 * (1 + scale of want) + the largest distance of a twin from want)."""
    want = np.asarray(want, np.float64)
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    spread = max((float(np.max(np.abs(np.asarray(t, np.float64) - want))) if want.size else 0.0)
                 for t in twins) if twins else 0.0
    return F32_ROUNDINGS * (EPS32 * (1.0 + scale) + spread), scale, spread


def check_case_float32(case, workdir, tag="", stats=None):
    """The case's network learning in float32 (Integrator(dtype="float32"): run(), then
    run_stream()) against the float64 reference started from the same float32 values and
    fed the same float32 samples. Each loss and, at the end of each phase, each array must
    be within _f32_tolerance of the reference: float32's epsilon times the network's own
    amplification, measured by F32_TWINS more reference runs from starts moved by EPS32.
    Returns 'ok' or 'refused' (the float64 check tests refusals); raises CaseFailure.
    stats, a list, gets (phase, what, error, tolerance, scale, spread) of every comparison."""
    import hamsym as hs
    if expected_refusal(case) is not None:
        return "refused"
    spec = Spec(case["spec"])
    try:
        mod = load_module(case, workdir, tag)
    except Exception as err:
        raise CaseFailure(f"derive/load {type(err).__name__}", str(err).splitlines()[0][:300]) from err
    vals, U, Y = initial_values(case)
    vals, U, Y = _as_float32(vals), U.astype(np.float32), Y.astype(np.float32)
    storage = {**mod.WEIGHTS, **mod.STATES}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hs.FrozenWeightsWarning)
        warnings.filterwarnings("ignore", "the weights are frozen")
        try:
            learner = mod.Integrator(seed=0, dtype="float32",
                                     weights={k: v.reshape(storage[k]) for k, v in vals["w"].items()},
                                     states={k: v.reshape(storage[k]) for k, v in vals["x"].items()},
                                     **case["over"])
            for k, v in {**vals["pw"], **vals["px"]}.items():
                learner.costates[k][...] = v.reshape(storage[k])
        except Exception as err:
            raise CaseFailure(f"Integrator {type(err).__name__}", str(err).splitlines()[0][:300]) from err
        return _run_float32(case, learner, spec, vals, U, Y, stats)


def _run_float32(case, learner, spec, vals, U, Y, stats):
    import torch
    shapes, hyper = spec.shapes, effective_hyper(case)
    if any(a.dtype != np.float32 for part in (learner.weights, learner.states, learner.costates)
           for a in part.values()):
        raise CaseFailure("float32 dtype", "a float32 learner holds arrays of another dtype")
    tv = {key: {k: torch.tensor(v, dtype=torch.float64) for k, v in part.items()}
          for key, part in vals.items()}
    runs = [(TorchModel(spec, hyper), tv)]
    for i in range(F32_TWINS):
        twin, moved = _twin_start(tv, hyper, case["seed"] + i)
        runs.append((TorchModel(spec, moved), twin))

    def compare(phase, what, got, want, twins):
        tol, scale, spread = _f32_tolerance(want, twins)
        got = np.asarray(got, np.float64)
        err = float(np.max(np.abs(got - np.asarray(want, np.float64)))) if got.size else 0.0
        if stats is not None:
            stats.append((phase, what, err, tol, scale, spread))
        if not err <= tol or not np.all(np.isfinite(got)):
            raise CaseFailure(f"float32 {what.split()[0]}",
                              f"{phase}: {what} off by {err:.3g} > tolerance {tol:.3g} (scale "
                              f"{scale:.3g}, twins' spread {spread:.3g}; got {got.ravel()[:3]}, "
                              f"want {np.asarray(want).ravel()[:3]})")

    t = 0
    for phase, T in (("run", case["steps"] + case["run_T"]), ("run_stream", case["stream_T"])):
        if not T:
            continue
        wants = []
        for i in range(T):
            u = torch.tensor(U[t + i], dtype=torch.float64).reshape(shapes["u"])
            y = torch.tensor(Y[t + i], dtype=torch.float64).reshape(shapes["y"])
            stepped = [reference_step(case, model, values, u, y) for model, values in runs]
            wants.append([loss for loss, _ in stepped])
            runs = [(model, new) for (model, _), (_, new) in zip(runs, stepped)]
        try:
            if phase == "run":
                got = np.asarray(learner.run(U[t:t + T], Y[t:t + T]))
            else:
                chunks = []
                learner.run_stream(zip(U[t:t + T], Y[t:t + T]), chunk=2,
                                   on_chunk=lambda ls: chunks.append(np.array(ls)))
                got = np.concatenate(chunks)[:T]
        except Exception as err:
            raise CaseFailure(f"float32 {phase} {_exc_name(err)}", _exc_text(err), phase) from err
        for i in range(T):
            compare(phase, f"loss of step {t + i + 1}", got[i], wants[i][0], wants[i][1:])
        ref = runs[0][1]
        for key, live, label in (("x", learner.states, "state"), ("px", learner.costates, "state costate"),
                                 ("w", learner.weights, "weight"), ("pw", learner.costates, "weight costate")):
            for name, want in ref[key].items():
                compare(phase, f"{label} {name!r}", np.asarray(live[name]).reshape(shapes[name]),
                        want.numpy(), [values[key][name].numpy() for _, values in runs[1:]])
        t += T
    return "ok"


def _compare_record(rec, spec_shapes, seen, wants, twins):
    """run(record=...) rows against the reference's values before each step."""
    for i, ref in enumerate(seen):
        if not _close(rec["loss"][i], wants[i], SLACK * abs(wants[i] - twins[i]))[0]:
            raise CaseFailure("wrong record", f"recorded loss {i}: {rec['loss'][i]!r} != {wants[i]!r}")
        for key in ("x", "w"):
            for name, want in ref[key].items():
                got = rec[name][i].reshape(spec_shapes[name])
                if not np.array_equal(got, want.numpy()) and not _close(got, want.numpy())[0]:
                    raise CaseFailure("wrong record", f"recorded {name!r} at row {i}")


def _exc_name(err):
    name = type(err).__name__
    return "Numba TypingError" if name == "TypingError" else name


def _exc_text(err):
    """The informative line of an error (for Numba's, the one past its banner)."""
    import re
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(err)).splitlines() if ln.strip()]
    if not lines:
        return repr(err)
    if lines[0].startswith("Failed in") and len(lines) > 1:
        return " / ".join(lines[1:3])[:300]
    return lines[0][:300]


# ------------------------------------------------------------------------------------
# a standalone reproducer

def reproducer(case):
    """Python source that declares the case's network, loads it, sets its values and
    compares one or more steps with reference values computed here (embedded)."""
    import torch
    spec = Spec(case["spec"])
    vals, U, Y = initial_values(case)
    hyper = effective_hyper(case)
    model = TorchModel(spec, hyper)
    shapes = spec.shapes
    steps = max(1, case["steps"])
    tv = {key: {k: torch.tensor(v) for k, v in part.items()} for key, part in vals.items()}
    wants = []
    for t in range(steps):
        u, y = torch.tensor(U[t]).reshape(shapes["u"]), torch.tensor(Y[t]).reshape(shapes["y"])
        loss, tv = reference_step(case, model, tv, u, y)
        wants.append(loss)
    np.set_printoptions(precision=17, threshold=10000)

    def arr(a):
        return "np.array(" + json.dumps(np.asarray(a).tolist()) + ")"
    opts = [f"scheme={case['scheme']!r}"]
    if case["groups"] is not None:
        opts.append(f"groups={case['groups']!r}")
    if case["reset_n"]:
        opts.append("reset_neuron_costate=True")
    if case["reset_w"]:
        opts.append("reset_weight_costate=True")
    if case.get("fresh"):
        opts.append("fresh_weight_costate=True")
    lines = ["import numpy as np, sympy, tempfile, os", "import hamsym as hs", "",
             network_source(spec), "",
             f"system = hs.derive(net, {', '.join(f'{k}={v!r}' for k, v in case['hyper'].items())})",
             f"mod = hs.load(system, os.path.join(tempfile.mkdtemp(), {spec.name + '.py'!r}), {', '.join(opts)})",
             "S = {**mod.WEIGHTS, **mod.STATES}"]
    over = "".join(f", {k}={v!r}" for k, v in case["over"].items())
    lines.append("L = mod.Integrator(weights={" + ", ".join(
        f"{k!r}: {arr(v)}.reshape(S[{k!r}])" for k, v in vals["w"].items()) + "}, states={" + ", ".join(
        f"{k!r}: {arr(v)}.reshape(S[{k!r}])" for k, v in vals["x"].items()) + "}" + over + ")")
    for k, v in {**vals["pw"], **vals["px"]}.items():
        lines.append(f"L.costates[{k!r}][...] = {arr(v)}.reshape(S[{k!r}])")
    lines.append("worst = 0.0")
    for t in range(steps):
        lines.append(f"loss = L.step({arr(U[t])}, {arr(Y[t])})")
        lines.append(f"worst = max(worst, abs(loss - {wants[t]!r}))")
    lines.append("want = {")
    for key, live in (("w", "weights"), ("x", "states"), ("pw", "costates"), ("px", "costates")):
        for k, v in tv[key].items():
            lines.append(f"    ({live!r}, {k!r}): {arr(v.numpy())},")
    lines.append("}")
    lines += ["for (where, name), value in want.items():",
              "    err = np.abs(getattr(L, where)[name].ravel() - value.ravel()).max()",
              "    worst = max(worst, err)",
              "    if err > 1e-10 * (1 + np.abs(value).max()):",
              "        print(f'{where}[{name!r}] off by {err:.3g}')",
              f"print('max difference after {steps} step(s):', worst)"]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------
# shrinking: simpler variants of a case (the caller keeps those that still fail alike)

def _prune(spec_d):
    """Drop declarations nothing reads (weights, params, instants), keep states."""
    spec = Spec(spec_d)
    while True:
        used = names_in(spec.loss) | {x for x, _ in spec.dyn}
        for _, f in spec.dyn:
            used |= names_in(f)
        for k, n, p in spec.decls:
            if k == "instant":
                used |= names_in(p)
        drop = [n for k, n, _ in spec.decls if k in ("weight", "param", "instant") and n not in used]
        if not drop:
            return spec.to_dict()
        spec.decls = [d for d in spec.decls if d[1] not in drop]


def _valid(spec_d):
    try:
        spec = Spec(spec_d)
        shapes = spec.shapes

        def check(e):
            for node in walk(e):
                op = node[0]
                if op in ("+", "-"):
                    if shape_of(node[1], shapes) != shape_of(node[2], shapes):
                        return False
                elif op == "@":
                    a, b = shape_of(node[1], shapes), shape_of(node[2], shapes)
                    if a == () or b == () or a[1] != b[0]:
                        return False
                elif op == "*":
                    a, b = shape_of(node[1], shapes), shape_of(node[2], shapes)
                    if a != () and b != () and a != b:
                        return False
                elif op in ("dot", "ce"):
                    if shape_of(node[1], shapes) != shape_of(node[2], shapes) or \
                            shape_of(node[1], shapes) == ():
                        return False
                elif op in ("sumsq", "total", "act", "T"):
                    if shape_of(node[-1], shapes) == ():
                        return False
                elif op == "softmax":
                    if shape_of(node[1], shapes) == () or shape_of(node[1], shapes)[1] != 1:
                        return False
                elif op == "/":
                    if shape_of(node[2], shapes) != ():
                        return False
            return True
        for k, n, p in spec.decls:
            if k == "instant" and (not check(p) or shape_of(p, shapes) == ()):
                return False
        for x, f in spec.dyn:
            if not check(f) or shape_of(f, shapes) != shapes[x]:
                return False
        if not check(spec.loss) or shape_of(spec.loss, shapes) != ():
            return False
        return bool(spec.of_kind("weight") or spec.of_kind("state"))
    except (KeyError, IndexError, TypeError):
        return False


def _subtree_replacements(e, shapes):
    """Simpler trees of the same shape in place of e (one edit at a time, anywhere)."""
    out = []
    s = shape_of(e, shapes)
    op = e[0]
    if op == "act":
        if e[1] != "identity":
            out.append(e[2])
        if e[1] != "tanh":
            out.append(("act", "tanh", e[2]))
    elif op not in ("v", "c", "delta"):
        for k in children(e):
            if shape_of(k, shapes) == s:
                out.append(k)
    if op == "v" and shapes[e[1]] != () and "u" in shapes and shapes["u"] == s and e[1] != "u":
        out.append(V("u"))
    for i, k in enumerate(children(e)):
        for alt in _subtree_replacements(k, shapes):
            kids = children(e)
            kids[i] = alt
            out.append(rebuild(e, kids))
    return out


def shrink_candidates(case):
    """Simpler cases: first the options, then the network (smallest first); every one
    is a valid spec."""
    out = []

    def variant(**changes):
        c = copy.deepcopy(case)
        c.update(changes)
        return c
    spec = Spec(case["spec"])
    # options first: they are cheap to drop
    if case["steps"] + case["run_T"] + case["stream_T"] > 1:
        if case["run_T"] or case["stream_T"]:
            out.append(variant(run_T=0, stream_T=0))
        if case["steps"] > 1:
            out.append(variant(steps=1))
    if case["over"]:
        out.append(variant(over={}))
    if case["reset_n"]:
        out.append(variant(reset_n=False))
    if case["reset_w"]:
        out.append(variant(reset_w=False))
    if case.get("fresh"):
        out.append(variant(fresh=False))
    if "theta_neurons" in case["hyper"]:
        out.append(variant(hyper={k: v for k, v in case["hyper"].items() if k != "theta_neurons"}))
    if case["hyper"].get("flip") == 1.0 and "flip" not in case["over"]:
        out.append(variant(hyper={**case["hyper"], "flip": -1.0}))
    if case["groups"] and len(case["groups"]) > 1:
        for i in range(len(case["groups"]) - 1):
            g = case["groups"]
            out.append(variant(groups=g[:i] + [g[i] + g[i + 1]] + g[i + 2:]))
    specs = []
    d = spec.to_dict()
    # loss terms
    terms = split_terms(spec.loss, spec.shapes)
    if len(terms) > 1:
        for i in range(len(terms)):
            rest = [t for j, t in enumerate(terms) if j != i]
            loss = rest[0]
            for t in rest[1:]:
                loss = ("+", loss, t)
            specs.append({**d, "loss": loss})
    # a state becomes a weight of the same name and shape (its readers stay valid)
    for x in spec.of_kind("state"):
        specs.append({**d, "decls": [[("weight" if n == x else k), n, p] for k, n, p in d["decls"]],
                      "dyn": [dd for dd in d["dyn"] if dd[0] != x]})
    # drop a state nothing else reads
    for x in spec.of_kind("state"):
        readers = [f for z, f in spec.dyn if z != x] + [spec.loss] + list(spec.instants.values())
        if not any(x in names_in(e) for e in readers):
            specs.append({**d, "decls": [dd for dd in d["decls"] if dd[1] != x],
                          "dyn": [dd for dd in d["dyn"] if dd[0] != x]})
    # widths: replace every dimension n by 1 (or by n - 1)
    dims = sorted({s for k, n, p in spec.decls if k not in ("param", "instant") for s in p if s > 1},
                  reverse=True)
    for n in dims:
        for m in (1, n - 1) if n > 2 else (1,):
            specs.append({**d, "decls": [[k, nm, [m if s == n else s for s in p]
                                          if k not in ("param", "instant") else p]
                                         for k, nm, p in d["decls"]]})
    # inline an instant
    for h, e in spec.instants.items():
        def sub(t, h=h, e=e):
            if t[0] == "v" and t[1] == h:
                return e
            return rebuild(t, [sub(k) for k in children(t)])
        specs.append({**d, "decls": [[k, n, sub(p) if k == "instant" else p]
                                     for k, n, p in d["decls"] if n != h],
                      "dyn": [[x, sub(f)] for x, f in d["dyn"]], "loss": sub(d["loss"])})
    # subtrees
    shapes = spec.shapes
    for i, (x, f) in enumerate(spec.dyn):
        for alt in _subtree_replacements(f, shapes):
            dyn = [list(dd) for dd in d["dyn"]]
            dyn[i][1] = alt
            specs.append({**d, "dyn": dyn})
    for alt in _subtree_replacements(spec.loss, shapes):
        specs.append({**d, "loss": alt})
    for j, (k, n, p) in enumerate(spec.decls):
        if k == "instant":
            for alt in _subtree_replacements(p, shapes):
                decls = [list(dd) for dd in d["decls"]]
                decls[j][2] = alt
                specs.append({**d, "decls": decls})
    seen, structural = set(), []
    for s in specs:
        s = _prune(json.loads(json.dumps(s)))
        key = json.dumps(s, sort_keys=True)
        if key in seen or not _valid(s):
            continue
        seen.add(key)
        c = variant(spec=s)
        states = Spec(s).of_kind("state")
        if c["groups"] is not None:
            c["groups"] = [[x for x in g if x in states] for g in c["groups"]]
            c["groups"] = [g for g in c["groups"] if g]
            if not states:
                continue
        structural.append(c)
    return out + sorted(structural, key=case_size)


def case_size(case):
    spec = Spec(case["spec"])
    nodes = sum(len(list(walk(e))) for e in [spec.loss] + [f for _, f in spec.dyn] +
                list(spec.instants.values()))
    cells = sum(int(np.prod(p)) for k, _, p in spec.decls if k not in ("param", "instant"))
    return nodes + cells + len(spec.decls) + case["steps"] + case["run_T"] + case["stream_T"] + \
        len(case["over"]) + case["reset_n"] + case["reset_w"] + case.get("fresh", False) + \
        len(case["groups"] or [])
