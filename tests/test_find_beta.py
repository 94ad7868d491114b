"""hs.find_beta and `hamsym find-beta`: a beta sweep on the first samples of a stream,
the rule that picks the largest stable beta, and the SGD twin of the settings.

The sweep's losses are checked against torch.optim.SGD with lr = delta^2 beta gamma,
momentum = 1 - theta on the same MLP written in PyTorch (non-local HL on a
feed-forward network is that optimizer, docs/mathematics.md, section 8): so both the
sweep and the SGD line it prints are checked against an independent reference. The
rule is checked on loss curves built by hand, with the answer known.
"""

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import hamsym as hs
from hamsym.declare.zoo import mlp
from hamsym.workbench.find_beta import NoStableBeta, choose, judge
from torch_reference import mlp_loss, tensors

torch.set_default_dtype(torch.float64)
SPECS = Path(__file__).resolve().parent.parent / "examples" / "specs"
HYPER = dict(gamma=0.5, beta=1.0, theta=0.2, delta=0.1)


@pytest.fixture
def mod(load):
    return load(hs.derive(mlp([3, 6, 2], name="beta_mlp"), **HYPER), name="beta_mlp")


def stream(T=400, seed=3):
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(T, 3))
    return U, np.sin(U[:, :2]) + 0.05 * rng.normal(size=(T, 2))


def torch_sgd_losses(weights, U, Y, lr, momentum):
    """Progressive losses |o - y|^2 / 2 of torch SGD from the given weights."""
    names = ["W1", "b1", "W2", "b2"]
    params = tensors(weights, names)
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    out = []
    for u, y in zip(U, Y):
        opt.zero_grad()
        loss = mlp_loss(params, u, y, ["tanh"], "squared")
        out.append(loss.item())
        if not math.isfinite(out[-1]):
            break
        loss.backward()
        opt.step()
    return np.array(out)


@pytest.mark.fast
def test_the_sweep_is_torch_sgd_at_each_beta(mod):
    U, Y = stream()
    betas = [0.25, 2.0, 16.0, 512.0]
    report = hs.find_beta(mod, (U, Y), n=400, betas=betas)
    start = mod.Integrator(seed=0).weights
    quarter = 100
    for trial in report.trials:
        lr, momentum = (float(x) for x in re.search(
            r"lr = delta\^2 beta gamma = (\S+), momentum = 1 - theta = (\S+) ",
            hs.sgd_equivalent({**HYPER, "beta": trial.beta})).groups())
        assert lr == pytest.approx(HYPER["delta"] ** 2 * trial.beta * HYPER["gamma"], rel=1e-3)
        want = torch_sgd_losses(start, U, Y, HYPER["delta"] ** 2 * trial.beta * HYPER["gamma"],
                                1 - HYPER["theta"])
        if trial.diverged:
            assert len(want) < len(U) or not np.isfinite(want).all()
            continue
        assert trial.first == pytest.approx(want[:quarter].mean(), rel=1e-10)
        assert trial.last == pytest.approx(want[-quarter:].mean(), rel=1e-10)
        assert trial.stable == (want[-quarter:].mean() <= want[:quarter].mean())
    assert [t.diverged for t in report.trials] == [False, False, False, True]
    # the three smallest learn; the largest stable one, halved, is the proposal
    assert report.beta_max == 16.0 and report.edge == 512.0 and report.beta == 8.0
    assert report.hyper == {**mod.HYPER, "beta": 8.0}
    text = str(report)
    assert "proposed beta = 8 (beta_max / 2)" in text
    assert "lr = delta^2 beta gamma = 0.04, momentum = 1 - theta = 0.8" in text
    assert "exact for the nonlocal scheme on a feed-forward network" in text


def test_the_default_grid_is_the_modules_beta_times_powers_of_two(mod):
    U, Y = stream(64)
    report = hs.find_beta(mod, (U, Y), n=64)
    assert [t.beta for t in report.trials] == [2.0 ** k for k in range(-8, 5)]
    assert report.samples == 64


def trials(rows):
    """BetaTrials from (beta, first, last, diverged)."""
    losses, diverged, grid = [], [], []
    for beta, first, last, gone in rows:
        grid.append(beta)
        diverged.append(gone)
        losses.append([first] * 4 + [last] * 4 if not gone else [first] * 4 + [np.nan] * 4)
    return judge(grid, np.array(losses), np.array(diverged))


@pytest.mark.parametrize("rows, beta_max, edge", [
    # every beta learns; the edge is above the grid
    ([(1, 1.0, 0.5, False), (2, 1.0, 0.4, False), (4, 1.0, 0.3, False)], 4, None),
    # divergence ends the run
    ([(1, 1.0, 0.5, False), (2, 1.0, 0.4, False), (4, 1.0, 0.0, True)], 2, 4),
    # a loss that grows without a NaN yet ends it too
    ([(1, 1.0, 0.5, False), (2, 1.0, 0.4, False), (4, 1.0, 1.5, False)], 2, 4),
    # small betas that barely learn look worse by noise: the run starts at the best beta
    ([(0.1, 1.0, 1.01, False), (1, 1.0, 0.5, False), (2, 1.0, 0.4, False), (4, 1.0, 2.0, True)],
     2, 4),
    # a stable beta above an unstable one is a lucky draw: not taken
    ([(1, 1.0, 0.5, False), (2, 1.0, 0.3, False), (4, 1.0, 1.2, False), (8, 1.0, 0.9, False)],
     2, 4),
    # equal is not worse
    ([(1, 1.0, 1.0, False), (2, 1.0, 2.0, False)], 1, 2),
])
def test_the_rule(rows, beta_max, edge):
    got = choose(trials(rows))
    assert got == (beta_max, edge)


def test_no_stable_beta_is_an_error_that_says_why():
    with pytest.raises(NoStableBeta, match="every beta diverged"):
        choose(trials([(1, 1.0, 0.0, True), (2, 1.0, 0.0, True)]))
    with pytest.raises(NoStableBeta, match="even the best beta, 1, ended the window with a "
                                           "higher loss"):
        choose(trials([(1, 1.0, 1.5, False), (2, 1.0, 3.0, False)]))


def test_bad_arguments_are_refused(mod):
    U, Y = stream(64)
    with pytest.raises(ValueError, match="at least 8"):
        hs.find_beta(mod, (U, Y), n=4)
    with pytest.raises(ValueError, match="positive, finite"):
        hs.find_beta(mod, (U, Y), betas=[1.0, -2.0])
    with pytest.raises(ValueError, match="give the betas to try as betas="):
        hs.find_beta(mod, (U, Y), beta=2.0)
    with pytest.raises(ValueError, match="margin"):
        hs.find_beta(mod, (U, Y), margin=0.5)
    with pytest.raises(ValueError, match="the stream has 1 arrays; the network takes 2"):
        hs.find_beta(mod, U)


def test_blocks_are_read_up_to_n_rows(mod):
    U, Y = stream(400)
    blocks = iter([(U[i:i + 64], Y[i:i + 64]) for i in range(0, 400, 64)])
    whole = hs.find_beta(mod, (U[:200], Y[:200]), n=200, betas=[0.5, 4.0])
    chunked = hs.find_beta(mod, blocks, n=200, betas=[0.5, 4.0])
    assert whole.trials == chunked.trials and chunked.samples == 200
    assert next(blocks)[0][0, 0] == U[256, 0]          # 4 blocks of 64 read, no more


def test_sgd_equivalent_in_words():
    line = hs.sgd_equivalent(dict(gamma=1.0, beta=0.5, theta=0.1, delta=0.1))
    assert line == ("SGD equivalent: lr = delta^2 beta gamma = 0.005, momentum = 1 - theta = 0.9 "
                    "(exact for the nonlocal scheme on a feed-forward network)")
    assert "no SGD equivalent" in hs.sgd_equivalent(dict(gamma=1, beta=1, theta=0, delta=1,
                                                         flip=1.0))
    with pytest.raises(KeyError, match="'theta' is missing"):
        hs.sgd_equivalent(dict(gamma=1, beta=1, delta=1))


# -- the command ----------------------------------------------------------------------------

def hamsym(*args, cwd):
    return subprocess.run([sys.executable, "-m", "hamsym", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_the_command_prints_the_proposal_and_the_sgd_twin(tmp_path):
    shutil.copy(SPECS / "mlp.toml", tmp_path / "mlp.toml")
    rng = np.random.default_rng(0)
    u = rng.normal(size=(3000, 4))
    np.save(tmp_path / "s.npy", np.c_[u, np.sin(u[:, :2])])
    proc = hamsym("find-beta", "mlp.toml", "--stream", "s.npy", "--samples", "1000",
                  "--betas", "0.5,2,8,32", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # the same sweep in Python, on the spec's module and start
    spec = hs.load_spec(tmp_path / "mlp.toml")
    report = hs.find_beta(spec.load(tmp_path / "gen" / "mlp.py"), (u, np.sin(u[:, :2])),
                          n=1000, betas=[0.5, 2, 8, 32])
    assert f"proposed beta = {report.beta:.4g}" in out
    assert report.sgd in out and "beta sweep on the first 1000 samples" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen", "mlp.toml", "s.npy"]

    proc = hamsym("find-beta", "mlp.toml", "--stream", "s.npy", "--samples", "5", cwd=tmp_path)
    assert proc.returncode == 2 and "--samples 5" in proc.stderr and "Traceback" not in proc.stderr
    proc = hamsym("find-beta", "mlp.toml", "--stream", "s.npy", "--betas", "1,x", cwd=tmp_path)
    assert proc.returncode == 2 and "--betas '1,x'" in proc.stderr
    proc = hamsym("find-beta", "mlp.toml", "--stream", "s.npy", "--betas", "1e4,1e5",
                  "--samples", "200", cwd=tmp_path)
    assert proc.returncode == 1 and "s.npy: no stable beta" in proc.stderr
    assert "Traceback" not in proc.stderr
