"""Non-local HL with flip = -1 is SGD with momentum, step for step (E1/E2 of
docs/mathematics.md, section 8).

Reference: torch.optim.SGD(lr = delta^2 beta gamma, momentum = 1 - theta) on the
same network written by hand in PyTorch, float64.
"""

import numpy as np
import pytest
import torch

import hamsym as hs
from hamsym.declare.zoo import mlp
from torch_reference import mlp_loss, tensors

DELTA, BETA, GAMMA = 0.1, 0.2, 0.5          # lr = 1e-3: bounded even at momentum 1
NETS = {
    # name: (sizes, activations, loss)
    "tanh_squared": ([4, 16, 2], ["tanh"], "squared"),
    "ce_3layer": ([5, 8, 6, 3], ["tanh", "sigmoid"], "cross_entropy"),
}


def _system(key, theta, flip=-1.0):
    sizes, acts, loss = NETS[key]
    net = mlp(sizes, [getattr(hs, a) for a in acts], loss=loss, name=key)
    return hs.derive(net, gamma=GAMMA, beta=BETA, theta=theta, flip=flip, delta=DELTA)


def _stream(key, steps, seed=1):
    sizes, _, loss = NETS[key]
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(steps, sizes[0]))
    if loss == "squared":
        Y = rng.normal(size=(steps, sizes[-1]))
    else:
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], steps)]
    return U, Y


def _names(integ):
    return list(integ.weights)


@pytest.mark.parametrize("key", NETS)
@pytest.mark.parametrize("theta", [1.0, 0.3, 0.0])
def test_nonlocal_hl_is_sgd_with_momentum(key, theta, load):
    mod = load(_system(key, theta), name=key)
    integ = mod.Integrator(seed=0, theta=theta)
    names = _names(integ)
    params = tensors(integ.weights, names)
    lr = DELTA ** 2 * BETA * GAMMA
    opt = torch.optim.SGD(params, lr=lr, momentum=1 - theta, dampening=0, nesterov=False)
    U, Y = _stream(key, 500)
    sizes, acts, loss = NETS[key]
    worst = 0.0
    for k in range(len(U)):
        hl_loss = integ.step(U[k], Y[k])
        opt.zero_grad()
        ref = mlp_loss(params, U[k], Y[k], acts, loss)
        ref.backward()
        opt.step()
        assert abs(hl_loss - ref.item()) < 1e-9 * max(1.0, abs(ref.item()))
        worst = max(worst, max(np.abs(integ.weights[n] - p.detach().numpy()).max()
                               for n, p in zip(names, params)))
    assert worst < 1e-9
    assert np.isfinite(worst)


@pytest.mark.parametrize("key", NETS)
def test_run_matches_step(key, load):
    """The jitted stream loop and the per-sample step give the same trajectory."""
    mod = load(_system(key, 0.3), name=key)
    a, b = mod.Integrator(seed=3), mod.Integrator(seed=3)
    U, Y = _stream(key, 50, seed=4)
    losses = a.run(U, Y)
    step_losses = [b.step(u, y) for u, y in zip(U, Y)]
    np.testing.assert_array_equal(losses, step_losses)
    for n in a.weights:
        np.testing.assert_array_equal(a.weights[n], b.weights[n])


@pytest.mark.parametrize("key", NETS)
@pytest.mark.parametrize("flip", [-1.0, 1.0])
def test_costates_after_one_step_are_scaled_gradients(key, flip, load):
    """From zero costates, one step gives p_w = -flip * delta * gamma * dl/dw."""
    mod = load(_system(key, 0.3, flip=flip), name=f"{key}_flip_{'minus' if flip < 0 else 'plus'}")
    integ = mod.Integrator(seed=5)
    names = _names(integ)
    params = tensors(integ.weights, names)
    U, Y = _stream(key, 1, seed=6)
    sizes, acts, loss = NETS[key]
    mlp_loss(params, U[0], Y[0], acts, loss).backward()
    integ.step(U[0], Y[0])
    for n, p in zip(names, params):
        expected = -flip * DELTA * GAMMA * p.grad.numpy()
        np.testing.assert_allclose(integ.costates[n], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("theta", [0.3, 1.0])
def test_local_schedule_is_sgd_with_the_gradient_one_step_late(theta, load):
    key = "tanh_squared"
    mod = load(_system(key, theta), name=key, scheme="local")
    integ = mod.Integrator(seed=0, theta=theta)
    names = _names(integ)
    params = tensors(integ.weights, names)
    lr = DELTA ** 2 * BETA * GAMMA
    momentum = [torch.zeros_like(p) for p in params]     # the buffer of the previous step
    U, Y = _stream(key, 300)
    sizes, acts, loss = NETS[key]
    for k in range(len(U)):
        integ.step(U[k], Y[k])
        for p in params:
            p.grad = None
        mlp_loss(params, U[k], Y[k], acts, loss).backward()
        with torch.no_grad():
            for p, m in zip(params, momentum):
                p -= lr * m                               # moves with the late buffer
                m.mul_(1 - theta).add_(p.grad)
    for n, p in zip(names, params):
        np.testing.assert_allclose(integ.weights[n], p.detach().numpy(), rtol=0, atol=1e-9)


def test_weight_costate_reset_makes_plain_sgd_whatever_theta(load):
    key = "tanh_squared"
    mod = load(_system(key, 0.0), name=key, reset_weight_costate=True)
    integ = mod.Integrator(seed=0)
    names = _names(integ)
    params = tensors(integ.weights, names)
    opt = torch.optim.SGD(params, lr=DELTA ** 2 * BETA * GAMMA)
    U, Y = _stream(key, 100)
    sizes, acts, loss = NETS[key]
    for k in range(len(U)):
        integ.step(U[k], Y[k])
        opt.zero_grad()
        mlp_loss(params, U[k], Y[k], acts, loss).backward()
        opt.step()
    for n, p in zip(names, params):
        np.testing.assert_allclose(integ.weights[n], p.detach().numpy(), rtol=0, atol=1e-9)
        assert not integ.costates[n].any()


def test_float32_follows_float64(load):
    key = "tanh_squared"
    mod = load(_system(key, 0.3), name=key)
    a, b = mod.Integrator(seed=0), mod.Integrator(seed=0, dtype=np.float32)
    U, Y = _stream(key, 200)
    la, lb = a.run(U, Y), b.run(U, Y)
    assert b.weights["W1"].dtype == np.float32
    np.testing.assert_allclose(lb, la, rtol=1e-4, atol=1e-5)
    for n in a.weights:
        np.testing.assert_allclose(b.weights[n], a.weights[n], rtol=1e-4, atol=1e-5)


def test_weights_that_read_each_other_still_follow_sgd(load):
    """h = tanh((W1 * W2) @ u): each factor's gradient reads the other factor, so the
    generator must store a gradient before the other factor moves (and gives up
    fusing the message of V into V's pass when that would reorder the updates)."""
    net = hs.Network("factors")
    u, y = net.input("u", 3), net.target("y", 2)
    W1, W2, V = net.weight("W1", (4, 3)), net.weight("W2", (4, 3)), net.weight("V", (2, 4))
    h = net.instant("h", hs.tanh((W1 * W2) @ u))
    net.loss(hs.sum_squares(V @ h - y) / 2)
    mod = load(hs.derive(net, gamma=GAMMA, beta=BETA, theta=0.3, delta=DELTA))
    assert "_g_W2" in mod.WORK                            # stored before W1 moved
    integ = mod.Integrator(seed=0)
    params = tensors(integ.weights, ["W1", "W2", "V"])
    opt = torch.optim.SGD(params, lr=DELTA ** 2 * BETA * GAMMA, momentum=0.7)
    U, Y = np.random.default_rng(2).normal(size=(50, 3)), np.random.default_rng(3).normal(size=(50, 2))
    for k in range(50):
        integ.step(U[k], Y[k])
        opt.zero_grad()
        a, b, v = params
        ((v @ torch.tanh((a * b) @ torch.tensor(U[k])) - torch.tensor(Y[k])) ** 2).sum().div(2).backward()
        opt.step()
    for n, p in zip(["W1", "W2", "V"], params):
        np.testing.assert_allclose(integ.weights[n], p.detach().numpy(), rtol=0, atol=1e-12)
