"""The order of the state updates inside a step: Gauss-Seidel over the strongly
connected components of the state dependency graph (schemes 'nonlocal' and
'partial'), Jacobi inside a component and in the 'local' scheme.

An exact map stays exact (the oscillator bank is a rotation of each block (a, b),
whose two halves read each other), and a feed-forward delay network still gets its
forward sweep (the input reaches the last layer within one step).
"""

import warnings

import numpy as np
import pytest
import torch

import hamsym as hs
from hamsym.codegen.schedule import components
from hamsym.declare.zoo import delay_network, oscillator_bank

torch.set_default_dtype(torch.float64)

SCHEMES = [("local", {}), ("nonlocal", {}), ("partial", {"groups": [["a", "b"]]})]


@pytest.mark.parametrize("scheme, options", SCHEMES, ids=[s for s, _ in SCHEMES])
def test_oscillator_blocks_keep_their_norm(scheme, options, load):
    system = hs.derive(oscillator_bank(5, name="osc_norm"), beta=0.0, delta=0.1)
    mod = load(system, scheme=scheme, **options)
    omega = np.array([0.2, 0.45, 1.0, 2.0, 3.1])
    phase = np.linspace(0.0, 2.0, 5)
    bank = mod.Integrator(weights={"w": omega},
                          states={"a": np.cos(phase), "b": np.sin(phase)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                     # beta = 0: frozen on purpose
        bank.run(np.zeros((10_000, 1)))
    norms = np.hypot(bank.states["a"], bank.states["b"])
    assert np.abs(norms - 1).max() < 1e-12, norms - 1
    # and it is the rotation by omega*delta per step, to rounding
    angle = phase - omega * 0.1 * 10_000
    np.testing.assert_allclose(bank.states["a"], np.cos(angle), atol=1e-9)
    np.testing.assert_allclose(bank.states["b"], np.sin(angle), atol=1e-9)


def test_oscillator_partial_scheme_refuses_splitting_a_block(load):
    system = hs.derive(oscillator_bank(2, name="osc_split"))
    with pytest.raises(hs.DeclarationError, match="'w'"):
        load(system, scheme="partial", groups=[["a"], ["b"]])


@pytest.mark.parametrize("scheme", ["local", "nonlocal"])
def test_delay_network_forward_sweep(scheme, load):
    """From zero states, one step with frozen weights: under 'nonlocal' the input is
    propagated through all three layers; under 'local' each layer reads the step-k
    state below it, so the top layer sees only zeros."""
    net = delay_network([3, 4, 5, 2], [hs.tanh, hs.sigmoid, hs.identity], name="sweep_delay")
    mod = load(hs.derive(net, beta=0.0, delta=0.1), scheme=scheme)
    hl = mod.Integrator(seed=3)
    w = {k: torch.tensor(v.copy()) for k, v in hl.weights.items()}
    u = np.array([0.3, -1.2, 0.8])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hl.step(u, np.zeros(2))
    acts = [torch.tanh, torch.sigmoid, lambda z: z]
    below, want = torch.tensor(u), {}
    for layer in (1, 2, 3):
        step_k_below = below if scheme == "nonlocal" or layer == 1 else torch.zeros_like(below)
        want[f"x{layer}"] = acts[layer - 1](w[f"W{layer}"] @ step_k_below + w[f"b{layer}"])
        below = want[f"x{layer}"]
    for name, value in want.items():
        np.testing.assert_allclose(hl.states[name], value.numpy(), rtol=0, atol=1e-15, err_msg=name)


def _net(reads):
    """A network whose state x<i> has dynamics reading the states listed in reads[i]."""
    net = hs.Network("graph")
    y = net.target("y", 1)
    xs = [net.state(f"x{i}", 1) for i in range(len(reads))]
    w = net.weight("w", 1)
    for i, r in enumerate(reads):
        f = -1 * xs[i]
        for j in r:
            f = f + hs.tanh(xs[j])
        net.dynamics(xs[i], f)
    net.loss(hs.sum_squares(w @ xs[-1].T - y))
    return net, xs


@pytest.mark.parametrize("reads, want", [
    ([[], [0], [1]], [[0], [1], [2]]),                 # a chain, in order
    ([[2], [0], []], [[2], [0], [1]]),                 # a chain declared backwards
    ([[1], [0], [1]], [[0, 1], [2]]),                  # a cycle, then what reads it
    ([[], [2], [1], [0]], [[0], [1, 2], [3]]),         # ties go by declaration order
    ([[1], [2], [0]], [[0, 1, 2]]),                    # one cycle through all
    ([[0], [1]], [[0], [1]]),                          # self-loops only
])
def test_components_in_topological_order(reads, want):
    net, xs = _net(reads)
    assert [[xs.index(x) for x in c] for c in components(net, xs)] == want
