"""Differential fuzz: random networks through hamsym against a PyTorch reference.

    python scripts/fuzz.py --cases 2000 --seed 5 [--jobs 2] [--shrink 1] [--no-float32]

Works with whatever `hamsym` is importable (run it from any checkout's venv). Each
case runs in a child worker process, so Numba errors, out-of-bounds writes under
NUMBA_BOUNDSCHECK=1 and crashes are reported, not fatal (a dead worker is replaced).
Prints a summary by category and, for the first failure of every category, a shrunk
standalone reproducer (greedy: fewer terms, states and instants, smaller widths,
simpler activations and options, while it still fails in the same category). A case
that passes in float64 is then run in float32 (check_case_float32; its categories start
with "float32"), unless --no-float32.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import random_networks as rn  # noqa: E402


# -- the worker side -----------------------------------------------------------------------

def worker_main():
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)                      # anything printed by the library goes to stderr
    import torch
    torch.set_num_threads(1)
    workdir = Path(tempfile.mkdtemp(prefix="hamsym_fuzz_"))
    single = os.environ.get("HAMSYM_FUZZ_FLOAT32", "1") == "1"
    count = 0
    for line in sys.stdin:
        msg = json.loads(line)
        case = msg["case"]
        count += 1
        t = time.time()
        try:
            status = rn.check_case(case, workdir / f"c{count}", tag=f"_{count}")
            if status == "ok" and single:     # the same module, its float32 versions
                status = rn.check_case_float32(case, workdir / f"c{count}", tag=f"_{count}")
            reply = {"status": status}
        except rn.CaseFailure as err:
            reply = {"status": "fail", "category": err.category, "message": err.message}
        except Exception as err:   # a harness problem, reported as its own category
            import traceback
            reply = {"status": "fail", "category": f"harness {type(err).__name__}",
                     "message": traceback.format_exc()[-600:]}
        reply["seconds"] = time.time() - t
        out.write(json.dumps(reply) + "\n")


class Worker:
    def __init__(self, timeout, float32=True):
        self.timeout = timeout
        self.float32 = float32
        self.proc = None

    def start(self):
        env = dict(os.environ, HAMSYM_FUZZ_FLOAT32="1" if self.float32 else "0")
        env.setdefault("NUMBA_BOUNDSCHECK", "1")
        env.setdefault("OMP_NUM_THREADS", "1")        # workers share the cores: one thread each
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env)

    def check(self, case):
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        t = time.time()
        try:
            self.proc.stdin.write(json.dumps({"case": case}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(self.timeout)
        sel.close()
        if not ready:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            return {"status": "fail", "category": "timeout",
                    "message": f"no answer in {self.timeout} s", "seconds": time.time() - t}
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.proc = None
            name = f"signal {-code}" if code < 0 else f"exit {code}"
            try:
                import signal
                name = signal.Signals(-code).name if code < 0 else name
            except ValueError:
                pass
            return {"status": "fail", "category": f"crash ({name})",
                    "message": f"the worker process died ({name})", "seconds": time.time() - t}
        return json.loads(line)

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Pool:
    """Threads, each with its own worker process."""

    def __init__(self, jobs, timeout, float32=True):
        self.float32 = float32
        self.local = threading.local()
        self.workers = []
        self.lock = threading.Lock()
        self.timeout = timeout
        self.ex = ThreadPoolExecutor(jobs)

    def _check(self, case):
        w = getattr(self.local, "worker", None)
        if w is None:
            w = self.local.worker = Worker(self.timeout, self.float32)
            with self.lock:
                self.workers.append(w)
        return w.check(case)

    def map(self, cases):
        return self.ex.map(self._check, cases)

    def close(self):
        self.ex.shutdown()
        for w in self.workers:
            w.close()


# -- shrinking ----------------------------------------------------------------------------

def shrink(pool, case, category, jobs, budget, log):
    evaluations = 0
    while evaluations < budget:
        cands = [c for c in rn.shrink_candidates(case) if rn.case_size(c) < rn.case_size(case)]
        found = None
        for i in range(0, len(cands), jobs):
            batch = cands[i:i + jobs]
            evaluations += len(batch)
            for c, r in zip(batch, pool.map(batch)):
                if r["status"] == "fail" and r["category"] == category:
                    found = c
                    break
            if found is not None or evaluations >= budget:
                break
        if found is None:
            break
        case = found
        log(f"    shrunk to size {rn.case_size(case)}: {rn.describe(case)}")
    return case, evaluations


# -- main -----------------------------------------------------------------------------------

def net_kind(case):
    return "state net" if rn.Spec(case["spec"]).of_kind("state") else "instant layers"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0, help="first case seed (cases are seed, seed+1, ...)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--shrink", type=int, default=1, help="failures shrunk per category (0: none)")
    ap.add_argument("--shrink-budget", type=int, default=80, help="cases tried per shrink")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--json", help="write every result to this file")
    ap.add_argument("--no-float32", action="store_true", help="check float64 only")
    args = ap.parse_args(argv)

    import hamsym
    print(f"hamsym from {Path(hamsym.__file__).parent}; {args.cases} cases from seed {args.seed}, "
          f"{args.jobs} workers, NUMBA_BOUNDSCHECK={os.environ.get('NUMBA_BOUNDSCHECK', '1')}", flush=True)
    cases = [rn.random_case(s) for s in range(args.seed, args.seed + args.cases)]
    pool = Pool(args.jobs, args.timeout, float32=not args.no_float32)
    t0 = time.time()
    results = []
    try:
        for case, r in zip(cases, pool.map(cases)):
            results.append((case, r))
            if not args.quiet and len(results) % 25 == 0:
                print(f"  ... {len(results)} cases, {time.time() - t0:.0f} s", flush=True)
            if not args.quiet and r["status"] == "fail":
                print(f"case {case['seed']}: FAIL [{r['category']}] {rn.describe(case)}: "
                      f"{r['message'][:200]}", flush=True)
        elapsed = time.time() - t0
        status = collections.Counter(r["status"] for _, r in results)
        compile_s = sum(r.get("seconds", 0) for _, r in results) / max(1, len(results))
        print(f"\n{len(results)} cases in {elapsed:.0f} s ({compile_s:.1f} s per case in a worker): "
              f"{status['ok']} ok, "
              f"{status['refused']} refused as expected, {status['fail']} failed")
        table = collections.Counter()
        totals = collections.Counter()
        for case, r in results:
            key = (case["scheme"], net_kind(case))
            totals[key] += 1
            if r["status"] == "fail":
                table[(r["category"],) + key] += 1
        print("\ncases by scheme and kind:")
        for key, n in sorted(totals.items()):
            print(f"  {key[0]:9s} {key[1]:15s} {n:5d} cases, "
                  f"{sum(v for k, v in table.items() if k[1:] == key):4d} failed")
        if table:
            print("\nfailures by category:")
            print(f"  {'category':40s} {'scheme':9s} {'network':15s} count")
            for (cat, scheme, kind), n in sorted(table.items(), key=lambda kv: -kv[1]):
                print(f"  {cat:40s} {scheme:9s} {kind:15s} {n:5d}")
        if args.json:
            Path(args.json).write_text(json.dumps([{"case": c, "result": r} for c, r in results]))
        if args.shrink:
            by_cat = collections.defaultdict(list)
            for case, r in results:
                if r["status"] == "fail":
                    by_cat[r["category"]].append((case, r))
            for cat, fails in sorted(by_cat.items()):
                if cat.startswith(("unstable", "harness")):     # ours, not the library's
                    for case, r in fails[:3]:
                        print(f"\n=== [{cat}] case {case['seed']}: {r['message'][:400]}")
                    continue
                for case, r in fails[:args.shrink]:
                    print(f"\n=== [{cat}] case {case['seed']} ({len(fails)} in this category): "
                          f"{rn.describe(case)}\n    {r['message'][:300]}", flush=True)
                    small, n = shrink(pool, case, cat, args.jobs, args.shrink_budget,
                                      lambda s: print(s, flush=True))
                    final = pool.map([small]).__next__()
                    print(f"--- shrunk after {n} tries ({rn.describe(small)}): "
                          f"{final.get('message', final['status'])[:300]}")
                    if cat.startswith("float32"):
                        print("(a float32 failure: run the network below with "
                              "rn.check_case_float32; the reproducer checks float64)")
                    try:
                        print(rn.reproducer(small))
                    except Exception as err:      # e.g. the reference itself fails
                        print(f"(no reproducer: {type(err).__name__}: {err})")
                        print(rn.network_source(rn.Spec(small["spec"])))
                        print(json.dumps({k: v for k, v in small.items() if k != "spec"}))
                    print("--- end", flush=True)
    finally:
        pool.close()
    return 1 if any(r["status"] == "fail" for _, r in results) else 0


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker_main()
    else:
        sys.exit(main())
