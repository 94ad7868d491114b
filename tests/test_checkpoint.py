"""Checkpoints and pickles: a learner saved at step 1,000 and resumed in a fresh
process (cold and warm Numba cache) ends bit-identical to an uninterrupted run, in
float64 and in float32."""

import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hamsym as hs
from hamsym.declare.zoo import mlp, oscillator_bank, recurrent

STEPS, SAVE_AT = 2000, 1000


def _systems():
    kw = dict(theta=0.1, beta=0.5, delta=0.1)
    return {"mlp": hs.derive(mlp([3, 5, 2], name="ck_mlp"), **kw),
            "rnn": hs.derive(recurrent(2, 4, 1, kind="continuous", tau=2.0, name="ck_rnn"), **kw),
            "osc": hs.derive(oscillator_bank(3, 1, name="ck_osc"), gamma=1.0, beta=0.01,
                             theta=0.2, delta=0.1)}


# A child process: imports the generated modules by file (never hamsym), so Numba's
# cache is the only thing shared between processes.
_CHILD = textwrap.dedent("""
    import importlib.util, json, sys
    import numpy as np
    role, spec_file, out = sys.argv[1], sys.argv[2], sys.argv[3]
    result = {}
    for key, path, name, dtype in json.load(open(spec_file)):
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, path)
            sys.modules[name] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(sys.modules[name])
        mod = sys.modules[name]
        rng = np.random.default_rng(7)
        data = [rng.normal(size=(%(STEPS)d,) + shape).astype(dtype)
                for shape in {**mod.INPUTS, **mod.TARGETS}.values()]
        states = {"a": np.ones(3)} if "a" in mod.STATES else None
        if role == "first":
            whole = mod.Integrator(seed=1, states=states, dtype=dtype)
            whole.run(*data)
            half = mod.Integrator(seed=1, states=states, dtype=dtype)
            half.run(*(d[:%(SAVE_AT)d] for d in data))
            half.save(out + key + ".npz")
            learner = whole
        else:
            learner = mod.Integrator.restore(out + key + ".npz")
            assert learner.step_count == %(SAVE_AT)d and learner.dtype == dtype
            learner.run(*(d[%(SAVE_AT)d:] for d in data))
        assert learner.step_count == %(STEPS)d
        result[key] = {kind: {n: a.tolist() for n, a in getattr(learner, kind).items()}
                       for kind in ("weights", "states", "costates")}
    json.dump(result, open(out + role + ".json", "w"))
""" % dict(STEPS=STEPS, SAVE_AT=SAVE_AT))


def _child(role, spec_file, out, cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    res = subprocess.run([sys.executable, "-c", _CHILD, role, str(spec_file), str(out)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return json.load(open(f"{out}{role}.json"))


def test_resume_in_a_fresh_process_is_bit_identical(tmp_path):
    specs = []
    for key, system in _systems().items():
        for scheme in ("local", "nonlocal"):
            name = f"{system.net.name}_{scheme}"
            path = str(hs.generate(system, tmp_path / f"{name}.py", scheme=scheme))
            specs += [(f"{key}_{scheme}_{dtype}", path, name, dtype) for dtype in ("float64", "float32")]
    spec_file = tmp_path / "specs.json"
    spec_file.write_text(json.dumps(specs))
    out = f"{tmp_path}/"
    whole = _child("first", spec_file, out, tmp_path / "cache_first")
    cold = _child("cold", spec_file, out, tmp_path / "cache_resume")     # empty cache
    warm = _child("warm", spec_file, out, tmp_path / "cache_resume")     # filled by cold
    for key, _, _, _ in specs:
        for kind in ("weights", "states", "costates"):
            for name, value in whole[key][kind].items():
                # floats through JSON round-trip exactly (repr), so == is bit-identity
                assert cold[key][kind][name] == value, (key, kind, name, "cold")
                assert warm[key][kind][name] == value, (key, kind, name, "warm")


def _small(load, name="ck_small", theta=0.1):
    return load(hs.derive(mlp([3, 4, 2], name=name), theta=theta, beta=0.5, delta=0.1))


def test_save_and_restore_round_trip(load, tmp_path):
    mod = load(hs.derive(recurrent(2, 3, 1, kind="continuous", tau=3.0, name="ck_round"),
                         theta=0.1, delta=0.1))
    learner = mod.Integrator(seed=0, check_finite=False, tau=1.5, theta_neurons=0.0)
    learner.run(np.ones((5, 2)), np.ones((5, 1)))
    path = learner.save(tmp_path / "ck.npz")
    assert os.listdir(tmp_path) == ["ck.npz"]                    # no temporary file left
    back = mod.Integrator.restore(path)
    assert back.step_count == 5 and back.dtype == learner.dtype and not back.check_finite
    assert back.hyper == learner.hyper and back.hyper["tau"] == 1.5
    for kind in ("weights", "states", "costates"):
        for name, a in getattr(learner, kind).items():
            assert np.array_equal(getattr(back, kind)[name], a), (kind, name)


def test_restore_into_another_module_is_refused(load, tmp_path):
    a, b = _small(load, "ck_a"), _small(load, "ck_b", theta=0.3)
    path = a.Integrator().save(tmp_path / "a.npz")
    with pytest.raises(ValueError, match=f"SPEC_HASH {a.SPEC_HASH}.*SPEC_HASH {b.SPEC_HASH}"):
        b.Integrator.restore(path)


_UNPICKLE = textwrap.dedent("""
    import pickle, sys
    import numpy as np
    learner = pickle.load(open(sys.argv[1], "rb"))
    assert "hamsym" not in sys.modules
    learner.step(np.ones(3), np.ones(2))
    np.save(sys.argv[2], learner.weights["W1"])
    print(learner.step_count)
""")


def test_a_pickled_learner_loads_in_a_fresh_process(load, tmp_path):
    mod = _small(load, "ck_pickle")
    learner = mod.Integrator(seed=4)
    learner.step(np.zeros(3), np.ones(2))
    (tmp_path / "l.pkl").write_bytes(pickle.dumps(learner))
    out = subprocess.run([sys.executable, "-c", _UNPICKLE, str(tmp_path / "l.pkl"),
                          str(tmp_path / "w.npy")], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2"]
    learner.step(np.ones(3), np.ones(2))
    assert np.array_equal(np.load(tmp_path / "w.npy"), learner.weights["W1"])
    same = pickle.loads(pickle.dumps(learner))                 # in this process too
    assert type(same) is mod.Integrator and same.step_count == 2


def test_unpickling_needs_the_same_module_file(tmp_path):
    system = hs.derive(mlp([3, 4, 2], name="ck_moved"), theta=0.1)
    path = hs.generate(system, tmp_path / "ck_moved.py")
    spec = __import__("importlib.util").util.spec_from_file_location("ck_moved", path)
    mod = __import__("importlib.util").util.module_from_spec(spec)
    spec.loader.exec_module(mod)              # not in sys.modules: unpickling imports the file
    data = pickle.dumps(mod.Integrator())
    hs.generate(hs.derive(mlp([3, 4, 2], name="ck_moved"), theta=0.2), path)
    with pytest.raises(ImportError, match=f"now holds another module .*{mod.SPEC_HASH}"):
        pickle.loads(data)
    path.unlink()
    with pytest.raises(ImportError, match="cannot be read"):
        pickle.loads(data)
