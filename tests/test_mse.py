"""hs.mse is PyTorch's F.mse_loss: its value and its gradient, against torch autograd."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hamsym as hs
from hamsym.declare.zoo import mlp


def test_mse_value_and_gradient_match_torch(load):
    system = hs.derive(mlp([4, 5, 3], loss="mse", name="mse_mlp"), gamma=1.0, beta=1.0,
                       theta=0.3, delta=0.1)
    learner = load(system).Integrator(seed=3)
    rng = np.random.default_rng(0)
    u, y = rng.normal(size=4), rng.normal(size=3)
    params = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in learner.weights.items()}
    o = params["W2"] @ torch.tanh(params["W1"] @ torch.tensor(u) + params["b1"]) + params["b2"]
    reference = F.mse_loss(o, torch.tensor(y))
    reference.backward()

    loss = learner.step(u, y)       # from zero costates, flip = -1: p_w = delta * gamma * dl/dw
    assert loss == pytest.approx(float(reference), rel=1e-14)
    for name, p in params.items():
        np.testing.assert_allclose(learner.costates[name] / 0.1, p.grad.numpy(), rtol=1e-12,
                                   atol=1e-15)


def test_mse_refuses_mismatched_shapes():
    net = hs.Network("bad_mse")
    with pytest.raises(hs.ShapeError, match="mse"):
        hs.mse(net.input("u", 3), net.target("y", 2))
