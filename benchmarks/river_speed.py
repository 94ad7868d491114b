"""Time per sample of a hamsym learner inside river's progressive validation, against
the same learner's compiled `run` over arrays.

    python benchmarks/river_speed.py [--steps 20000]

The model is a 6-32-1 tanh MLP (non-local HL) on a standardized, repeated copy of
river's TrumpApproval stream. Three ways to feed the same samples:
1. `Integrator.run(U, Y)`: the loop over the stream in compiled code;
2. `Integrator.step(u, y)` from a Python loop over arrays;
3. `evaluate.progressive_val_score` with hamsym.workbench.river.Regressor: per sample, river
   hands a dict, the adapter builds a vector, calls `forward` (predict_one) and `step`
   (learn_one), and river updates its metric.
Prints microseconds per sample and the ratios to `run`.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import hamsym as hs
from hamsym import streams
from hamsym.workbench.river import Regressor
from hamsym.declare.zoo import mlp


def best_of(fn, repeat=3):
    """The best of repeat timings: a single one may include a full garbage collection
    (river allocates per sample), which lands in one run or another."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20_000)
    steps = parser.parse_args().steps
    from river import evaluate, metrics
    U, Y = streams.dataset("trump_approval")
    reps = -(-steps // len(U))
    U, Y = np.tile(U, (reps, 1))[:steps], np.tile(Y, (reps, 1))[:steps]
    features = [f"f{j}" for j in range(U.shape[1])]
    data = [(dict(zip(features, u)), float(y[0])) for u, y in zip(U, Y)]
    with tempfile.TemporaryDirectory() as tmp:
        mod = hs.load(hs.derive(mlp([6, 32, 1], name="river_mlp"), beta=1.0, theta=0.1,
                                delta=0.1), Path(tmp) / "river_mlp.py")
        warm = mod.Integrator(seed=0)
        warm.run(U[:10], Y[:10]), warm.step(U[0], Y[0]), warm.forward(U[0])

        def loop():
            learner = mod.Integrator(seed=0)
            for u, y in zip(U, Y):
                learner.step(u, y)
        results = {
            "Integrator.run (compiled loop)": best_of(lambda: mod.Integrator(seed=0).run(U, Y)),
            "Integrator.step in a Python loop": best_of(loop),
            "river progressive_val_score": best_of(lambda: evaluate.progressive_val_score(
                data, Regressor(mod.Integrator(seed=0), features=features), metrics.MAE())),
        }
    base = results["Integrator.run (compiled loop)"]
    print(f"{steps} samples, 6-32-1 MLP, float64")
    for name, seconds in results.items():
        print(f"{name:>34}: {seconds / steps * 1e6:8.2f} us/sample  ({seconds / base:6.1f}x run)")


if __name__ == "__main__":
    main()
