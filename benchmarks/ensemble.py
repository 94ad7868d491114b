"""Learner-steps per second: an Ensemble of K learners against K sequential Integrator runs.

    python benchmarks/ensemble.py               # about a minute on 2 cores
    python benchmarks/ensemble.py --K 1 2 8 --budget 0.5

For the MLPs 4-32-32-2 and 64-256-256-10 (tanh, non-local, float64) and K = 1, 2, 8,
64 learners (seeds 0..K-1) on one shared stream of T rows, it times, interleaved and
repeated (best of --repeats):

- ensemble:   Ensemble(K).run(U, Y), the learners spread over Numba's threads;
- ensemble on one thread (numba.set_num_threads(1)): the cost of the ensemble itself;
- sequential: K calls of Integrator(seed=i).run(U, Y), one after the other;

and prints K*T learner-steps per second for each and their ratio. T is chosen so that
each measurement takes about --budget seconds. Before timing it checks that both give
the same losses (they are bit-identical). The ratio can at best approach the number
of threads Numba uses (printed): on a machine shared with other jobs it is lower. A
machine check before and after (a trivially parallel loop on all threads against one)
shows how much parallel speed-up the machine offered at the time.
"""

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

import hamsym as hs
from hamsym.declare.zoo import mlp


def best_of(repeats, fn):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


@numba.njit(parallel=True)
def _spin(out, n):
    """Independent arithmetic per thread: what 'parallel' can give on this machine now."""
    for i in numba.prange(out.shape[0]):
        s = 0.0
        for k in range(n):
            s += math.sin(k * 1e-3 + i)
        out[i] = s


def free_cores(threads, repeats=3):
    """Speed-up of a trivially parallel loop on all threads over one thread (best times)."""
    out = np.zeros(threads * 4)
    _spin(out, 10)
    one, all_ = [], []
    for _ in range(repeats):
        numba.set_num_threads(1)
        one.append(best_of(1, lambda: _spin(out, 400_000)))
        numba.set_num_threads(threads)
        all_.append(best_of(1, lambda: _spin(out, 400_000)))
    return min(one) / min(all_)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--K", type=int, nargs="+", default=[1, 2, 8, 64])
    ap.add_argument("--budget", type=float, default=0.6, help="seconds per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", help="folder for the generated modules (default: a temporary one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        return measure(args, Path(args.out or tmp))


def measure(args, out):
    print(f"numba {numba.__version__}, numba.get_num_threads() = {numba.get_num_threads()}")
    threads = numba.get_num_threads()
    print(f"machine check: a trivially parallel loop runs {free_cores(threads):.2f}x faster on "
          f"{threads} threads than on 1 (the most the ensemble can gain now)")
    print("learner-steps per second: the ensemble on all threads, on 1 thread, and K "
          "sequential Integrator.run calls; ratios to sequential")
    print(f"{'network':>16} {'K':>4} {'T':>7} {'ensemble':>12} {'ens 1 thr':>12} "
          f"{'sequential':>12} {'ens/seq':>9} {'1thr/seq':>9}")
    for sizes in ([4, 32, 32, 2], [64, 256, 256, 10]):
        name = "bench_ens_" + "_".join(map(str, sizes))
        system = hs.derive(mlp(sizes, name=name), gamma=1.0, beta=1.0, theta=0.5, delta=0.1)
        mod = hs.load(system, out / f"{name}.py")
        rng = np.random.default_rng(0)
        # one learner's cost per step, measured, sets T for the budget
        U, Y = rng.normal(size=(2000, sizes[0])), rng.normal(size=(2000, sizes[-1]))
        mod.Integrator().run(U[:10], Y[:10])
        mod.Ensemble(2).run(U[:10], Y[:10])                 # compile (or load) both
        per_step = best_of(2, lambda: mod.Integrator().run(U, Y)) / len(U)
        for K in args.K:
            T = max(20, int(args.budget / (K * per_step)))
            U, Y = rng.normal(size=(T, sizes[0])), rng.normal(size=(T, sizes[-1]))
            ens_losses = mod.Ensemble(K).run(U[:50], Y[:50])
            seq_losses = np.stack([mod.Integrator(seed=i).run(U[:50], Y[:50]) for i in range(K)])
            assert np.array_equal(ens_losses, seq_losses), "ensemble and integrators differ"
            t_ens, t_one, t_seq = [], [], []
            for _ in range(args.repeats):                   # interleaved
                t_ens.append(best_of(1, lambda: mod.Ensemble(K).run(U, Y)))
                numba.set_num_threads(1)
                t_one.append(best_of(1, lambda: mod.Ensemble(K).run(U, Y)))
                numba.set_num_threads(threads)
                t_seq.append(best_of(1, lambda: [mod.Integrator(seed=i).run(U, Y)
                                                 for i in range(K)]))
            ens, one, seq = (K * T / min(t) for t in (t_ens, t_one, t_seq))
            print(f"{'-'.join(map(str, sizes)):>16} {K:>4} {T:>7} {ens:>12,.0f} {one:>12,.0f} "
                  f"{seq:>12,.0f} {ens / seq:>9.2f} {one / seq:>9.2f}", flush=True)
    print(f"numba.threading_layer() = {numba.threading_layer()}; machine check again: "
          f"{free_cores(numba.get_num_threads()):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
