"""Showcase (d): backprop over time without storing activations.

A recurrent network (zoo.recurrent: x+ = tanh(A x + B u + b), o = C x + c) learns from
a stream that a generator makes on the fly. HL (scheme local) goes forward in time
only: its memory is its weights, states and costates, whatever the stream length T.
Truncated backprop through time over a window of T steps must keep what autograd
saves for the backward pass at every one of the T steps.

Measured here, for growing T: HL's peak Python-heap growth during `run_stream`
(tracemalloc; numpy buffers included), and the bytes PyTorch autograd saves for one
backward through T unrolled steps (counted with saved_tensors_hooks). For peak
resident memory of both in separate processes see benchmarks/memory.py. Prints a
table; saves examples/out/showcase_memory.png.

    python examples/showcase_memory.py [--quick]
"""

import argparse
import os
import tracemalloc
from pathlib import Path

import numpy as np
import torch

import hamsym as hs
from hamsym.declare.zoo import recurrent

N_IN, HIDDEN, N_OUT = 8, 64, 4


def stream(steps, seed=0, block=256):
    """(u, y) per step, made block by block; y is a delayed, squashed copy of u."""
    rng = np.random.default_rng(seed)
    previous = np.zeros(N_IN)
    for start in range(0, steps, block):
        U = rng.normal(size=(min(block, steps - start), N_IN))
        for u in U:
            yield u, np.tanh(previous[:N_OUT])
            previous = u


def hl_peak(learner, steps):
    learner.run_stream(stream(64), chunk=64)          # compiled and warm before measuring
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    learner.run_stream(stream(steps), chunk=1024)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def bptt_saved_bytes(weights, steps):
    """Bytes autograd keeps for one backward through `steps` unrolled steps (distinct
    storages; the weights, saved at every step, count once)."""
    torch.set_default_dtype(torch.float64)
    A, B, b, C, c = (torch.tensor(weights[n], requires_grad=True) for n in ("A", "B", "b", "C", "c"))
    saved, seen = [0], set()

    def pack(t):                  # count each storage once: the weights are saved every step
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            saved[0] += storage.nbytes()
        return t
    x = torch.zeros(HIDDEN)
    loss = 0.0
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        for u, y in stream(steps):
            x = torch.tanh(A @ x + B @ torch.from_numpy(u) + b)
            loss = loss + ((C @ x + c - torch.from_numpy(y)) ** 2).sum() / 2
    loss.backward()
    return saved[0]


def main(quick=False, out_dir=Path("examples/out")):
    lengths = [100, 1000, 10_000] if quick else [100, 1000, 10_000, 100_000]
    system = hs.derive(recurrent(N_IN, HIDDEN, N_OUT, name="showcase_rnn"), gamma=1.0, beta=0.1,
                       theta=0.2, delta=0.1)
    mod = hs.load(system, out_dir / "showcase_rnn.py", scheme="local")
    weights = {k: v.copy() for k, v in mod.Integrator(seed=0).weights.items()}
    rows = []
    for steps in lengths:
        hl = hl_peak(mod.Integrator(seed=0), steps)
        bptt = bptt_saved_bytes(weights, steps)
        rows.append((steps, hl, bptt))
    print(f"recurrent network {N_IN}-{HIDDEN}-{N_OUT}, float64")
    print(f"{'stream length T':>15} | {'HL peak heap':>13} | {'BPTT saved for backward':>23} | ratio")
    for steps, hl, bptt in rows:
        print(f"{steps:>15,} | {hl / 1e3:10.1f} kB | {bptt / 1e6:20.2f} MB | {bptt / max(hl, 1):7.0f}x")
    try:
        from hamsym.workbench.plot import _pyplot
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
        T = [r[0] for r in rows]
        ax.loglog(T, [r[1] for r in rows], "o-", label="HL (local): peak heap during the stream")
        ax.loglog(T, [r[2] for r in rows], "s-", label="BPTT: bytes saved for backward")
        ax.set_xlabel("stream length T (steps)")
        ax.set_ylabel("bytes")
        ax.legend(fontsize="small")
        fig.savefig(out_dir / "showcase_memory.png", dpi=120)
        print(f"saved {out_dir / 'showcase_memory.png'}")
    except ImportError:
        print("(pip install 'hamsym[plot]' for the figure)")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("HAMSYM_QUICK")))
    main(parser.parse_args().quick)
