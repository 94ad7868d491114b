"""Integrator.predict: the network running on its own, against a PyTorch simulation
of the same dynamics; nothing learns, and the states advance as run() advances them."""

import warnings

import numpy as np
import pytest
import torch

import hamsym as hs
from hamsym.declare.zoo import delay_network, oscillator_bank, recurrent

T, DELTA = 40, 0.1


def _torch(learner):
    return {k: torch.tensor(v.copy()) for k, v in learner.weights.items()}


def _start(mod, seed=0):
    learner = mod.Integrator(seed=seed)
    rng = np.random.default_rng(seed)
    for name, a in learner.states.items():
        a[...] = rng.normal(size=a.shape)
    return learner


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_recurrent_matches_torch(load, kind):
    net = recurrent(2, 5, 3, kind=kind, tau=2.5, name=f"pred_rnn_{kind}")
    learner = _start(load(hs.derive(net, theta=0.1, delta=DELTA)))
    U = np.random.default_rng(1).normal(size=(T, 2))
    w, x = _torch(learner), torch.tensor(learner.states["x"].copy())
    xs, os = [], []
    for u in torch.tensor(U):
        xs.append(x)
        os.append(w["C"] @ x + w["c"])
        g = torch.tanh(w["A"] @ x + w["B"] @ u + w["b"])
        x = g if kind == "discrete" else x + DELTA * (g - x) / 2.5
    out = learner.predict(U)
    np.testing.assert_allclose(out["x"], torch.stack(xs).numpy(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(out["o"], torch.stack(os).numpy(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(learner.states["x"], x.numpy(), rtol=0, atol=1e-13)


@pytest.mark.parametrize("scheme", ["local", "nonlocal"])
def test_delay_network_matches_torch(load, scheme):
    """local: one layer per step (pipelined); nonlocal: each layer is its own component,
    so the sweep carries the input through every layer within one step."""
    net = delay_network([3, 4, 4, 2], name="pred_delay")
    learner = _start(load(hs.derive(net, theta=0.1, delta=DELTA), scheme=scheme))
    U = np.random.default_rng(2).normal(size=(T, 3))
    w = _torch(learner)
    xs = [torch.tensor(learner.states[f"x{l}"].copy()) for l in (1, 2, 3)]
    record = []
    for u in torch.tensor(U):
        record.append([x.clone() for x in xs])
        below, new = u, []
        for l in (1, 2, 3):
            new.append(torch.tanh(w[f"W{l}"] @ below + w[f"b{l}"]))
            below = new[-1] if scheme == "nonlocal" else xs[l - 1]
        xs = new
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # no warning, even with beta = 0
        learner.hyper["beta"] = 0.0
        out = learner.predict(U)
    for l in (1, 2, 3):
        np.testing.assert_allclose(out[f"x{l}"], torch.stack([r[l - 1] for r in record]).numpy(),
                                   rtol=0, atol=1e-13)


def test_predict_learns_nothing_and_can_keep_the_states(load):
    mod = load(hs.derive(recurrent(2, 4, 1, name="pred_keep"), theta=0.1, delta=DELTA))
    learner = _start(mod)
    learner.run(np.ones((3, 2)), np.ones((3, 1)))      # costates are non-zero now
    before = {k: {n: a.copy() for n, a in getattr(learner, k).items()}
              for k in ("weights", "costates", "states")}
    U = np.random.default_rng(3).normal(size=(T, 2))
    first = learner.predict(U, keep_states=True)
    for kind, arrays in before.items():
        for name, a in arrays.items():
            assert np.array_equal(getattr(learner, kind)[name], a), (kind, name)
    assert learner.step_count == 3
    again = learner.predict(U)
    assert np.array_equal(first["o"], again["o"])
    assert not np.array_equal(learner.states["x"], before["states"]["x"])


@pytest.mark.parametrize("scheme", ["local", "nonlocal"])
def test_states_advance_exactly_as_run_advances_them(load, scheme):
    """With the weights frozen, run() and predict() move the states through the same
    values, to the bit (the same sweep, lowered from the same expressions)."""
    mod = load(hs.derive(delay_network([3, 4, 4, 2], name="pred_delay"), theta=0.1,
                         delta=DELTA), scheme=scheme)
    U, Y = np.random.default_rng(4).normal(size=(T, 3)), np.zeros((T, 2))
    ran, predicted = _start(mod), _start(mod)
    ran.hyper["beta"] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ran.run(U, Y)
    predicted.predict(U)
    for name, a in ran.states.items():
        assert np.array_equal(predicted.states[name], a), name


def test_a_network_without_input_takes_a_number_of_steps(load):
    mod = load(hs.derive(oscillator_bank(2, name="pred_osc"), delta=DELTA))
    bank = mod.Integrator(weights={"w": [0.5, 1.5], "Ca": [[1.0, 0.0]], "Cb": [[0.0, 1.0]]},
                          states={"a": np.ones(2)})
    out = bank.predict(steps=T)
    k = np.arange(T)
    np.testing.assert_allclose(out["o"][:, 0], np.cos(0.5 * DELTA * k) - np.sin(1.5 * DELTA * k),
                               atol=1e-12)                 # exact rotations
    for wrong in ((), (np.ones((T, 1)),)):
        with pytest.raises(TypeError, match=r"has no input: .*predict\(steps=T\)"):
            bank.predict(*wrong)


def test_predict_refuses_complex_and_unequal_streams(load):
    mod = load(hs.derive(recurrent(2, 4, 1, name="pred_keep"), theta=0.1, delta=DELTA))
    with pytest.raises(TypeError, match="u has dtype complex128"):
        mod.Integrator().predict(np.ones((3, 2), complex))
    with pytest.raises(ValueError, match="same length"):
        mod.Integrator().predict(np.ones((3, 2)), steps=4)
