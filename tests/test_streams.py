"""Streams: signals against closed forms, chunked sources that never hold the whole
stream, files, bundled datasets, and their use with run / run_stream."""

import tracemalloc

import numpy as np
import pytest

import hamsym as hs
from hamsym import streams
from hamsym.declare.zoo import mlp

DELTA = 0.1


def test_signals_match_closed_forms():
    t = np.arange(1000) * DELTA
    s = streams.sines([0.05, 0.08], amps=[1.0, 0.5], phases=[0.0, 0.3])
    np.testing.assert_allclose(s.take(1000, DELTA)[:, 0],
                               np.sin(2 * np.pi * 0.05 * t) + 0.5 * np.sin(2 * np.pi * 0.08 * t + 0.3),
                               atol=1e-12)
    sq = streams.square(0.1).take(1000, DELTA)[:, 0]
    assert set(sq) == {-1.0, 1.0} and abs(sq.mean()) < 0.02
    saw = streams.sawtooth(0.1).take(1000, DELTA)[:, 0]
    assert saw.min() >= -1 and saw.max() < 1 and np.sum(np.diff(saw) < 0) == 9   # 9 drops in 100 s
    ch = streams.chirp(0.01, 0.1, duration=100.0).take(1000, DELTA)[:, 0]
    # instantaneous frequency rises: zero crossings are denser at the end
    crossings = np.flatnonzero(np.diff(np.sign(ch)) != 0)
    assert np.diff(crossings[:3]).mean() > 2 * np.diff(crossings[-3:]).mean()
    combo = 2 * s + streams.square(0.1) + 1
    np.testing.assert_allclose(combo.take(1000, DELTA), 2 * s.take(1000, DELTA) + sq[:, None] + 1)
    n = streams.noise(0.5, n=3, seed=1).take(20000, DELTA)
    assert n.shape == (20000, 3) and abs(n.std() - 0.5) < 0.01


def test_chunks_join_to_take():
    s = streams.sines(0.03) + streams.sawtooth(0.07)
    joined = np.concatenate(list(s.chunks(DELTA, chunk=333, steps=1000)))
    np.testing.assert_array_equal(joined, s.take(1000, DELTA))
    endless = s.chunks(DELTA, chunk=100)
    assert [next(endless).shape for _ in range(3)] == [(100, 1)] * 3


def test_chunked_run_equals_one_run(load):
    mod = load(hs.derive(mlp([3, 8, 2], name="stream_mlp"), beta=1.0, theta=0.1, delta=0.1),
               scheme="nonlocal")
    teacher = streams.Teacher(3, 16, 2, seed=3)
    U, Y = teacher.take(3000)
    whole = mod.Integrator(seed=0).run(U, Y)
    chunked = streams.run_chunks(mod.Integrator(seed=0), streams.from_arrays(U, Y, chunk=700))
    per_step = mod.Integrator(seed=0)
    seen = []
    per_step.run_stream(streams.samples(streams.from_arrays(U, Y, chunk=512)), chunk=256,
                        on_chunk=lambda l: seen.append(l.copy()))
    np.testing.assert_array_equal(whole, chunked)
    np.testing.assert_array_equal(whole, np.concatenate(seen))
    assert whole[-300:].mean() < whole[:300].mean() / 3


def test_a_stream_larger_than_memory_is_read_in_chunks(tmp_path, load):
    """A memory-mapped 400k-step table (19 MB on disk) is learned a chunk at a time: the
    Python heap never holds more than a few chunks."""
    mod = load(hs.derive(mlp([4, 4, 2], name="memmap_mlp"), beta=1.0, theta=0.1, delta=0.1))
    steps, chunk = 400_000, 2048
    table = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float64,
                                      shape=(steps, 6))
    teacher = streams.Teacher(4, 8, 2, seed=0)
    for start in range(0, steps, 50_000):
        U, Y = teacher.take(50_000)
        table[start:start + 50_000] = np.hstack([U, Y])
    table.flush()
    del table
    learner = mod.Integrator(seed=0)
    learner.run(*teacher.take(10))              # compile first: only the stream is measured
    tracemalloc.start()
    count = streams.run_chunks(learner, streams.from_file(tmp_path / "big.npy", [4, 2], chunk=chunk),
                               on_chunk=lambda losses: None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == steps
    assert peak < 20 * chunk * 6 * 8, peak          # a few chunks, never the 19 MB table


def test_generator_stream_in_fixed_memory(load):
    mod = load(hs.derive(mlp([4, 4, 2], name="memmap_mlp"), beta=1.0, theta=0.1, delta=0.1))
    teacher = streams.Teacher(4, 8, 2, seed=0)
    learner = mod.Integrator(seed=0)
    learner.run_stream(streams.samples(teacher.chunks(chunk=10, steps=10)))
    tracemalloc.start()
    n = learner.run_stream(streams.samples(teacher.chunks(chunk=1000, steps=100_000)), chunk=512)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 100_000 and peak < 2_000_000, peak


@pytest.mark.parametrize("fmt", ["csv", "npz_named", "npz_table", "npy"])
def test_files(fmt, tmp_path):
    rng = np.random.default_rng(0)
    U, Y = rng.normal(size=(1000, 3)), rng.normal(size=(1000, 2))
    path = tmp_path / f"s.{fmt[:3]}"
    if fmt == "csv":
        np.savetxt(path, np.hstack([U, Y]), delimiter=",", header="a,b,c,y1,y2", comments="")
    elif fmt == "npz_named":
        np.savez(path, u=U, y=Y)
    elif fmt == "npz_table":
        np.savez(path, np.hstack([U, Y]))
    else:
        np.save(path, np.hstack([U, Y]))
    blocks = list(streams.from_file(path, [3, 2], chunk=300, names=["u", "y"]))
    assert [len(b[0]) for b in blocks] == [300, 300, 300, 100]
    np.testing.assert_allclose(np.concatenate([b[0] for b in blocks]), U, rtol=1e-15)
    np.testing.assert_allclose(np.concatenate([b[1] for b in blocks]), Y, rtol=1e-15)
    with pytest.raises(ValueError, match="5 columns; the stream needs 6|expected|widths"):
        list(streams.from_file(path, [4, 2], names=["a", "b"]))


@pytest.mark.parametrize("name, shape", [("diabetes", (442, 10, 1)),
                                         ("trump_approval", (1001, 6, 1)),
                                         ("phishing", (1250, 9, 2))])
def test_bundled_datasets(name, shape):
    pytest.importorskip("sklearn" if name == "diabetes" else "river")
    U, Y = streams.dataset(name)
    assert (len(U), U.shape[1], Y.shape[1]) == shape
    assert np.all(np.isfinite(U)) and np.abs(U.mean(0)).max() < 1e-9


def test_real_stream_is_learned(load):
    pytest.importorskip("river")
    U, Y = streams.dataset("trump_approval")
    mod = load(hs.derive(mlp([6, 8, 1], name="trump_mlp"), beta=1.0, theta=0.1, delta=0.1))
    losses = mod.Integrator(seed=0).run(U, Y)
    # a constant predictor has mean loss var(Y) / 2 = 0.5 on standardized targets
    assert losses[-300:].mean() < 0.1, losses[-300:].mean()


def test_signal_chunks_drive_a_target_only_network(load):
    from hamsym.declare.zoo import oscillator_bank
    mod = load(hs.derive(oscillator_bank(3, name="stream_bank"), beta=0.01, theta=0.2, delta=DELTA),
               scheme="local")
    signal = streams.sines(0.05)
    start = dict(weights={"w": [0.2, 0.3, 0.4]}, states={"a": np.ones(3)})
    whole = mod.Integrator(**start).run(signal.take(2500, DELTA))
    chunked = streams.run_chunks(mod.Integrator(**start), signal.chunks(DELTA, 600, steps=2500))
    seen = []
    mod.Integrator(**start).run_stream(streams.samples(signal.chunks(DELTA, 700, steps=2500)),
                                       chunk=300, on_chunk=lambda l: seen.append(l.copy()))
    np.testing.assert_array_equal(whole, chunked)
    np.testing.assert_array_equal(whole, np.concatenate(seen))
