"""`hamsym.workbench.check`: the spec's expressions rebuilt over PyTorch tensors step Hamilton's
equations with autograd; the generated step must agree, and a wrong module must not."""

from pathlib import Path

import pytest

pytest.importorskip("torch")

from hamsym.workbench import check  # noqa: E402
from hamsym.workbench.spec import load_spec  # noqa: E402

SPECS = Path(__file__).resolve().parent.parent / "examples" / "specs"


@pytest.mark.parametrize("name, schemes", [("delay", ["local", "nonlocal"]),
                                           ("ctrnn", ["nonlocal"]),
                                           ("mlp_classifier", ["local"]),
                                           ("oscillators", ["local", "nonlocal"])])
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


PARTIAL = (SPECS / "delay.toml").read_text().replace(
    'loss = "sum_squares(x3 - y) / 2"',
    'loss = "sum_squares(x3 - y) / 2 + 0.3 * sum_squares(x1) / 2 - 0.01 * total(W2) + 0.02 * dot(b3, b3)"'
).replace('scheme = "local"', 'scheme = "partial"\ngroups = [["x1"], ["x2", "x3"]]')


@pytest.mark.parametrize("resets", [False, True])
def test_partial_scheme_with_loss_terms_in_several_groups(resets, tmp_path):
    from hamsym.workbench.spec import loads_spec
    text = PARTIAL + ("reset_neuron_costate = true\n" if resets else "")
    spec = loads_spec(text, source="partial.toml")
    results = check.check_spec(spec, directory=tmp_path)
    assert list(results) == ["partial"]
    assert max(results["partial"].values()) < 1e-12, results


@pytest.mark.parametrize("loss", [
    "(sum_squares(x3 - y) + 0.3 * sum_squares(x1)) / 2 - 0.01 * total(W2) + 0.02 * dot(b3, b3)",
    "sum_squares(x3 - y) / 2 - (0.01 * total(W2) - 0.15 * sum_squares(x1)) + 0.02 * dot(b3, b3)",
    "-(0.01 * total(W2) - 0.15 * sum_squares(x1) - sum_squares(x3 - y) / 2) + 0.02 * dot(b3, b3)",
])
def test_partial_scheme_loss_terms_split_at_any_depth(loss, tmp_path):
    from hamsym.workbench.spec import loads_spec
    spec = loads_spec(PARTIAL.replace(
        "sum_squares(x3 - y) / 2 + 0.3 * sum_squares(x1) / 2 - 0.01 * total(W2) + 0.02 * dot(b3, b3)",
        loss))
    assert spec.doc["loss"] == loss
    assert max(check.check_spec(spec, directory=tmp_path)["partial"].values()) < 1e-12
