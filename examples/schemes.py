"""Non-local, partially local and fully local HL on the same stream, side by side.

A 3-layer delay network (one layer per step) learns a fixed random teacher from a
stream that holds each input for 32 steps. Prints the learning curves and, when
matplotlib is installed, saves them to schemes.png in the output folder (with the
generated modules): examples/out/, or the folder given.

    python examples/schemes.py [FOLDER]
"""

import os
import sys
from pathlib import Path

import numpy as np

import hamsym as hs
from hamsym.declare.zoo import delay_network

SIZES, HOLD, STEPS = [4, 16, 12, 2], 32, 64_000
SCHEMES = {"nonlocal": {}, "partial": {"groups": [["x1", "x2"], ["x3"]]}, "local": {}}


def teacher_stream(seed=0, steps=STEPS):
    rng = np.random.default_rng(seed)
    W = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(SIZES, SIZES[1:])]
    W[-1] *= 3.0
    U = np.repeat(rng.normal(size=(steps // HOLD, SIZES[0])), HOLD, axis=0)
    return U, np.tanh(np.tanh(U @ W[0].T) @ W[1].T) @ W[2].T


def main(out_dir=Path("examples/out"), steps=STEPS):
    """steps: a multiple of 20 * HOLD (HAMSYM_QUICK=1 runs a tenth of STEPS)."""
    net = delay_network(SIZES, [hs.tanh, hs.tanh, hs.identity], name="teacher_student")
    system = hs.derive(net, gamma=1.0, beta=0.1, theta=0.2, theta_neurons=0.0, delta=0.1)
    U, Y = teacher_stream(steps=steps)
    curves = {}
    for scheme, options in SCHEMES.items():
        mod = hs.load(system, out_dir / f"teacher_student_{scheme}.py", scheme=scheme, **options)
        losses = mod.Integrator(seed=1).run(U, Y)[HOLD - 1::HOLD]
        curves[scheme] = losses.reshape(-1, 20).mean(axis=1)      # mean over 20 holds
        print(f"{scheme:>9}: " + " ".join(f"{v:.4f}" for v in curves[scheme][::10]))
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(install matplotlib to save the plot)")
        return curves
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for scheme, curve in curves.items():
        ax.semilogy(np.arange(len(curve)) * 20 * HOLD, curve, label=scheme)
    ax.set_xlabel("step")
    ax.set_ylabel("loss at the end of each input")
    ax.set_title("HL on a 3-layer delay network: three schedules")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "schemes.png", dpi=120)
    print(f"saved {out_dir / 'schemes.png'}")
    return curves


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("examples/out"),
         STEPS // 10 if os.environ.get("HAMSYM_QUICK") else STEPS)
