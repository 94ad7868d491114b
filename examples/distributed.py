"""A deep delay network learning a teacher, one layer per MPI rank.

    mpiexec -n 8 python examples/distributed.py                 # one machine
    mpiexec -f hosts -n 8 python examples/distributed.py        # eight machines (README)

Eight delay layers (seven of 512 neurons and a linear readout of 4) learn online, in
the local scheme, to reproduce a fixed random teacher from a stream that holds each
input for 32 steps (longer than the eight steps the network takes to answer). Each
rank owns one layer (with fewer ranks than layers, the layers are spread evenly),
keeps only that layer's weights, states and costates, and exchanges with its
neighbours one state vector and one message per step. Rank 0
holds the stream; the losses come back once per chunk. Each rank writes its checkpoint
at the end (checkpoints/teacher_student.rank<r>.npz); --restore continues from it.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import hamsym as hs
from hamsym.declare.zoo import delay_network

SIZES = [16] + [512] * 7 + [4]
HOLD = 32                            # each input is held for 32 steps, longer than the depth


def teacher_stream(steps, seed=0):
    """Inputs held for HOLD steps, and a fixed random two-layer teacher's outputs."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(32, SIZES[0])) / np.sqrt(SIZES[0])
    B = rng.normal(size=(SIZES[-1], 32)) / np.sqrt(32)
    U = np.repeat(rng.normal(size=(-(-steps // HOLD), SIZES[0])), HOLD, axis=0)[:steps]
    return U, np.tanh(U @ A.T) @ B.T


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=16000)
    parser.add_argument("--restore", action="store_true")
    args = parser.parse_args()

    net = delay_network(SIZES, [hs.tanh] * 7 + [hs.identity], name="teacher_student")
    system = hs.derive(net, gamma=1.0, beta=0.003, theta=0.2, theta_neurons=0.0, delta=0.1)
    # every rank writes the same (byte-identical) file, or finds it there already
    module = hs.load(system, "generated/teacher_student.py", scheme="local")
    # N(0, 1.2^2 / fan_in) weights carry the input through the seven tanh layers (the
    # default uniform draw shrinks it layer after layer); every rank draws all of them
    rng = np.random.default_rng(1)
    weights = {f"W{l}": rng.normal(size=(m, n)) * 1.2 / np.sqrt(n)
               for l, (n, m) in enumerate(zip(SIZES, SIZES[1:]), start=1)}
    learner = module.DistributedIntegrator(seed=0, weights=weights, chunk=1000)
    Path("checkpoints").mkdir(exist_ok=True)
    checkpoint = "checkpoints/teacher_student"
    if args.restore:
        learner.restore(checkpoint)
    mine = [u["name"] for u, r in zip(module.UNITS, learner.unit_rank) if r == learner.rank]
    print(f"rank {learner.rank}/{learner.size}: layers {', '.join(mine)}", flush=True)

    U, Y = teacher_stream(args.steps) if learner.rank == 0 else (None, None)
    start = time.perf_counter()
    losses = learner.run(U, Y) if learner.rank == 0 else learner.run()
    seconds = time.perf_counter() - start
    learner.save(checkpoint)
    compute, wait = learner.timing
    print(f"rank {learner.rank}: {compute / seconds:.0%} of the time in its kernels, "
          f"{wait / seconds:.0%} waiting for other ranks", flush=True)
    if learner.rank == 0:
        window = max(len(losses) // 10, 1)
        print(f"{len(losses)} steps in {seconds:.1f} s ({len(losses) / seconds:.0f} steps/s); "
              f"loss over the first {window} steps {losses[:window].mean():.4f}, over the last "
              f"{window} {losses[-window:].mean():.4f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
