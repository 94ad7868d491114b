"""derive() against PyTorch autograd (float64), on the networks of scalar_reference.

Each network is written again by hand in torch, with its Hamiltonian straight from
docs/mathematics.md (section 2),

    H* = gamma*l + sum_x p_x . f_x - beta/2 sum_w |p_w|^2,

and autograd gives dH*/dx, dH*/dw, dH*/dp. hamsym's right-hand sides (messages and
instants expanded) are evaluated at the same random values with the scalar
reference, and must match

    x' = dH*/dp_x,   w' = dH*/dp_w,   p' = flip * (theta/delta * p - dH*/d.)

(theta_neurons for neuron states) to 1e-10, for both signs of flip.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hamsym as hs
from scalar_reference import NETWORKS, ScalarReference, names_of, random_values

TOL = 1e-10
F = torch.nn.functional


def ce(z, y):
    """-sum_i y_i log softmax(z)_i, for a column vector z."""
    return -(y * torch.log_softmax(z, dim=0)).sum()


def half_sq(z):
    return 0.5 * (z**2).sum()


# Each returns (loss, {state name: dynamics}, pre-activations of relu units).
def torch_mlp2(T):
    h = torch.tanh(T["W1"] @ T["u"] + T["b1"])
    o = T["W2"] @ h + T["b2"]
    return half_sq(o - T["y"]) + T["lam"] / 2 * (T["W1"]**2).sum(), {}, []


def torch_mlp3(T):
    h1 = torch.sigmoid(T["W1"] @ T["u"] + T["b1"])
    z2 = T["W2"] @ h1 + T["b2"]
    o = T["W3"] @ torch.relu(z2) + T["b3"]
    return ce(o, T["y"]), {}, [z2]


def torch_leaky(T):
    x = T["x"]
    f = (-x + torch.tanh(T["W"] @ T["u"] + T["b"])) / T["tau"]
    return half_sq(T["C"] @ x - T["y"]), {"x": f}, []


def torch_recurrent(T):
    x = T["x"]
    f = -x + torch.tanh(T["A"] @ x + T["B"] @ T["u"])
    return half_sq(T["C"] @ x - T["y"]), {"x": f}, []


def torch_two_blocks(T):
    x1, x2 = T["x1"], T["x2"]
    h = torch.atan(T["A"] @ x1 + T["B"] @ T["u"])
    f1 = -x1 + h
    f2 = (F.softplus(T["D"] @ h) - x2) / T["delta"]
    return ce(x2, T["y"]) + T["lam"] * (T["A"]**2).sum(), {"x1": f1, "x2": f2}, []


def torch_ops(T):
    x = T["x"]
    g = torch.sigmoid(T["W"] @ T["u"]) * torch.sin(T["M"] @ x)
    f = -x + (T["a"] * x).sum() * g / (1 + (x**2).sum())
    loss = ((torch.softmax(T["C"] @ x, dim=0) - T["y"])**2).sum() + (x.T @ T["M"] @ x).sum() / 4
    return loss, {"x": f}, []


TORCH = {"mlp2": torch_mlp2, "mlp3": torch_mlp3, "leaky": torch_leaky,
         "recurrent": torch_recurrent, "two_blocks": torch_two_blocks, "ops": torch_ops}


def test_every_network_has_a_torch_twin():
    assert set(TORCH) == set(NETWORKS)


def torch_hamiltonian(name, net, values):
    """H* in torch; returns (H, tensors by name)."""
    T = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in values.items()}
    loss, dynamics, relu_args = TORCH[name](T)
    for z in relu_args:             # relu's derivative jumps at 0: stay clearly away,
        z = z.detach()              # with some units on and some off
        assert float(z.abs().min()) > 1e-3 and bool((z > 0).any()) and bool((z < 0).any())
    assert set(dynamics) == {x.name for x in net.of_kind("state")}
    H = T["gamma"] * loss
    for x, f in dynamics.items():
        H = H + (T[f"p_{x}"] * f).sum()
    for w in net.of_kind("weight"):
        H = H - T["beta"] / 2 * (T[f"p_{w.name}"]**2).sum()
    return H, T


@pytest.mark.parametrize("seed,flip", [(1, -1.0), (2, 1.0), (3, -1.0)])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_equations_match_autograd(name, seed, flip):
    net = NETWORKS[name]()
    s = hs.derive(net, flip=flip)
    values = random_values(names_of(net), seed)
    values["flip"] = flip
    H, T = torch_hamiltonian(name, net, values)
    variables = net.of_kind("state") + net.of_kind("weight")
    costates = [s.costates[v].name for v in variables]
    grads = torch.autograd.grad(H, [T[v.name] for v in variables] + [T[p] for p in costates])
    dH = {v.name: g.detach().numpy() for v, g in zip(variables, grads)}
    dH.update({p: g.detach().numpy() for p, g in zip(costates, grads[len(variables):])})

    ref = ScalarReference(net, values)
    got = lambda e: ref.numbers(ref(s.expand(e)))     # noqa: E731

    def check(label, g, want):
        assert g.shape == want.shape, f"{label}: {g.shape} vs {want.shape}"
        err = float(np.max(np.abs(g - want)))
        assert err < TOL, f"{name} seed {seed}: {label} max abs error {err:.3g}"

    check("H*", got(s.hamiltonian), H.detach().numpy())
    for v in variables:
        p = f"p_{v.name}"
        theta = values["theta_neurons" if v.kind == "state" else "theta"]
        check(f"{v.name}'", got(s.equation(v.name).rhs), dH[p])
        want = flip * (theta / values["delta"] * values[p] - dH[v.name])
        check(f"{p}'", got(s.equation(p).rhs), want)
