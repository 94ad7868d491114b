"""The river adapter by river's own standard: every check of river.checks.yield_checks
passes for the regressor and the classifier, and a trained model pickled here predicts
the same in a fresh process."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("river")


@pytest.fixture(autouse=True)
def cache(gen_dir, monkeypatch):
    # the default test networks are generated here, not in the user's cache
    monkeypatch.setenv("HAMSYM_CACHE", str(gen_dir / "river_cache"))


_CHECKS = """
import json, random, sys
from river import checks
from hamsym.workbench import river as adapter
estimator = getattr(adapter, sys.argv[1])
random.seed(0)                          # river's checks shuffle features with `random`
model = estimator(**next(estimator._unit_test_params()))
ran, failed = [], []
for check in checks.yield_checks(model):
    ran.append(check.__name__)
    try:
        check(model.clone())
    except Exception as err:            # report every failure, not the first
        failed.append(f"{check.__name__}: {type(err).__name__}: {err}")
print(json.dumps({"skips": bool(model._unit_test_skips()), "ran": ran, "failed": failed}))
"""


@pytest.mark.parametrize("name, at_least", [("Regressor", 25), ("Classifier", 25)])
def test_every_river_check_passes(name, at_least):
    # in a fresh process, as a user runs them: river's memory check walks every object
    # the model reaches (through Numba's dispatchers, Numba's global state), and in a
    # process that has run the rest of the suite that can meet a dead weak proxy
    out = subprocess.run([sys.executable, "-c", _CHECKS, name], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    assert not result["skips"]              # none skipped
    assert not result["failed"], "\n".join(result["failed"])
    assert len(result["ran"]) >= at_least
    assert {"check_pickling", "check_init_has_default_params_for_tests", "check_doc",
            "check_repr_roundtrips_clone", "check_disappearing_features"} <= set(result["ran"])


def test_missing_features_are_zero_and_new_ones_take_free_inputs():
    from hamsym.workbench.river import Regressor
    from hamsym.workbench.river_estimators import default_learner
    model = Regressor(default_learner("regressor"))
    x = {"f": 1.0, "b": -2.0, "e": 0.5}
    model.learn_one(x, 3.0)                 # b, e, f take inputs 0, 1, 2 (sorted)
    model.learn_one({"c": 1.0, **x}, 3.0)   # c takes input 3
    u = np.zeros(6)
    u[[0, 2]] = [-2.0, 1.0]                 # e and c missing: 0
    want = model.learner.forward(u)["o"][0]
    assert model.predict_one({"f": 1.0, "b": -2.0, "z": 9.0}) == want   # z: never learned
    with pytest.raises(ValueError, match="feature 'p' is new, but the network's 6 inputs"):
        model.learn_one({k: 1.0 for k in "pqr"}, 1.0)


def test_a_trained_model_unpickles_in_a_fresh_process(tmp_path):
    from hamsym.workbench.river import Classifier
    from hamsym.workbench.river_estimators import default_learner
    model = Classifier(default_learner("classifier"), classes=("no", "yes"))
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = dict(enumerate(rng.normal(size=9)))
        model.learn_one(x, "yes" if x[0] > 0 else "no")
    probe = {j: 0.1 * j for j in range(9)}
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    code = ("import pickle, sys; m = pickle.load(open(sys.argv[1], 'rb')); "
            "print(repr(m.predict_proba_one({j: 0.1 * j for j in range(9)})['yes']))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model.pkl")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == model.predict_proba_one(probe)["yes"]
