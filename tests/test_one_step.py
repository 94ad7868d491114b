"""One step of the generated kernels of state networks, with learning on, against
PyTorch autograd of the Hamiltonian evaluated at exactly the values each scheme
prescribes (docs/mathematics.md, section 6):

- local (Jacobi): every derivative at step k; weights move with the old p_w;
- nonlocal (Gauss-Seidel over strongly connected components of the state
  dependency graph, given here by hand for each network): components of states
  swept forward with the newest values of the components before them, costates
  backward with the new states and the already updated costates of the components
  after them, then weights with everything new, moving with the new p_w.

States, costates and weights start random, so every term of every kernel is live.
"""

import numpy as np
import pytest
import torch

import hamsym as hs
from hamsym.declare.zoo import delay_network, oscillator_bank, recurrent

torch.set_default_dtype(torch.float64)
H = dict(gamma=0.7, beta=0.3, theta=0.2, theta_neurons=0.1, flip=-1.0, delta=0.1)


def rnn_cont():
    net = recurrent(3, 4, 2, kind="continuous", tau=1.7, name="rnn_cont")

    def f(x, w, u):
        return {"x": (torch.tanh(w["A"] @ x["x"] + w["B"] @ u + w["b"]) - x["x"]) / 1.7}

    def loss(x, w, u, y):
        return ((w["C"] @ x["x"] + w["c"] - y) ** 2).sum() / 2
    return net, f, loss, [["x"]]


def delay3():
    net = delay_network([3, 4, 3, 2], [hs.tanh, hs.sigmoid, hs.identity], name="delay3_step")
    acts = [torch.tanh, torch.sigmoid, lambda z: z]

    def f(x, w, u):
        below = [u, x["x1"], x["x2"]]
        return {f"x{l}": (acts[l - 1](w[f"W{l}"] @ below[l - 1] + w[f"b{l}"]) - x[f"x{l}"]) / H["delta"]
                for l in (1, 2, 3)}

    def loss(x, w, u, y):
        return ((x["x3"] - y) ** 2).sum() / 2
    return net, f, loss, [["x1"], ["x2"], ["x3"]]


def oscillators():
    net = oscillator_bank(3, 2, name="osc_step")

    def f(x, w, u):
        c, s = torch.cos(w["w"] * H["delta"]), torch.sin(w["w"] * H["delta"])
        a, b = x["a"], x["b"]
        return {"a": (c * a + s * b - a) / H["delta"], "b": (c * b - s * a - b) / H["delta"]}

    def loss(x, w, u, y):
        return ((w["Ca"] @ x["a"] + w["Cb"] @ x["b"] - y) ** 2).sum() / 2
    return net, f, loss, [["a", "b"]]            # a and b read each other: one component


NETS = {"rnn_cont": rnn_cont, "delay3": delay3, "oscillators": oscillators}


def hamiltonian(f, loss, x, p, w, u, y):
    fx = f(x, w, u)
    return H["gamma"] * loss(x, w, u, y) + sum((p[k] * fx[k]).sum() for k in fx)


def grad(fn, at):
    at = {k: v.detach().clone().requires_grad_(True) for k, v in at.items()}
    value = fn(at)
    grads = torch.autograd.grad(value, list(at.values()), allow_unused=True)
    return {k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(at.items(), grads)}


def reference(scheme, f, loss, comps, x, p, w, pw, u, y):
    s, d = H["flip"], H["delta"]
    order = [k for c in comps for k in c]
    ax, aw = 1 + s * H["theta_neurons"], 1 + s * H["theta"]
    if scheme == "local":
        gx = grad(lambda xx: hamiltonian(f, loss, xx, p, w, u, y), x)
        gw = grad(lambda ww: hamiltonian(f, loss, x, p, ww, u, y), w)
        fx = f(x, w, u)
        x_new = {k: x[k] + d * fx[k] for k in order}
        p_new = {k: ax * p[k] - d * s * gx[k] for k in order}
        pw_new = {k: aw * pw[k] - d * s * gw[k] for k in w}
        w_new = {k: w[k] - d * H["beta"] * pw[k] for k in w}
        return x_new, p_new, w_new, pw_new
    xs = dict(x)
    for c in comps:                                   # forward sweep, newest states
        fx = f(dict(xs), w, u)
        xs.update({k: x[k] + d * fx[k] for k in c})
    ps = dict(p)
    for c in reversed(comps):                         # backward sweep, newest costates
        g = grad(lambda xx: hamiltonian(f, loss, xx, dict(ps), w, u, y), xs)
        ps.update({k: ax * p[k] - d * s * g[k] for k in c})
    gw = grad(lambda ww: hamiltonian(f, loss, xs, ps, ww, u, y), w)
    pw_new = {k: aw * pw[k] - d * s * gw[k] for k in w}
    w_new = {k: w[k] - d * H["beta"] * pw_new[k] for k in w}
    return xs, ps, w_new, pw_new


def random_learner(mod, seed):
    """An integrator with random states and costates, and its values as tensors."""
    rng = np.random.default_rng(seed)
    hl = mod.Integrator(seed=seed, states={k: rng.normal(size=s) for k, s in mod.STATES.items()})
    for k in hl.costates:
        hl.costates[k][...] = rng.normal(size=hl.costates[k].shape)
    data = [rng.normal(size=s) for s in list(mod.INPUTS.values()) + list(mod.TARGETS.values())]
    x = {k: torch.tensor(v.copy()) for k, v in hl.states.items()}
    w = {k: torch.tensor(v.copy()) for k, v in hl.weights.items()}
    p = {k: torch.tensor(hl.costates[k].copy()) for k in x}
    pw = {k: torch.tensor(hl.costates[k].copy()) for k in w}
    return hl, data, x, p, w, pw


def assert_step_matches(hl, x_new, p_new, w_new, pw_new):
    for name, want in [*x_new.items(), *w_new.items()]:
        got = hl.states[name] if name in x_new else hl.weights[name]
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=0, atol=1e-12, err_msg=name)
    for name, want in [*p_new.items(), *pw_new.items()]:
        np.testing.assert_allclose(hl.costates[name], want.detach().numpy(), rtol=0, atol=1e-12,
                                   err_msg="p_" + name)


@pytest.mark.parametrize("scheme", ["local", "nonlocal"])
@pytest.mark.parametrize("key", [pytest.param(k, marks=pytest.mark.fast) if k == "delay3" else k
                                 for k in NETS])
def test_one_step_matches_autograd(key, scheme, load):
    net, f, loss, comps = NETS[key]()
    system = hs.derive(net, **H)
    mod = load(system, name=key, scheme=scheme)
    hl, data, x, p, w, pw = random_learner(mod, seed=11)
    u = torch.tensor(data[0]) if mod.INPUTS else None
    y = torch.tensor(data[-1])
    want_loss = loss(x, w, u, y).item()

    got_loss = hl.step(*data)
    assert abs(got_loss - want_loss) < 1e-12
    assert_step_matches(hl, *reference(scheme, f, loss, comps, x, p, w, pw, u, y))


def test_partial_scheme_one_step_matches_autograd(load):
    """Groups [[x1, x2], [x3]]: Gauss-Seidel inside a group, step-k values across.
    Each group's own part of H (its p.f terms, plus the loss for the group of x3) is
    differentiated at its newest values; the other group's part at step k."""
    groups = [["x1", "x2"], ["x3"]]
    net, f, loss, _ = delay3()
    system = hs.derive(net, **H)
    mod = load(system, name="delay3", scheme="partial", groups=groups)
    hl, (u, y), x, p, w, pw = random_learner(mod, seed=12)
    tu, ty = torch.tensor(u), torch.tensor(y)
    s, d = H["flip"], H["delta"]
    ax, aw = 1 + s * H["theta_neurons"], 1 + s * H["theta"]

    def part(group, xv, pv, wv):
        fx = f(xv, wv, tu)
        h = sum((pv[k] * fx[k]).sum() for k in group)
        return h + H["gamma"] * loss(xv, wv, tu, ty) if "x3" in group else h

    owned = {"x1": ["W1", "b1"], "x2": ["W2", "b2"], "x3": ["W3", "b3"]}
    x_new, p_new, w_new, pw_new = {}, {}, {}, {}
    for group in groups:
        other = [g for g in groups if g is not group][0]
        xs = dict(x)
        for k in group:
            xs[k] = x[k] + d * f(xs, w, tu)[k]
        ps = dict(p)
        for k in reversed(group):
            g = grad(lambda xx: part(group, xx, ps, w), xs)[k] + \
                grad(lambda xx: part(other, xx, p, w), x)[k]
            ps[k] = ax * p[k] - d * s * g
        gw = grad(lambda ww: part(group, xs, ps, ww), w)
        for k in group:
            x_new[k], p_new[k] = xs[k], ps[k]
            for name in owned[k]:
                pw_new[name] = aw * pw[name] - d * s * gw[name]
                w_new[name] = w[name] - d * H["beta"] * pw_new[name]

    hl.step(u, y)
    assert_step_matches(hl, x_new, p_new, w_new, pw_new)
