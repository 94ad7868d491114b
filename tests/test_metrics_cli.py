"""`hamsym run --metrics` on a one-column series, and `hamsym run --find-beta`.

The figures in metrics.npz are checked against numpy: the module the run wrote
learns the same standardised stream in a Python loop (numpy's prefix statistics,
as tests/test_timeseries.py), its prediction before each step mapped back to the
series' units, against the series; the baseline is the previous target.
"""

import numpy as np
import pytest

from conftest import hamsym
from test_timeseries import SPEC, lag_matrix, prefix_standardised

CHUNK = 256


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("metrics_cli")
    t = np.arange(1000)
    x = 40 + 0.02 * t + np.sin(2 * np.pi * t / 40) + 0.05 * np.random.default_rng(1).normal(size=1000)
    np.savetxt(work / "series.csv", x[:, None], header="value", comments="", fmt="%.17g")
    (work / "plain.toml").write_text(SPEC)
    (work / "hot.toml").write_text(SPEC.replace("beta = 1.0", "beta = 64.0"))
    return work, x


def test_metrics_of_a_standardised_series_in_its_units(work):
    work, x = work
    out = hamsym("run", "plain.toml", "--stream", "series.csv", "-o", "run", "--lags", "8",
                 "--standardize", "--metrics", "mae,rmse", "--chunk", CHUNK, cwd=work).stdout
    assert "in the original units of target y" in out
    assert "baseline: the last target (the previous step's)" in out
    assert "SGD equivalent: lr = delta^2 beta gamma = 0.01, momentum = 1 - theta = 0.9" in out
    assert "HL: gamma = 1, beta = 1, theta = 0.1, delta = 0.1" in out
    with np.load(work / "run/metrics.npz") as f:
        saved = {k: f[k] for k in f.files}
    assert sorted(saved) == ["mae", "mae_baseline", "rmse", "rmse_baseline", "step"]

    from hamsym.workbench.spec import load_spec
    mod = load_spec(work / "plain.toml").load(work / "run/ts_lag.py")
    U, Y = lag_matrix(x, 8, 1, [0], [0])
    Zu, _, _ = prefix_standardised(U)
    Zy, centre, scale = prefix_standardised(Y)
    learner, P = mod.Integrator(seed=0), []
    for u, y in zip(Zu, Zy):
        P.append(learner.forward(u)["o"] * scale[len(P)] + centre[len(P)])
        learner.step(u, y)
    P = np.array(P)
    B = np.vstack([[0.0], Y[:-1]])                        # the previous target
    # the lagged stream's blocks: CHUNK rows read give CHUNK - 8 samples first
    ends = np.r_[np.arange(CHUNK - 8, len(Y), CHUNK), len(Y)]
    np.testing.assert_array_equal(saved["step"], ends - 1)
    starts = np.r_[1, ends[:-1]]                          # the first step: nothing before it
    for pred, suffix in ((P, ""), (B, "_baseline")):
        e = pred - Y
        mae = [np.abs(e[a:b]).mean() for a, b in zip(starts, ends)]
        rmse = [np.sqrt((e[a:b] ** 2).mean()) for a, b in zip(starts, ends)]
        np.testing.assert_allclose(saved["mae" + suffix], mae, rtol=1e-8)
        np.testing.assert_allclose(saved["rmse" + suffix], rmse, rtol=1e-8)
    e, b = P[1:] - Y[1:], B[1:] - Y[1:]
    [printed] = [line.split()[1:] for line in out.splitlines() if line.startswith("mae ")]
    np.testing.assert_allclose([float(v) for v in printed],      # the whole run, 6 digits
                               [np.abs(e).mean(), np.abs(b).mean()], rtol=1e-5)

    pytest.importorskip("matplotlib")
    drawn = hamsym("plot", "run", cwd=work).stdout
    assert "metrics.png" in drawn and (work / "run/metrics.png").read_bytes()[:4] == b"\x89PNG"


def test_find_beta_avoids_the_divergence_of_the_default(work):
    work, _ = work
    diverged = hamsym("run", "hot.toml", "--stream", "series.csv", "-o", "hot", "--lags", "8",
                      "--standardize", cwd=work, ok=False)
    assert diverged.returncode == 4 and "diverged" in diverged.stderr
    found = hamsym("run", "hot.toml", "--stream", "series.csv", "-o", "found", "--lags", "8",
                   "--standardize", "--find-beta", "400", cwd=work)
    chose = [line for line in found.stdout.splitlines() if "--find-beta chose beta" in line]
    assert chose and "SGD equivalent: lr = " in chose[0], found.stdout
    beta = float(chose[0].split("beta = ")[1].split()[0])
    assert beta < 64
    losses = np.load(work / "found/losses.npy")
    assert len(losses) == 992 and np.isfinite(losses).all()
    assert f"beta = {beta:.4g}" in found.stdout.split("ts_lag: steps 0 -> 992")[1]


@pytest.mark.parametrize("options, message", [
    (("--metrics", "accuracy"), "--metrics accuracy: 'accuracy' is not offered for this "
                                "regression loss; choose from mae, rmse or all"),
    (("--metrics", "mae,mape"), "--metrics mae,mape: 'mape' is not offered"),
    (("--metrics", "mae", "--baseline", "majority"), "--baseline majority"),
    (("--baseline", "last"), "--baseline says what the metrics are compared with"),
    (("--find-beta", "100", "--set", "beta=0.5"), "--find-beta chooses beta: drop --set beta"),
])
def test_bad_metric_options_are_named_without_a_traceback(work, options, message):
    work, _ = work
    bad = hamsym("run", "plain.toml", "--stream", "series.csv", "-o", "bad", "--lags", "8",
                 *options, cwd=work, ok=False)
    assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, \
        bad.stderr
    assert not (work / "bad").exists()                    # a refused run leaves nothing


def test_a_resumed_run_measures_as_one_run(work):
    """The baseline's memory and the sums are in run.json: a run stopped at 500 steps
    and resumed prints the figures of the run that was not stopped; its rows are the
    same, the chunk cut at step 500 apart."""
    work, _ = work
    options = ("--lags", "8", "--metrics", "all", "--chunk", CHUNK)
    whole = hamsym("run", "plain.toml", "--stream", "series.csv", "-o", "whole", *options,
                   cwd=work).stdout
    hamsym("run", "plain.toml", "--stream", "series.csv", "-o", "parts", "--steps", "500",
           *options, cwd=work)
    parts = hamsym("run", "plain.toml", "--stream", "series.csv", "-o", "parts", *options,
                   "--resume", "parts/checkpoint.npz", cwd=work).stdout

    def figures(out):
        return [line for line in out.splitlines() if line.startswith(("mae ", "rmse "))]
    assert len(figures(whole)) == 2 and figures(whole) == figures(parts)
    with np.load(work / "whole/metrics.npz") as a, np.load(work / "parts/metrics.npz") as b:
        cut = list(b["step"]).index(499)
        for key in a.files:
            np.testing.assert_array_equal(np.delete(b[key], [cut, cut + 1]),
                                          np.delete(a[key], cut), err_msg=key)
