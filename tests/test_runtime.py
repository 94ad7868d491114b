"""The runtime of generated modules, tested as the ordinary Python it is: its parts
without a generated module, and the copy that goes beside each module."""

import json
import os
import pickle
import signal
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hamsym import runtime
from hamsym.codegen.render import write_runtime
from hamsym.runtime import checkpoint, checks, exchange, feed, files, interrupt, live
from hamsym.runtime import progress as bars
from hamsym.runtime import recorder as recorder_module

pytestmark = pytest.mark.fast


# -- checks ---------------------------------------------------------------------------------

def test_real_refuses_what_is_not_real_numbers():
    assert checks.real([1, 2], "x").dtype.kind == "i"
    with pytest.raises(TypeError, match="x has dtype complex128"):
        checks.real([1j], "x")
    with pytest.raises(TypeError, match="y has dtype <U1"):
        checks.real(["a"], "y")


def test_fit_converts_only_when_needed():
    a = np.zeros((2, 3))
    assert checks.fit(a, (2, 3), np.float64, "W", copy=False) is a
    assert checks.fit(a, (2, 3), np.float64, "W", copy=True) is not a
    b = checks.fit(np.zeros((3, 1), np.float32), (3,), np.float64, "b", copy=False)
    assert b.shape == (3,) and b.dtype == np.float64
    strided = np.zeros((2, 6))[:, ::2]
    assert checks.fit(strided, (2, 3), np.float64, "W", False).flags.c_contiguous
    with pytest.raises(ValueError, match=r"W has shape \(3, 2\), declared \(2, 3\)"):
        checks.fit(np.zeros((3, 2)), (2, 3), np.float64, "W", False)


@pytest.mark.parametrize("name, value, error, match", [
    ("nope", 1.0, KeyError, "unknown hyperparameter 'nope'"),
    ("beta", 1j, TypeError, r"beta = 1j: expected a real number"),
    ("beta", "x", TypeError, "expected a real number"),
    ("beta", float("nan"), ValueError, "must be finite"),
    ("delta", 0.0, ValueError, "the time step must be > 0"),
    ("flip", 0.5, ValueError, "must be -1"),
])
def test_hyper_refusals_name_the_value(name, value, error, match):
    with pytest.raises(error, match=match):
        checks.hyper(name, value, ["beta", "delta", "flip"])


def test_hyper_warns_of_values_rarely_meant():
    known = ["beta", "theta", "theta_neurons"]
    with pytest.warns(checks.HyperparameterWarning, match="weights climb the loss"):
        assert checks.hyper("beta", -1, known) == -1.0
    with pytest.warns(checks.HyperparameterWarning, match="1 - theta is negative"):
        checks.hyper("theta", 1.5, known)
    assert checks.hyper("theta_neurons", None, known) is None


def test_initial_weights_are_drawn_within_one_over_root_fan_in():
    w = checks.initial((50, 16), np.random.default_rng(0), np.float32)
    assert w.dtype == np.float32 and np.abs(w).max() <= 0.25 and np.abs(w).max() > 0.2
    v = checks.initial((4,), np.random.default_rng(0), np.float64)
    assert np.abs(v).max() <= 0.5
    with pytest.raises(TypeError, match="float32 or float64, not int64"):
        checks.float_dtype("int64")


# -- live tables ---------------------------------------------------------------------------

def test_arrays_keep_their_keys_and_check_their_values():
    a = live.Arrays("weight", {"W": (2, 2)}, np.dtype(np.float64), {"W": np.zeros((2, 2))})
    edition, replaced = live.Fixed.edition, live.Arrays.replaced
    a["W"] = np.ones((2, 2), np.float32)
    assert a["W"].dtype == np.float64 and live.Fixed.edition == edition + 1
    assert live.Arrays.replaced == replaced + 1
    with pytest.raises(KeyError, match="unknown weight 'V'"):
        a["V"] = np.ones(2)
    for refused in (lambda: a.pop("W"), lambda: a.clear(), lambda: a.popitem(),
                    lambda: a.__delitem__("W")):
        with pytest.raises(TypeError, match="the keys of weights are fixed"):
            refused()
    with pytest.raises(KeyError):
        a.setdefault("V", 1)
    a |= {"W": np.full((2, 2), 2.0)}
    assert a.setdefault("W") is a["W"] and a["W"][0, 0] == 2
    assert type(pickle.loads(pickle.dumps(a))) is dict


def test_hyper_tables_forget_their_scalars_when_set():
    h = live.Hyper({"beta": 1, "delta": 0.1}, ["beta", "delta"])
    h.scalars = (1.0, 0.1)
    h["beta"] = 2
    assert h.scalars is None and h["beta"] == 2.0
    e = live.PerLearner(3, {"beta": [1, 2, 3], "delta": 0.1}, ["beta", "delta"])
    assert e["beta"] == (1.0, 2.0, 3.0) and e["delta"] == (0.1, 0.1, 0.1)
    with pytest.raises(ValueError, match="give one value, or one per learner"):
        e["beta"] = [1, 2]
    with pytest.raises(ValueError, match="learner 1: delta = -1.0"):
        e["delta"] = [1, -1, 1]
    with pytest.raises(TypeError, match="unknown hyperparameter 'x'"):
        e["x"] = 1


# -- samples and chunks ---------------------------------------------------------------------

NAMES = [("u", (3,)), ("y", (1,))]


def test_a_sample_is_checked_field_by_field():
    u, y = feed.sample((np.zeros((3, 1)), 2.0), 7, NAMES)
    assert u.shape == (3,) and y.shape == (1,)
    with pytest.raises(TypeError, match=r"sample 7: expected a tuple \(u, y\), got int"):
        feed.sample(3, 7, NAMES)
    with pytest.raises(ValueError, match="expected 2 items .* got 1: y missing"):
        feed.sample((np.zeros(3),), 7, NAMES)
    with pytest.raises(ValueError, match="got 3: 1 extra"):
        feed.sample((np.zeros(3), 1, 2), 7, NAMES)
    with pytest.raises(ValueError, match=r"sample 7: u has shape \(4,\), declared \(3,\)"):
        feed.sample((np.zeros(4), 1.0), 7, NAMES)
    with pytest.raises(TypeError, match="sample 7: y has dtype complex128"):
        feed.sample((np.zeros(3), 1j), 7, NAMES)
    assert feed.sample(np.ones(3), 0, NAMES[:1])[0].shape == (3,)


class _Never:
    pressed = False


def test_chunks_fill_the_buffers_and_apply_what_came_before_a_bad_sample():
    buffers = [np.zeros((2, 3)), np.zeros((2, 1))]
    good = [(np.full(3, k), float(k)) for k in range(3)]
    seen = []
    it = feed.chunks(good + [("bad",)], NAMES, buffers, 2, _Never(), None, lambda: "count 9")
    for n in it:
        seen.append((n, buffers[1][:n, 0].tolist()))
        if len(seen) == 2:
            break
    assert seen == [(2, [0.0, 1.0]), (1, [2.0])]
    with pytest.raises(ValueError, match="sample 3: .*; the 3 samples before it were applied "
                                         r"\(count 9\)"):
        next(it)


def test_chunks_with_finite_yield_the_rows_before_the_first_that_is_not():
    samples = [(np.full(3, k), float(k)) for k in range(7)]
    samples[4] = (np.array([0.0, np.inf, np.nan]), 4.0)
    buffers = [np.zeros((3, 3)), np.zeros((3, 1))]
    it = feed.chunks(samples, NAMES, buffers, 3, _Never(), None, lambda: "count 4", finite=True)
    assert [next(it), next(it)] == [3, 1]           # a whole chunk, then the row before it
    assert buffers[1][0, 0] == 3.0
    with pytest.raises(ValueError, match=r"^sample 4: u\[1\] is inf: the data must be finite "
                                         r"numbers; the 4 samples before it were applied "
                                         r"\(count 4\)"):
        next(it)
    off = feed.chunks(samples, NAMES, buffers, 3, _Never(), None, lambda: "", finite=False)
    assert list(off) == [3, 3, 1]


def test_not_finite_names_the_earliest_row_and_ignores_overflowing_sums():
    u, y = np.zeros((5, 2)), np.zeros((5, 1))
    assert checks.not_finite([u, y], ["u", "y"]) is None
    u[3, 1], y[1, 0] = np.nan, -np.inf
    name, index, value = checks.not_finite([u, y], ["u", "y"])
    assert (name, index, value) == ("y", (1, 0), -np.inf)
    assert checks.entry(name, index) == "y[1, 0]" and checks.entry("c", ()) == "c"
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # the overflow of the sum is not a warning
        assert checks.not_finite([np.full((3, 2), 1e308)], ["u"]) is None
    assert checks.not_finite([np.zeros((0, 2))], ["u"]) is None


def test_chunks_stop_between_two_samples_on_ctrl_c():
    class Pressed:
        pressed = True
    it = feed.chunks([(np.zeros(3), 0.0)], NAMES, [np.zeros((2, 3)), np.zeros((2, 1))], 2,
                     Pressed(), lambda unapplied: RuntimeError(f"stopped, {unapplied}"),
                     lambda: "")
    with pytest.raises(RuntimeError, match="stopped, 1"):
        next(it)


# -- recording ------------------------------------------------------------------------------

class _Recorder(recorder_module.Recorder):
    _table = {"loss": (), "h": (2,)}


def test_recorder_keys_and_counts_are_checked():
    with pytest.raises(ValueError, match="cannot record 'z': valid keys are 'loss', 'h'"):
        _Recorder(["z"])
    with pytest.raises(ValueError, match="record keys repeated"):
        _Recorder(["h", "h"])
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="every = .*: must be an integer >= 1"):
            _Recorder("h", every=bad)
    rec = _Recorder("h", every=3, last=2)
    assert list(rec) == ["step", "h"] and rec.rows == 0 and rec["h"].shape == (0, 2)
    with pytest.raises(KeyError, match="'loss' was not recorded"):
        rec["loss"]


def _fill(rec, g, n, dtype=np.float64):
    """What the compiled loop does for steps g..g+n-1: row values = the step."""
    rec._bind(dtype)
    while n:
        m = rec._reserve(g, n, None)
        row, wrap, steps, loss, h = rec._args()
        for k in range(g, g + m):
            if (k + 1) % rec.every == 0:
                steps[row] = k
                if loss.shape[0]:
                    loss[row] = k
                if h.shape[0]:
                    h[row] = k
                row = 0 if row + 1 == wrap else row + 1
        rec._done(g, m)
        g, n = g + m, n - m


def test_recorder_rows_continue_across_calls_and_blocks():
    rec = _Recorder(["loss", "h"], every=2)
    rec._BLOCK = 64                             # a few rows per block
    _fill(rec, 0, 7)
    _fill(rec, 7, 30)
    assert rec["step"].tolist() == list(range(1, 37, 2))
    assert rec["h"][:, 1].tolist() == list(range(1, 37, 2)) and rec.rows == 18
    assert "18 rows" in repr(rec)
    with pytest.raises(TypeError, match="holds float64 rows; the learner is float32"):
        rec._bind(np.dtype(np.float32))


def test_a_ring_keeps_the_newest_rows_oldest_first():
    rec = _Recorder("loss", every=1, last=4)
    _fill(rec, 0, 10)
    assert rec["step"].tolist() == [6, 7, 8, 9] and rec.rows == 4
    assert rec["loss"].tolist() == [6.0, 7.0, 8.0, 9.0]


# -- checkpoints ----------------------------------------------------------------------------

class _Tables:
    module, spec_hash, structure = "m", "s" * 64, "a" * 64
    known = ["beta", "theta_neurons"]


def _write(path, meta=None, arrays=None, tables=_Tables):
    meta = {"hyper": {"beta": 1.0, "theta_neurons": None}, "step_count": 3} \
        if meta is None else meta
    arrays = {"weights.W": np.arange(6.0).reshape(2, 3)} if arrays is None else arrays
    return checkpoint.write(path, tables, "learner", meta, arrays)


def _read(path):
    meta, arrays = checkpoint.read(path, _Tables, "learner")
    meta = checkpoint.fields(path, meta, {"hyper": checkpoint.hyper_values(_Tables.known),
                                          "step_count": checkpoint.count})
    return meta, checkpoint.arrays_of(path, arrays, {"weights": {"W": (2, 3)}},
                                      np.dtype(np.float64))


def test_a_checkpoint_is_the_same_bytes_each_time(tmp_path):
    _write(tmp_path / "a.npz")
    _write(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    meta, arrays = _read(tmp_path / "a.npz")
    assert meta["step_count"] == 3 and arrays["weights"]["W"][1, 2] == 5.0


def _mutate(path, tmp_path, entries):
    """A copy of the checkpoint at path with some entries replaced ({name: bytes or None})."""
    out = tmp_path / "mutated.npz"
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(out, "w") as w:
        for name in z.namelist():
            if name in entries:
                if entries[name] is not None:
                    w.writestr(name, entries[name])
            else:
                w.writestr(name, z.read(name))
        for name, data in entries.items():
            if name not in z.namelist() and data is not None:
                w.writestr(name, data)
    return out


def _npy(a):
    import io
    b = io.BytesIO()
    np.lib.format.write_array(b, np.asarray(a), allow_pickle=True)
    return b.getvalue()


def _header(**changes):
    meta = {"format": checkpoint.MAGIC, "version": 1, "kind": "learner", "module": "m",
            "spec_hash": "s" * 64, "structure": "a" * 64,
            "hyper": {"beta": 1.0, "theta_neurons": None}, "step_count": 3}
    meta.update(changes)
    meta = {k: v for k, v in meta.items() if v is not ...}
    return _npy(np.array(json.dumps(meta)))


@pytest.mark.parametrize("entries, match", [
    ({"_meta.npy": None}, "not a hamsym checkpoint .no header"),
    ({"_meta.npy": b"junk"}, "not a hamsym checkpoint"),
    ({"_meta.npy": _npy(np.array("{not json"))}, "no valid header"),
    ({"_meta.npy": _header(format="other")}, "no valid header"),
    ({"_meta.npy": _header(version=2)}, "version: 2"),
    ({"_meta.npy": _header(kind="ensemble")}, "kind: holds an ensemble: use Ensemble.restore"),
    ({"_meta.npy": _header(structure="b" * 64)}, "structure: saved by module m .SPEC_HASH s+.; this is m"),
    ({"_meta.npy": _header(step_count=-1)}, r"step_count: -1, expected an integer >= 0"),
    ({"_meta.npy": _header(step_count=True)}, "step_count: True"),
    ({"_meta.npy": _header(extra=1)}, r"unknown field\(s\) \['extra'\]"),
    ({"_meta.npy": _header(step_count=...)}, r"field\(s\) \['step_count'\] missing"),
    ({"_meta.npy": _header(hyper={"beta": float("inf"), "theta_neurons": None})},
     "hyper.beta: inf, expected a finite number"),
    ({"_meta.npy": _header(hyper={"beta": 1.0})}, r"hyper: missing \['theta_neurons'\]"),
    ({"_meta.npy": _header(hyper={"beta": 1.0, "theta_neurons": None, "x": 1})},
     r"hyper: unknown \['x'\]"),
    ({"_meta.npy": _header(hyper=[1])}, "hyper: expected a table of values"),
    ({"weights.W.npy": None}, r"array\(s\) \['weights.W'\] missing"),
    ({"weights.V.npy": _npy(np.zeros(2))}, r"unknown array\(s\) \['weights.V'\]"),
    ({"weights.W.npy": _npy(np.zeros((3, 2)))}, r"weights.W: shape \(3, 2\), declared \(2, 3\)"),
    ({"weights.W.npy": _npy(np.zeros((2, 3), np.float32))}, "weights.W: dtype float32"),
    ({"weights.W.npy": _npy(np.zeros((2, 3), np.int64))}, "weights.W: dtype int64, expected floats"),
    ({"weights.W.npy": _npy(np.array([None, 1], object))}, "weights.W: .*pickle"),
    ({"notes.txt": b"hello"}, "unknown entry 'notes.txt'"),
])
def test_a_checkpoint_is_checked_whole_and_errors_name_the_field(tmp_path, entries, match):
    path = _mutate(_write(tmp_path / "c.npz"), tmp_path, entries)
    with pytest.raises(checkpoint.CheckpointError, match=match) as err:
        _read(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"\x00" * 100,
                                     b"not a zip at all"])
def test_garbage_is_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "c.npz"
    path.write_bytes(content)
    with pytest.raises(checkpoint.CheckpointError, match=f"{path}: not a hamsym checkpoint"):
        _read(path)


def test_a_truncated_checkpoint_is_not_one(tmp_path):
    whole = Path(_write(tmp_path / "c.npz")).read_bytes()
    for cut in (len(whole) // 3, len(whole) - 5):
        (tmp_path / "t.npz").write_bytes(whole[:cut])
        with pytest.raises(checkpoint.CheckpointError, match="not a hamsym checkpoint"):
            _read(tmp_path / "t.npz")


def test_what_is_not_a_file_is_not_a_checkpoint(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="not a regular file"):
        _read(tmp_path)
    with pytest.raises(checkpoint.CheckpointError, match="cannot be read"):
        _read(tmp_path / "missing.npz")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(checkpoint.CheckpointError, match="not a regular file"):
        _read(fifo)


# -- files ----------------------------------------------------------------------------------

def test_write_atomic_refuses_a_link_and_changes_nothing(tmp_path):
    target = tmp_path / "theirs.txt"
    target.write_text("keep")
    link = tmp_path / "out.txt"
    link.symlink_to(target)
    with pytest.raises(FileExistsError, match="out.txt: is a symbolic link"):
        files.write_atomic(link, b"new")
    assert target.read_text() == "keep" and link.is_symlink()
    files.write_atomic(tmp_path / "sub" / "t.txt", "text")
    assert (tmp_path / "sub" / "t.txt").read_text() == "text"


def test_write_atomic_removes_what_dead_writers_left(tmp_path):
    orphan = tmp_path / ".out.txt.999999999.ab.tmp"          # no such process
    orphan.write_text("part")
    alive = tmp_path / f".out.txt.{os.getpid()}.cd.tmp"      # a live writer's
    alive.write_text("part")
    files.write_atomic(tmp_path / "out.txt", "x")
    assert not orphan.exists() and alive.exists()


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    path.write_text("old")

    def full(fd, data):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(files, "_write_all", full)
    with pytest.raises(OSError, match="No space"):
        files.write_atomic(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


# -- interrupts and progress ----------------------------------------------------------------

def test_ctrl_c_is_noted_inside_the_block_and_raises_outside():
    before = signal.getsignal(signal.SIGINT)
    with interrupt.CtrlC() as ctrl_c:
        assert not ctrl_c.pressed
        os.kill(os.getpid(), signal.SIGINT)
        assert ctrl_c.pressed
    assert signal.getsignal(signal.SIGINT) is before


def test_stop_errors_say_what_was_applied():
    err = interrupt.Interrupted(5, 12, np.zeros(5), unapplied=2)
    assert isinstance(err, KeyboardInterrupt) and "2 samples read" in str(err)
    div = interrupt.DivergenceError(11, 3, np.array([1.0, np.nan]))
    assert (div.step, div.index, div.steps) == (11, 3, 4) and "step_count = 12" in str(div)


def test_progress_bars():
    class Bar:
        n, postfix = 0, None

        def update(self, n):
            self.n += n

        def set_postfix_str(self, s, refresh):
            self.postfix = s
    bar = Bar()
    assert bars.progress_bar(bar, 10) == (bar, False)
    assert bars.progress_bar(False, 10) == (None, False)
    bars.tick(bar, np.array([1.0, 3.0]))
    assert bar.n == 2 and bar.postfix == "loss=2"
    bars.tick_best(bar, np.array([[1.0, np.nan], [4.0, 2.0]]))
    assert bar.n == 4 and bar.postfix == "best loss=3"
    assert bars.length_of([1, 2]) == 2 and bars.length_of(iter([1])) is None
    with pytest.raises(TypeError, match="progress = 3"):
        bars.progress_bar(3, 10)
    pytest.importorskip("tqdm")
    import io
    bar, owned = bars.progress_bar({"file": io.StringIO()}, 5)
    assert owned and bar.total == 5
    bar.close()


def test_exchange_tags_follow_the_channels():
    tags = exchange.tags(3)
    assert tags == {"notice": 3, "chunk": 4, "loss": 5, "hello": 6, "data": 7}


# -- the copy beside generated modules ------------------------------------------------------

def test_the_copy_is_the_runtime_byte_for_byte(tmp_path):
    folder = write_runtime(tmp_path)
    assert folder.name == runtime.NAME == "hamsym_runtime_" + runtime.DIGEST[:12]
    package = sorted(Path(runtime.FOLDER).glob("*.py"))
    assert sorted(p.name for p in folder.glob("*.py")) == [p.name for p in package]
    for source in package:
        assert (folder / source.name).read_bytes() == source.read_bytes(), source.name
    assert runtime.digest(folder) == runtime.DIGEST
    (folder / "extra.py").write_text("x = 1\n")
    with pytest.raises(RuntimeError, match="not hamsym's runtime .extra.py"):
        write_runtime(tmp_path)


def test_the_runtime_digest_sees_any_change(tmp_path):
    folder = write_runtime(tmp_path)
    (folder / "learner.py").write_bytes((folder / "learner.py").read_bytes() + b"\n")
    assert runtime.digest(folder) != runtime.DIGEST


# -- damaged checkpoints, at random ---------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_checkpoint_is_read_whole_or_refused_clearly(tmp_path, data):
    whole = Path(_write(tmp_path / "c.npz")).read_bytes()
    how = data.draw(st.sampled_from(["truncate", "flip", "random", "splice"]))
    if how == "truncate":
        damaged = whole[:data.draw(st.integers(0, len(whole) - 1))]
    elif how == "flip":
        at = data.draw(st.integers(0, len(whole) - 1))
        damaged = whole[:at] + bytes([whole[at] ^ data.draw(st.integers(1, 255))]) + \
            whole[at + 1:]
    elif how == "random":
        damaged = data.draw(st.binary(max_size=2000))
    else:
        at = data.draw(st.integers(0, len(whole)))
        damaged = whole[:at] + data.draw(st.binary(min_size=1, max_size=64)) + whole[at:]
    path = tmp_path / "d.npz"
    path.write_bytes(damaged)
    try:
        meta, arrays = _read(path)
    except checkpoint.CheckpointError as err:
        assert str(path) in str(err)
        return
    # read: then it is the checkpoint that was written (a flip in slack bytes, say)
    assert meta["step_count"] == 3
    np.testing.assert_array_equal(arrays["weights"]["W"], np.arange(6.0).reshape(2, 3))
