"""Per-weight gamma, beta and theta (hamsym.codegen.per_weight), against torch.

Reference: torch.optim.SGD with one parameter group per weight group, float64, on the
same network written by hand (tests/torch_reference.py). Non-local HL with flip = -1
is SGD with momentum; a weight with its own values is its own group:
lr_w = delta^2 * beta_w * gamma_w, momentum_w = 1 - theta_w.
"""

import math
from pathlib import Path
import warnings

import numpy as np
import pytest
import torch

import hamsym as hs
from hamsym.declare.zoo import mlp
from torch_reference import mlp_loss, tensors

DELTA, BETA, GAMMA, THETA = 0.1, 0.2, 0.5, 0.3
NETS = {"tanh_squared": ([4, 16, 2], ["tanh"], "squared"),
        "ce_3layer": ([5, 8, 6, 3], ["tanh", "sigmoid"], "cross_entropy")}


def _system(key):
    sizes, acts, loss = NETS[key]
    net = mlp(sizes, [getattr(hs, a) for a in acts], loss=loss, name=f"pw_{key}")
    return hs.derive(net, gamma=GAMMA, beta=BETA, theta=THETA, flip=-1.0, delta=DELTA)


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """{key: (module without per-weight values, module with them for every weight)}."""
    folder = tmp_path_factory.mktemp("per_weight")
    return {key: (hs.load(_system(key), folder / f"pw_plain_{key}.py"),
                  hs.load(_system(key), folder / f"pw_all_{key}.py", per_weight=True))
            for key in NETS}


def _stream(key, steps, seed=1):
    sizes, _, loss = NETS[key]
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(steps, sizes[0]))
    Y = rng.normal(size=(steps, sizes[-1])) if loss == "squared" else \
        np.eye(sizes[-1])[rng.integers(0, sizes[-1], steps)]
    return U, Y


def _torch_groups(weights, own):
    """SGD's parameter groups: each weight alone, with its own values or the global ones."""
    groups = []
    for name in weights:
        g, b, t = (own.get(k, {}).get(name, d) for k, d in
                   (("gamma", GAMMA), ("beta", BETA), ("theta", THETA)))
        p = torch.tensor(weights[name].copy(), requires_grad=True)
        groups.append({"params": [p], "lr": DELTA ** 2 * b * g, "momentum": 1 - t})
    return groups


def _expanded(own):
    """The dict arguments with groups (tuple keys) written out weight by weight."""
    return {kind: {w: v for key, v in values.items()
                   for w in (key if isinstance(key, tuple) else (key,))}
            for kind, values in own.items()}


OWN = {  # groups as a user writes them: a weight, or a tuple of weights
    "tanh_squared": {"beta": {"W1": 0.35, ("W2", "b2"): 0.05},
                     "theta": {"W1": 0.1, "b1": 0.7},
                     "gamma": {("W1", "b1"): 0.9, "W2": 0.25}},
    "ce_3layer": {"beta": {"W1": 0.5, "W3": 0.1}, "theta": {("W2", "b2"): 0.0},
                  "gamma": {"b3": 2.0, "W1": 0.2}},
}


@pytest.mark.parametrize("key", NETS)
def test_per_weight_values_are_sgd_with_parameter_groups(key, modules):
    mod = modules[key][1]
    own = OWN[key]
    integ = mod.Integrator(seed=0, **own)
    names = list(integ.weights)
    groups = _torch_groups(integ.weights, _expanded(own))
    params = [g["params"][0] for g in groups]
    opt = torch.optim.SGD(groups, lr=1.0, dampening=0, nesterov=False)
    U, Y = _stream(key, 400)
    _, acts, loss = NETS[key]
    worst = 0.0
    for k in range(len(U)):
        hl = integ.step(U[k], Y[k])
        opt.zero_grad()
        ref = mlp_loss(params, U[k], Y[k], acts, loss)
        ref.backward()
        opt.step()
        assert abs(hl - ref.item()) < 1e-9 * max(1.0, abs(ref.item()))
        worst = max(worst, max(np.abs(integ.weights[n] - p.detach().numpy()).max()
                               for n, p in zip(names, params)))
    assert worst < 1e-9
    # and the weights did not all move as the global values would have moved them
    plain = mod.Integrator(seed=0)
    plain.run(U, Y)
    assert max(np.abs(plain.weights[n] - integ.weights[n]).max() for n in names) > 1e-3


@pytest.mark.parametrize("key", NETS)
def test_global_values_everywhere_are_the_step_without_per_weight_bit_for_bit(key, modules):
    plain, own = modules[key]
    U, Y = _stream(key, 100, seed=2)
    a, b = plain.Integrator(seed=4), own.Integrator(seed=4)
    c = own.Integrator(seed=4, **{k: {w: v for w in own.WEIGHTS} for k, v in
                                  (("gamma", GAMMA), ("beta", BETA), ("theta", THETA))})
    la = [a.step(u, y) for u, y in zip(U, Y)]
    assert [b.step(u, y) for u, y in zip(U, Y)] == la
    assert list(c.run(U, Y)) == la
    for n in plain.WEIGHTS:
        assert np.array_equal(a.weights[n], b.weights[n])
        assert np.array_equal(a.weights[n], c.weights[n])


def test_a_per_weight_value_follows_the_global_one_until_set(modules):
    mod = modules["tanh_squared"][1]
    U, Y = _stream("tanh_squared", 50, seed=3)
    a = mod.Integrator(seed=1, beta=0.3)              # beta__W1 None: follows beta
    b = mod.Integrator(seed=1, beta=0.3, gamma={"W1": GAMMA})
    assert a.hyper["beta__W1"] is None
    assert np.array_equal(a.run(U, Y), b.run(U, Y))
    a.hyper["beta__W1"] = 0.0                         # set: W1 now stands still
    W1 = a.weights["W1"].copy()
    a.run(U, Y)
    assert np.array_equal(a.weights["W1"], W1)


def test_an_ensemble_sweeps_a_weight_s_beta_as_its_learners_would(modules):
    mod = modules["tanh_squared"][1]
    U, Y = _stream("tanh_squared", 120, seed=5)
    values = [0.1, 0.2, 0.3, 0.4]
    ens = mod.Ensemble(4, beta={"W1": values}, theta={("W2", "b2"): 0.6})
    losses = ens.run(U, Y)
    for i, v in enumerate(values):
        one = mod.Integrator(seed=i, beta={"W1": v}, theta={"W2": 0.6, "b2": 0.6})
        assert np.array_equal(one.run(U, Y), losses[i])
        assert np.array_equal(one.weights["W1"], ens.weights["W1"][i])
    assert ens.hyper["beta__W1"] == tuple(values)


def test_checkpoints_keep_the_per_weight_values(modules, tmp_path):
    mod = modules["tanh_squared"][1]
    U, Y = _stream("tanh_squared", 40, seed=6)
    a = mod.Integrator(seed=0, beta={"W1": 0.4}, theta={"b2": 0.9})
    a.run(U[:20], Y[:20])
    back = mod.Integrator.restore(a.save(tmp_path / "a.npz"))
    assert back.hyper == a.hyper and back.hyper["beta__W1"] == 0.4
    assert back.hyper["gamma__W1"] is None
    assert np.array_equal(back.run(U[20:], Y[20:]), a.run(U[20:], Y[20:]))
    over = mod.Integrator.restore(tmp_path / "a.npz", beta={"W1": 0.1})
    assert over.hyper["beta__W1"] == 0.1 and over.hyper["theta__b2"] == 0.9
    e = mod.Ensemble(2, beta={"W1": [0.1, 0.2]})
    e2 = mod.Ensemble.restore(e.save(tmp_path / "e.npz"))
    assert e2.hyper["beta__W1"] == (0.1, 0.2)


def test_refusals_name_the_argument(modules):
    plain, mod = modules["tanh_squared"]
    with pytest.raises(KeyError, match=r"beta=\{'W9': \.\.\.\}.*W1, b1, W2, b2"):
        mod.Integrator(beta={"W9": 0.1})
    with pytest.raises(KeyError, match=r"theta=\{\('W1', 'V'\).*'V' is not a weight"):
        mod.Integrator(theta={("W1", "V"): 0.1})
    with pytest.raises(TypeError, match=r"one beta for all weights.*per_weight=\['W1'\]"
                                        r".*\[hyper\.W1\]"):
        plain.Integrator(beta={"W1": 0.1})
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="beta__W1 = .*: must be finite"):
            mod.Integrator(beta={"W1": bad})
    with pytest.raises(ValueError, match="learner 1: beta__W1"):
        mod.Ensemble(2, beta={"W1": [0.1, math.nan]})
    with pytest.raises(ValueError, match="gamma__W1 = 1.0 with gamma = 0"):
        mod.Integrator(gamma=0.0, gamma__W1=1.0).step(
            *(a[0] for a in _stream("tanh_squared", 1)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mod.Integrator(beta={"W1": -0.1})
    assert any("beta__W1 = -0.1 < 0" in str(w.message) for w in caught)


def test_per_weight_option_refuses_what_it_cannot_use(tmp_path):
    system = _system("tanh_squared")
    with pytest.raises(KeyError, match="'V' is not a weight.*W1, b1, W2, b2"):
        hs.load(system, tmp_path / "pw_bad.py", per_weight=["W1", "V"])
    with pytest.raises(KeyError, match="'lr' is not a per-weight hyperparameter"):
        hs.load(system, tmp_path / "pw_bad.py", per_weight={"W1": {"lr": 0.1}})
    with pytest.raises(ValueError, match="expected a finite number"):
        hs.load(system, tmp_path / "pw_bad.py", per_weight={"W1": {"beta": math.inf}})


def test_defaults_given_at_generation_and_groups(tmp_path):
    mod = hs.load(_system("tanh_squared"), tmp_path / "pw_defaults.py",
                  per_weight={("W2", "b2"): {"beta": 0.05}, "W1": {"theta": 0.1}})
    assert mod.PER_WEIGHT == ("W1", "W2", "b2")       # declaration order
    assert mod.HYPER["beta__W2"] == mod.HYPER["beta__b2"] == 0.05
    assert mod.HYPER["theta__W1"] == 0.1 and mod.HYPER["beta__W1"] is None
    assert "beta__b1" not in mod.HYPER
    with pytest.raises(TypeError, match="one beta for all weights.*own: W1, W2, b2"):
        mod.Integrator(beta={"b1": 0.1})


@pytest.mark.parametrize("scheme", ["local", "nonlocal"])
def test_with_neuron_states_every_weight_s_own_value_is_the_global_one(scheme, tmp_path):
    """On a network with neuron states: the per-weight values set to another beta and
    theta on every weight are the module without them run with that global beta and
    theta (neurons keeping theta_neurons), bit for bit."""
    from hamsym.workbench.spec import load_spec
    spec = load_spec(Path(__file__).resolve().parent.parent / "examples/specs/delay.toml")
    plain = spec.load(tmp_path / f"pw_delay_{scheme}.py", scheme=scheme)
    own = spec.load(tmp_path / f"pw_delay_own_{scheme}.py", scheme=scheme, per_weight=True)
    rng = np.random.default_rng(0)
    data = [rng.normal(size=(80,) + s) for s in {**plain.INPUTS, **plain.TARGETS}.values()]
    theta_x = plain.HYPER["theta"]
    a = plain.Integrator(seed=0, beta=0.3, theta=0.05, theta_neurons=theta_x)
    every = tuple(own.WEIGHTS)
    b = own.Integrator(seed=0, beta={every: 0.3}, theta={every: 0.05})
    assert np.array_equal(a.run(*data), b.run(*data))
    for n in plain.WEIGHTS:
        assert np.array_equal(a.weights[n], b.weights[n])
    for n in plain.STATES:
        assert np.array_equal(a.costates[n], b.costates[n])
