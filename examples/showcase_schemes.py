"""Showcase (c): from fully local to non-local HL on one deep delay network.

A 5-layer delay network (one layer per step: a signal needs 5 steps to cross it)
learns a random teacher from a stream that holds each input for HOLD steps. The same
derived equations run with four schedules: non-local (Gauss-Seidel through the whole
network inside a step), two partial ones (Gauss-Seidel inside groups of layers, Jacobi
between them) and fully local (every layer reads step-k values only: backprop
pipelined over time, one layer per step). Prints the loss at the end of each held
input, early and late; saves examples/out/showcase_schemes.png.

    python examples/showcase_schemes.py [--quick]
"""

import argparse
import os
from pathlib import Path

import numpy as np

import hamsym as hs
from hamsym.declare.zoo import delay_network

SIZES = [4, 16, 16, 16, 16, 2]
HOLD = 32
SCHEMES = {
    "nonlocal": {"scheme": "nonlocal"},
    "partial 3+2": {"scheme": "partial", "groups": [["x1", "x2", "x3"], ["x4", "x5"]]},
    "partial 1 each": {"scheme": "partial", "groups": [["x1"], ["x2"], ["x3"], ["x4"], ["x5"]]},
    "local": {"scheme": "local"},
}


def teacher_stream(steps, seed=0):
    rng = np.random.default_rng(seed)
    W = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(SIZES[:3], SIZES[1:3])]
    V = rng.normal(size=(SIZES[-1], SIZES[2])) * 2 / np.sqrt(SIZES[2])
    U = np.repeat(rng.normal(size=(steps // HOLD, SIZES[0])), HOLD, axis=0)
    return U, np.tanh(np.tanh(U @ W[0].T) @ W[1].T) @ V.T


def main(quick=False, out_dir=Path("examples/out")):
    steps = HOLD * (400 if quick else 3000)
    net = delay_network(SIZES, [hs.tanh] * (len(SIZES) - 2) + [hs.identity], name="showcase_deep")
    system = hs.derive(net, gamma=1.0, beta=0.1, theta=0.2, theta_neurons=0.0, delta=0.1)
    U, Y = teacher_stream(steps)
    schemes = {k: v for k, v in SCHEMES.items() if not quick or k in ("nonlocal", "local")}
    curves, table = {}, {}
    for label, options in schemes.items():
        tag = label.replace(" ", "_").replace("+", "_")
        mod = hs.load(system, out_dir / f"showcase_deep_{tag}.py", **options)
        losses = mod.Integrator(seed=1).run(U, Y)[HOLD - 1::HOLD]    # settled: end of each hold
        curves[label] = losses
        tenth = len(losses) // 10
        table[label] = (float(losses[:tenth].mean()), float(losses[-tenth:].mean()))
    print(f"{len(SIZES) - 1}-layer delay network, {steps} steps, each input held {HOLD} steps; "
          "loss at the end of each hold, mean")
    print(f"{'schedule':>15} | {'first 10%':>9} | {'last 10%':>9}")
    for label, (first, last) in table.items():
        print(f"{label:>15} | {first:9.4f} | {last:9.4f}")
    try:
        from hamsym import plot
        # one value per held input, taken at its last step: the x axis is that step
        plot.losses(curves, window=20, steps=lambda n: HOLD - 1 + HOLD * np.arange(n),
                    ylabel=f"loss at the end of each input (held {HOLD} steps)",
                    title=f"{len(SIZES) - 1}-layer delay network: "
                          f"{', '.join(curves)} ({len(curves)} schedules)",
                    save=out_dir / "showcase_schemes.png")
        print(f"saved {out_dir / 'showcase_schemes.png'}")
    except ImportError:
        print("(pip install 'hamsym[plot]' for the figure)")
    return dict(curves=curves, table=table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("HAMSYM_QUICK")))
    main(parser.parse_args().quick)
