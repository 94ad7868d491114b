"""Time series: lagged windows against lag matrices built by numpy slicing, Welford's
running statistics against numpy's mean and variance of every prefix, and a
one-column CSV learned through `hamsym run` (standardised online, resumed bit for bit)."""

import itertools
import shutil
import tracemalloc

import numpy as np
import pytest

from hamsym import streams
from hamsym.workbench.welford import Standardizer
from conftest import hamsym


def lag_matrix(x, lags, horizon, inputs, targets):
    """The reference: one slice of the series per (lag, column)."""
    x = x.reshape(len(x), -1)
    rows = len(x) - lags - horizon + 1
    U = np.column_stack([x[j:j + rows, c] for j in range(lags) for c in inputs])
    Y = np.column_stack([x[lags - 1 + horizon:lags - 1 + horizon + rows, c] for c in targets])
    return U, Y


CASES = [(8, 1, None, None), (3, 0, [0, 2], [1]), (1, 4, [1], [0, 1, 2]), (5, 2, [2, 0], None)]


@pytest.mark.fast
@pytest.mark.parametrize("lags, horizon, inputs, targets", CASES)
def test_lagged_arrays_and_blocks_are_the_lag_matrix(lags, horizon, inputs, targets):
    rng = np.random.default_rng(lags)
    x = rng.normal(size=(60, 3)).cumsum(axis=0)
    want = lag_matrix(x, lags, horizon, inputs or [0, 1, 2], targets or [0, 1, 2])
    got = streams.lagged(x, lags, horizon, inputs=inputs, targets=targets)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    # blocks of every size, down to one row, join to the same arrays
    cuts = [0, 1, 2, 9, 10, 23, 24, 25, 59, 60]
    blocks = (x[a:b] for a, b in zip(cuts, cuts[1:]))
    parts = list(streams.lagged(blocks, lags, horizon, inputs=inputs, targets=targets))
    for k, b in enumerate(want):
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), b)


def test_lagged_univariate_forms():
    x = np.sin(np.arange(40) * 0.3)
    U, Y = streams.lagged(x, lags=8, horizon=1)
    assert U.shape == (32, 8) and Y.shape == (32, 1)
    np.testing.assert_array_equal(U[5], x[5:13])
    assert Y[5, 0] == x[13]
    # a list of numbers, scalar steps and from_file's 1-tuples give the same rows
    np.testing.assert_array_equal(streams.lagged(list(x), 8, 1)[0], U)
    steps = list(streams.lagged(iter(x), 8, 1))
    np.testing.assert_array_equal(np.concatenate([u for u, _ in steps]), U)
    ones = list(streams.lagged(((x[k:k + 7],) for k in range(0, 40, 7)), 8, 1))
    np.testing.assert_array_equal(np.concatenate([y for _, y in ones]), Y)
    with pytest.raises(ValueError, match="lags = 0: must be an integer >= 1"):
        streams.lagged(x, lags=0)
    with pytest.raises(ValueError, match="inputs: column 3 is not one of the series' columns 0..0"):
        streams.lagged(x, 2, inputs=[3])
    with pytest.raises(ValueError, match="block 1 has 2 columns, the blocks before it 1"):
        list(streams.lagged(iter([x[:10], np.ones((5, 2))]), 2))
    with pytest.raises(ValueError, match=r"series: not an array of numbers .* iter\(blocks\)"):
        streams.lagged([x[:10], x[:5]], 2)


def test_lagged_endless_stream_in_bounded_memory():
    def series():                     # endless: blocks of 100 values of one slow sine
        for k in itertools.count():
            yield np.sin(np.arange(100 * k, 100 * (k + 1)) * 0.01)

    first = list(itertools.islice(streams.lagged(series(), 8, 1), 30))
    want = lag_matrix(np.sin(np.arange(3000) * 0.01), 8, 1, [0], [0])
    np.testing.assert_array_equal(np.concatenate([u for u, _ in first]), want[0][:len(want[0])])
    tracemalloc.start()
    for block in itertools.islice(streams.lagged(series(), 8, 1), 3000):
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # 3000 blocks of 100 x 9 values are 21 MB; one block and the 8 rows carried are kB
    assert peak < 200_000, peak


@pytest.mark.fast
def test_welford_against_numpy_prefix_statistics():
    rng = np.random.default_rng(0)
    X = 1e3 + np.arange(400)[:, None] * [0.5, -2.0, 0.0] + rng.normal(size=(400, 3))
    X[:, 2] = 7.0                                             # a constant column
    scaler = Standardizer()
    Z, centre, scale = scaler.transform(X, stats=True)
    for k in range(1, 400):                                   # the statistics before row k
        np.testing.assert_allclose(centre[k], X[:k].mean(axis=0), rtol=1e-13)
        np.testing.assert_allclose(scale[k], X[:k].std(axis=0), rtol=1e-9, atol=1e-12)
    assert (centre[0] == 0).all() and (scale[0] == 0).all()
    np.testing.assert_allclose(Z[2:, :2], (X[2:, :2] - centre[2:, :2]) / scale[2:, :2], rtol=1e-12)
    assert (Z[:2] == 0).all() and (Z[:, 2] == 0).all()        # no deviation yet: 0
    np.testing.assert_allclose(scaler.mean, X.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(scaler.var, X.var(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(scaler.inverse(Z, centre, scale)[2:], X[2:], rtol=1e-12)

    # any cut into blocks gives the same bits
    cut = Standardizer()
    parts = [cut.transform(X[a:b]) for a, b in [(0, 1), (1, 8), (8, 300), (300, 400)]]
    np.testing.assert_array_equal(np.concatenate(parts), Z)
    np.testing.assert_array_equal(cut.m2, scaler.m2)

    frozen = Standardizer(warmup=50)
    Zf, cf, sf = frozen.transform(X, stats=True)
    assert frozen.frozen and frozen.count == 50
    np.testing.assert_allclose(cf[50:], np.broadcast_to(X[:50].mean(axis=0), (350, 3)), rtol=1e-13)
    np.testing.assert_allclose(sf[399, :2], X[:50, :2].std(axis=0), rtol=1e-9)


def test_welford_refuses_values_that_are_not_finite():
    scaler = Standardizer()
    scaler.transform(np.arange(10.0))
    kept = scaler.count, scaler.mean.copy(), scaler.m2.copy()
    with pytest.raises(ValueError, match=r"row 2, column 0: nan is not a finite number"):
        scaler.transform(np.array([1.0, 2.0, np.nan, 4.0]))
    assert scaler.count == kept[0]
    np.testing.assert_array_equal(scaler.mean, kept[1])          # refused whole
    np.testing.assert_array_equal(scaler.m2, kept[2])
    with pytest.raises(ValueError, match="warmup = 0"):
        Standardizer(warmup=0)


# -- through the command line ---------------------------------------------------------

SPEC = """name = "ts_lag"
loss = "sum_squares(o - y) / 2"
[inputs]
u = 8
[targets]
y = 1
[weights]
W1 = [8, 8]
b1 = 8
W2 = [1, 8]
b2 = 1
[instants]
h1 = "tanh(W1 @ u + b1)"
o = "W2 @ h1 + b2"
[hyper]
beta = 1.0
theta = 0.1
delta = 0.1
"""




@pytest.fixture
def series(tmp_path):
    """A univariate series with a trend, as a one-column CSV with a header."""
    t = np.arange(1200)
    x = 40 + 0.02 * t + np.sin(2 * np.pi * t / 40) + 0.05 * np.random.default_rng(1).normal(size=1200)
    np.savetxt(tmp_path / "series.csv", x[:, None], header="value", comments="", fmt="%.17g")
    (tmp_path / "ts.toml").write_text(SPEC + "[stream]\nlags = 8\nstandardize = true\n")
    (tmp_path / "plain.toml").write_text(SPEC)
    return tmp_path, x


def prefix_standardised(A):
    """Each row standardised with numpy's mean and std of the rows before it (0 while
    that std is 0), and those (mean, std)."""
    mean = np.array([A[:k].mean(axis=0) if k else np.zeros(A.shape[1]) for k in range(len(A))])
    std = np.array([A[:k].std(axis=0) if k else np.zeros(A.shape[1]) for k in range(len(A))])
    with np.errstate(invalid="ignore", divide="ignore"):
        Z = np.where(std > 0, (A - mean) / std, 0.0)
    return Z, mean, std


def test_one_column_csv_learned_through_the_cli(series):
    work, x = series
    out = hamsym("run", "ts.toml", "--stream", "series.csv", "-o", "whole",
                 "--record", "loss,o", "--every", "10", cwd=work).stdout
    assert "ts_lag: steps 0 -> 1192" in out
    assert "the losses are of the standardised values" in out
    assert "o in the units of y (record.npz): mean |o - y| over the 119 new recorded steps" in out

    from hamsym.workbench.spec import load_spec
    mod = load_spec(work / "ts.toml").load(work / "whole/ts_lag.py")
    U, Y = lag_matrix(x, 8, 1, [0], [0])
    Zu, _, _ = prefix_standardised(U)
    Zy, centre, scale = prefix_standardised(Y)
    losses, rec = mod.Integrator(seed=0).run(Zu, Zy, record=["o"], every=10)
    np.testing.assert_allclose(np.load(work / "whole/losses.npy"), losses, rtol=1e-8, atol=1e-14)
    with np.load(work / "whole/record.npz") as saved:       # predictions in original units
        steps = saved["step"]
        np.testing.assert_allclose(saved["o"], rec["o"] * scale[steps] + centre[steps], rtol=1e-9)
        assert np.abs(saved["o"][-20:] - Y[steps[-20:]]).mean() < 0.3       # tracks the series
    assert losses[-100:].mean() < 0.05 * losses[:100].mean()


def test_resumed_standardised_run_is_one_run(series):
    work, _ = series
    options = ("--lags", "8", "--standardize", "--warmup", "700", "--record", "o", "--every", "7")
    hamsym("run", "plain.toml", "--stream", "series.csv", "-o", "whole", *options, cwd=work)
    hamsym("run", "plain.toml", "--stream", "series.csv", "-o", "parts", "--steps", "500",
           *options, cwd=work)
    hamsym("run", "plain.toml", "--stream", "series.csv", "-o", "parts", *options,
           "--resume", "parts/checkpoint.npz", cwd=work)
    np.testing.assert_array_equal(np.load(work / "whole/losses.npy"),
                                  np.load(work / "parts/losses.npy"))
    for name in ("checkpoint.npz", "scaler.npz", "record.npz"):
        with np.load(work / "whole" / name) as a, np.load(work / "parts" / name) as b:
            keys = [k for k in a.files if k != "_meta"]      # _meta names each run's files
            assert keys and keys == [k for k in b.files if k != "_meta"]
            for key in keys:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")
    with np.load(work / "whole/scaler.npz") as a:
        assert int(a["y.count"]) == 700                       # frozen after the warm-up

    # refused, nothing written: without the standardisation, with other lags, another
    # run's scaler, a network the lags do not fit
    before = {p.name: p.read_bytes() for p in (work / "parts").iterdir() if p.is_file()}
    bad = hamsym("run", "plain.toml", "--stream", "series.csv", "-o", "parts", "--lags", "8",
                 "--resume", "parts/checkpoint.npz", cwd=work, ok=False)
    assert bad.returncode == 2 and "written by a standardised run" in bad.stderr, bad.stderr
    bad = hamsym("run", "plain.toml", "--stream", "series.csv", "-o", "parts", "--lags", "8",
                 "--standardize", "--resume", "parts/checkpoint.npz", cwd=work, ok=False)
    assert "parts/scaler.npz was written with the stream settings" in bad.stderr, bad.stderr
    # (checkpoints are the same bytes for the same learner: "whole" is "parts" resumed,
    # so another run's scaler comes from a run that stopped elsewhere)
    hamsym("run", "plain.toml", "--stream", "series.csv", "-o", "other", "--steps", "300",
           *options, cwd=work)
    shutil.copy(work / "other/scaler.npz", work / "parts/scaler.npz")
    bad = hamsym("run", "plain.toml", "--stream", "series.csv", "-o", "parts", *options,
                 "--resume", "parts/checkpoint.npz", cwd=work, ok=False)
    assert "was written with another checkpoint than parts/checkpoint.npz" in bad.stderr
    (work / "parts/scaler.npz").write_bytes(before["scaler.npz"])
    bad = hamsym("run", "plain.toml", "--stream", "series.csv", "-o", "parts", "--lags", "5",
                 cwd=work, ok=False)
    assert bad.returncode == 2 and "plain.toml with --lags 5: 5 lags of 1 input column " \
        "('value') make 5 input values, but the network's inputs take 8 (u: 8)" in bad.stderr
    assert before == {p.name: p.read_bytes() for p in (work / "parts").iterdir() if p.is_file()}


def test_sweep_reads_the_stream_table(series):
    """`hamsym sweep` lags and standardises the file as `hamsym run` does: its table is
    hs.sweep's on the lag matrix standardised with numpy's prefix statistics."""
    import hamsym as hs
    from hamsym.workbench.spec import load_spec
    work, x = series
    out = hamsym("sweep", "ts.toml", "--stream", "series.csv", "--grid", "beta=0.5,1",
                 "--seeds", "0,1", "--window", "100", "-o", "grid", cwd=work).stdout
    assert "ts_lag: 4 learners, 1192 rows of the stream" in out
    got = np.genfromtxt(work / "grid/sweep.csv", delimiter=",", names=True, dtype=None,
                        encoding="utf-8")
    mod = load_spec(work / "ts.toml").load(work / "grid/ts_lag.py")
    U, Y = lag_matrix(x, 8, 1, [0], [0])
    want = hs.sweep(mod, {"beta": [0.5, 1]}, (prefix_standardised(U)[0], prefix_standardised(Y)[0]),
                    seeds=[0, 1], window=100, frame=False)
    for name in ("beta", "seed", "diverged"):
        np.testing.assert_array_equal(got[name], want[name])
    for name in ("final_loss", "mean_loss"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-8)
    with np.load(work / "grid/scaler.npz") as scaler:
        assert int(scaler["u.count"]) == 1192
        np.testing.assert_allclose(scaler["y.mean"], Y.mean(axis=0), rtol=1e-13)
