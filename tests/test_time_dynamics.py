"""Neuron states and costates evolving in time (docs/mathematics.md, sections 7-8).

E3: fully-local HL on a layered delay network is backpropagation pipelined over
time. E4: on a recurrent block the costate converges to the recurrent-backprop
(Almeida-Pineda) adjoint. References: PyTorch autograd, float64; for E4, BPTT
through many unrolled steps.
"""

import inspect
import warnings

import numpy as np
import pytest
import torch

import hamsym as hs
from hamsym.declare.zoo import delay_network, recurrent
from torch_reference import ACT

torch.set_default_dtype(torch.float64)
DELTA, GAMMA = 0.1, 0.7

DELAY = {
    3: ([3, 5, 4, 2], ["tanh", "sigmoid", "identity"]),
    5: ([3, 6, 5, 4, 4, 2], ["tanh", "softplus", "sin", "sigmoid", "identity"]),
}


def _frozen(mod, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # beta = 0 freezes the weights, on purpose
        return mod.Integrator(seed=2, **kw)


@pytest.mark.parametrize("layers", sorted(DELAY))
def test_e3_fully_local_delay_network_is_pipelined_backprop(layers, load):
    sizes, acts = DELAY[layers]
    net = delay_network(sizes, [getattr(hs, a) for a in acts], name=f"delay{layers}")
    system = hs.derive(net, gamma=GAMMA, beta=0.0, theta=0.0, delta=DELTA)
    mod = load(system, name=f"delay{layers}", scheme="local")
    hl = _frozen(mod)
    rng = np.random.default_rng(layers)
    u, y = rng.normal(size=sizes[0]), rng.normal(size=sizes[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(2 * layers):
            hl.step(u, y)
        before = {k: v.copy() for k, v in hl.costates.items()}
        hl.step(u, y)

    W = [torch.tensor(hl.weights[f"W{l}"], requires_grad=True) for l in range(1, layers + 1)]
    b = [torch.tensor(hl.weights[f"b{l}"], requires_grad=True) for l in range(1, layers + 1)]
    h, outs = torch.tensor(u), []
    for l in range(layers):
        h = ACT[acts[l]](W[l] @ h + b[l])
        h.retain_grad()
        outs.append(h)
    (((h - torch.tensor(y)) ** 2).sum() / 2).backward()
    for l in range(layers):
        np.testing.assert_allclose(before[f"x{l + 1}"] / (DELTA * GAMMA), outs[l].grad.numpy(),
                                   rtol=0, atol=1e-10)
        for name, ref in ((f"W{l + 1}", W[l]), (f"b{l + 1}", b[l])):
            np.testing.assert_allclose(hl.costates[name] - before[name],
                                       DELTA * GAMMA * ref.grad.numpy(), rtol=0, atol=1e-10)


def test_local_scheme_has_one_kernel_pair_per_layer_reading_only_neighbours(load):
    sizes, acts = DELAY[3]
    net = delay_network(sizes, [getattr(hs, a) for a in acts], name="delay3")
    mod = load(hs.derive(net, beta=0.0, theta=0.0), name="delay3", scheme="local")
    for l in (1, 2, 3):
        own = {f"x{l}", f"p_x{l}", f"W{l}", f"p_W{l}", f"b{l}", f"p_b{l}"}
        params = set(inspect.signature(getattr(mod, f"update_x{l}").py_func).parameters)
        work = {p for p in params if p.startswith("_") and not p.startswith(("_k_", "_m_"))}
        arrays = params - work - {"gamma", "beta", "theta", "theta_neurons", "flip", "delta"}
        neighbours = ({f"_k_x{l - 1}"} if l > 1 else {"u"}) | (
            {f"_m_x{l + 1}__x{l}"} if l < 3 else {"y"})
        assert arrays == own | neighbours, (l, arrays)
    # messages travel down only: layer l tells layer l-1 its dH_l/dx_{l-1}
    assert not hasattr(mod, "emit_x1")
    assert {"_k_x1"} <= set(inspect.signature(mod.emit_x2.py_func).parameters)


@pytest.mark.parametrize("scheme", ["local", "nonlocal"])
def test_e4_recurrent_costate_converges_to_the_fixed_point_gradient(scheme, load):
    n_in, n, n_out = 3, 5, 2
    net = recurrent(n_in, n, n_out, kind="discrete", bias=False, name="rnn_e4")
    system = hs.derive(net, gamma=GAMMA, beta=0.0, theta=0.0, delta=DELTA)
    mod = load(system, name="rnn_e4", scheme=scheme)
    rng = np.random.default_rng(7)
    A = rng.normal(size=(n, n))
    A *= 0.6 / np.linalg.norm(A, 2)                   # a contraction: a unique fixed point
    weights = {"A": A, "B": rng.normal(size=(n, n_in)), "C": rng.normal(size=(n_out, n))}
    hl = _frozen(mod, weights=weights)
    u, y = rng.normal(size=n_in), rng.normal(size=n_out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(300):
            hl.step(u, y)
        before = {k: v.copy() for k, v in hl.costates.items()}
        hl.step(u, y)

    t = {k: torch.tensor(v, requires_grad=True) for k, v in weights.items()}
    x = torch.zeros(n)
    for _ in range(300):                                # BPTT through the unrolled map
        x = torch.tanh(t["A"] @ x + t["B"] @ torch.tensor(u))
    x.retain_grad()
    (((t["C"] @ x - torch.tensor(y)) ** 2).sum() / 2).backward()
    for name in ("A", "B", "C"):
        increment = (hl.costates[name] - before[name]) / (DELTA * GAMMA)
        np.testing.assert_allclose(increment, t[name].grad.numpy(), rtol=0, atol=1e-8)
    # the neuron costate is the Almeida-Pineda adjoint (I - A^T D)^-1 dl/dx, D = tanh'
    xs = hl.states["x"]
    D = np.diag(1 - xs ** 2)
    adjoint = np.linalg.solve(np.eye(n) - A.T @ D, weights["C"].T @ (weights["C"] @ xs - y))
    np.testing.assert_allclose(hl.costates["x"] / (DELTA * GAMMA), adjoint, rtol=0, atol=1e-8)
    np.testing.assert_allclose(xs, x.detach().numpy(), rtol=0, atol=1e-12)
