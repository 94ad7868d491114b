"""Random networks, declared through the public API, against an independent PyTorch
float64 reference of the HL step (tests/random_networks.py): every scheme, flips,
resets, hyperparameter overrides, random states and costates. Each case checks a few
`step()` calls (loss, every weight, state and costate), then `run()` and
`run_stream()` over a few more steps against the same reference iterated (a few
cases record every state and weight in `run()` and compare the rows too). Each network
also learns in float32 (`run()`, `run_stream()`) against the same float64 reference,
started from the same float32 values, within float32's epsilon times the network's
measured amplification (tests/random_networks.py, check_case_float32).

`python scripts/fuzz.py --cases 2000` runs many more, with shrunk reproducers.
"""


import pytest
import torch

import random_networks as rn
from random_networks import C, DELTA, V

torch.set_default_dtype(torch.float64)

N_CASES = 200
FIRST_SEED = 100_000
CASES = [rn.random_case(FIRST_SEED + i, small=True) for i in range(N_CASES)]
for recorded in CASES[7::40]:      # a few also record states, weights and losses in run()
    recorded["record"] = True


@pytest.mark.parametrize("index", range(N_CASES), ids=lambda i: f"case_{i:03d}")
def test_random_network_matches_reference(index, tmp_path):
    case = CASES[index]
    refusal = rn.expected_refusal(case)
    status = rn.check_case(case, tmp_path)
    # a weight used by two groups of the partial scheme must be refused, naming it
    assert status == ("refused" if refusal else "ok")


@pytest.mark.parametrize("index", range(N_CASES), ids=lambda i: f"case_{i:03d}")
def test_random_network_in_float32(index, tmp_path):
    """The same network learning in float32, against the float64 reference from the same
    float32 start, within float32's epsilon times the network's measured amplification."""
    assert rn.check_case_float32(CASES[index], tmp_path) in ("ok", "refused")


def test_the_cases_cover_what_they_should():
    """The fixed set keeps its coverage (and its refusals a small minority)."""
    specs = [rn.Spec(c["spec"]) for c in CASES]
    schemes = [c["scheme"] for c in CASES]
    refused = sum(rn.expected_refusal(c) is not None for c in CASES)
    assert 0 < refused <= N_CASES // 10
    assert {"local", "nonlocal", "partial"} <= set(schemes)
    assert sum(not s.of_kind("state") for s in specs) >= 40          # instantaneous layers only
    assert sum(bool(s.of_kind("state")) for s in specs) >= 80
    shapes = [s.shapes for s in specs]
    assert sum(any(sh == (1, 1) for n, sh in s.items() if n in spec.of_kind("weight"))
               for s, spec in zip(shapes, specs)) >= 10                # 1x1 weights
    assert sum(any(n.startswith("c") for n in spec.of_kind("weight")) for spec in specs) >= 10
    assert sum(c["hyper"]["flip"] == 1.0 for c in CASES) >= 20
    assert sum(c["reset_n"] or c["reset_w"] for c in CASES) >= 20
    assert sum(bool(c.get("fresh")) for c in CASES) >= 10           # local, new p_w
    assert sum(bool(c["over"]) for c in CASES) >= 30
    assert sum(len(rn.scc_order(s.of_kind("state"), rn.state_deps(s))) < len(s.of_kind("state"))
               for s in specs) >= 10                                   # SCCs of several states


# -- the reference itself, against what is known independently ------------------------------

def _case(spec, scheme, steps=3, groups=None, **hyper):
    return {"id": 0, "seed": 7, "spec": spec.to_dict(), "scheme": scheme, "groups": groups,
            "hyper": hyper, "over": {}, "reset_n": False, "reset_w": False, "ce": False,
            "steps": steps, "run_T": 0, "stream_T": 0}


def _tensors(vals):
    return {key: {k: torch.tensor(v) for k, v in part.items()} for key, part in vals.items()}


def test_reference_is_sgd_with_momentum_without_states():
    spec = rn.Spec({"name": "ref_mlp", "decls": [
        ["input", "u", [3, 1]], ["target", "y", [2, 1]], ["weight", "W1", [4, 3]],
        ["weight", "b1", [4, 1]], ["weight", "W2", [2, 4]],
        ["instant", "h1", ("act", "tanh", ("+", ("@", V("W1"), V("u")), V("b1")))]],
        "dyn": [], "loss": ("/", ("sumsq", ("-", ("@", V("W2"), V("h1")), V("y"))), C(2))})
    h = dict(gamma=0.8, beta=0.5, theta=0.3, flip=-1.0, delta=0.2)
    case = _case(spec, "nonlocal", **h)
    vals, U, Y = rn.initial_values(case)
    for v in vals["pw"].values():
        v[...] = 0                                # SGD starts with an empty momentum buffer
    model, tv = rn.TorchModel(spec, rn.effective_hyper(case)), _tensors(vals)
    w = {k: torch.tensor(v, requires_grad=True) for k, v in vals["w"].items()}
    sgd = torch.optim.SGD(w.values(), lr=h["delta"] ** 2 * h["beta"] * h["gamma"], momentum=1 - h["theta"])
    for t in range(4):
        u, y = torch.tensor(U[t % 3]).reshape(3, 1), torch.tensor(Y[t % 3]).reshape(2, 1)
        loss, tv = rn.reference_step(case, model, tv, u, y)
        sgd.zero_grad()
        want = ((w["W2"] @ torch.tanh(w["W1"] @ u + w["b1"]) - y) ** 2).sum() / 2
        want.backward()
        sgd.step()
        assert abs(loss - want.item()) < 1e-14
        for k in w:
            torch.testing.assert_close(tv["w"][k], w[k].detach(), rtol=0, atol=1e-14)


def test_reference_local_delay_network_by_hand():
    """A two-layer delay network under the local scheme, written out by hand."""
    spec = rn.Spec({"name": "ref_delay", "decls": [
        ["input", "u", [2, 1]], ["target", "y", [1, 1]], ["state", "x1", [3, 1]],
        ["weight", "W1", [3, 2]], ["state", "x2", [1, 1]], ["weight", "W2", [1, 3]]],
        "dyn": [["x1", ("/", ("-", ("act", "tanh", ("@", V("W1"), V("u"))), V("x1")), DELTA)],
                ["x2", ("/", ("-", ("@", V("W2"), V("x1")), V("x2")), DELTA)]],
        "loss": ("/", ("sumsq", ("-", V("x2"), V("y"))), C(2))})
    h = dict(gamma=0.7, beta=0.3, theta=0.2, theta_neurons=0.1, flip=-1.0, delta=0.1)
    case = _case(spec, "local", **h)
    vals, U, Y = rn.initial_values(case)
    model, tv = rn.TorchModel(spec, rn.effective_hyper(case)), _tensors(vals)
    u, y = torch.tensor(U[0]).reshape(2, 1), torch.tensor(Y[0]).reshape(1, 1)
    _, new = rn.reference_step(case, model, tv, u, y)
    x1, x2, p1, p2 = tv["x"]["x1"], tv["x"]["x2"], tv["px"]["x1"], tv["px"]["x2"]
    W1, W2, q1, q2 = tv["w"]["W1"], tv["w"]["W2"], tv["pw"]["W1"], tv["pw"]["W2"]
    s, d, g = h["flip"], h["delta"], h["gamma"]
    a1 = torch.tanh(W1 @ u)
    want = {
        ("x", "x1"): a1, ("x", "x2"): W2 @ x1,              # a delay layer copies its input
        ("px", "x1"): (1 + s * 0.1) * p1 - d * s * (-p1 / d + W2.T @ p2 / d),
        ("px", "x2"): (1 + s * 0.1) * p2 - d * s * (g * (x2 - y) - p2 / d),
        ("pw", "W1"): (1 + s * 0.2) * q1 - d * s * ((p1 / d * (1 - a1 ** 2)) @ u.T),
        ("pw", "W2"): (1 + s * 0.2) * q2 - d * s * ((p2 / d) @ x1.T),
        ("w", "W1"): W1 - d * 0.3 * q1, ("w", "W2"): W2 - d * 0.3 * q2}
    for (key, name), value in want.items():
        torch.testing.assert_close(new[key][name], value, rtol=0, atol=1e-14)


def test_reference_nonlocal_rotation_block_is_jacobi():
    """An oscillator pair (a, b reading each other) is one SCC: updated together."""
    spec = rn.Spec({"name": "ref_osc", "decls": [
        ["input", "u", [1, 1]], ["target", "y", [2, 1]], ["state", "a", [2, 1]],
        ["state", "b", [2, 1]], ["weight", "k", [2, 1]], ["weight", "R", [2, 2]]],
        "dyn": [["a", ("*", V("k"), V("b"))], ["b", ("neg", ("*", V("k"), V("a")))]],
        "loss": ("/", ("sumsq", ("-", ("@", V("R"), V("a")), V("y"))), C(2))})
    case = _case(spec, "nonlocal", gamma=1.0, beta=0.5, theta=0.1, flip=-1.0, delta=0.1)
    vals, U, Y = rn.initial_values(case)
    model, tv = rn.TorchModel(spec, rn.effective_hyper(case)), _tensors(vals)
    _, new = rn.reference_step(case, model, tv, torch.zeros(1, 1), torch.tensor(Y[0]).reshape(2, 1))
    k, a, b = tv["w"]["k"], tv["x"]["a"], tv["x"]["b"]
    torch.testing.assert_close(new["x"]["a"], a + 0.1 * k * b, rtol=0, atol=1e-15)
    torch.testing.assert_close(new["x"]["b"], b - 0.1 * k * a, rtol=0, atol=1e-15)
    assert rn.scc_order(["a", "b"], rn.state_deps(spec)) == [["a", "b"]]


def test_partial_ownership_follows_the_last_declared_state():
    spec = rn.Spec({"name": "own", "decls": [
        ["input", "u", [2, 1]], ["target", "y", [2, 1]], ["state", "x1", [2, 1]],
        ["weight", "W1", [2, 2]], ["state", "x2", [2, 1]], ["weight", "W2", [2, 2]],
        ["weight", "R", [2, 2]]],
        "dyn": [["x1", ("-", ("@", V("W1"), V("u")), V("x1"))],
                ["x2", ("-", ("@", V("W2"), V("x1")), V("x2"))]],
        "loss": ("+", ("*", C(0.5), ("+", ("sumsq", ("-", ("@", V("R"), V("x2")), V("x1"))),
                                     ("sumsq", V("x1")))), ("dot", V("R"), V("R")))})
    own = rn.Ownership(spec, [["x1"], ["x2"]])
    assert own.owner == [1, 0, 1] and own.shared == []
    assert own.weights_of == {0: ["W1"], 1: ["R", "W2"]}
    refused = rn.Ownership(spec, [["x2"], ["x1"]])
    assert refused.owner == [0, 1, 0] and refused.shared == []
    spec.dyn[0] = ("x1", ("-", ("@", V("W2"), V("u")), V("x1")))    # W2 now in both groups
    assert rn.Ownership(spec, [["x1"], ["x2"]]).shared == ["W2"]


def test_fuzz_reproducer_runs_standalone():
    """The reproducer printed by scripts/fuzz.py is self-contained source."""
    case = rn.random_case(FIRST_SEED, small=True)
    source = rn.reproducer(case)
    compile(source, "<reproducer>", "exec")
    assert "import torch" not in source


def test_the_suite_runs_with_numba_bounds_checking():
    """An index out of range must raise here, not corrupt memory silently (conftest)."""
    import numba
    assert numba.config.BOUNDSCHECK
