"""Integrator.step() binds the learner's arrays once and passes the compiled code only
the sample. Reference: the module-level step() kernel, called with every array of the
learner by name as its docstring lays them out, and run() over the same samples; the
results must be bit-identical. Then the bugs binding invites: after an array, a whole
dict or a hyperparameter is replaced, or a learner restored, step() must see the new
values (and leave the replaced arrays alone)."""

import inspect
import pickle
import warnings

import numpy as np
import pytest

import hamsym as hs
from hamsym.declare.zoo import mlp, oscillator_bank, recurrent

def _free():
    """No input, no target: step() takes no arguments (run() takes no stream either)."""
    net = hs.Network("bound_free")
    x = net.state("x", 3)
    net.dynamics(x, (hs.tanh(net.weight("W", (3, 3)) @ x) - x) / net.delta)
    net.loss(hs.sum_squares(x) / 2)
    return net


# the first two are the systems of test_integrator_input.py (the session compiles each
# module once)
NETS = {
    "mlp": lambda: hs.derive(mlp([3, 4, 2], name="checked"), theta=0.2, beta=0.5, delta=0.1),
    "rnn": lambda: hs.derive(recurrent(2, 3, 1, name="checked_rnn"), theta=0.2, delta=0.1),
    "oscillators": lambda: hs.derive(oscillator_bank(3, name="bound_osc"), theta=0.3,
                                     theta_neurons=0.1, delta=0.1),
    "free": lambda: hs.derive(_free(), theta=0.2, delta=0.1),
}


def _samples(mod, T, seed, dtype):
    rng = np.random.default_rng(seed)
    data = {**mod.INPUTS, **mod.TARGETS}
    return [{name: rng.normal(size=shape).astype(dtype) for name, shape in data.items()}
            for _ in range(T)]


def _learner(mod, dtype, seed=0):
    """Random weights, states and costates: every term of the step is live."""
    rng = np.random.default_rng(seed + 100)
    return mod.Integrator(seed=seed, dtype=dtype,
                          states={n: rng.normal(size=s) for n, s in mod.STATES.items()},
                          costates={n: 0.1 * rng.normal(size=s)
                                    for n, s in {**mod.WEIGHTS, **mod.STATES}.items()})


def _kernel_step(mod, learner, sample, work):
    """One step by the module-level kernel, every argument named by its parameter."""
    h = dict(learner.hyper)
    if h["theta_neurons"] is None:
        h["theta_neurons"] = h["theta"]
    args = []
    for name in inspect.signature(mod.step.py_func).parameters:
        if name in mod.WEIGHTS:
            args.append(learner.weights[name])
        elif name in mod.STATES:
            args.append(learner.states[name])
        elif name.startswith("p_") and name[2:] in learner.costates:
            args.append(learner.costates[name[2:]])
        elif name in sample:
            args.append(sample[name])
        elif name in h:
            args.append(float(h[name]))
        else:
            args.append(work.setdefault(name, np.zeros(mod.WORK[name], learner.dtype)))
    learner.step_count += 1
    return mod.step(*args)


def _arrays(learner):
    return {f"{kind}/{name}": a.copy() for kind in ("weights", "states", "costates")
            for name, a in getattr(learner, kind).items()}


def _same(a, b):
    a, b = _arrays(a), _arrays(b)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key


@pytest.mark.parametrize("key, dtype", [("mlp", "float64"), ("mlp", "float32"),
                                        ("rnn", "float64"), ("rnn", "float32"),
                                        ("oscillators", "float64"), ("free", "float64")])
def test_bound_step_is_the_kernel_and_run(load, key, dtype):
    mod = load(NETS[key]())
    samples = _samples(mod, 25, seed=1, dtype=dtype)
    bound, kernel, batch = (_learner(mod, dtype) for _ in range(3))
    work = {}
    got = [bound.step(*s.values()) for s in samples]
    want = [_kernel_step(mod, kernel, s, work) for s in samples]
    assert got == want and bound.step_count == len(samples)
    _same(bound, kernel)
    if samples[0]:
        losses = batch.run(*(np.array([s[n] for s in samples]) for n in samples[0]))
        assert np.array_equal(np.array(got), losses) and batch.step_count == len(samples)
        _same(bound, batch)
    assert any(not np.array_equal(a, b) for a, b in
               zip(_arrays(bound).values(), _arrays(_learner(mod, dtype)).values()))


def _twins(mod, dtype="float64"):
    """A learner stepped by step() and one stepped by run() on one-row streams."""
    return _learner(mod, dtype), _learner(mod, dtype)


def _both(pair, samples):
    a, b = pair
    for s in samples:
        la = a.step(*s.values())
        lb = b.run(*(v[None] for v in s.values()))[0]
        assert la == lb
    _same(a, b)


@pytest.mark.parametrize("key", ["mlp", "rnn"])
def test_bound_step_sees_what_was_set(load, key, tmp_path):
    mod = load(NETS[key]())
    samples = _samples(mod, 40, seed=2, dtype="float64")
    rng = np.random.default_rng(3)
    pair = _twins(mod)
    _both(pair, samples[:4])

    # one array replaced by name; the old one is no longer written
    name = next(iter(mod.WEIGHTS))
    old = pair[0].weights[name]
    kept = old.copy()
    new = rng.normal(size=mod.WEIGHTS[name])
    for learner in pair:
        learner.weights[name] = new.copy()
    _both(pair, samples[4:8])
    assert np.array_equal(old, kept)

    # a costate changed in place, a state costate replaced through update()
    for learner in pair:
        learner.costates[name] *= 0.5
        learner.costates.update({n: np.full(s, 0.25) for n, s in mod.STATES.items()})
    _both(pair, samples[8:12])

    # whole dicts replaced: the new arrays are live, the old ones left alone
    for kind in ("weights", "states", "costates"):
        values = {n: rng.normal(size=a.shape) for n, a in getattr(pair[0], kind).items()}
        olds = [dict(getattr(learner, kind)) for learner in pair]
        kept = {n: a.copy() for n, a in olds[0].items()}
        for learner in pair:
            setattr(learner, kind, {n: v.copy() for n, v in values.items()})
        _both(pair, samples[12:14])
        assert all(np.array_equal(olds[0][n], kept[n]) for n in kept), kind

    # one learner's dict given to another: shared, and sets on it reach both. (Each
    # set, on any learner, makes every learner rebind: in-place writes here, so that
    # only the assignment tells pair[0] to.)
    other = _learner(mod, "float64", seed=5)
    _both(pair, samples[14:15])
    for n, a in other.weights.items():
        pair[1].weights[n][...] = a
    pair[0].weights = other.weights
    _both(pair, samples[15:16])
    other.weights[name] = np.zeros(mod.WEIGHTS[name])
    pair[1].weights[name] = np.zeros(mod.WEIGHTS[name])
    _both(pair, samples[16:17])
    assert pair[0].weights[name] is other.weights[name]
    assert not np.array_equal(other.weights[name], 0)

    # hyperparameters: by name (beta, theta_neurons unset and set), then as a whole
    for change in ({"beta": 0.7}, {"theta_neurons": 0.05}, {"theta_neurons": None},
                   {"theta": 0.4, "delta": 0.05}):
        for learner in pair:
            learner.hyper.update(change)
        _both(pair, samples[17:18])
    for learner in pair:
        learner.hyper = {**learner.hyper, "gamma": 0.9}
    _both(pair, samples[18:20])

    # restored and unpickled learners step on their own arrays, not the saved one's
    restored = type(pair[0]).restore(pair[0].save(tmp_path / "l.npz"))
    copied = pickle.loads(pickle.dumps(pair[0]))
    before = _arrays(pair[0])
    _both((restored, pair[1]), samples[20:24])
    _both((copied, _learner_like(pair[0])), samples[20:24])
    _same(copied, restored)
    assert all(np.array_equal(before[k], v) for k, v in _arrays(pair[0]).items())
    _both((pair[0], _learner_like(pair[0])), samples[20:24])
    _same(pair[0], restored)


def _learner_like(learner):
    """A copy by run()'s path: the same arrays and values, its own storage."""
    return pickle.loads(pickle.dumps(learner))


def test_bound_step_checks_and_converts_the_sample(load):
    mod = load(NETS["mlp"]())
    U = np.random.default_rng(4).normal(size=(6, 3))
    Y = np.random.default_rng(5).normal(size=(6, 2))
    fast, slow = mod.Integrator(seed=0), mod.Integrator(seed=0)
    wide = np.zeros((6, 6))
    wide[:, ::2] = U                                          # rows strided
    for k in range(3):
        assert fast.step(wide[k, ::2], list(Y[k])) == slow.run(U[k:k + 1], Y[k:k + 1])[0]
    assert fast.step(U[3].astype(np.float32), Y[3]) == \
        slow.run(U[3:4].astype(np.float32).astype(np.float64), Y[3:4])[0]
    _same(fast, slow)
    single = mod.Integrator(seed=0, dtype="float32")
    twin = mod.Integrator(seed=0, dtype="float32")
    assert single.step(U[0], Y[0]) == twin.run(U[:1].astype(np.float32), Y[:1])[0]
    _same(single, twin)
    with pytest.raises(ValueError, match=r"u: expected shape \(3,\), got \(4,\)"):
        fast.step(np.zeros(4), Y[0])
    with pytest.raises(TypeError, match="y has dtype complex128"):
        fast.step(U[0], Y[0] + 1j)
    with pytest.raises(ValueError, match=r"u: expected shape \(3,\), got \(3, 1\)"):
        fast.step(U[0][:, None], Y[0])
    with pytest.raises(ValueError, match=r"y: expected shape \(2,\), got \(3,\)"):
        fast.step(U[0], U[0])                    # a 1-D sample: the compiled step refuses it
    assert fast.step_count == 4
    _same(fast, slow)                            # the refused samples changed nothing

    # a read-only sample is taken as it is (copied); after any refused sample the
    # learner checks samples in Python until one needs nothing, then goes back
    frozen = U[4].copy()
    frozen.flags.writeable = False
    assert fast.step(frozen, Y[4]) == slow.run(U[4:5], Y[4:5])[0]
    assert fast._stepper == fast._checked
    assert fast.step(U[5], Y[5]) == slow.run(U[5:6], Y[5:6])[0]
    assert fast._stepper is fast._compiled_step()
    _same(fast, slow)


def test_bound_step_warns_of_frozen_weights_when_beta_becomes_zero(load):
    mod = load(NETS["mlp"]())
    learner = mod.Integrator(seed=0)
    u, y = np.ones(3), np.ones(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learner.step(u, y)
    learner.hyper["beta"] = 0.0
    with pytest.warns(UserWarning, match="frozen: beta = 0") as record:
        learner.step(u, y)
    assert record[0].filename == __file__                      # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learner.step(u, y)                                     # once per learner


def test_arrays_put_in_around_the_checks_are_refused(load):
    mod = load(NETS["mlp"]())
    learner = mod.Integrator(seed=0)
    dict.__setitem__(learner.weights, "W1", np.zeros((2, 2)))
    learner.hyper["beta"] = 0.5                                # rebinds
    with pytest.raises(TypeError, match=r"weights\['W1'\] is not a writable, aligned, "
                                        r"C-ordered float64 array of shape \(4, 3\)"):
        learner.step(np.ones(3), np.ones(2))
