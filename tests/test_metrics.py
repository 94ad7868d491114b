"""Metrics and baselines measured in the compiled loop, against numpy.

The reference is independent of the compiled metrics: a second learner of the same
seed steps in a Python loop, and before each step the prediction is read from what
the network computes (forward(), the states, or numpy from the weights); MAE, RMSE,
accuracy and the baselines are then plain numpy over those predictions and the
targets.
"""

import math

import numpy as np
import pytest

import hamsym as hs
from hamsym.codegen.metrics import find_pair


def _readme_net():
    """The README's network: the prediction W2 @ h + b2 is no named neuron."""
    net = hs.Network("readme_like")
    u, y = net.input("u", 3), net.target("y", 2)
    W1, b1 = net.weight("W1", (6, 3)), net.weight("b1", 6)
    W2, b2 = net.weight("W2", (2, 6)), net.weight("b2", 2)
    h = net.instant("h", hs.tanh(W1 @ u + b1))
    net.loss(hs.sum_squares(y - (W2 @ h + b2)) / 2 + 0.001 * hs.sum_squares(W1))
    return net


# name -> (network, the prediction before step k from a learner stepped in Python)
NETS = {
    "mlp_mse": (lambda: hs.zoo.mlp([3, 6, 2], loss="mse"),
                lambda lrn, u: lrn.forward(u)["o"]),
    "delay": (lambda: hs.zoo.delay_network([3, 5, 2]),          # the prediction is a state
              lambda lrn, u: lrn.states["x2"].copy()),
    "readme_like": (_readme_net,
                    lambda lrn, u: lrn.weights["W2"] @ lrn.forward(u)["h"] + lrn.weights["b2"]),
}


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    folder = tmp_path_factory.mktemp("metrics")
    cache = {}

    def get(name):
        if name not in cache:
            net = NETS[name][0]() if name in NETS else hs.zoo.mlp(
                [4, 6, 3], loss="cross_entropy", name="classifier")
            cache[name] = hs.load(hs.derive(net), folder / f"{name}.py")
        return cache[name]
    return get


def _stream(n_in, n_out, T=600, seed=0):
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(T, n_in))
    Y = np.tanh(U[:, :n_out] + 0.5 * np.roll(U[:, :n_out], 1, axis=1)) + 2.0 + \
        0.1 * rng.normal(size=(T, n_out))
    return U, Y


def _predictions(mod, read, U, Y, **kw):
    """The prediction before each step, from a learner stepped in Python."""
    learner = mod.Integrator(seed=3, **kw)
    out = []
    for u, y in zip(U, Y):
        out.append(np.array(read(learner, u), float).reshape(-1))
        learner.step(u, y)
    return np.array(out)


def _baseline(Y, kind):
    """Each step's baseline prediction from the targets before it (0 at the first,
    which is not measured: nothing came before it)."""
    before = np.vstack([np.zeros((1, Y.shape[1])), Y[:-1]])
    if kind == "last":
        return before
    counts = np.arange(len(Y))[:, None]
    with np.errstate(invalid="ignore"):
        return np.where(counts > 0, np.cumsum(before, axis=0) / np.maximum(counts, 1), 0.0)


def _figures(P, Y, first=0):
    """MAE and RMSE from step `first` on (the first step of a run is not measured)."""
    e = (P - Y)[first:]
    return {"mae": np.abs(e).mean(), "rmse": math.sqrt((e * e).mean())}


@pytest.mark.parametrize("name", list(NETS))
def test_regression_metrics_equal_numpy_over_independent_predictions(modules, name):
    mod = modules(name)
    assert mod.METRICS["kind"] == "regression" and mod.METRICS["keys"] == ["mae", "rmse"]
    U, Y = _stream(3, 2)
    P = _predictions(mod, NETS[name][1], U, Y)
    plain = mod.Integrator(seed=3).run(U, Y)
    for baseline in ("mean", "last"):
        learner = mod.Integrator(seed=3)
        losses, m = learner.run(U, Y, metrics=["mae", "rmse"]) if baseline == "mean" else \
            (learner.run(U, Y, metrics=mod.Metrics(baseline="last")), None)
        np.testing.assert_array_equal(losses, plain)          # measuring changes nothing
        if m is None:
            continue
        got = m.summary()
        for key, value in _figures(P, Y, 1).items():
            assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
        for key, value in _figures(_baseline(Y, "mean"), Y, 1).items():
            assert got[f"{key}_baseline"] == pytest.approx(value, rel=1e-12), key
    m = mod.Metrics(baseline="last")
    mod.Integrator(seed=3).run(U, Y, metrics=m)
    for key, value in _figures(_baseline(Y, "last"), Y, 1).items():
        assert m.summary()[f"{key}_baseline"] == pytest.approx(value, rel=1e-12), key
    assert m.steps == len(Y) - 1 and "mae" in str(m) and "previous step" in str(m)


def test_chunks_split_calls_and_record_rows(modules):
    mod = modules("mlp_mse")
    U, Y = _stream(3, 2, T=1000, seed=1)
    P = _predictions(mod, NETS["mlp_mse"][1], U, Y)
    # run_stream: one row per chunk, each over its chunk's steps
    learner, m = mod.Integrator(seed=3), mod.Metrics(baseline="last")
    learner.run_stream(zip(U, Y), chunk=300, metrics=m)
    table = m.table()
    np.testing.assert_array_equal(table["step"], [299, 599, 899, 999])
    B = _baseline(Y, "last")
    for row, (a, b) in enumerate([(1, 300), (300, 600), (600, 900), (900, 1000)]):
        for key, value in _figures(P[a:b], Y[a:b]).items():
            assert table[key][row] == pytest.approx(value, rel=1e-12)
        for key, value in _figures(B[a:b], Y[a:b]).items():
            assert table[f"{key}_baseline"][row] == pytest.approx(value, rel=1e-12)
    # two calls measure as one: the baseline remembers the targets before
    whole, parts = mod.Metrics(), mod.Metrics()
    mod.Integrator(seed=3).run(U, Y, metrics=whole)
    learner = mod.Integrator(seed=3)
    learner.run(U[:437], Y[:437], metrics=parts)
    learner.run(U[437:], Y[437:], metrics=parts)
    assert parts.summary() == pytest.approx(whole.summary(), rel=1e-13)
    # recorded like the loss: each row holds its step's own figures
    losses, rec = mod.Integrator(seed=3).run(U, Y, record=["loss", "mae", "rmse_baseline"],
                                             every=7)
    steps = rec["step"]
    np.testing.assert_array_equal(steps, np.arange(6, 1000, 7))
    np.testing.assert_allclose(rec["mae"], np.abs(P - Y).mean(axis=1)[steps], rtol=1e-12)
    mean = _baseline(Y, "mean")
    np.testing.assert_allclose(rec["rmse_baseline"],
                               np.sqrt(((mean - Y) ** 2).mean(axis=1))[steps], rtol=1e-12)
    np.testing.assert_array_equal(rec["loss"], losses[steps])
    _, rec = mod.Integrator(seed=3).run(U[:3], Y[:3], record=["mae", "mae_baseline"])
    assert rec["mae"][0] == pytest.approx(np.abs(P[0] - Y[0]).mean(), rel=1e-12)
    assert np.isnan(rec["mae_baseline"][0])          # nothing to predict the first from


def test_original_units_map_the_prediction_back(modules):
    mod = modules("mlp_mse")
    U, Z = _stream(3, 2, T=300, seed=2)
    rng = np.random.default_rng(5)
    scale, centre = rng.uniform(0.5, 3, size=Z.shape), rng.normal(size=Z.shape) * 10
    Y = Z * scale + centre                              # the "original" targets
    P = _predictions(mod, NETS["mlp_mse"][1], U, Z) * scale + centre
    m = mod.Metrics(baseline="last").original_units(Y, centre, scale)
    mod.Integrator(seed=3).run(U, Z, metrics=m)
    for key, value in _figures(P, Y, 1).items():
        assert m.summary()[key] == pytest.approx(value, rel=1e-12)
    for key, value in _figures(_baseline(Y, "last"), Y, 1).items():
        assert m.summary()[f"{key}_baseline"] == pytest.approx(value, rel=1e-12)


def test_accuracy_and_the_majority_class(modules):
    mod = modules("classifier")
    assert mod.METRICS["kind"] == "classification" and mod.METRICS["keys"] == ["accuracy"]
    rng = np.random.default_rng(4)
    U = rng.normal(size=(800, 4))
    labels = np.where(U[:, 0] + 0.3 * U[:, 1] > 0.4, 2, np.where(U[:, 2] > 0.5, 1, 0))
    Y = np.eye(3)[labels]
    learner = mod.Integrator(seed=1)
    logits = []
    for u, y in zip(U, Y):
        logits.append(learner.forward(u)["o"].copy())
        learner.step(u, y)
    hits = np.argmax(logits, axis=1) == labels
    counts = np.vstack([np.zeros(3), np.cumsum(Y, axis=0)[:-1]])
    majority = np.argmax(counts, axis=1) == labels
    losses, m = mod.Integrator(seed=1).run(U, Y, metrics="accuracy")
    assert m.summary() == {"accuracy": hits[1:].mean(), "accuracy_baseline": majority[1:].mean()}
    assert m.summary()["accuracy"] > m.summary()["accuracy_baseline"]      # it learned


def test_bad_requests_name_the_argument(modules):
    mod = modules("mlp_mse")
    with pytest.raises(ValueError, match="'accuracy' is not offered .* regression loss"):
        mod.Metrics(["accuracy"])
    with pytest.raises(ValueError, match="'mape' is not offered"):
        mod.Integrator().run(*_stream(3, 2, T=5), metrics=["mape"])
    with pytest.raises(ValueError, match="baseline = 'majority'"):
        mod.Metrics(baseline="majority")
    with pytest.raises(ValueError, match="original_units was given 3 rows for a call of 5"):
        m = mod.Metrics().original_units(*np.zeros((3, 3, 2)))
        mod.Integrator().run(*_stream(3, 2, T=5), metrics=m)


@pytest.mark.fast
def test_which_prediction_meets_which_target():
    """The pair is read off the loss; where none is identifiable there is no metric."""
    pair, why = find_pair(_readme_net())
    assert why is None and pair.kind == "regression" and pair.target.name == "y"
    assert str(pair.prediction) == "W2 @ h + b2"
    for loss in ("mse", "squared", "cross_entropy"):
        pair, _ = find_pair(hs.zoo.mlp([2, 3], loss=loss))
        assert str(pair.prediction) == "o" and pair.target.name == "y"
        assert pair.kind == ("classification" if loss == "cross_entropy" else "regression")
    net = hs.Network("no_target")
    u, W = net.input("u", 2), net.weight("W", (2, 2))
    net.loss(hs.sum_squares(W @ u - u))                   # an autoencoder: no target
    assert find_pair(net)[0] is None and "no term" in find_pair(net)[1]
    net = hs.Network("two")
    u, y, z = net.input("u", 2), net.target("y", 2), net.target("z", 2)
    W = net.weight("W", (2, 2))
    net.loss(hs.sum_squares(W @ u - y) + hs.sum_squares(W @ u - z))
    assert find_pair(net)[0] is None and "2 predictions" in find_pair(net)[1]
    from hamsym.codegen.render import render
    text = render(hs.derive(net))                         # text only: nothing compiled
    assert "METRICS = {'kind': None, 'reason': 'the loss compares 2 predictions" in text
