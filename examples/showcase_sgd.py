"""Showcase (a): Hamiltonian Learning recovers gradient-based learning.

A 4-16-2 tanh MLP (instantaneous layers, no neuron states) learns a random teacher
from a stream, one sample per step. With flip = -1:

- non-local HL is SGD with momentum, lr = delta^2 beta gamma, momentum = 1 - theta,
  step for step (weights use the new costate p_w);
- local HL moves the weights with the previous step's costate, which is the same
  momentum method with its update applied one step late.

Both are checked against PyTorch written out by hand (torch.optim.SGD for the first,
a two-line loop for the second). Prints a table; saves examples/out/showcase_sgd.png.

    python examples/showcase_sgd.py [--quick]
"""

import argparse
import os
from pathlib import Path

import numpy as np
import torch

import hamsym as hs
from hamsym import streams
from hamsym.declare.zoo import mlp

GAMMA, BETA, THETA, DELTA = 1.0, 2.0, 0.1, 0.1
LR, MOMENTUM = DELTA ** 2 * BETA * GAMMA, 1 - THETA
NAMES = ("W1", "b1", "W2", "b2")


def torch_loss(params, u, y):
    W1, b1, W2, b2 = params
    return ((W2 @ torch.tanh(W1 @ u + b1) + b2 - y) ** 2).sum() / 2


def torch_momentum(start, U, Y, *, late=False):
    """SGD with momentum; late=True applies each step's momentum buffer one step later."""
    torch.set_default_dtype(torch.float64)
    params = [torch.tensor(start[n].copy(), requires_grad=True) for n in NAMES]
    opt = None if late else torch.optim.SGD(params, lr=LR, momentum=MOMENTUM)
    buf = [torch.zeros_like(p) for p in params]
    losses = np.empty(len(U))
    for k, (u, y) in enumerate(zip(torch.tensor(U), torch.tensor(Y))):
        loss = torch_loss(params, u, y)
        losses[k] = loss.item()
        grads = torch.autograd.grad(loss, params)
        if opt is not None:
            for p, g in zip(params, grads):
                p.grad = g
            opt.step()
            continue
        with torch.no_grad():
            for p, b, g in zip(params, buf, grads):
                p -= LR * b                       # the previous buffer moves the weights
                b.mul_(MOMENTUM).add_(g)
    return losses, {n: p.detach().numpy() for n, p in zip(NAMES, params)}


def main(quick=False, out_dir=Path("examples/out")):
    steps = 1500 if quick else 20_000
    system = hs.derive(mlp([4, 16, 2], name="showcase_sgd"), gamma=GAMMA, beta=BETA, theta=THETA,
                       delta=DELTA)
    U, Y = streams.Teacher(4, 16, 2, seed=0).take(steps)
    rows = {}
    for scheme, late in (("nonlocal", False), ("local", True)):
        learner = hs.load(system, out_dir / f"showcase_sgd_{scheme}.py", scheme=scheme).Integrator(seed=0)
        start = {n: learner.weights[n].copy() for n in NAMES}
        hl = learner.run(U, Y)
        ref, weights = torch_momentum(start, U, Y, late=late)
        rows[scheme] = dict(
            losses=hl, reference=ref,
            loss_gap=float(np.abs(hl - ref).max()),
            weight_gap=max(float(np.abs(learner.weights[n] - weights[n]).max()) for n in NAMES),
            first=float(hl[: steps // 10].mean()), last=float(hl[-steps // 10:].mean()))
    print(f"{steps} steps; lr = delta^2 beta gamma = {LR:g}, momentum = 1 - theta = {MOMENTUM:g}")
    print(f"{'HL scheme':>10} | {'PyTorch twin':<28} | {'max |dloss|':>11} | {'max |dW|':>9} | "
          f"{'first 10%':>9} | {'last 10%':>9}")
    twins = {"nonlocal": "SGD(momentum)", "local": "momentum applied 1 step late"}
    for scheme, r in rows.items():
        print(f"{scheme:>10} | {twins[scheme]:<28} | {r['loss_gap']:11.1e} | {r['weight_gap']:9.1e} | "
              f"{r['first']:9.4f} | {r['last']:9.4f}")
    _figure(rows, out_dir)
    return rows


def _figure(rows, out_dir):
    try:
        from hamsym import plot
        plot.losses({f"HL {s}": r["losses"] for s, r in rows.items()}, window=200,
                    title="HL = SGD with momentum (non-local), delayed by one step (local)",
                    save=out_dir / "showcase_sgd.png")
        print(f"saved {out_dir / 'showcase_sgd.png'}")
    except ImportError:
        print("(pip install 'hamsym[plot]' for the figure)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("HAMSYM_QUICK")))
    main(parser.parse_args().quick)
