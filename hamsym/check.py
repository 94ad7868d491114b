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

CHECKED_SCHEMES = ("local", "nonlocal")


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

    def evaluate(self, x, w, data):
        """(f: {state: tensor}, loss tensor) at states x, weights w, data (inputs, targets)."""
        doc = self.spec.doc
        names = {**{k: float(v) for k, v in self.hyper.items()}, **self.spec.network.defaults,
                 **data, **x, **w}

        def build(text):
            return _Builder("reference", text, names, self.functions).build()
        for name, text in doc.get("instants", {}).items():
            names[name] = build(text)
        f = {name: build(doc["dynamics"][name]) for name in self.states}
        return f, build(doc["loss"])

    def hamiltonian(self, x, p, w, data):
        f, loss = self.evaluate(x, w, data)
        return self.hyper["gamma"] * loss + sum((p[k] * f[k]).sum() for k in f), f, loss

    def grad(self, fn, at):
        torch = self.torch
        at = {k: v.detach().clone().requires_grad_(True) for k, v in at.items()}
        value = fn(at)
        if not at:
            return {}
        grads = torch.autograd.grad(value, list(at.values()), allow_unused=True)
        return {k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(at.items(), grads)}

    def step(self, scheme, x, p, w, pw, data):
        h = self.hyper
        s, d = h["flip"], h["delta"]
        ax, aw = 1 + s * h["theta_neurons"], 1 + s * h["theta"]
        H = lambda xx, pp, ww: self.hamiltonian(xx, pp, ww, data)[0]  # noqa: E731
        loss = self.evaluate(x, w, data)[1]
        if scheme == "local":
            gx = self.grad(lambda xx: H(xx, p, w), x)
            gw = self.grad(lambda ww: H(x, p, ww), w)
            f = self.evaluate(x, w, data)[0]
            return (loss, {k: x[k] + d * f[k] for k in x}, {k: ax * p[k] - d * s * gx[k] for k in x},
                    {k: w[k] - d * h["beta"] * pw[k] for k in w},
                    {k: aw * pw[k] - d * s * gw[k] for k in w})
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
    schemes = schemes or ([scheme] if scheme in CHECKED_SCHEMES else list(CHECKED_SCHEMES))
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
            options = {k: v for k, v in spec.module.items() if k not in ("scheme", "groups")}
            options["dtype"] = dtype
            mod = spec.load(folder / f"{net.name}_check_{sch}.py", scheme=sch, groups=(),
                            **{k: v for k, v in options.items()})
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
            loss, x1, p1, w1, pw1 = reference.step(sch, x, p, w, pw, tdata)
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
