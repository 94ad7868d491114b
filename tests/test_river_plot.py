"""The river adapter inside river's progressive validation, and the plot helpers."""

import numpy as np
import pytest

import hamsym as hs
from hamsym import streams
from hamsym.declare.zoo import mlp


def test_progressive_validation_matches_a_hand_loop(load):
    river = pytest.importorskip("river")
    from river import evaluate, metrics
    from hamsym.workbench.river import Regressor

    mod = load(hs.derive(mlp([6, 8, 1], name="trump_mlp"), beta=1.0, theta=0.1, delta=0.1))
    U, Y = streams.dataset("trump_approval")
    features = [f"f{j}" for j in range(6)]
    data = [(dict(zip(features, u)), float(y[0])) for u, y in zip(U, Y)]
    model = Regressor(mod.Integrator(seed=0), features=features)
    assert isinstance(model, river.base.Regressor)
    mae = evaluate.progressive_val_score(data, model, metrics.MAE()).get()

    hand = mod.Integrator(seed=0)               # predict, then learn: the same order by hand
    errors = []
    for u, y in zip(U, Y):
        errors.append(abs(hand.forward(u)["o"][0] - y[0]))
        hand.step(u, y)
    assert abs(mae - np.mean(errors)) < 1e-12
    assert mae < 0.5 * np.abs(Y - Y.mean()).mean()     # far better than predicting the mean
    for name in hand.weights:
        np.testing.assert_array_equal(hand.weights[name], model.learner.weights[name])


def test_classifier_on_phishing(load):
    pytest.importorskip("river")
    from river import evaluate, metrics
    from hamsym.workbench.river import Classifier

    mod = load(hs.derive(mlp([9, 8, 2], loss="cross_entropy", name="phish"), beta=1.0, theta=0.1,
                         delta=0.3))
    U, Y = streams.dataset("phishing")
    data = [(dict(enumerate(u)), bool(y[1])) for u, y in zip(U, Y)]
    model = Classifier(mod.Integrator(seed=0), classes=[False, True], features=range(9))
    acc = evaluate.progressive_val_score(data, model, metrics.Accuracy()).get()
    assert acc > 0.8, acc
    proba = model.predict_proba_one(data[0][0])
    assert abs(sum(proba.values()) - 1) < 1e-12


def test_plots_write_figures(tmp_path):
    pytest.importorskip("matplotlib")
    from hamsym import plot
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(plot.moving_average([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    plot.losses({"a": rng.random(1000), "b": rng.random(1000) / 2}, window=50,
                save=tmp_path / "losses.png")
    t = np.arange(500) * 0.1
    plot.signal(np.sin(t), np.sin(t + 0.1), delta=0.1, split=300, save=tmp_path / "signal.png")
    plot.frequencies(np.cumsum(rng.normal(size=(100, 4)), 0), delta=0.1, every=10,
                     targets=[0.05], save=tmp_path / "freq.png")
    for name in ("losses", "signal", "freq"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5000
