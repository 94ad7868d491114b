"""Recording inside the compiled loop (run/run_stream with record=) against a plain
step-by-step Python loop of step() and forward(); fixed memory on long streams;
interruptions keep what was recorded; the progress bar."""

import io
import math
import sys
import tracemalloc

import numpy as np
import pytest

import hamsym as hs
from conftest import runtime_of
from hamsym.declare.zoo import delay_network, mlp, oscillator_bank, recurrent

DELTA = 0.1


def _norm(a):
    """Frobenius norm, summed in order in float64 (as the kernel sums it)."""
    return math.sqrt(sum(float(v) * float(v) for v in a.ravel()))


def _reference(mod, learner, data, keys, every):
    """What a user would write: step() per sample, copying what is asked before it."""
    rows = {key: [] for key in ["step", *keys]}
    losses = []
    n_in = len(mod.INPUTS)
    for sample in zip(*data):
        g = learner.step_count
        take = (g + 1) % every == 0
        if take:
            rows["step"].append(g)
            out = learner.forward(*sample[:n_in])
            for key in keys:
                if key in mod.OUTPUTS:
                    rows[key].append(out[key])
                elif key in mod.STATES:
                    rows[key].append(learner.states[key].copy())
                elif key in mod.WEIGHTS:
                    rows[key].append(learner.weights[key].copy())
                elif key != "loss":
                    rows[key].append(_norm(learner.weights[key.strip("|")]))
        losses.append(learner.step(*sample))
        if take and "loss" in keys:
            rows["loss"].append(losses[-1])
    return {key: np.array(v) for key, v in rows.items()}, np.array(losses)


def _started(mod, seed=0):
    learner = mod.Integrator(seed=seed)
    rng = np.random.default_rng(seed + 7)
    for a in learner.states.values():
        a[...] = rng.normal(size=a.shape)
    return learner


CASES = {   # name -> (network, scheme, keys): outputs, states (dynamics), weights, norms
    "mlp": (lambda: mlp([3, 5, 2], name="rec_mlp"), "nonlocal", ["loss", "h1", "o", "W2", "|W1|"]),
    "rnn": (lambda: recurrent(2, 5, 3, kind="continuous", tau=2.5, name="rec_rnn"), "nonlocal",
            ["loss", "o", "x", "A", "|A|", "|c|"]),
    "delay": (lambda: delay_network([3, 4, 2], name="rec_delay"), "local",
              ["loss", "x1", "x2", "W2", "|b1|"]),
    "oscillators": (lambda: oscillator_bank(3, name="rec_osc"), "nonlocal",
                    ["loss", "o", "a", "b", "w", "|w|"]),
}


@pytest.fixture(scope="module")
def modules(gen_dir):
    def get(case):
        net, scheme, keys = CASES[case]
        return hs.load(hs.derive(net(), theta=0.1, delta=DELTA),
                       gen_dir / f"{case}_record.py", scheme=scheme), keys
    return get


def _data(mod, T, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(T,) + shape) for shape in {**mod.INPUTS, **mod.TARGETS}.values()]


@pytest.mark.parametrize("case", sorted(CASES))
def test_recorded_rows_equal_a_step_by_step_loop(modules, case):
    mod, keys = modules(case)
    T, every = 60, 7
    data = _data(mod, T)
    want, plain = _reference(mod, _started(mod), data, keys, every)
    losses, rec = _started(mod).run(*data, record=keys, every=every)
    np.testing.assert_array_equal(losses, plain)              # recording changes nothing
    assert rec.rows == T // every and list(rec) == ["step", *keys]
    for key in rec:
        assert rec[key].shape == want[key].shape, key
        np.testing.assert_array_equal(rec[key], want[key], err_msg=key)
    # the same rows: split in two calls, through run_stream (chunks that do not divide
    # the windows), and the newest rows of a ring
    split, stream, ring = (_started(mod) for _ in range(3))
    two = mod.Recorder(keys, every)
    split.run(*(d[:23] for d in data), record=two)
    split.run(*(d[23:] for d in data), record=two)
    steps, streamed = stream.run_stream(zip(*data) if len(data) > 1 else data[0], chunk=9,
                                        record=keys, every=every)
    last = mod.Recorder(keys, every, last=3)
    ring.run_stream(zip(*data) if len(data) > 1 else data[0], chunk=5, record=last)
    assert steps == T and last.rows == 3
    for key in rec:
        np.testing.assert_array_equal(two[key], rec[key], err_msg=key)
        np.testing.assert_array_equal(streamed[key], rec[key], err_msg=key)
        np.testing.assert_array_equal(last[key], rec[key][-3:], err_msg=key)


def test_every_step_records_the_losses_run_returns(modules):
    mod, _ = modules("mlp")
    data = _data(mod, 50)
    losses, rec = mod.Integrator().run(*data, record="loss")
    np.testing.assert_array_equal(rec["loss"], losses)
    np.testing.assert_array_equal(rec["step"], np.arange(50))


def test_bad_record_arguments_are_refused(modules):
    mod, _ = modules("rnn")
    learner = mod.Integrator()
    data = _data(mod, 5)
    with pytest.raises(ValueError, match=r"cannot record 'h9', '\|W\|': valid keys are "
                                         r"'loss', 'o', 'x', 'A', .*'\|A\|'"):
        learner.run(*data, record=["loss", "h9", "|W|"])
    with pytest.raises(TypeError, match="every= says how often to record: give record= too"):
        learner.run(*data, every=10)
    with pytest.raises(ValueError, match="every = 0: must be an integer >= 1"):
        mod.Recorder(["x"], every=0)
    assert learner.step_count == 0                          # refused before any step
    with pytest.raises(KeyError, match="'A' was not recorded; recorded: \\['step', 'x'\\]"):
        mod.Recorder(["x"])["A"]
    with pytest.raises(NotImplementedError, match="DistributedIntegrator does not record"):
        modules("delay")[0].DistributedIntegrator._no_record(["loss"], None, None)


def test_divergence_and_interruption_keep_the_rows_recorded(modules, monkeypatch,
                                                           ctrl_c_after_one_slice):
    mod, _ = modules("mlp")
    data = _data(mod, 400)
    learner = mod.Integrator(beta=1e3, theta=0.0)           # climbs to inf within a few steps
    rec = mod.Recorder(["loss", "|W1|"], every=1)
    with pytest.raises(mod.DivergenceError) as err:
        learner.run(*data, record=rec)
    assert rec.rows == err.value.steps and not math.isfinite(rec["loss"][-1])
    np.testing.assert_array_equal(rec["loss"], err.value.losses)

    keys = ["loss", "o", "W1"]
    whole = mod.Integrator().run(*data, record=keys, every=3)[1]
    learner, rec = mod.Integrator(), mod.Recorder(keys, every=3)
    learner._slice = 50
    monkeypatch.setattr(runtime_of(mod, "interrupt"), "CtrlC", ctrl_c_after_one_slice)
    with pytest.raises(mod.Interrupted) as stop:
        learner.run(*data, record=rec)
    assert stop.value.steps == 50 and rec.rows == 50 // 3
    monkeypatch.undo()
    learner.run(*(d[50:] for d in data), record=rec)       # continue: the rows of one run
    for key in rec:
        np.testing.assert_array_equal(rec[key], whole[key], err_msg=key)


def _cycled(data, n):
    for k in range(n):
        yield tuple(d[k % len(d)] for d in data)


def test_run_stream_memory_grows_with_the_rows_asked_not_the_steps(modules):
    """A stream 10x longer, recorded 10x less often: the same rows, the same peak."""
    mod, _ = modules("rnn")
    data = _data(mod, 100)
    keys = ["loss", "x", "A", "|A|"]
    # compiled, and every one-time allocation of a first run made before measuring
    # (numpy keeps caches filled by the first copies of samples into the chunk buffers)
    mod.Integrator().run_stream(_cycled(data, 5_000), chunk=256, record=keys, every=40)
    peaks = []
    for steps, every in ((5_000, 40), (50_000, 400)):
        learner = mod.Integrator()
        tracemalloc.start()
        try:
            done, rec = learner.run_stream(_cycled(data, steps), chunk=256, record=keys,
                                           every=every)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert done == steps and rec.rows == 125
    assert abs(peaks[1] - peaks[0]) < 0.05 * peaks[0] + 4096, peaks


def test_progress_bar_reaches_the_end_and_shows_the_loss(modules, monkeypatch, capsys):
    pytest.importorskip("tqdm")
    mod, _ = modules("mlp")
    data = _data(mod, 3000)
    out = io.StringIO()
    mod.Integrator().run(*data, progress={"file": out, "mininterval": 0})
    last = out.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert "3000/3000" in last and "step/s" in last and "loss=" in last, last
    out = io.StringIO()
    mod.Integrator().run_stream(zip(*data), chunk=512, progress={"file": out, "mininterval": 0})
    assert "3000step " in out.getvalue() and "loss=" in out.getvalue()     # no total: a count
    mod.Integrator().run(*data)                              # None: stderr is no terminal here
    assert capsys.readouterr().err == ""
    monkeypatch.setitem(sys.modules, "tqdm", None)           # tqdm not installed
    with pytest.raises(ImportError, match="pip install tqdm"):
        mod.Integrator().run(*data, progress=True)
    mod.Integrator().run(*data, progress=None)              # silently off
