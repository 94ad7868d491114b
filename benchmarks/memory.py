"""Peak memory of fully-local HL vs truncated BPTT in PyTorch, against the stream window.

    python benchmarks/memory.py [--windows 100 1000 10000 100000] [--hidden 64] [--timeout 240]

One run prints, side by side, for windows of T = 100, 1 000, 10 000 and 100 000 steps,
on the same recurrent model (zoo.recurrent, kind="discrete": x+ = tanh(A x + B u + b),
o = C x + c, loss |o - y|^2 / 2; n_in = 8, hidden = 64, n_out = 4, float64, CPU):

1. HL: the generated Numba module, fully local (scheme="local"), learning online with
   `Integrator.run_stream` over a stream of T steps that a generator makes on the fly
   (the stream is never stored);
2. BPTT: truncated backpropagation through time in eager PyTorch with truncation
   window T: T unrolled steps of the same model fed by the same kind of generator,
   one backward through all T steps, one SGD step (the activations of all T steps are
   kept for that backward);
3. their ratio.

Memory is the process's peak resident set size (RSS) above a baseline. Each (method, T)
runs in a fresh subprocess: imports, model, optimizer state and a short warm-up run
(Numba compilation or cache load, torch's first autograd pass) come first; then
freed heap memory is returned to the OS (malloc_trim), the kernel's RSS high-water
mark is reset (`echo 5 > /proc/self/clear_refs`), the baseline is the RSS at that
moment, and the reported number is VmHWM - baseline after the measured run
(from /proc/self/status). If the kernel refuses the reset, the script falls back to
getrusage(RUSAGE_SELF).ru_maxrss after - before, which can only under-count, and
says so. RSS is used rather than tracemalloc because tracemalloc does not see
PyTorch's (or Numba's) allocator. A cross-check in the parent counts the bytes autograd
saves for backward per unrolled step (saved_tensors_hooks); the RSS slope of BPTT is
larger because every saved tensor also carries a TensorImpl and every op an autograd
node. Side notes: wall time per step of each run, the compiled HL kernel alone
(`Integrator.run` on arrays), and the generator alone.

torch runs on one thread (torch.set_num_threads(1)); the generated kernels are
single-threaded. The whole run takes about a minute on a 2-core machine.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_IN, N_OUT = 8, 4
HYPER = dict(gamma=1.0, beta=0.1, theta=0.2, delta=0.1)
BPTT_LR = 0.01
CHUNK = 1024                      # run_stream's buffer length
GEN_BLOCK = 256                   # the generator draws this many samples at a time
WARMUP_HL = 3 * CHUNK + 17        # full chunks and a partial one: every code path compiled
WARMUP_BPTT = 50                  # one short unrolled window: autograd, allocator, grads
DELAY = 3                         # the stream's task: y_k = 0.8 * u_{k-3}[:n_out]
PAGE = resource.getpagesize()
MODULE = "rnn_mem"


# ----------------------------------------------------------------------------- the stream

def stream(steps, seed, n_in=N_IN, n_out=N_OUT):
    """Yield `steps` samples (u_k, y_k) made on the fly; memory O(GEN_BLOCK), not O(steps).

    u_k: sines of n_in different frequencies and phases plus noise; y_k = 0.8 u_{k-DELAY}
    (first n_out channels): a short-memory task a recurrent net can learn. Samples are
    rows (views) of a block drawn GEN_BLOCK at a time; a consumer that keeps a row keeps
    its block alive, exactly as it would keep the row.
    """
    rng = np.random.default_rng(seed)
    omega = rng.uniform(0.02, 0.3, n_in)
    phase = rng.uniform(0, 2 * math.pi, n_in)
    tail = np.zeros((DELAY, n_in))
    k = 0
    while k < steps:
        n = min(GEN_BLOCK, steps - k)
        t = np.arange(k, k + n)[:, None]
        U = np.sin(omega * t + phase) + 0.1 * rng.normal(size=(n, n_in))
        Y = 0.8 * np.concatenate([tail, U])[:n, :n_out]
        tail = np.concatenate([tail, U])[-DELAY:]
        for i in range(n):
            yield U[i], Y[i]
        k += n


# ----------------------------------------------------------------------------- memory probes

def _status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) * 1024          # kB -> bytes
    return out


def _malloc_trim():
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class Peak:
    """Peak RSS above a baseline taken now (after warm-up), for the code that follows."""

    def __init__(self):
        gc.collect()
        _malloc_trim()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")                                     # reset VmHWM to VmRSS
            self.method = "VmHWM reset"
        except OSError:
            self.method = "ru_maxrss (no reset; may under-count)"
        self.baseline = _status()["VmRSS"]
        self.maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def increase(self):
        if self.method == "VmHWM reset":
            return _status()["VmHWM"] - self.baseline
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.maxrss0


# ----------------------------------------------------------------------------- children

def load_module(path, hidden):
    import hamsym as hs
    from hamsym.declare.zoo import recurrent
    net = recurrent(N_IN, hidden, N_OUT, kind="discrete", bias=True, name=MODULE)
    system = hs.derive(net, **HYPER)
    return hs.load(system, path, scheme="local")


def child_hl(T, path, hidden, weights_file):
    mod = load_module(path, hidden)
    w0 = dict(np.load(weights_file))
    warm = mod.Integrator(weights=w0)
    warm.run_stream(stream(WARMUP_HL, seed=99), chunk=CHUNK)          # compile / cache load
    warm.run(*_arrays(stream(64, seed=98)))
    del warm
    hl = mod.Integrator(weights=w0)                                   # the learner: before the baseline
    seen = {"n": 0, "sum": 0.0, "last": float("nan")}

    def on_chunk(losses):
        seen["n"] += len(losses)
        seen["sum"] += float(losses.sum())
        seen["last"] = float(losses.mean())

    peak = Peak()
    t0 = time.perf_counter()
    steps = hl.run_stream(stream(T, seed=1), chunk=CHUNK, on_chunk=on_chunk)
    wall = time.perf_counter() - t0
    inc = peak.increase()
    assert steps == T
    # side notes, after the measurement: the compiled kernel alone, and the fixed footprint
    n_k = 20_000
    U, Y = _arrays(stream(n_k, seed=2))
    kernel = math.inf
    for _ in range(3):                                                # best of 3: the machine is shared
        fresh = mod.Integrator(weights=w0)
        t0 = time.perf_counter()
        fresh.run(U, Y)
        kernel = min(kernel, (time.perf_counter() - t0) / n_k)
    fixed = sum(a.nbytes for d in (hl.weights, hl.costates, hl.states, hl.work) for a in d.values())
    finite = all(bool(np.isfinite(a).all()) for a in hl.weights.values())
    return dict(inc=inc, baseline=peak.baseline, method=peak.method, wall=wall, kernel=kernel,
                fixed=fixed, loss=seen["sum"] / seen["n"], last=seen["last"], finite=finite)


def _arrays(samples):
    rows = list(samples)
    return np.array([u for u, _ in rows]), np.array([y for _, y in rows])


def _torch_model(weights_file):
    import torch
    w0 = np.load(weights_file)
    return {k: torch.tensor(w0[k], requires_grad=True) for k in ("A", "B", "b", "C", "c")}


def bptt_window(P, opt, samples, hidden):
    """One truncation window: unroll over all samples, one backward, one SGD step.

    The state starts at zero (a new window of a fresh stream); the loss is the mean of
    |o - y|^2 / 2 over the window.
    """
    import torch
    A, B, b, C, c = P["A"], P["B"], P["b"], P["C"], P["c"]
    x = torch.zeros(hidden, dtype=torch.float64)
    total, n = None, 0
    for u, y in samples:
        u, y = torch.from_numpy(u), torch.from_numpy(y)
        x = torch.tanh(torch.addmv(torch.addmv(b, A, x), B, u))
        err = torch.addmv(c, C, x) - y
        l = 0.5 * err.dot(err)
        total = l if total is None else total + l
        n += 1
    loss = total / n
    opt.zero_grad(set_to_none=False)
    loss.backward()
    opt.step()
    return float(loss.detach())


def child_bptt(T, hidden, weights_file):
    import torch
    torch.set_num_threads(1)
    P = _torch_model(weights_file)
    opt = torch.optim.SGD(list(P.values()), lr=BPTT_LR)
    warm = _torch_model(weights_file)
    bptt_window(warm, torch.optim.SGD(list(warm.values()), lr=BPTT_LR), stream(WARMUP_BPTT, seed=99), hidden)
    bptt_window(P, opt, stream(2, seed=98), hidden)                    # allocates P's .grad
    with torch.no_grad():                                              # undo that step: same start as HL
        for k, t in _torch_model(weights_file).items():
            P[k].copy_(t)
    del warm
    peak = Peak()
    t0 = time.perf_counter()
    loss = bptt_window(P, opt, stream(T, seed=1), hidden)
    wall = time.perf_counter() - t0
    inc = peak.increase()
    finite = all(bool(torch.isfinite(p).all()) for p in P.values())
    return dict(inc=inc, baseline=peak.baseline, method=peak.method, wall=wall, loss=loss, finite=finite)


def child_main(argv):
    kind, T, path, hidden, weights_file = argv[0], int(argv[1]), argv[2], int(argv[3]), argv[4]
    out = child_hl(T, path, hidden, weights_file) if kind == "hl" else child_bptt(T, hidden, weights_file)
    print("RESULT " + json.dumps(out))


# ----------------------------------------------------------------------------- parent

def run_child(kind, T, path, hidden, weights_file, timeout):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, str(T), str(path),
           str(hidden), str(weights_file)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g}s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            out = json.loads(line[7:])
            out["process"] = time.perf_counter() - t0
            return out
    return {"error": f"exit {proc.returncode}: " + (proc.stderr.strip().splitlines() or ["?"])[-1]}


def saved_bytes_per_step(hidden, weights_file, T=1000):
    """Bytes of tensors autograd saves for backward per unrolled step (parameters excluded)."""
    import torch
    P = _torch_model(weights_file)
    params = {p.data_ptr() for p in P.values()}
    seen = {}

    def pack(t):
        if t.data_ptr() not in params:
            seen[(t.data_ptr(), t.numel())] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        bptt_window(P, torch.optim.SGD(list(P.values()), lr=BPTT_LR), stream(T, seed=1), hidden)
    return sum(seen.values()) / T


def generator_time(T=100_000):
    t0 = time.perf_counter()
    for _ in stream(T, seed=1):
        pass
    return (time.perf_counter() - t0) / T


def fmt_bytes(n):
    if n is None:
        return "-"
    if abs(n) < 1024 * 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n / 2 ** 20:.1f} MiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--windows", type=int, nargs="+", default=[100, 1_000, 10_000, 100_000])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds per subprocess")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir with the generated module")
    args = ap.parse_args()
    t_start = time.perf_counter()
    h = args.hidden
    n_params = h * h + h * N_IN + h + N_OUT * h + N_OUT

    import numba
    import torch
    import hamsym as hs
    print("== environment")
    print(f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
          f"torch {torch.__version__}, hamsym {hs.__version__}; {os.cpu_count()} CPUs; "
          f"page {PAGE} B")
    print(f"model: zoo.recurrent({N_IN}, {h}, {N_OUT}, kind='discrete', bias=True): "
          f"x+ = tanh(A x + B u + b), o = C x + c, loss |o - y|^2/2; {n_params:,} parameters, float64")
    print("HL: fully local (scheme='local'), " + ", ".join(f"{k}={v}" for k, v in HYPER.items())
          + f"; Integrator.run_stream(generator, chunk={CHUNK})")
    print(f"BPTT: eager PyTorch, CPU, 1 thread, float64; truncation window = T: T unrolled steps "
          f"from x = 0, one backward, one SGD step (lr={BPTT_LR}), loss = mean over the window")
    print(f"stream: generated on the fly, {GEN_BLOCK} samples at a time (u: noisy sines, "
          f"y_k = 0.8 u_(k-{DELAY})[:{N_OUT}]); same generator and seed for both methods; "
          f"both start from the same weights")
    print("memory: a fresh subprocess per (method, T). After imports, model, optimizer state and a "
          "warm-up run\n  (HL: run_stream over "
          f"{WARMUP_HL} steps, so Numba compiles or loads its cache; BPTT: a {WARMUP_BPTT}-step window "
          "and .grad allocation),\n  gc + malloc_trim, then the kernel's RSS high-water mark is reset "
          "(echo 5 > /proc/self/clear_refs)\n  and the baseline is VmRSS at that moment. Reported: "
          "peak RSS increase = VmHWM after the run - baseline.\n  Resolution: one page; not tracemalloc, "
          "which does not see torch's or Numba's allocators.")

    tmp = Path(tempfile.mkdtemp(prefix="hamsym_mem_"))
    try:
        path = tmp / f"{MODULE}.py"
        mod = load_module(path, h)
        weights_file = tmp / "w0.npz"
        np.savez(weights_file, **mod.Integrator(seed=0).weights)
        t0 = time.perf_counter()
        mod.Integrator(seed=0).run(np.zeros((2, N_IN)), np.zeros((2, N_OUT)))   # fills Numba's cache
        print(f"generated {path.name} in {tmp}; parent's first run() (compile + cache write) "
              f"{time.perf_counter() - t0:.1f}s" + ("" if args.keep else " (removed at exit)"))

        saved = saved_bytes_per_step(h, weights_file)
        gen = generator_time()

        results = {}
        for T in args.windows:
            for kind in ("hl", "bptt"):
                results[kind, T] = r = run_child(kind, T, path, h, weights_file, args.timeout)
                status = r.get("error") or (f"+{fmt_bytes(r['inc'])} over {fmt_bytes(r['baseline'])}, "
                                            f"{r['wall']:.2f}s run, {r['process']:.1f}s process")
                print(f"  measured {kind:>4} T={T:>7,}: {status}", flush=True)

        methods = {r.get("method") for r in results.values() if "method" in r}
        print(f"\n== peak RSS increase during the run (method: {', '.join(sorted(methods))})")
        w = 16
        cols = [f"T={T:,}" for T in args.windows]

        def row(name, values):
            print(f"{name:<38}" + "".join(f"{v:>{w}}" for v in values))

        def get(kind, T, key):
            r = results[kind, T]
            return r.get(key) if "error" not in r else None

        row("", cols)
        row("HL local, run_stream [peak RSS +]", [fmt_bytes(get("hl", T, "inc")) for T in args.windows])
        row("BPTT window T, torch [peak RSS +]", [fmt_bytes(get("bptt", T, "inc")) for T in args.windows])

        def ratio(T):
            a, b = get("bptt", T, "inc"), get("hl", T, "inc")
            if a is None or b is None:
                return "-"
            return f"{a / b:.0f}x" if b >= PAGE else f">{a / PAGE:.0f}x"
        row("ratio BPTT / HL", [ratio(T) for T in args.windows])
        row("BPTT increase per step [B]",
            [f"{get('bptt', T, 'inc') / T:.0f}" if get("bptt", T, "inc") is not None else "-"
             for T in args.windows])
        row("process baseline RSS HL | BPTT",
            [f"{(get('hl', T, 'baseline') or 0) / 2**20:.0f}|{(get('bptt', T, 'baseline') or 0) / 2**20:.0f} MiB"
             for T in args.windows])
        fixed = next((r["fixed"] for (k, _), r in results.items() if k == "hl" and "fixed" in r), None)
        print(f"(ratio: HL's increase floored at one page ({PAGE} B), shown as '>' when it is below that.\n"
              f" Allocated before the baseline, so not counted: HL's weights + costates + states + work "
              f"arrays = {fmt_bytes(fixed)},\n BPTT's parameters + .grad = {fmt_bytes(2 * n_params * 8)}. "
              f"Counted in HL's increase: run_stream's chunk buffers, "
              f"{fmt_bytes(CHUNK * (N_IN + N_OUT + 1) * 8)})")
        T_big = max(args.windows)
        hl_big = get("hl", T_big, "inc")
        print(f"cross-check: autograd saves {saved:.0f} B of tensors per unrolled step (x, u, o - y; "
              f"parameters excluded). The RSS slope above adds\n tensor headers, autograd nodes and "
              f"allocator overhead for the ~8 ops of each step. Even a BPTT that stored only those "
              f"tensors\n would need {fmt_bytes(saved * T_big)} at T={T_big:,}"
              + (f", {saved * T_big / max(hl_big, PAGE):.0f}x HL's increase." if hl_big is not None else "."))

        print("\n== side note: wall time per step [us] (same runs; includes drawing the stream)")
        row("", cols)
        row("HL run_stream", [f"{get('hl', T, 'wall') / T * 1e6:.2f}" if get("hl", T, "wall") else "-"
                              for T in args.windows])
        row("BPTT forward + backward + step", [f"{get('bptt', T, 'wall') / T * 1e6:.2f}"
                                               if get("bptt", T, "wall") else "-" for T in args.windows])
        kernel = next((r["kernel"] for (k, _), r in results.items() if k == "hl" and "kernel" in r), None)
        print(f"HL compiled kernel alone (Integrator.run on 20,000 stored samples, best of 3): "
              f"{kernel * 1e6:.2f} us/step; the generator alone: {gen * 1e6:.2f} us/step "
              f"(run_stream's per-sample Python copy into its buffers is the rest)")
        print("\n== sanity: mean loss over the stream (HL: online, all steps; BPTT: the window's loss "
              "before its single update), weights finite")
        row("", cols)
        row("HL", [f"{get('hl', T, 'loss'):.4f} {get('hl', T, 'finite')}" if get("hl", T, "loss") is not None
                   else "-" for T in args.windows])
        row("BPTT", [f"{get('bptt', T, 'loss'):.4f} {get('bptt', T, 'finite')}"
                     if get("bptt", T, "loss") is not None else "-" for T in args.windows])
        print(f"\ntotal wall time {time.perf_counter() - t_start:.1f}s")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
        sys.exit(0)
    sys.exit(main())
