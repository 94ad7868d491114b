"""One step of a generated module against PyTorch autograd, for a spec file.

The reference does not use hamsym's derivation: the spec's expression strings are
rebuilt a second time with the same whitelist, but over PyTorch float64 tensors, and
Hamilton's equations are stepped with autograd gradients of
H = gamma * loss + sum_x <p_x, f_x> at the values each scheme prescribes
(local: Jacobi, all at step k; nonlocal: Gauss-Seidel over the strongly connected
components of the state graph). PyTorch is imported only when a check runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .spec import SpecError, _Builder, _functions, _ScalarBuilder

CHECKED_SCHEMES = ("local", "nonlocal", "partial")


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("the check compares against PyTorch autograd, which is not installed: "
                          "pip install 'torch<2.14' (or the test extra: pip install "
                          "'hamsym[test]')") from None
    return torch


class _Reference:
    """The spec's network over torch tensors: instants, dynamics f and the loss."""

    def __init__(self, spec, hyper):
        torch = self.torch = _torch()
        self.spec, self.hyper = spec, hyper
        net, doc = spec.network, spec.doc
        functions = {name: (fn, arity) for name, (fn, arity) in _torch_functions(torch).items()}
        scalar = {"exp": torch.exp, "log": torch.log, "tanh": torch.tanh, "sin": torch.sin,
                  "cos": torch.cos, "sqrt": torch.sqrt, "atan": torch.atan, "abs": torch.abs,
                  "sinh": torch.sinh, "cosh": torch.cosh, "erf": torch.erf}
        for name, text in doc.get("activations", {}).items():
            functions[name] = (self._activation(text, scalar), 1)
        self.functions = functions
        self.states = [v.name for v in net.of_kind("state")]
        self.order = _components(net)

    def _activation(self, text, scalar):
        import math

        def act(z):
            names = {"t": z, "pi": math.pi, "e": math.e}
            return _ScalarBuilder("activation", text, names,
                                  {k: (f, 1) for k, f in scalar.items()}).build()
        return act

    def evaluate(self, x, w, data, terms=None):
        """(f: {state: tensor}, loss tensor) at states x, weights w, data (inputs, targets);
        with terms (strings), the sum of those loss terms instead of the loss."""
        doc = self.spec.doc
        names = {**{k: float(v) for k, v in self.hyper.items()}, **self.spec.network.defaults,
                 **data, **x, **w}

        def build(text):
            return _Builder("reference", text, names, self.functions).build()
        for name, text in doc.get("instants", {}).items():
            names[name] = build(text)
        f = {name: build(doc["dynamics"][name]) for name in self.states}
        if terms is None:
            return f, build(doc["loss"])
        return f, sum((build(t) for t in terms), self.torch.zeros(()))

    def hamiltonian(self, x, p, w, data, group=None):
        """H, or with group = (states, loss terms) that group's part H_G."""
        if group is None:
            f, loss = self.evaluate(x, w, data)
            return self.hyper["gamma"] * loss + sum((p[k] * f[k]).sum() for k in f), f, loss
        states, terms = group
        f, loss = self.evaluate(x, w, data, terms)
        return self.hyper["gamma"] * loss + sum((p[k] * f[k]).sum() for k in states), f, loss

    def grad(self, fn, at):
        torch = self.torch
        at = {k: v.detach().clone().requires_grad_(True) for k, v in at.items()}
        value = fn(at)
        if not at:
            return {}
        grads = torch.autograd.grad(value, list(at.values()), allow_unused=True)
        return {k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(at.items(), grads)}

    def step(self, scheme, x, p, w, pw, data, fresh=False):
        h = self.hyper
        s, d = h["flip"], h["delta"]
        ax, aw = 1 + s * h["theta_neurons"], 1 + s * h["theta"]
        H = lambda xx, pp, ww: self.hamiltonian(xx, pp, ww, data)[0]  # noqa: E731
        loss = self.evaluate(x, w, data)[1]
        if scheme == "local":
            gx = self.grad(lambda xx: H(xx, p, w), x)
            gw = self.grad(lambda ww: H(x, p, ww), w)
            f = self.evaluate(x, w, data)[0]
            pw_new = {k: aw * pw[k] - d * s * gw[k] for k in w}
            moves = pw_new if fresh else pw           # fresh_weight_costate: the new p_w
            return (loss, {k: x[k] + d * f[k] for k in x}, {k: ax * p[k] - d * s * gx[k] for k in x},
                    {k: w[k] - d * h["beta"] * moves[k] for k in w}, pw_new)
        if scheme == "partial":
            return self.partial_step(x, p, w, pw, data)
        xs = dict(x)
        for component in self.order:              # states: forward over the components
            f = self.evaluate(xs, w, data)[0]
            xs.update({k: x[k] + d * f[k] for k in component})
        ps = dict(p)
        for component in reversed(self.order):    # costates: backward, newest values
            g = self.grad(lambda xx: H(xx, ps, w), xs)
            ps.update({k: ax * p[k] - d * s * g[k] for k in component})
        gw = self.grad(lambda ww: H(xs, ps, ww), w)
        pw_new = {k: aw * pw[k] - d * s * gw[k] for k in w}
        return loss, xs, ps, {k: w[k] - d * h["beta"] * pw_new[k] for k in w}, pw_new


    def partial_step(self, x, p, w, pw, data):
        """Gauss-Seidel inside each group (its states' components), Jacobi between
        groups: a group's costates add the other groups' dH_V/dx at step k."""
        h = self.hyper
        s, d = h["flip"], h["delta"]
        ax, aw = 1 + s * h["theta_neurons"], 1 + s * h["theta"]
        groups = self.groups
        loss = self.evaluate(x, w, data)[1]
        x1, p1, w1, pw1 = {}, {}, {}, {}
        for g, (states, terms, weights) in enumerate(groups):
            part = (states, terms)
            H = lambda xx, pp, ww, part=part: self.hamiltonian(xx, pp, ww, data, part)[0]  # noqa
            others = [(st, te) for k, (st, te, _) in enumerate(groups) if k != g]
            order = [[k for k in comp if k in states] for comp in self.order]
            order = [c for c in order if c]
            xs = dict(x)
            for comp in order:
                f = self.evaluate(xs, w, data)[0]
                xs.update({k: x[k] + d * f[k] for k in comp})
            messages = [self.grad(lambda xx, o=o: self.hamiltonian(xx, p, w, data, o)[0], x)
                        for o in others]
            ps = dict(p)
            for comp in reversed(order):
                own = self.grad(lambda xx: H(xx, ps, w), xs)
                ps.update({k: ax * p[k] - d * s * (own[k] + sum(m[k] for m in messages))
                           for k in comp})
            gw = self.grad(lambda ww: H(xs, ps, ww), w)
            for k in states:
                x1[k], p1[k] = xs[k], ps[k]
            for k in weights:
                pw1[k] = aw * pw[k] - d * s * gw[k]
                w1[k] = w[k] - d * h["beta"] * pw1[k]
        return loss, x1, p1, w1, pw1

    def use_groups(self, groups):
        """Split the loss into its top-level terms and give terms and weights to groups:
        a term to the group of the last-declared state it reads (else of a weight it
        reads, else the last group); a weight to the group whose dynamics or terms use it."""
        net = self.spec.network
        position = {name: i for i, name in enumerate(net.vars)}
        group_of = {x: g for g, states in enumerate(groups) for x in states}
        owner = {}
        for g, states in enumerate(groups):
            for x in states:
                for v in net.leaves(net.dynamics_of[x]):
                    if v.kind == "weight":
                        owner.setdefault(v.name, g)
        names = dict(net.vars)
        names.update({k: v for k, v in _hyper_vars().items()})
        terms = [[] for _ in groups]
        for text in _top_level_terms(self.spec.doc["loss"]):
            expr = _Builder("loss term", text, names, _functions_with(self.spec)).build()
            read = sorted((v for v in net.leaves(expr) if v.kind in ("state", "weight")),
                          key=lambda v: position[v.name])
            states = [v.name for v in read if v.kind == "state"]
            weights = [v.name for v in read if v.kind == "weight"]
            owned = [wn for wn in weights if wn in owner]
            g = group_of[states[-1]] if states else owner[owned[0]] if owned else len(groups) - 1
            terms[g].append(text)
            for wn in weights:
                owner.setdefault(wn, g)
        weights = [[wn for wn in (v.name for v in net.of_kind("weight"))
                    if owner.get(wn, len(groups) - 1) == g] for g in range(len(groups))]
        self.groups = [(list(st), te, ws) for st, te, ws in zip(groups, terms, weights)]


def _hyper_vars():
    from ..declare.network import HYPER
    return HYPER


def _functions_with(spec):
    import sympy
    from ..declare.activations import activation, t
    from .spec import parse_activation
    functions = _functions()
    for name, text in spec.doc.get("activations", {}).items():
        functions[name] = (activation(sympy.Lambda(t, parse_activation(text)), name=name), 1)
    return functions


def _top_level_terms(text):
    """The terms of the loss as a sum, split at any depth: a sum or difference inside a
    negation, or times or over another factor, is distributed. As source strings."""
    import ast
    node = ast.parse(text.strip(), mode="eval").body

    def terms(n):
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
            return terms(n.left) + terms(n.right)
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub):
            return terms(n.left) + [f"-({t})" for t in terms(n.right)]
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return [f"-({t})" for t in terms(n.operand)]
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult) and _is_sum(n.right):
            return [f"({ast.unparse(n.left)}) * ({t})" for t in terms(n.right)]
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Mult, ast.Div)) and _is_sum(n.left):
            op = "*" if isinstance(n.op, ast.Mult) else "/"
            return [f"({t}) {op} ({ast.unparse(n.right)})" for t in terms(n.left)]
        return [ast.unparse(n)]
    return terms(node)


def _is_sum(n):
    import ast
    if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
        return _is_sum(n.operand)
    return isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub))


def _torch_functions(torch):
    out = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
           "softplus": torch.nn.functional.softplus, "identity": lambda z: z,
           "sin": torch.sin, "cos": torch.cos,
           "sum_squares": lambda z: (z * z).sum(), "total": lambda z: z.sum(),
           "softmax": lambda z: torch.softmax(z, dim=0),
           "dot": lambda a, b: (a * b).sum(),
           "softmax_cross_entropy": lambda z, y: -(y * torch.log_softmax(z, dim=0)).sum(),
           "mse": lambda a, b: ((a - b) ** 2).mean()}
    known = _functions()
    return {name: (fn, known[name][1]) for name, fn in out.items() if name in known}


def _components(net):
    """Strongly connected components of the state graph, dependencies first; ties by
    declaration order of each component's first state."""
    states = [v.name for v in net.of_kind("state")]
    reads = {x: {v.name for v in net.leaves(net.dynamics_of[x]) if v.kind == "state"}
             for x in states}
    reach = {x: set(reads[x]) for x in states}
    changed = True
    while changed:                      # transitive closure; state counts are small
        changed = False
        for x in states:
            new = set().union(*(reach[z] for z in reach[x])) - reach[x] if reach[x] else set()
            if new:
                reach[x] |= new
                changed = True
    components, seen = [], set()
    for x in states:
        if x not in seen:
            comp = [z for z in states if z == x or (z in reach[x] and x in reach[z])]
            seen.update(comp)
            components.append(comp)
    ordered, done = [], set()
    while len(ordered) < len(components):
        for comp in components:
            if id(comp) in done:
                continue
            needs = set().union(*(reach[z] for z in comp)) - set(comp)
            if all(any(n in c for c in ordered) for n in needs):
                ordered.append(comp)
                done.add(id(comp))
                break
    return ordered


def check_spec(spec, *, schemes=None, seed=0, directory=None, dtype="float64"):
    """Run one step of the generated module for each scheme against the reference.

    States, costates and weights start random so that every term is live. Returns
    {scheme: {name: max abs difference}}, with "loss" among the names.
    """
    torch = _torch()
    torch.set_default_dtype(torch.float64)
    scheme = spec.module.get("scheme", "nonlocal")
    schemes = schemes or [scheme]
    system = spec.derive()
    hyper = dict(system.hyper)
    if hyper["theta_neurons"] is None:
        hyper["theta_neurons"] = hyper["theta"]
    reference = _Reference(spec, hyper)
    net = spec.network
    shape = {name: v.shape for name, v in net.vars.items()}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(directory or tmp)
        for sch in schemes:
            # the reference steps with the global hyperparameters: no per-weight values
            options = {k: v for k, v in spec.module.items()
                       if k not in ("scheme", "groups", "per_weight")}
            fresh = bool(options.pop("fresh_weight_costate", False)) and sch == "local"
            if fresh:                         # an option of the local scheme only
                options["fresh_weight_costate"] = True
            options["dtype"] = dtype
            groups = spec.module.get("groups", ()) if sch == "partial" else ()
            if sch == "partial":
                reference.use_groups(groups)
            mod = spec.load(folder / f"{net.name}_check_{sch}.py", scheme=sch, groups=groups,
                            **options)
            rng = np.random.default_rng(seed)
            hl = mod.Integrator(seed=seed, states={k: rng.normal(size=s)
                                                   for k, s in mod.STATES.items()})
            for arr in hl.costates.values():
                arr[...] = rng.normal(size=arr.shape)
            data = {k: rng.normal(size=s) for k, s in {**mod.INPUTS, **mod.TARGETS}.items()}
            col = lambda name, a: torch.tensor(np.array(a, dtype=float).reshape(shape[name]))  # noqa
            x = {k: col(k, v) for k, v in hl.states.items()}
            w = {k: col(k, v) for k, v in hl.weights.items()}
            p = {k: col(k, hl.costates[k]) for k in x}
            pw = {k: col(k, hl.costates[k]) for k in w}
            tdata = {k: col(k, v) for k, v in data.items()}
            loss, x1, p1, w1, pw1 = reference.step(sch, x, p, w, pw, tdata, fresh)
            if spec.module.get("reset_neuron_costate"):
                p1 = {k: torch.zeros_like(v) for k, v in p1.items()}
            if spec.module.get("reset_weight_costate"):
                pw1 = {k: torch.zeros_like(v) for k, v in pw1.items()}
            got = hl.step(*data.values())
            diffs = {"loss": abs(got - loss.item())}
            for name, want in [*x1.items(), *w1.items()]:
                have = hl.states[name] if name in x1 else hl.weights[name]
                diffs[name] = _gap(have, want)
            for name, want in [*p1.items(), *pw1.items()]:
                diffs["p_" + name] = _gap(hl.costates[name], want)
            results[sch] = diffs
    return results


def _gap(have, want):
    want = want.detach().numpy()
    return float(np.abs(np.asarray(have, dtype=float).reshape(want.shape) - want).max())


__all__ = ["check_spec", "SpecError"]
