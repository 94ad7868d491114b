"""Showcase (e): signal generation with a bank of learnable oscillators.

zoo.oscillator_bank(8, loss="mse"): rotation blocks with learnable frequencies w and
a linear readout, no input; the authors' settings gamma = 1, theta = 0.2, beta = 0.01,
delta = 0.1, scheme local, and their loss hs.mse. The frequencies start on a grid
from 0.02 to 0.14 cycles per unit time. For each target (a sine, a square wave, a
sum of two sines) the bank learns from the signal for TRAIN steps; then the weights
are frozen (beta = 0) and the bank runs free on its own state for the next FREE
steps, against the signal's continuation. Prints the learned frequencies and the
free-running mean squared error; saves examples/out/showcase_oscillators_<target>.png
(signal against generation, frequencies over time).

    python examples/showcase_oscillators.py [--quick]
"""

import argparse
import os
import warnings
from pathlib import Path

import numpy as np

import hamsym as hs
from hamsym import streams
from hamsym.declare.zoo import oscillator_bank

N, DELTA, FREE, RECORD = 8, 0.1, 2000, 500
TARGETS = {
    "sine": streams.sines(0.04),
    "square": streams.square(0.03),
    "two sines": streams.sines([0.045, 0.078], amps=[1.0, 0.5], phases=[0.0, 0.3]),
}


def learn(mod, signal, train):
    grid = 2 * np.pi * np.linspace(0.02, 0.14, N)
    bank = mod.Integrator(weights={"w": grid, "Ca": np.zeros((1, N)), "Cb": np.zeros((1, N))},
                          states={"a": np.ones(N)})
    Y = signal.take(train + FREE, DELTA)
    history = []
    for block in np.array_split(Y[:train], train // RECORD):    # record w every RECORD steps
        bank.run(block)
        history.append(bank.weights["w"].copy())
    bank.hyper["beta"] = 0.0                   # free-running: nothing learns any more
    generated = np.empty(FREE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # the frozen-weights warning is what we want
        for k in range(FREE):                  # read the output, then advance the state
            generated[k] = bank.forward()["o"][0]
            bank.step(Y[train + k])
    mse = float(np.mean((generated - Y[train:, 0]) ** 2))
    return dict(bank=bank, history=np.array(history), generated=generated, target=Y, mse=mse)


def main(quick=False, out_dir=Path("examples/out")):
    train = 80_000          # steps are cheap (compiling dominates): quick and full alike
    system = hs.derive(oscillator_bank(N, loss="mse", name="showcase_bank"), gamma=1.0,
                       beta=0.01, theta=0.2, delta=DELTA)
    mod = hs.load(system, out_dir / "showcase_bank.py", scheme="local")
    results = {name: learn(mod, signal, train) for name, signal in TARGETS.items()}
    print(f"oscillator bank of {N}, {train} learning steps, then {FREE} free-running steps")
    print(f"{'target':>10} | {'free-running MSE':>16} | learned frequencies (cycles / unit time)")
    for name, r in results.items():
        freqs = np.sort(r["bank"].weights["w"]) / (2 * np.pi)
        print(f"{name:>10} | {r['mse']:16.2e} | " + " ".join(f"{f:.4f}" for f in freqs))
    try:
        from hamsym import plot
        for name, r in results.items():
            fig = plot._pyplot().figure(figsize=(9, 5.5), layout="constrained")
            top, bottom = fig.subplots(2, 1)
            shown = slice(train - FREE, train + FREE)
            generated = np.concatenate([np.full(FREE, np.nan), r["generated"]])
            plot.signal(r["target"][shown], generated, delta=DELTA, start=train - FREE,
                        split=train, ax=top, title=f"{name}: target and free-running bank")
            plot.frequencies(r["history"], delta=DELTA, every=RECORD, ax=bottom,
                             title="learned frequencies")
            path = out_dir / f"showcase_oscillators_{name.replace(' ', '_')}.png"
            fig.savefig(path, dpi=120)
            print(f"saved {path}")
    except ImportError:
        print("(pip install 'hamsym[plot]' for the figures)")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("HAMSYM_QUICK")))
    main(parser.parse_args().quick)
