"""Showcase (b): HL against PyTorch's SGD, momentum and Adam on one stream.

A 4-32-2 tanh MLP learns a random teacher from a stream of fresh samples, one per
step. HL runs non-local (= SGD with momentum lr = delta^2 beta gamma, momentum =
1 - theta, so those two rows agree to rounding), local (weights move with the
previous costate), and with a few other theta / beta settings. Prints the mean loss
over the first and last tenth of the stream; saves examples/out/showcase_optimizers.png.

    python examples/showcase_optimizers.py [--quick]
"""

import argparse
import os
from pathlib import Path

import numpy as np
import torch

import hamsym as hs
from hamsym import streams
from hamsym.declare.zoo import mlp

GAMMA, DELTA = 1.0, 0.1
HL_SETTINGS = [  # (scheme, theta, beta)
    ("nonlocal", 0.1, 2.0), ("local", 0.1, 2.0), ("nonlocal", 0.5, 2.0),
    ("nonlocal", 0.1, 0.5), ("local", 0.3, 4.0)]
NAMES = ("W1", "b1", "W2", "b2")


def torch_run(start, U, Y, make_optimizer):
    torch.set_default_dtype(torch.float64)
    params = [torch.tensor(start[n].copy(), requires_grad=True) for n in NAMES]
    opt = make_optimizer(params)
    losses = np.empty(len(U))
    for k, (u, y) in enumerate(zip(torch.tensor(U), torch.tensor(Y))):
        W1, b1, W2, b2 = params
        loss = ((W2 @ torch.tanh(W1 @ u + b1) + b2 - y) ** 2).sum() / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses[k] = loss.item()
    return losses


def main(quick=False, out_dir=Path("examples/out")):
    steps = 3000 if quick else 30_000
    net = mlp([4, 32, 2], name="showcase_optimizers")
    U, Y = streams.Teacher(4, 32, 2, seed=1).take(steps)
    curves, start = {}, None
    system = hs.derive(net, gamma=GAMMA, beta=2.0, theta=0.1, delta=DELTA)
    modules = {scheme: hs.load(system, out_dir / f"showcase_optimizers_{scheme}.py", scheme=scheme)
               for scheme in ("nonlocal", "local")}
    for scheme, theta, beta in (HL_SETTINGS[:2] if quick else HL_SETTINGS):
        # theta and beta are runtime hyperparameters: one module per scheme serves all
        learner = modules[scheme].Integrator(seed=0, theta=theta, beta=beta)
        if start is None:
            start = {n: learner.weights[n].copy() for n in NAMES}
        curves[f"HL {scheme} theta={theta:g} beta={beta:g}"] = learner.run(U, Y)
    lr = DELTA ** 2 * 2.0 * GAMMA
    curves["torch SGD momentum 0.9"] = torch_run(
        start, U, Y, lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9))
    curves["torch SGD (lr / theta)"] = torch_run(start, U, Y, lambda p: torch.optim.SGD(p, lr=lr / 0.1))
    curves["torch Adam 1e-3"] = torch_run(start, U, Y, lambda p: torch.optim.Adam(p, lr=1e-3))
    tenth = steps // 10
    table = {name: (float(c[:tenth].mean()), float(c[-tenth:].mean())) for name, c in curves.items()}
    print(f"{steps} steps of a 4-32-2 tanh MLP against a random teacher; mean loss")
    print(f"{'learner':>34} | {'first 10%':>9} | {'last 10%':>9}")
    for name, (first, last) in table.items():
        print(f"{name:>34} | {first:9.5f} | {last:9.5f}")
    gap = float(np.abs(curves["HL nonlocal theta=0.1 beta=2"] - curves["torch SGD momentum 0.9"]).max())
    print(f"max |HL non-local - SGD momentum| per-step loss difference: {gap:.1e}")
    try:
        from hamsym import plot
        plot.losses(curves, window=max(50, steps // 60), title="HL and PyTorch optimizers, one stream",
                    save=out_dir / "showcase_optimizers.png")
        print(f"saved {out_dir / 'showcase_optimizers.png'}")
    except ImportError:
        print("(pip install 'hamsym[plot]' for the figure)")
    return dict(curves=curves, table=table, gap=gap)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("HAMSYM_QUICK")))
    main(parser.parse_args().quick)
