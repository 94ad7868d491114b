"""Per-weight hyperparameters in spec files ([hyper.W1]) and on the command line
(--set beta.W1=..., --grid beta.W1=...): the same learners as the Python API's
per_weight option and dict arguments (whose step tests/test_per_weight.py checks
against torch)."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import hamsym

import hamsym as hs
from hamsym.workbench.runner import InputError, overrides
from hamsym.workbench.spec import SpecError, initial, loads_spec

SPECS = Path(__file__).resolve().parent.parent / "examples" / "specs"
OWN = """
[hyper.W1]
beta = 0.5

[hyper.top]
weights = ["W2", "b2"]
theta = 0.6
gamma = 0.8
"""


def _text(extra=OWN):
    base = (SPECS / "mlp.toml").read_text()
    head, module = base.split("[module]")
    return head + extra + "\n[module]" + module


@pytest.fixture(scope="module")
def spec_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pw_spec")
    spec = loads_spec(_text(), source="own.toml")
    return spec, spec.load(folder / "pw_spec_mlp.py")


def _stream(steps=300, seed=1):
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(steps, 4))
    return U, np.tanh(U[:, :2])


def test_hyper_tables_declare_per_weight_values(spec_module, tmp_path):
    spec, mod = spec_module
    assert spec.hyper == {"gamma": 1.0, "beta": 2.0, "theta": 0.1, "delta": 0.1}
    assert spec.module["per_weight"] == {"W1": {"beta": 0.5}, "W2": {"theta": 0.6, "gamma": 0.8},
                                         "b2": {"theta": 0.6, "gamma": 0.8}}
    assert mod.PER_WEIGHT == ("W1", "W2", "b2")
    assert mod.HYPER["beta__W1"] == 0.5 and mod.HYPER["theta__b2"] == 0.6
    # the same learner as the Python API's: a module with the weights' own scalars and
    # the values given as dicts
    other = hs.load(spec.derive(), tmp_path / "pw_spec_api.py", per_weight=["W1", "W2", "b2"])
    U, Y = _stream()
    a = mod.Integrator(seed=0)
    b = other.Integrator(seed=0, beta={"W1": 0.5}, theta={("W2", "b2"): 0.6},
                         gamma={("W2", "b2"): 0.8})
    assert np.array_equal(a.run(U, Y), b.run(U, Y))


@pytest.mark.parametrize("extra, message", [
    ("[hyper.W9]\nbeta = 1\n", r"\[hyper.W9\]: 'W9' is not a weight; the weights: W1, b1, W2, b2"),
    ("[hyper.g]\nweights = ['W1', 'V']\n", r"\[hyper.g\] weights: 'V' is not a weight"),
    ("[hyper.g]\nweights = 'W1'\n", r"\[hyper.g\] weights: expected a list of weight names"),
    ("[hyper.W1]\nlr = 1\n", r"\[hyper.W1\] lr: not a per-weight hyperparameter"),
    ("[hyper.W1]\nbeta = nan\n", r"\[hyper.W1\] beta: expected a finite number, got nan"),
])
def test_hyper_tables_are_checked_naming_the_key(extra, message):
    with pytest.raises(SpecError, match=message):
        loads_spec(_text(extra), source="own.toml")


def test_set_names_a_weight_s_own_value(spec_module):
    spec, _ = spec_module
    assert overrides(spec, ["beta.W1=0.3", "theta.b2=none", "beta=1"]) == {
        "beta__W1": 0.3, "theta__b2": None, "beta": 1.0}
    with pytest.raises(InputError, match="--set beta.b1: b1 has no beta of its own: add a "
                                         r"\[hyper.b1\] table"):
        overrides(spec, ["beta.b1=0.3"])
    with pytest.raises(InputError, match="--set beta.V: 'V' is not a weight of mlp; its "
                                         "weights: W1, b1, W2, b2"):
        overrides(spec, ["beta.V=0.3"])
    with pytest.raises(InputError, match="--set beta.W1=inf: must be finite"):
        overrides(spec, ["beta.W1=inf"])


def test_run_and_sweep_set_a_weight_s_beta(spec_module, tmp_path):
    spec, mod = spec_module
    (tmp_path / "own.toml").write_text(_text())
    U, Y = _stream(200)
    np.save(tmp_path / "s.npy", np.hstack([U, Y]))
    hamsym("run", "own.toml", "--stream", "s.npy", "--set", "beta.W1=0.25", "-o", "run",
           cwd=tmp_path)
    want = mod.Integrator(**initial(spec, mod), beta={"W1": 0.25}).run(U, Y)
    np.testing.assert_array_equal(np.load(tmp_path / "run/losses.npy"), want)
    hamsym("sweep", "own.toml", "--stream", "s.npy", "--grid", "beta.W1=0.25,1", "--seeds", "0",
           "--window", "50", "-o", "grid", cwd=tmp_path)
    got = np.genfromtxt(tmp_path / "grid/sweep.csv", delimiter=",", names=True)
    assert list(got["beta__W1"]) == [0.25, 1.0]
    table = hs.sweep(mod, {"beta.W1": [0.25, 1]}, (U, Y), frame=False, window=50,
                     init=initial(spec, mod))        # the module the run wrote is the same
    np.testing.assert_array_equal(got["final_loss"], table["final_loss"])
    bad = hamsym("sweep", "own.toml", "--stream", "s.npy", "--grid", "beta.b1=1,2", cwd=tmp_path,
                 ok=False)
    assert bad.returncode == 2 and "b1 has no beta of its own" in bad.stderr
