"""What every rank runs in tests/test_distributed.py (under mpiexec).

    python mpi_job.py JOB.json

JOB.json: {"dir": folder of the generated modules and data, "runs": [{"module": name,
"ranks": placement or null, "out": file}], "refusals": null or a module name, "fault": null
or {"module", "victim", "timeout"}}.
Each run: 600 steps, a checkpoint, a fresh learner restored from it, 400 more steps;
rank 0 writes the gathered arrays and the losses to `out`. The refusals: a bad sample
and a NaN in run()'s data given to rank 0; each rank writes what it raised. The fault run: the victim
rank exits in the middle of a long run and every other rank prints the error it got.
"""

import json
import os
import sys
import threading
import time

import numpy as np

import coverage_pause


def main(job):
    # the modules run on hamsym.runtime itself (the same bytes as the copy beside them,
    # as hs.load does it), so that coverage, started in every rank when the suite
    # measures it (test_distributed.py), measures hamsym's own files
    from hamsym.codegen.render import _import_runtime
    _import_runtime()
    coverage_pause.install()
    sys.path.insert(0, job["dir"])
    data = np.load(os.path.join(job["dir"], "stream.npz"))
    for run in job["runs"]:
        mod = __import__(run["module"])
        U, Y = data["U"], data["Y"]
        D = mod.DistributedIntegrator(ranks=run["ranks"], seed=1, chunk=256, timeout=60)
        first = D.run(U[:600], Y[:600]) if D.rank == 0 else D.run()
        prefix = os.path.join(job["dir"], run["out"] + ".ckpt")
        D.save(prefix)
        D = mod.DistributedIntegrator(ranks=run["ranks"], seed=99, chunk=256, timeout=60)
        D.restore(prefix)
        rest = D.run(U[600:], Y[600:]) if D.rank == 0 else D.run()
        arrays = D.gather()
        if D.rank == 0:
            flat = {f"{kind}/{name}": a for kind, table in arrays.items() for name, a in table.items()}
            np.savez(os.path.join(job["dir"], run["out"]), losses=np.concatenate([first, rest]),
                     steps=D.steps, timing=D.timing, **flat)
    refusals = job.get("refusals")
    if refusals:                 # data rank 0 refuses is refused on every rank, in step
        mod = __import__(refusals)
        D = mod.DistributedIntegrator(seed=1, chunk=4, timeout=60)
        U, Y = data["U"][:10], data["Y"][:10]
        samples = list(zip(U, Y))
        samples[5] = (U[5][:2], Y[5])
        got = {}
        try:
            D.run_stream(iter(samples) if D.rank == 0 else None)
        except (TypeError, ValueError) as e:
            got["stream"] = f"{type(e).__name__}: {e}"
        got["stream_steps"] = D.steps
        bad = U.copy()
        bad[3, 1] = np.nan
        try:
            D.run(bad, Y) if D.rank == 0 else D.run()
        except ValueError as e:
            got["run"] = f"{type(e).__name__}: {e}"
        got["run_steps"] = D.steps
        got["after"] = len(D.run(U, Y) if D.rank == 0 else D.run())     # still in step
        with open(os.path.join(job["dir"], f"refusals_{D.rank}.json"), "w") as f:
            json.dump(got, f)
    fault = job.get("fault")
    if fault:
        mod = __import__(fault["module"])
        D = mod.DistributedIntegrator(seed=1, chunk=4096, timeout=fault["timeout"])
        U, Y = np.tile(data["U"], (100, 1)), np.tile(data["Y"], (100, 1))
        if D.rank == fault["victim"]:
            threading.Timer(0.5, os._exit, (3,)).start()      # dies in the middle of the run
        start = time.monotonic()
        try:
            D.run(U, Y) if D.rank == 0 else D.run()
        except mod.RankFailure as e:
            sys.stdout.write(f"FAILURE rank={D.rank} blames={e.rank} "         # one write
                             f"after={time.monotonic() - start:.2f} message={e}\n")
            sys.stdout.flush()
            raise SystemExit(1)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        main(json.load(f))
