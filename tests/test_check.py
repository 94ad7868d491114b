"""`hamsym.check`: the spec's expressions rebuilt over PyTorch tensors step Hamilton's
equations with autograd; the generated step must agree, and a wrong module must not."""

from pathlib import Path

import pytest

pytest.importorskip("torch")

from hamsym import check  # noqa: E402
from hamsym.spec import load_spec  # noqa: E402

SPECS = Path(__file__).resolve().parent.parent / "examples" / "specs"


@pytest.mark.parametrize("name, schemes", [("delay", ["local", "nonlocal"]),
                                           ("ctrnn", ["nonlocal"]),
                                           ("mlp_classifier", ["local"]),
                                           ("oscillators", ["local"])])
def test_generated_step_matches_the_reference(name, schemes, tmp_path):
    results = check.check_spec(load_spec(SPECS / f"{name}.toml"), schemes=schemes,
                               directory=tmp_path)
    for scheme in schemes:
        assert max(results[scheme].values()) < 1e-12, results[scheme]


def test_the_check_sees_a_wrong_step(tmp_path, monkeypatch):
    spec = load_spec(SPECS / "delay.toml")
    real = check._Reference.__init__

    def skewed(self, spec, hyper):          # a reference with another beta
        real(self, spec, {**hyper, "beta": hyper["beta"] * 1.01})
    monkeypatch.setattr(check._Reference, "__init__", skewed)
    gaps = check.check_spec(spec, schemes=["local"], directory=tmp_path)["local"]
    assert max(gaps.values()) > 1e-6
    assert gaps["x1"] < 1e-12                 # states do not read beta
