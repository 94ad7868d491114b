"""Custom activations whose derived formulas overflow in floating point are emitted
in a safe form (or refused with the reason); the reference is PyTorch's own silu."""

import numpy as np
import pytest
import sympy
import torch

import hamsym as hs
from hamsym.declare.activations import BUILTIN, t
from hamsym.codegen.scalar import scalar_code
from hamsym.declare.safe_form import PROBES, _broken_at

torch.set_default_dtype(torch.float64)


def swish():
    return hs.activation(lambda x: x / (1 + sympy.exp(-x)), name="swish")


def test_swish_derivative_is_rewritten_and_exact_everywhere():
    d = sympy.diff(t / (1 + sympy.exp(-t)), t)
    assert _broken_at(d, t, scalar_code(d, {t: "t"}, "d")) is not None      # verbatim: nan
    form = swish().derivative.stable
    assert form is not None and _broken_at(d, t, scalar_code(form, {t: "t"}, "d")) is None


def test_builtin_activations_compute_safely_at_every_probe():
    for act in BUILTIN.values():
        for e in (act.stable if act.stable is not None else act.expr,
                  act.derivative.stable if act.derivative.stable is not None
                  else act.derivative.expr):
            if e.has(sympy.Piecewise) and act.name == "relu":
                continue                                  # printed as a branch: exact
            assert _broken_at(e, t, scalar_code(e, {t: "t"}, act.name)) is None, act.name


def test_overflowing_activation_without_safe_form_is_refused_with_the_point():
    with pytest.raises(hs.DeclarationError, match=r"t = 710.*overflows"):
        hs.activation(lambda x: sympy.log(1 + sympy.exp(x)), name="mysoftplus")


@pytest.mark.parametrize("scale", [1.0, 800.0])
def test_generated_step_with_swish_matches_autograd_at_large_arguments(scale, load):
    net = hs.Network(f"swish_net_{int(scale)}")
    u, y = net.input("u", 3), net.target("y", 2)
    W = net.weight("W", (2, 3))
    net.loss(hs.sum_squares(swish()(W @ u) - y) / 2)
    mod = load(hs.derive(net, theta=1.0, beta=1.0, delta=1.0))
    hl = mod.Integrator(weights={"W": [[1.0, 0.2, 0.0], [-1.0, 0.0, 0.4]]})   # W u = +-scale
    W0 = torch.tensor(hl.weights["W"].copy(), requires_grad=True)
    uu, yy = scale * np.array([1.4, -2.0, 1.0]), np.array([0.1, -0.2])
    loss = ((torch.nn.functional.silu(W0 @ torch.tensor(uu)) - torch.tensor(yy)) ** 2).sum() / 2
    (g,) = torch.autograd.grad(loss, W0)
    got = hl.step(uu, yy)
    assert got == pytest.approx(loss.item(), rel=1e-12)
    # theta = 1, delta = 1, beta = 1: p_W = grad, W+ = W - grad
    np.testing.assert_allclose(hl.costates["W"], g.numpy(), rtol=1e-12, atol=1e-300)
    assert np.isfinite(hl.weights["W"]).all()
    assert max(abs(v) for v in PROBES) >= 1000
