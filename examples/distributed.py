"""A deep delay network learning a teacher, one layer per MPI rank.

    mpiexec -n 8 python examples/distributed.py                 # one machine
    mpiexec -f hosts -n 8 python examples/distributed.py        # eight machines (README)

Eight delay layers (seven of 512 neurons and a readout of 8) learn online, in the local
scheme, to reproduce a teacher: a delay network of the same shape with fixed random
weights, fed the same input stream. Each rank owns one layer (fewer ranks than layers:
the layers are spread evenly), keeps only that layer's weights, states and costates,
and exchanges with its neighbours one state vector and one message per step. Rank 0
holds the stream; the losses come back once per chunk. Each rank writes its checkpoint
at the end (checkpoints/teacher_student.rank<r>.npz); --restore continues from it.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import hamsym as hs
from hamsym.zoo import delay_network

SIZES = [64] + [512] * 7 + [8]


def teacher_stream(steps, seed=0):
    """Inputs and the teacher's outputs: x_l+ = tanh(A_l x_{l-1} + c_l), read at the top."""
    rng = np.random.default_rng(seed)
    A = [rng.normal(size=(m, n)) * 1.5 / np.sqrt(n) for n, m in zip(SIZES, SIZES[1:])]
    c = [rng.normal(size=m) * 0.1 for m in SIZES[1:]]
    U = rng.normal(size=(steps, SIZES[0]))
    x = [np.zeros(m) for m in SIZES[1:]]
    Y = np.empty((steps, SIZES[-1]))
    for k in range(steps):
        below = [U[k]] + x[:-1]
        x = [np.tanh(a @ v + b) for a, v, b in zip(A, below, c)]
        Y[k] = x[-1]
    return U, Y


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--restore", action="store_true")
    args = parser.parse_args()

    net = delay_network(SIZES, hs.tanh, name="teacher_student")
    system = hs.derive(net, gamma=1.0, beta=0.02, theta=0.05, theta_neurons=0.0, delta=0.1)
    # every rank writes the same (byte-identical) file, or finds it there already
    module = hs.load(system, "generated/teacher_student.py", scheme="local")
    learner = module.DistributedIntegrator(seed=0, chunk=1000)
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
