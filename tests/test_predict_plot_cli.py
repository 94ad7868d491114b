"""`hamsym predict` and `hamsym plot` on the folders `hamsym run` writes.

predict is checked against numpy written here: the network's forward pass from the
checkpoint's arrays (np.load of the file), a recurrent state carried by hand, and for
a standardised time series the lag matrix and the mean and population deviation of
all rows before each row (cumulative sums over the run's rows, then the new ones),
with the predictions mapped back to the series' units. plot is checked by the data
its figures draw (the losses, a moving average computed here, the recorded rows, the
metrics and their baseline) and by their axes.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SPECS = Path(__file__).resolve().parent.parent / "examples" / "specs"

TS = """name = "ts"
loss = "sum_squares(o - y) / 2"
[inputs]
u = 4
[targets]
y = 1
[weights]
W1 = [6, 4]
b1 = 6
W2 = [1, 6]
b2 = 1
[instants]
h = "tanh(W1 @ u + b1)"
o = "W2 @ h + b2"
[hyper]
beta = 0.25
theta = 0.1
[stream]
lags = 4
standardize = true
"""


def hamsym(*args, cwd, ok=True):
    proc = subprocess.run([sys.executable, "-m", "hamsym", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def checkpoint_arrays(path):
    with np.load(path) as f:
        return {k.split(".", 1)[1]: f[k] for k in f.files if k.startswith("weights.")}


def lag_rows(x, lags):
    U = np.stack([x[k:k + lags] for k in range(len(x) - lags)])
    return U, x[lags:, None]


def standardised_before(rows):
    """Each row with the mean and population deviation of the rows before it (0 while
    that deviation is 0), and those (centre, scale)."""
    rows = np.asarray(rows, float)
    n = np.arange(len(rows))[:, None]
    s1 = np.vstack([np.zeros((1, rows.shape[1])), np.cumsum(rows, 0)[:-1]])
    s2 = np.vstack([np.zeros((1, rows.shape[1])), np.cumsum(rows ** 2, 0)[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s1 / np.maximum(n, 1), 0.0)
        var = np.maximum(np.where(n > 0, s2 / np.maximum(n, 1) - mean ** 2, 0.0), 0.0)
        std = np.sqrt(var)
        z = np.where(std > 1e-12 * (1 + np.abs(mean)), (rows - mean) / std, 0.0)
    return z, mean, std


@pytest.fixture(scope="module")
def ts_run(tmp_path_factory):
    """A standardised time-series run (recorded), and a continuation of its series."""
    work = tmp_path_factory.mktemp("ts")
    (work / "ts.toml").write_text(TS)
    t = np.arange(900)
    x = 20 + 5 * np.sin(2 * np.pi * t / 40) + np.random.default_rng(2).normal(size=900)
    np.savetxt(work / "train.csv", x[:600], header="value", comments="")
    np.savetxt(work / "later.csv", x[600:], header="value", comments="")
    hamsym("run", "ts.toml", "--stream", "train.csv", "-o", "run", "--record", "o,loss,|W1|",
           "--every", "5", cwd=work)
    return work, x


def test_predict_continues_the_standardisation_and_maps_back(ts_run):
    work, x = ts_run
    out = hamsym("predict", "ts.toml", "--checkpoint", "run/checkpoint.npz", "--stream",
                 "later.csv", "-o", "p.npy", cwd=work).stdout
    got = np.load(work / "p.npy")
    U1, Y1 = lag_rows(x[:600], 4)
    U2, Y2 = lag_rows(x[600:], 4)
    zu, _, _ = standardised_before(np.vstack([U1, U2]))
    _, my, sy = standardised_before(np.vstack([Y1, Y2]))
    w = checkpoint_arrays(work / "run" / "checkpoint.npz")
    z = zu[len(U1):]
    o = np.tanh(z @ w["W1"].T + w["b1"]) @ w["W2"].reshape(1, 6).T + w["b2"]   # W2 is (1, 6)
    want = o * sy[len(U1):] + my[len(U1):]
    assert got.shape == (len(U2), 1)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    assert f"mean |o - y| {np.abs(want - Y2).mean():.6g}" in out
    assert "back in the targets' units" in out
    # the same as a CSV, with a header
    hamsym("predict", "ts.toml", "--checkpoint", "run/checkpoint.npz", "--stream", "later.csv",
           "-o", "p.csv", cwd=work)
    lines = (work / "p.csv").read_text().splitlines()
    assert lines[0] == "o"
    np.testing.assert_array_equal(np.loadtxt(work / "p.csv", skiprows=1, ndmin=2), got)


def test_predict_carries_a_recurrent_state(tmp_path):
    (tmp_path / "rnn.toml").write_text((SPECS / "rnn.toml").read_text())
    rng = np.random.default_rng(4)
    u = rng.normal(size=(300, 2))
    np.save(tmp_path / "s.npy", np.c_[u, np.sin(u[:, :1])])
    hamsym("run", "rnn.toml", "--stream", "s.npy", "-o", "run", "--steps", "200", cwd=tmp_path)
    hamsym("predict", "rnn.toml", "--checkpoint", "run/checkpoint.npz", "--stream", "s.npy",
           "-o", "p.npy", "--keys", "o,x", "--chunk", "64", cwd=tmp_path)
    got = np.load(tmp_path / "p.npy")
    w = checkpoint_arrays(tmp_path / "run" / "checkpoint.npz")
    with np.load(tmp_path / "run" / "checkpoint.npz") as f:
        xk = f["states.x"].copy()
    want = []
    for k in range(300):                  # the loss of step k reads x_k; then x moves
        want.append(np.r_[w["C"].reshape(1, 8) @ xk + w["c"], xk])
        xk = np.tanh(w["A"] @ xk + w["B"] @ u[k] + w["b"])
    np.testing.assert_allclose(got, np.array(want), rtol=0, atol=1e-12)


def test_predict_refuses_what_it_cannot_do(ts_run):
    work, _ = ts_run
    base = ["predict", "ts.toml", "--checkpoint", "run/checkpoint.npz", "--stream", "later.csv"]
    proc = hamsym(*base, "-o", "p.txt", cwd=work, ok=False)
    assert proc.returncode == 2 and "-o p.txt: the predictions are written as .npy or .csv" \
        in proc.stderr
    assert not (work / "p.txt").exists()
    proc = hamsym(*base, "-o", "p.npy", "--keys", "o,zz", cwd=work, ok=False)
    assert proc.returncode == 2 and "--keys o,zz: zz: not an output or state" in proc.stderr
    proc = hamsym(*base[:3], "run/nothing.npz", *base[4:], "-o", "p.npy", cwd=work, ok=False)
    assert proc.returncode == 2 and "--checkpoint run/nothing.npz: no such file" in proc.stderr
    proc = hamsym(*base, "-o", "p.npy", "--run-dir", ".", cwd=work, ok=False)
    assert proc.returncode == 2 and "--run-dir .: no scaler.npz there" in proc.stderr


# -- plot ---------------------------------------------------------------------------------

def moving_mean(x, window):
    return np.array([x[max(0, k + 1 - window):k + 1].mean() for k in range(len(x))])


def test_plot_draws_the_run_in_its_units(ts_run, monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    from hamsym.workbench import run_plots
    work, _ = ts_run
    run = work / "run"
    steps = np.arange(0, 592, 8)
    metrics = np.c_[steps, np.linspace(2, 1, len(steps)), np.full(len(steps), 1.5)]
    np.savetxt(tmp_path / "metrics.csv", metrics, delimiter=",", header="step,mae,mae_baseline",
               comments="")
    for name in ("losses.npy", "record.npz", "scaler.npz", "ts.py"):
        (tmp_path / name).write_bytes((run / name).read_bytes())
    drawn = {}
    real = run_plots._save

    def keep(fig, path):
        drawn[Path(path).name] = [(ax.get_title(), ax.get_xlabel(), ax.get_ylabel(),
                                   [(line.get_xdata(), line.get_ydata(), line.get_linestyle())
                                    for line in ax.lines]) for ax in fig.axes]
        return real(fig, path)
    monkeypatch.setattr(run_plots, "_save", keep)
    paths = run_plots.plot_run(tmp_path, tmp_path / "figs", window=25)
    assert sorted(p.name for p in paths) == sorted(drawn) == [
        "losses.png", "metrics.png", "record_loss.png", "record_norm_W1.png", "record_o.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.parent == tmp_path / "figs"

    losses = np.load(run / "losses.npy")
    [(title, xlabel, ylabel, lines)] = drawn["losses.png"]
    assert xlabel == "step" and ylabel == "loss of the standardised values" and "ts" in title
    np.testing.assert_array_equal(lines[0][1], losses)
    np.testing.assert_allclose(lines[1][1], moving_mean(losses, 25), rtol=1e-12)

    with np.load(run / "record.npz") as f:
        rec = {k: f[k] for k in f.files}
    [(title, xlabel, ylabel, lines)] = drawn["record_o.png"]
    assert (xlabel, ylabel) == ("step", "o (in the original units of target y)")
    assert "every 5 steps" in title
    np.testing.assert_array_equal(lines[0][0], rec["step"])
    np.testing.assert_array_equal(lines[0][1], rec["o"].reshape(-1))
    assert drawn["record_norm_W1.png"][0][2] == "|W1|"

    [(title, xlabel, ylabel, lines)] = drawn["metrics.png"]
    assert ylabel == "mae" and xlabel == "step"
    np.testing.assert_array_equal(lines[0][1], metrics[:, 1])
    np.testing.assert_array_equal(lines[1][1], metrics[:, 2])
    assert lines[1][2] == "--"                          # the baseline, dashed


@pytest.mark.fast
def test_plot_marks_a_divergence_and_caps_wide_arrays(tmp_path, monkeypatch):
    """A run folder written here by hand: losses that end in inf, a record of a 20-entry
    array; nothing is compiled."""
    pytest.importorskip("matplotlib")
    from hamsym.workbench import run_plots
    losses = np.r_[np.linspace(1, 0.1, 300), np.inf]
    np.save(tmp_path / "losses.npy", losses)
    np.savez(tmp_path / "record.npz", step=np.arange(9, 300, 10),
             h=np.arange(30 * 20.0).reshape(30, 20))
    drawn = {}
    real = run_plots._save

    def keep(fig, path):
        drawn[Path(path).name] = fig.axes[0]
        return real(fig, path)
    monkeypatch.setattr(run_plots, "_save", keep)
    run_plots.plot_run(tmp_path)
    ax = drawn["losses.png"]
    assert ax.get_ylabel() == "loss" and ax.get_yscale() == "log"
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), losses[:300])
    assert ax.lines[-1].get_xdata()[0] == 300                  # the step marked
    assert any("not finite at step 300" in t.get_text() for t in ax.texts)
    ax = drawn["record_h.png"]
    assert len(ax.lines) == 12 and "(the first 12 of 20 entries)" in ax.get_title()
    assert "every 10 steps" in ax.get_title() and ax.get_xlabel() == "step"
    assert (tmp_path / "record_h.png").read_bytes()[:4] == b"\x89PNG"


def test_the_plot_command(ts_run, tmp_path):
    pytest.importorskip("matplotlib")
    work, _ = ts_run
    out = hamsym("plot", "run", "-o", tmp_path / "figs", cwd=work).stdout.split()
    assert sorted(Path(p).name for p in out) == ["losses.png", "record_loss.png",
                                                 "record_norm_W1.png", "record_o.png"]
    (tmp_path / "empty").mkdir()
    proc = hamsym("plot", tmp_path / "empty", cwd=work, ok=False)
    assert proc.returncode == 2 and "no losses.npy, record.npz or metrics file" in proc.stderr
