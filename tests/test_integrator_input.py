"""Bad input to a generated Integrator is refused with an error naming the field,
and never reaches compiled code; a diverging loss stops a run at a known step."""

import copy

import numpy as np
import pytest

import hamsym as hs
from hamsym.declare.zoo import mlp, recurrent


@pytest.fixture
def mod(load):
    return load(hs.derive(mlp([3, 4, 2], name="checked"), theta=0.2, beta=0.5, delta=0.1))


@pytest.fixture
def rnn(load):
    return load(hs.derive(recurrent(2, 3, 1, name="checked_rnn"), theta=0.2, delta=0.1))


def _stream(T=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, 3)), rng.normal(size=(T, 2))


def _after(mod, U, Y):
    learner = mod.Integrator(seed=0)
    learner.run(U, Y)
    return learner


# -- run_stream samples ------------------------------------------------------------------------

@pytest.mark.parametrize("bad, error, message", [
    (lambda u, y: (u,), ValueError, r"sample 3: expected 2 items \(u, y\), got 1: y missing"),
    (lambda u, y: u, TypeError, r"sample 3: expected a tuple \(u, y\), got ndarray"),
    (lambda u, y: (u, y, y), ValueError, r"sample 3: expected 2 items \(u, y\), got 3: 1 extra"),
    (lambda u, y: (u, np.ones(3)), ValueError, r"sample 3: y has shape \(3,\), declared \(2,\)"),
    (lambda u, y: (u[:2], y), ValueError, r"sample 3: u has shape \(2,\), declared \(3,\)"),
    (lambda u, y: (u, 1.0), ValueError, r"sample 3: y has shape \(\), declared \(2,\)"),
    (lambda u, y: (u + 1j, y), TypeError, r"sample 3: u has dtype complex128"),
])
def test_run_stream_refuses_a_bad_sample_after_applying_the_ones_before(mod, bad, error, message):
    U, Y = _stream()
    samples = [(u, y) for u, y in zip(U, Y)]
    samples[3] = bad(U[3], Y[3])
    learner = mod.Integrator(seed=0)
    with pytest.raises(error, match=message):
        learner.run_stream(iter(samples), chunk=2)
    assert learner.step_count == 3
    reference = _after(mod, U[:3], Y[:3])
    for name, w in learner.weights.items():
        assert np.array_equal(w, reference.weights[name]), name


def test_run_stream_takes_lists_and_column_vectors(mod):
    U, Y = _stream()
    learner = mod.Integrator(seed=0)
    assert learner.run_stream([[u[:, None], list(y)] for u, y in zip(U, Y)], chunk=4) == 6
    assert np.array_equal(learner.weights["W1"], _after(mod, U, Y).weights["W1"])


# -- hyperparameters ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, value, message", [
    ("beta", float("nan"), "beta = nan: must be finite"),
    ("gamma", float("inf"), "gamma = inf: must be finite"),
    ("delta", 0.0, "delta = 0.0: the time step must be > 0"),
    ("delta", -0.1, "delta = -0.1"),
    ("flip", 0.5, "flip = 0.5: must be -1"),
    ("theta", 1j, "theta = 1j: expected a real number"),
    ("theta", "0.1", None),
])
def test_bad_hyperparameters_are_refused(mod, name, value, message):
    if message is None:                              # a numeric string is not a number
        with pytest.raises(TypeError):
            mod.Integrator(**{name: [1, 2]})
        return
    with pytest.raises((ValueError, TypeError), match=message):
        mod.Integrator(**{name: value})
    learner = mod.Integrator()
    with pytest.raises((ValueError, TypeError), match=message):
        learner.hyper[name] = value
    with pytest.raises((ValueError, TypeError), match=message):
        learner.hyper.update({name: value})
    assert np.isfinite(learner.step(np.ones(3), np.ones(2)))


def test_hyperparameters_rarely_meant_warn(mod):
    with pytest.warns(UserWarning, match="beta = -0.5 < 0"):
        mod.Integrator(beta=-0.5)
    with pytest.warns(UserWarning, match="theta = 1.5 > 1"):
        mod.Integrator().hyper["theta"] = 1.5
    with pytest.raises(KeyError, match="unknown hyperparameter 'thetta'"):
        mod.Integrator().hyper["thetta"] = 0.1
    with pytest.raises(TypeError, match="fixed"):
        del mod.Integrator().hyper["beta"]


# -- complex data --------------------------------------------------------------------------------

def test_complex_data_is_refused(mod, rnn):
    learner = mod.Integrator()
    U, Y = _stream()
    with pytest.raises(TypeError, match="u has dtype complex128"):
        learner.step(U[0] + 0j, Y[0])
    with pytest.raises(TypeError, match="y has dtype complex128"):
        learner.run(U, Y * 1j)
    with pytest.raises(TypeError, match="u has dtype complex"):
        learner.forward(U[0].astype(complex))
    with pytest.raises(TypeError, match="weight 'W1' has dtype complex128"):
        mod.Integrator(weights={"W1": np.ones((4, 3), complex)})
    with pytest.raises(TypeError, match="state 'x' has dtype complex128"):
        rnn.Integrator(states={"x": np.ones(3) * 1j})
    with pytest.raises(TypeError, match="costate 'A' has dtype complex128"):
        rnn.Integrator(costates={"A": np.ones((3, 3), complex)})
    assert learner.step_count == 0


# -- arrays assigned by name ------------------------------------------------------------------

def test_assigned_arrays_are_checked(mod, rnn):
    learner = mod.Integrator()
    with pytest.raises(ValueError, match=r"weight 'W1' has shape \(5, 5\), declared \(4, 3\)"):
        learner.weights["W1"] = np.zeros((5, 5))
    with pytest.raises(KeyError, match="unknown weight 'W9'"):
        learner.weights["W9"] = np.zeros((5, 5))
    with pytest.raises(TypeError, match="fixed"):
        learner.weights.pop("W1")
    with pytest.raises(KeyError, match="missing"):
        learner.weights = {"W1": np.zeros((4, 3))}
    with pytest.raises(ValueError, match=r"costate 'b1' has shape \(3,\)"):
        learner.costates.update(b1=np.zeros(3))
    learner.weights["W1"] = np.ones((4, 3), np.float32)     # converted, in a copy
    learner.weights["b1"] = np.ones((4, 1))                 # a column vector is a vector
    assert learner.weights["W1"].dtype == np.float64 and learner.weights["b1"].shape == (4,)
    learner.step(np.ones(3), np.ones(2))
    assert not np.array_equal(learner.weights["W1"], np.ones((4, 3)))   # the new array learns

    with pytest.raises(ValueError, match=r"weight 'W1' has shape \(3, 4\), declared \(4, 3\)"):
        learner.weights.update(W1=np.zeros((3, 4)))
    snapshot = copy.deepcopy(learner.weights)             # a plain dict of copies
    assert type(snapshot) is dict and snapshot["W1"] is not learner.weights["W1"]
    learner.weights = snapshot                            # checked, then live
    assert learner.weights["W1"] is snapshot["W1"]
    single = mod.Integrator(dtype="float32")
    single.weights = learner.weights                      # converted to float32 copies
    assert single.weights["W1"].dtype == np.float32 and single.weights is not learner.weights

    given = rnn.Integrator(costates={"x": [1.0, 2.0, 3.0]})
    assert np.array_equal(given.costates["x"], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"costate 'x' has shape \(2,\), declared \(3,\)"):
        rnn.Integrator(costates={"x": [1.0, 2.0]})


def test_run_of_one_sample_says_run_takes_streams(mod):
    U, Y = _stream()
    with pytest.raises(ValueError, match=r"u: run takes streams of shape \(T, 3\)"):
        mod.Integrator().run(U[0], Y[0])


# -- divergence --------------------------------------------------------------------------------

def test_a_non_finite_loss_stops_run_at_that_step(mod):
    U, Y = _stream(20)
    Y[7, 1] = 1e200                     # finite data whose squared error overflows
    learner = mod.Integrator(seed=0)
    learner.step(U[0], Y[0])
    learner.step(U[1], Y[1])
    with pytest.raises(FloatingPointError, match=r"at step 9 \(index 7 of this call\)") as info:
        learner.run(U, Y)
    assert (info.value.step, info.value.index, info.value.steps) == (9, 7, 8)
    assert learner.step_count == 10 and len(info.value.losses) == 8
    assert not np.isfinite(info.value.losses[-1]) and np.isfinite(info.value.losses[:-1]).all()

    with pytest.raises(FloatingPointError, match=r"at step 7 \(index 7 of this call\)"):
        mod.Integrator(seed=0).run_stream(zip(U, Y), chunk=3)
    with pytest.raises(FloatingPointError, match="at step 0 "):
        mod.Integrator(seed=0).step(U[7], Y[7])

    unchecked = mod.Integrator(seed=0, check_finite=False)
    losses = unchecked.run(U, Y)
    assert unchecked.step_count == 20 and not np.isfinite(losses[7])


# -- data that is not finite ---------------------------------------------------------------------

def _unchanged(learner, mod):
    fresh = mod.Integrator(seed=0)
    return learner.step_count == 0 and all(
        np.array_equal(w, fresh.weights[name]) for name, w in learner.weights.items())


def test_run_refuses_data_that_is_not_finite_before_learning(mod):
    U, Y = _stream(10)
    U[4, 1] = np.nan
    learner = mod.Integrator(seed=0)
    with pytest.raises(ValueError, match=r"^u\[4, 1\] is nan: the data must be finite numbers; "
                                         r"nothing was learned \(check_finite=False"):
        learner.run(U, Y)
    assert _unchanged(learner, mod)
    U, Y = _stream(10)
    Y[2, 0] = -np.inf
    with pytest.raises(ValueError, match=r"^y\[2, 0\] is -inf"):
        learner.run(U, Y)
    assert _unchanged(learner, mod)
    U[6, 0] = np.nan                    # the earliest row is named, whichever stream holds it
    with pytest.raises(ValueError, match=r"^y\[2, 0\] is -inf"):
        learner.run(U, Y)
    with pytest.raises(ValueError, match=r"^u\[1, 2\] is inf"):
        learner.run([[0, 0, 0], [0, 0, np.inf]], [[0, 0], [0, 0]])
    big = np.full((4, 3), 1e308)        # finite, though their sum is not
    learner.run(big, np.zeros((4, 2)))
    assert learner.step_count == 4
    unchecked = mod.Integrator(seed=0, check_finite=False)
    U, Y = _stream(10)
    U[4, 1] = np.nan
    losses = unchecked.run(U, Y)        # let in, on request
    assert unchecked.step_count == 10 and np.isnan(losses[4])


@pytest.mark.parametrize("bad, chunk, applied", [(4, 3, 4), (3, 3, 3), (0, 2, 0), (9, 4, 9)])
def test_run_stream_refuses_the_first_sample_that_is_not_finite(mod, bad, chunk, applied):
    U, Y = _stream(10)
    U[bad, 2] = np.nan
    learner = mod.Integrator(seed=0)
    with pytest.raises(ValueError, match=rf"^sample {bad}: u\[2\] is nan: the data must be finite "
                                         rf"numbers; the {applied} samples before it were applied "
                                         rf"\(step_count = {applied}\)"):
        learner.run_stream(zip(U, Y), chunk=chunk)
    assert learner.step_count == applied
    reference = _after(mod, U[:applied], Y[:applied])
    for name, w in learner.weights.items():
        assert np.array_equal(w, reference.weights[name]), name


def test_a_step_on_data_that_is_not_finite_names_it(mod):
    U, Y = _stream(1)
    Y[0, 1] = np.nan
    learner = mod.Integrator(seed=0)
    with pytest.raises(FloatingPointError, match=r"the loss is nan at step 0 \(index 0 of this "
                                                 r"call\): the sample's y\[1\] is nan: the data "
                                                 r"must be finite numbers. That step was applied"):
        learner.step(U[0], Y[0])
    assert learner.step_count == 1


def test_an_ensemble_refuses_data_that_is_not_finite(mod):
    U, Y = _stream(10)
    ensemble = mod.Ensemble(3)
    bad = np.array(U)
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"^u\[4, 1\] is nan: .*nothing was learned"):
        ensemble.run(bad, Y)
    own = np.stack([Y] * 3)
    own[2, 5, 0] = np.inf                   # learner 2's own stream
    with pytest.raises(ValueError, match=r"^y\[2, 5, 0\] is inf"):
        ensemble.run(U, own)
    with pytest.raises(ValueError, match=r"^sample 0: u\[1\] is nan: .*the 0 samples before it "
                                         r"were applied"):
        ensemble.run_stream(zip(bad[4:], Y), chunk=4)
    assert ensemble.step_count.tolist() == [0, 0, 0]
