"""HL next to out-of-the-box optimizers on the same stream (the paper's second showcase).

A 4-32-2 tanh MLP learns a fixed random teacher from a stream of fresh samples,
one sample per step, with: non-local HL (hamsym), torch SGD, SGD with momentum
and Adam. HL with flip = -1 is SGD with momentum lr = delta^2 beta gamma,
momentum = 1 - theta (docs/mathematics.md, section 8), so those two curves
coincide; the others are there for scale. Needs PyTorch (the test extra).

    python examples/optimizers.py
"""

import sys
from pathlib import Path

import numpy as np
import torch

import hamsym as hs
from hamsym.declare.zoo import mlp

STEPS, DELTA, BETA, GAMMA, THETA = 20_000, 0.1, 2.0, 1.0, 0.1
LR = DELTA ** 2 * BETA * GAMMA


def stream(seed=0):
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(32, 4)) / 2, rng.normal(size=(2, 32)) / np.sqrt(32)
    U = rng.normal(size=(STEPS, 4))
    return U, np.tanh(U @ A.T) @ B.T


def torch_run(weights, U, Y, make_optimizer):
    torch.set_default_dtype(torch.float64)
    params = [torch.tensor(weights[n].copy(), requires_grad=True) for n in ("W1", "b1", "W2", "b2")]
    opt = make_optimizer(params)
    losses = np.empty(len(U))
    for k in range(len(U)):
        W1, b1, W2, b2 = params
        loss = ((W2 @ torch.tanh(W1 @ torch.tensor(U[k]) + b1) + b2 - torch.tensor(Y[k])) ** 2).sum() / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses[k] = loss.item()
    return losses


def main(out_dir=Path("examples/out")):
    system = hs.derive(mlp([4, 32, 2], name="stream_mlp"), gamma=GAMMA, beta=BETA, theta=THETA,
                       delta=DELTA)
    hl = hs.load(system, out_dir / "stream_mlp.py").Integrator(seed=0)
    start = {k: v.copy() for k, v in hl.weights.items()}
    U, Y = stream()
    curves = {"HL (hamsym)": hl.run(U, Y)}
    curves["SGD"] = torch_run(start, U, Y, lambda p: torch.optim.SGD(p, lr=LR / THETA))
    curves["SGD momentum"] = torch_run(start, U, Y, lambda p: torch.optim.SGD(
        p, lr=LR, momentum=1 - THETA))
    curves["Adam"] = torch_run(start, U, Y, lambda p: torch.optim.Adam(p, lr=1e-3))
    print("mean loss per 2,000 steps (SGD uses lr / theta: the same effective step as momentum)")
    for name, losses in curves.items():
        print(f"{name:>14}: " + " ".join(f"{c.mean():.4f}" for c in np.array_split(losses, 10)))
    gap = np.abs(curves["HL (hamsym)"] - curves["SGD momentum"]).max()
    print(f"max |HL - SGD momentum| loss difference over the stream: {gap:.1e}")
    return curves


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("examples/out"))
