"""What recording and the progress bar cost: Integrator.run with and without them.

    python benchmarks/record_overhead.py [--steps 200000] [--repeats 5]

One run times, interleaved over repeats (median microseconds per step), on the MLP
4-32-32-2 and the recurrent network 2-64-1 (non-local HL, float64):

1. run(U, Y): the plain compiled slices (_span);
2. run(..., record=["loss"], every=100): the recording slice, one row per 100 steps;
3. run(..., record=[every output, state, weight and norm], every=100);
4. run(..., record=["loss", every output], every=1): a row per step;
5. run(..., progress={"file": <a null stream>}): a tqdm bar updated between slices
   (skipped without tqdm);

and prints each as a ratio to 1. Nothing here is asserted: tests/test_record.py
checks the values, this script only measures.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import hamsym as hs
from hamsym.declare.zoo import mlp, recurrent


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    try:
        import tqdm  # noqa: F401
        has_tqdm = True
    except ImportError:
        has_tqdm = False
    nets = {"mlp 4-32-32-2": mlp([4, 32, 32, 2], name="bench_rec_mlp"),
            "rnn 2-64-1": recurrent(2, 64, 1, name="bench_rec_rnn")}
    with tempfile.TemporaryDirectory() as tmp:
        for title, net in nets.items():
            mod = hs.load(hs.derive(net, theta=0.5, beta=0.1), Path(tmp) / f"{net.name}.py")
            rng = np.random.default_rng(0)
            U = rng.normal(size=(args.steps,) + next(iter(mod.INPUTS.values())))
            Y = 0.1 * rng.normal(size=(args.steps,) + next(iter(mod.TARGETS.values())))
            every_key = list(mod.RECORD)
            variants = {
                "run": {},
                "record loss every 100": dict(record=["loss"], every=100),
                "record all keys every 100": dict(record=every_key, every=100),
                "record loss, outputs every 1": dict(record=["loss", *mod.OUTPUTS], every=1),
            }
            if has_tqdm:
                variants["progress bar"] = dict(progress={"file": io.StringIO()})
            times = {name: [] for name in variants}
            for name, kw in variants.items():            # compile every variant first
                mod.Integrator().run(U[:100], Y[:100], **kw)
            for _ in range(args.repeats):
                for name, kw in variants.items():
                    learner = mod.Integrator()
                    t = time.perf_counter()
                    learner.run(U, Y, **kw)
                    times[name].append((time.perf_counter() - t) / args.steps * 1e6)
            base = statistics.median(times["run"])
            print(f"{title}: {args.steps} steps, median of {args.repeats}")
            for name, ts in times.items():
                t = statistics.median(ts)
                print(f"  {name:28s} {t:8.3f} us/step   x{t / base:.3f}")


if __name__ == "__main__":
    main()
