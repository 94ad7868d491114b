"""Steps per second of the local scheme with its layers spread over MPI ranks.

    python benchmarks/distributed.py [--layers 8] [--width 512] [--steps 400] [--ranks 1 2 4]

A delay network of `layers` layers of `width` neurons (wide enough that the kernels'
compute dominates) learns from a random stream: first in one process with the plain
module (the reference), then with DistributedIntegrator under mpiexec -n 1, 2, 4.
Each rank reports the seconds it spent in its kernels (compute) and waiting for other
ranks (communication, including waiting for a slower rank). On a machine with fewer
cores than ranks the ranks share cores, so the figures for more ranks than cores
measure oversubscription, not a cluster.

Then a model for L layers on L machines: a step costs the slowest layer's compute plus
two one-way latencies (state vectors forward, messages back; each carries `width`
floats), against L layers' compute on one machine.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build(folder, layers, width):
    import hamsym as hs
    from hamsym.declare.zoo import delay_network
    net = delay_network([width] * (layers + 1), hs.tanh, name="deep")
    system = hs.derive(net, gamma=1.0, beta=0.01, theta=0.1, theta_neurons=0.0, delta=0.1)
    return hs.load(system, Path(folder) / "deep.py", scheme="local")


def rank_job(folder, steps):
    """Runs under mpiexec: one DistributedIntegrator, timed after a warm-up chunk."""
    sys.path.insert(0, folder)
    import deep
    D = deep.DistributedIntegrator(seed=0, chunk=steps)
    rng = np.random.default_rng(0)
    width = deep.INPUTS["u"][0]
    U, Y = rng.normal(size=(steps, width)), rng.normal(size=(steps, width))
    D.run(U[:20], Y[:20]) if D.rank == 0 else D.run()          # warm-up
    D.timing[:] = 0
    D.comm.Barrier()
    start = time.perf_counter()
    D.run(U, Y) if D.rank == 0 else D.run()
    wall = time.perf_counter() - start
    timings = D.comm.gather(D.timing.tolist(), root=0)
    if D.rank == 0:
        print("RESULT " + json.dumps({"wall": wall, "steps": steps, "timing": timings}))


def mpiexec():
    exe = Path(sys.executable).parent / "mpiexec"
    return str(exe) if exe.exists() else shutil.which("mpiexec")


def model(per_weight, layers, widths, latency, bandwidth, itemsize=8):
    """Seconds per step on one machine and on `layers` machines (one layer each)."""
    print(f"\nModel: {layers} layers of n neurons on {layers} machines, one-way latency "
          f"{latency * 1e6:.0f} us, {bandwidth / 1e9 * 8:.0f} Gbit/s; compute per layer "
          f"= {per_weight * 1e9:.2f} ns per weight x n^2 (measured above)")
    print(f"{'n':>6} {'one machine':>13} {'per layer':>11} {'2 messages':>11} "
          f"{'L machines':>11} {'speed-up':>9}")
    for n in widths:
        layer = per_weight * n * n
        message = latency + n * itemsize / bandwidth
        one, many = layers * layer, layer + 2 * message
        print(f"{n:>6} {one * 1e6:>11.1f}us {layer * 1e6:>9.1f}us {2 * message * 1e6:>9.1f}us "
              f"{many * 1e6:>9.1f}us {one / many:>8.2f}x")
    # the width above which L machines beat one: (L - 1) * per_weight * n^2 > 2 * message
    n = next((n for n in range(1, 1 << 16)
              if (layers - 1) * per_weight * n * n > 2 * (latency + n * itemsize / bandwidth)), None)
    print(f"-> across this link, {layers} machines gain from width {n} on; below it the two "
          f"latencies per step cost more than the layers' compute they take off one machine")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--latency", type=float, default=30e-6,
                        help="one-way message latency of the link in the model (s); "
                             "~30 us is typical of MPI over TCP on 10 GbE")
    parser.add_argument("--bandwidth", type=float, default=1.25e9, help="bytes/s (10 GbE)")
    parser.add_argument("--rank-job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_job:
        return rank_job(args.rank_job, args.steps)

    folder = tempfile.mkdtemp(prefix="hamsym_distributed_")
    t = time.perf_counter()
    mod = build(folder, args.layers, args.width)
    learner = mod.Integrator(seed=0)
    rng = np.random.default_rng(0)
    U, Y = rng.normal(size=(args.steps, args.width)), rng.normal(size=(args.steps, args.width))
    learner.run(U[:20], Y[:20])
    print(f"delay network: {args.layers} layers of {args.width}, local scheme, float64 "
          f"(generated and compiled in {time.perf_counter() - t:.0f} s); {os.cpu_count()} cores")
    start = time.perf_counter()
    learner.run(U, Y)
    single = (time.perf_counter() - start) / args.steps
    print(f"\n{'ranks':>5} {'steps/s':>9} {'ms/step':>8} {'compute ms':>11} {'comm ms':>8}  per rank "
          f"(compute/comm ms per step)")
    print(f"{'1 proc':>5} {1 / single:>9.1f} {single * 1e3:>8.3f} {single * 1e3:>11.3f} {0:>8.3f}  "
          "(the plain module, no MPI)")
    exe = mpiexec()
    if exe is None:
        print("no mpiexec: pip install 'hamsym[mpi]'")
    for n in args.ranks if exe else []:
        if n > args.layers:
            continue
        out = subprocess.run([exe, "-n", str(n), sys.executable, __file__, "--rank-job", folder,
                              "--steps", str(args.steps)], capture_output=True, text=True)
        line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(f"{n:>5} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
            continue
        r = json.loads(line[7:])
        per = r["wall"] / r["steps"]
        ranks = [(c / r["steps"] * 1e3, w / r["steps"] * 1e3) for c, w in r["timing"]]
        slowest = max(c for c, _ in ranks)
        comm = max(w for _, w in ranks)
        print(f"{n:>5} {1 / per:>9.1f} {per * 1e3:>8.3f} {slowest:>11.3f} {comm:>8.3f}  " +
              " ".join(f"{c:.2f}/{w:.2f}" for c, w in ranks))
    per_weight = single / (args.layers * args.width ** 2)
    model(per_weight, args.layers, [64, 128, 256, 512, 1024, 2048, 4096], args.latency,
          args.bandwidth)


if __name__ == "__main__":
    main()
