"""Ensemble: K learners stepped in one parallel compiled call. Each learner is compared
bit for bit (np.array_equal) with a single Integrator of the same seed and
hyperparameters run over the same stream; divergence of one learner leaves the
others untouched; checkpoints, copies and sweeps."""

import pickle
import warnings

import numpy as np
import pytest

import hamsym as hs
from conftest import runtime_of
from hamsym.declare.zoo import mlp, recurrent

KW = dict(theta=0.1, beta=0.5, delta=0.1)
SEEDS = [3, 1, 4]


@pytest.fixture(scope="module")
def modules(gen_dir):
    """Three small modules, compiled once for the whole file: a non-local MLP, a
    continuous-time recurrent network (states and a param) in the local scheme, and an
    MLP in float32 (the ensemble kernel sees the scheme only through step())."""
    return {
        "mlp": hs.load(hs.derive(mlp([3, 5, 2], name="ens_mlp"), **KW), gen_dir / "ens_mlp.py"),
        "rnn_local": hs.load(hs.derive(recurrent(3, 4, 2, kind="continuous", tau=2.0,
                                                 name="ens_rnn"), **KW),
                             gen_dir / "ens_rnn_local.py", scheme="local"),
        "mlp_f32": hs.load(hs.derive(mlp([3, 4, 2], name="ens_mlp32"), **KW),
                           gen_dir / "ens_mlp_f32.py", dtype="float32"),
    }


def _streams(mod, shape, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape + s) for s in {**mod.INPUTS, **mod.TARGETS}.values()]


def _assert_same(ensemble, i, learner):
    assert ensemble.step_count[i] == learner.step_count
    for kind in ("weights", "states", "costates"):
        for name, a in getattr(learner, kind).items():
            row = getattr(ensemble, kind)[name][i]
            assert row.dtype == a.dtype
            assert np.array_equal(row, a, equal_nan=True), (kind, name, i)


def _hyper(mod):
    h = dict(beta=[0.5, 0.2, 0.05], theta=[0.1, 0.3, 0.0], theta_neurons=[None, 0.2, None])
    if "tau" in mod.PARAMS:
        h["tau"] = [2.0, 1.5, 3.0]
    return h


@pytest.mark.parametrize("key", ["mlp", "rnn_local", "mlp_f32"])
def test_each_learner_is_the_integrator_of_its_seed_and_hyperparameters(modules, key):
    mod = modules[key]
    hyper = _hyper(mod)
    ensemble = mod.Ensemble(seeds=SEEDS, **hyper)
    assert ensemble.K == len(ensemble) == 3 and ensemble.weights["W1" if "W1" in mod.WEIGHTS
                                                                else "A"].shape[0] == 3
    singles = [mod.Integrator(seed=s, **{n: v[i] for n, v in hyper.items()})
               for i, s in enumerate(SEEDS)]
    shared = _streams(mod, (60,), 0)                        # one stream for every learner
    own = _streams(mod, (3, 45), 1)                         # one stream per learner
    losses = ensemble.run(*shared)
    assert losses.shape == (3, 60)
    for i, one in enumerate(singles):
        assert np.array_equal(losses[i], one.run(*shared))
        _assert_same(ensemble, i, one)
    losses = ensemble.run(*own)
    for i, one in enumerate(singles):
        assert np.array_equal(losses[i], one.run(*(d[i] for d in own)))
        _assert_same(ensemble, i, one)
    mixed = [own[0], shared[1][:45]]                        # own inputs, a shared target
    losses = ensemble.run(*mixed)
    for i, one in enumerate(singles):
        assert np.array_equal(losses[i], one.run(own[0][i], shared[1][:45]))
        _assert_same(ensemble, i, one)
    assert not ensemble.diverged.any() and (ensemble.diverged_at == -1).all()


def test_a_diverging_learner_is_frozen_and_the_others_go_on(modules):
    mod = modules["mlp"]
    U, Y = _streams(mod, (80,), 2)
    U *= 30
    beta = [0.5, 1e6, 0.2]                                  # learner 1 blows up
    ensemble = mod.Ensemble(seeds=SEEDS, beta=beta)
    with pytest.warns(mod.DivergenceWarning, match=r"learners \[1\]"):
        losses = ensemble.run(U, Y)
    blown = mod.Integrator(seed=SEEDS[1], beta=beta[1])
    with pytest.raises(mod.DivergenceError) as err:
        blown.run(U, Y)
    at = err.value.step
    assert 0 < at < 79
    assert ensemble.diverged.tolist() == [False, True, False]
    assert ensemble.diverged_at.tolist() == [-1, at, -1]
    assert ensemble.step_count.tolist() == [80, at + 1, 80]
    assert np.array_equal(losses[1, :at + 1], err.value.losses, equal_nan=True)
    assert np.isnan(losses[1, at + 1:]).all()
    _assert_same(ensemble, 1, blown)                        # frozen right after that step
    for i in (0, 2):
        one = mod.Integrator(seed=SEEDS[i], beta=beta[i])
        assert np.array_equal(losses[i], one.run(U, Y))
        _assert_same(ensemble, i, one)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # nothing new diverges
        again = ensemble.run(U[:10], Y[:10])
    assert np.isnan(again[1]).all() and np.isfinite(again[[0, 2]]).all()
    assert ensemble.step_count.tolist() == [90, at + 1, 90]
    assert ensemble.best() in (0, 2)
    # without the check nobody is frozen, and the divergence is still reported
    loose = mod.Ensemble(seeds=SEEDS, beta=beta, check_finite=False)
    with pytest.warns(mod.DivergenceWarning, match="went on"):
        loose.run(U, Y)
    assert loose.step_count.tolist() == [80, 80, 80]
    assert loose.diverged_at.tolist() == [-1, at, -1]


def test_run_stream_is_run_in_fixed_chunks(modules, monkeypatch):
    """run_stream over a generator, in chunks that do not divide the stream, leaves
    every learner as run() over the whole stream does, and hands on_chunk the losses."""
    mod = modules["rnn_local"]
    hyper = _hyper(mod)
    U, Y = _streams(mod, (50,), 11)
    whole = mod.Ensemble(seeds=SEEDS, **hyper)
    want = whole.run(U, Y)
    streamed = mod.Ensemble(seeds=SEEDS, **hyper)
    seen = []
    rows = streamed.run_stream(((u, list(y)) for u, y in zip(U, Y)), chunk=16,
                               on_chunk=lambda losses: seen.append(losses.copy()))
    assert rows == 50 and [c.shape for c in seen] == [(3, 16)] * 3 + [(3, 2)]
    assert np.array_equal(np.concatenate(seen, axis=1), want)
    for i in range(3):
        _assert_same(streamed, i, whole.learner(i))
    assert np.array_equal(streamed.recent_loss(), whole.recent_loss())

    # a bad sample: the ones before it are applied, then the error names it
    bad = mod.Ensemble(seeds=SEEDS, **hyper)
    samples = [(u, y) for u, y in zip(U[:8], Y[:8])] + [(U[8], Y[8][:1])]
    with pytest.raises(ValueError, match=r"sample 8: y has shape \(1,\).*the 8 samples before"):
        bad.run_stream(iter(samples), chunk=5)
    assert bad.step_count.tolist() == [8, 8, 8]

    # Ctrl-C pressed while the first chunk runs: the call stops before the next sample
    class CtrlC:                                          # stands in for the module's
        pressed = False

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False
    ctrl_c = CtrlC()
    monkeypatch.setattr(runtime_of(mod, "interrupt"), "CtrlC", lambda: ctrl_c)
    stopped = mod.Ensemble(seeds=SEEDS, **hyper)
    with pytest.raises(mod.Interrupted) as err:
        stopped.run_stream(zip(U, Y), chunk=10, on_chunk=lambda _: setattr(ctrl_c, "pressed", True))
    monkeypatch.undo()
    assert err.value.steps == 10 and err.value.unapplied == 1
    assert stopped.step_count.tolist() == [10, 10, 10]
    again = mod.Ensemble(seeds=SEEDS, **hyper)
    again.run(U[:10], Y[:10])
    for i in range(3):
        _assert_same(stopped, i, again.learner(i))


def test_run_stream_stops_once_every_learner_diverged(modules):
    mod = modules["mlp"]
    U, Y = _streams(mod, (40,), 2)
    U *= 30
    ensemble = mod.Ensemble(seeds=SEEDS, beta=[1e6, 1e6, 1e6])
    taken = []

    def samples():
        for u, y in zip(U, Y):
            taken.append(1)
            yield u, y
    with pytest.warns(mod.DivergenceWarning, match=r"learners \[0, 1, 2\]"):
        rows = ensemble.run_stream(samples(), chunk=4)
    assert ensemble.diverged.all() and rows <= len(taken) < 40
    assert rows == ensemble.step_count.max()


def test_predict_is_each_learners_predict(modules):
    mod = modules["rnn_local"]                                # states and a param
    ensemble = mod.Ensemble(seeds=SEEDS, **_hyper(mod))
    ensemble.run(*_streams(mod, (30,), 12))                   # learned something first
    learners = list(ensemble)
    U = _streams(mod, (3, 20), 13)[0]                         # one input stream per learner
    got = ensemble.predict(U)
    for i, one in enumerate(learners):
        want = one.predict(U[i])
        assert set(got) == set(want)
        for name, a in want.items():
            assert got[name].shape == (3,) + a.shape
            assert np.array_equal(got[name][i], a), (name, i)
        _assert_same(ensemble, i, one)                        # the states advanced alike
    before = {name: a.copy() for name, a in ensemble.states.items()}
    shared = ensemble.predict(U[0], keep_states=True)         # one stream for all
    for i, one in enumerate(learners):
        want = one.predict(U[0], keep_states=True)
        for name, a in want.items():
            assert np.array_equal(shared[name][i], a), (name, i)
    for name, a in before.items():
        assert np.array_equal(ensemble.states[name], a), name


def test_progress_bar_counts_rows_and_shows_the_best_loss(modules):
    pytest.importorskip("tqdm")
    import io
    mod = modules["mlp"]
    U, Y = _streams(mod, (600,), 14)
    out = io.StringIO()
    mod.Ensemble(seeds=SEEDS).run(U, Y, progress={"file": out, "mininterval": 0})
    last = out.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert "600/600" in last and "best loss=" in last, last
    out = io.StringIO()
    mod.Ensemble(seeds=SEEDS).run_stream(list(zip(U, Y)), chunk=256,
                                         progress={"file": out, "mininterval": 0})
    last = out.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert "600/600" in last and "best loss=" in last, last


def test_learners_are_copies_and_ensembles_are_built_from_integrators(modules):
    mod = modules["mlp"]
    U, Y = _streams(mod, (30,), 3)
    learners = [mod.Integrator(seed=s, beta=b) for s, b in zip(SEEDS, (0.5, 0.1, 0.3))]
    learners[2].run(U[:7], Y[:7])                           # a learner that has history
    ensemble = mod.Ensemble.from_learners(learners)
    assert ensemble.step_count.tolist() == [0, 0, 7] and ensemble.seeds == (None,) * 3
    losses = ensemble.run(U, Y)
    for i, one in enumerate(learners):
        assert np.array_equal(losses[i], one.run(U, Y))
        _assert_same(ensemble, i, one)
    ensemble.hyper["beta"] = [0.2, 0.4, 0.2]                # checked, and used from now on
    for one, beta in zip(learners, (0.2, 0.4, 0.2)):
        one.hyper["beta"] = beta
    losses = ensemble.run(U[:9], Y[:9])
    for i, one in enumerate(learners):
        assert np.array_equal(losses[i], one.run(U[:9], Y[:9]))
    copy = ensemble[-1]
    assert isinstance(copy, mod.Integrator) and copy.hyper["beta"] == 0.2
    _assert_same(ensemble, 2, copy)
    copy.weights["W1"][...] = 0.0
    assert not np.array_equal(ensemble.weights["W1"][2], copy.weights["W1"])
    assert [one.step_count for one in ensemble] == [39, 39, 46]
    with pytest.raises(IndexError, match="3 learners"):
        ensemble.learner(3)
    with pytest.raises(TypeError, match="not an Integrator"):
        mod.Ensemble.from_learners([learners[0], modules["rnn_local"].Integrator()])


def test_save_and_restore_continue_bit_identically(modules, tmp_path):
    mod = modules["rnn_local"]
    data = _streams(mod, (3, 50), 4)
    hyper = _hyper(mod)
    whole = mod.Ensemble(seeds=SEEDS, **hyper)
    whole.run(*data)
    half = mod.Ensemble(seeds=SEEDS, **hyper)
    half.run(*(d[:, :20] for d in data))
    path = half.save(tmp_path / "ens.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ens.npz"]   # no temporary left
    back = mod.Ensemble.restore(path)
    assert back.hyper == half.hyper and back.seeds == tuple(SEEDS)
    twin = pickle.loads(pickle.dumps(half))                 # a pickle: the same state
    twin.run(*(d[:, 20:] for d in data))
    back.run(*(d[:, 20:] for d in data))
    for kind in ("weights", "states", "costates"):
        for name, a in getattr(whole, kind).items():
            assert np.array_equal(getattr(back, kind)[name], a)
            assert np.array_equal(getattr(twin, kind)[name], a)
    assert back.step_count.tolist() == [50] * 3
    assert np.array_equal(back.recent_loss(), whole.recent_loss())
    with pytest.raises(ValueError, match="SPEC_HASH"):
        modules["mlp"].Ensemble.restore(path)
    one = mod.Integrator().save(tmp_path / "one.npz")
    with pytest.raises(ValueError, match="Integrator.restore"):
        mod.Ensemble.restore(one)
    with pytest.raises(ValueError, match="Ensemble.restore"):
        mod.Integrator.restore(path)


def test_best_is_the_lowest_mean_over_the_recent_window(modules):
    mod = modules["mlp"]
    U, Y = _streams(mod, (40,), 5)
    ensemble = mod.Ensemble(5, beta=[0.0, 0.5, 1.0, 0.05, 0.2], recent=50)
    first, second = ensemble.run(U, Y), ensemble.run(U, Y)
    both = np.concatenate([first, second], axis=1)          # 80 losses, 50 kept
    for window in (None, 50, 30, 1):
        mean = both[:, -(window or 50):].mean(axis=1)
        assert np.allclose(ensemble.recent_loss(window), mean, rtol=1e-13, atol=0)
        assert ensemble.best(window) == int(np.argmin(mean))
    with pytest.raises(ValueError, match="between 1 and recent = 50"):
        ensemble.best(51)
    with pytest.raises(ValueError, match="no step"):
        mod.Ensemble(2).best()


def test_ctrl_c_stops_every_learner_at_one_step_boundary(modules, monkeypatch,
                                                        ctrl_c_after_one_slice):
    mod = modules["mlp"]
    U, Y = _streams(mod, (200,), 6)

    monkeypatch.setattr(runtime_of(mod, "interrupt"), "CtrlC", ctrl_c_after_one_slice)
    ensemble = mod.Ensemble(seeds=SEEDS)
    with pytest.raises(mod.Interrupted) as err:
        ensemble.run(U, Y)
    monkeypatch.undo()
    steps = err.value.steps
    assert 0 < steps < 200 and err.value.losses.shape == (3, steps)
    for i, s in enumerate(SEEDS):
        one = mod.Integrator(seed=s)
        assert np.array_equal(err.value.losses[i], one.run(U[:steps], Y[:steps]))
        _assert_same(ensemble, i, one)


def test_bad_input_names_the_argument(modules):
    mod = modules["mlp"]
    with pytest.raises(ValueError, match=r"beta has shape \(2,\).*one per learner \(3\)"):
        mod.Ensemble(3, beta=[0.1, 0.2])
    with pytest.raises(ValueError, match="learner 1: delta = -0.1"):
        mod.Ensemble(3, delta=[0.1, -0.1, 0.1])
    with pytest.raises(TypeError, match="unknown hyperparameter 'betta'"):
        mod.Ensemble(3, betta=0.1)
    with pytest.raises(ValueError, match="3 learners with 2 seeds"):
        mod.Ensemble(3, seeds=[0, 1])
    with pytest.raises(ValueError, match=r"weight 'W1' has shape \(5, 2\)"):
        mod.Ensemble(2, weights={"W1": np.zeros((5, 2))})
    ensemble = mod.Ensemble(2, weights={"b1": np.ones(5)})   # one array for every learner
    assert np.array_equal(ensemble.weights["b1"], np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"u: expected a stream of shape \(T, 3\)"):
        ensemble.run(np.zeros((4, 10, 3)), np.zeros((10, 2)))
    with pytest.raises(ValueError, match="same length"):
        ensemble.run(np.zeros((10, 3)), np.zeros((9, 2)))


def test_sweep_tabulates_the_grid(modules):
    mod = modules["mlp"]
    U, Y = _streams(mod, (50,), 7)
    U[:, 0] *= 30
    grid = {"beta": [0.1, 1e6], "theta": [0.1, 0.5]}
    with pytest.warns(mod.DivergenceWarning):
        table = hs.sweep(mod, grid, (U, Y), seeds=[0, 2], frame=False, window=10)
    assert table.dtype.names == ("beta", "theta", "seed", "final_loss", "mean_loss", "diverged")
    assert len(table) == 8
    for row in table:
        one = mod.Integrator(seed=int(row["seed"]), beta=row["beta"], theta=row["theta"],
                             check_finite=False)
        losses = one.run(U, Y)
        if row["beta"] == 1e6:                              # these blow up
            assert row["diverged"] and np.isnan(row["final_loss"]) and np.isnan(row["mean_loss"])
            assert not np.isfinite(losses).all()
        else:
            assert not row["diverged"]
            assert np.isclose(row["final_loss"], losses[-10:].mean(), rtol=1e-13, atol=0)
            assert np.isclose(row["mean_loss"], losses.mean(), rtol=1e-13, atol=0)
    assert [tuple(r)[:3] for r in table[:3]] == [(0.1, 0.1, 0), (0.1, 0.1, 2), (0.1, 0.5, 0)]
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pandas"):
            hs.sweep(mod, {"beta": [0.1]}, (U, Y), frame=True)
        return
    with pytest.warns(mod.DivergenceWarning):
        frame = hs.sweep(mod, grid, (U, Y), seeds=[0, 2], window=10)
    assert list(frame.columns) == list(table.dtype.names)
    for name in table.dtype.names:
        assert np.array_equal(frame[name].to_numpy(), table[name], equal_nan=True)


def test_sweep_refuses_what_it_cannot_run(modules):
    mod = modules["mlp"]
    U, Y = _streams(mod, (5,), 8)
    with pytest.raises(ValueError, match="seeds="):
        hs.sweep(mod, {"seed": [0, 1]}, (U, Y))
    with pytest.raises(ValueError, match=r"grid\['beta'\] is empty"):
        hs.sweep(mod, {"beta": []}, (U, Y))
    with pytest.raises(TypeError, match="options"):
        hs.sweep(mod, {"beta": [0.1]}, (U, Y), scheme="local")
    with pytest.raises(TypeError, match="Network, a derived System or a generated module"):
        hs.sweep("mlp", {"beta": [0.1]}, (U, Y))


def test_sweep_generates_the_module_of_a_system_or_a_network(modules, gen_dir):
    """sweep(System or Network, ..., path=...) generates (or reuses) the module and runs
    the grid: the same table as sweeping the module itself."""
    mod = modules["mlp"]
    U, Y = _streams(mod, (20,), 9)
    grid = {"beta": [0.1, 0.3]}
    want = hs.sweep(mod, grid, (U, Y), seeds=[0, 1], frame=False)
    system = hs.derive(mlp([3, 5, 2], name="ens_mlp"), **KW)
    got = hs.sweep(system, grid, (U, Y), seeds=[0, 1], frame=False, path=gen_dir / "ens_mlp.py")
    assert np.array_equal(got, want)
    net = mlp([3, 2], name="ens_sweep_net")           # derived with the default hyperparameters
    table = hs.sweep(net, grid, (U, Y), frame=False, path=gen_dir / "ens_sweep_net.py")
    for row in table:
        one = hs.load(hs.derive(net), gen_dir / "ens_sweep_net.py").Integrator(seed=0, beta=row["beta"])
        assert np.isclose(row["mean_loss"], one.run(U, Y).mean(), rtol=1e-13, atol=0)
