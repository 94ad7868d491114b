"""Kernels whose row loops run on all threads (threads=True) compute the same bits as
single-threaded ones, also when called from inside another parallel loop."""

import re

import numba
import numpy as np
import pytest

import hamsym as hs
from hamsym.declare.zoo import mlp

SIZES = [5, 12, 9, 3]
STEPS = 15


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    net = mlp(SIZES, hs.tanh, loss="squared", name="threads_mlp")
    system = hs.derive(net, gamma=1.0, beta=1.0, theta=0.3, delta=0.1)
    folder = tmp_path_factory.mktemp("threads")
    return {t: hs.load(system, folder / f"threads_mlp_{t}.py", threads=t) for t in (True, False)}


def stream(seed=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(STEPS, SIZES[0])), 0.3 * rng.normal(size=(STEPS, SIZES[-1]))


def _parallel_kernels(text):
    """Kernels of the network compiled with parallel=True (the Ensemble's own loop over
    learners always is)."""
    found = re.findall(r"^@numba\.njit\(parallel=True, \*\*_(?:JIT|HOT)\)\ndef (\w+)\(", text, re.M)
    return set(found) - {"_ensemble_span"}


def test_threaded_module_uses_prange(modules):
    threaded, plain = (open(modules[t].__file__).read() for t in (True, False))
    assert any(k.startswith("update_") for k in _parallel_kernels(threaded))
    assert not _parallel_kernels(plain)
    assert "numba.prange" in threaded


def test_auto_threads_only_very_large_layers():
    """The default, threads="auto", threads loop nests of 2^20 weights or more."""
    def source(sizes):
        return hs.render(hs.derive(mlp(sizes, hs.tanh, loss="squared", name="wide"), theta=0.3))
    assert any(k.startswith("update_") for k in _parallel_kernels(source([8, 1024, 1024, 2])))
    assert not _parallel_kernels(source([8, 512, 1024, 2]))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_threaded_steps_are_bit_identical(modules, dtype):
    U, Y = (a.astype(dtype) for a in stream())
    learners = {t: m.Integrator(seed=4, dtype=dtype) for t, m in modules.items()}
    losses = {t: learner.run(U, Y) for t, learner in learners.items()}
    assert np.array_equal(losses[True], losses[False])
    for kind in ("weights", "costates"):
        a, b = (getattr(learners[t], kind) for t in (True, False))
        for name in a:
            assert np.array_equal(a[name], b[name]), (kind, name)
    moved = modules[False].Integrator(seed=4, dtype=dtype).weights["W2"]
    assert np.abs(learners[True].weights["W2"] - moved).max() > 1e-4
    outs = [learners[t].forward(U[0]) for t in (True, False)]
    for name in outs[0]:
        assert np.array_equal(outs[0][name], outs[1][name])


def test_threaded_step_inside_prange(modules):
    """Two learners stepped by a parallel loop that calls the module-level step kernel
    (which runs its own prange) match two learners stepped one after the other."""
    U, Y = stream(seed=5)
    mod = modules[True]
    mod.Integrator(seed=1).step(U[0], Y[0])     # a first, unnested launch picks the layer
    if numba.threading_layer() == "workqueue":
        pytest.skip("Numba's workqueue threading layer aborts on nested parallel loops")
    step = mod.step

    @numba.njit(parallel=True)
    def both(args0, args1):
        out = np.zeros(2)
        for k in numba.prange(2):
            if k == 0:
                out[k] = step(*args0)
            else:
                out[k] = step(*args1)
        return out

    def args(learner, t, shift):
        return (*learner._arrays(), U[t] + shift, Y[t], *learner._scalars(), *learner.work.values())

    together = [mod.Integrator(seed=s) for s in (1, 2)]
    alone = [modules[False].Integrator(seed=s) for s in (1, 2)]
    for t in range(STEPS):
        got = both(args(together[0], t, 0.0), args(together[1], t, 0.5))
        want = [alone[0].step(U[t], Y[t]), alone[1].step(U[t] + 0.5, Y[t])]
        assert np.array_equal(got, np.array(want, dtype=float))
    for a, b in zip(together, alone):
        for name in a.weights:
            assert np.array_equal(a.weights[name], b.weights[name])


def test_threads_option_is_checked(modules):
    net = mlp([2, 3, 1], hs.tanh, loss="squared", name="threads_bad")
    system = hs.derive(net, gamma=1.0, beta=1.0, theta=0.3, delta=0.1)
    with pytest.raises(ValueError, match="threads must be 'auto', True or False"):
        hs.generate(system, "unused_threads_bad.py", threads="many")
