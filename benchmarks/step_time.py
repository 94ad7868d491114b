"""Microseconds per online learning step: hamsym's generated module vs JAX and eager PyTorch.

    python benchmarks/step_time.py [--repeats 7] [--target 0.2] [--no-compile] [--keep]
                                   [--jax-all-cores]

One run prints, side by side, for the MLPs 4-32-32-2, 64-256-256-10 and
1024-1024-1024-10 (tanh hidden layers, linear output, biases, squared loss
|o - y|^2 / 2, non-local HL, gamma = beta = 1, theta = 0.5, delta = 0.1, batch 1,
float64):

1. hamsym: the generated Numba module, `Integrator.run` over a stream (the loop
   over samples is compiled); warmed up, median (and best) over repeats. Also
   `Integrator.step` called from a Python loop (the same loop shape as torch's),
   and, side by side, the module-level `step(...)` kernel called from the same loop
   with every array of the learner (what `Integrator.step` did before it bound the
   arrays once: Numba unboxes each of them per call). Target: `Integrator.step`
   within STEP_TARGET (1.5x) of `run()` per step.
2. JAX HL (when jax is installed: the `bench` extra): the same HL update in JAX,
   value_and_grad inside one jit-compiled lax.scan over the stream, float64
   (jax_enable_x64), batch 1, one XLA thread (--jax-all-cores: all).
   torch HL: the same HL update in eager PyTorch, one sample per Python iteration:
   H's w-dependent part gamma*l, backward(), then p <- (1 - theta) p + delta dH/dw,
   w <- w - delta beta p, in torch.
3. torch SGD: torch.optim.SGD(lr = delta^2 beta gamma, momentum = 1 - theta) with
   autograd and zero_grad in the same loop (the same trajectory: docs/mathematics.md, section 8).
4. ratios JAX / hamsym (issue #11 targets) and torch / hamsym;
4b. float32 beside float64 (issue #18): hamsym run() of Integrator(dtype="float32") on a
   float32 stream and JAX HL with float32 weights and stream, timed in the same interleaved
   repeats, and the ratios float64 time / float32 time of each library (targets for
   hamsym: >= 1x on every net, >= 1.8x on the 1024-wide one) and JAX / hamsym in float32
   (targets >= 2x, >= 1.5x, >= 1.5x); a sanity check first: both float32 learners within
   1e-4 of the float64 one after a few steps from the same float32 start;
5. a byte model of the fused step and the achieved GB/s, next to the bandwidth of
   the update pass alone (a Numba loop reading and writing W and p_W) at the same
   footprint, and numpy copy / update-pass bandwidth on DRAM-sized arrays;
6. Numba compile time of each generated module: a fresh subprocess with an empty
   cache (the `__pycache__` beside the generated file) vs a second fresh
   subprocess that finds the cache;
7. the cost of the divergence guard (run() checks every loss is finite) on
   64-256-256-10: run() with check_finite on vs off, interleaved repeats;
8. vectorisation evidence: each update kernel compiled in a fresh process (empty
   cache), its LLVM IR's float instructions counted by vector width, and the libm
   tanh calls left (none: the module's own _tanh is inlined and vectorised);
9. all cores: run() of modules generated with threads=False vs threads=True on
   1024-1024-1024-10 and 4096-4096-10 (--no-threads skips it), and whether both
   give the same bits; then 1024-1024-1024-10 with the defaults of both: the module
   generated with threads="auto" vs JAX with XLA's default threads, in a fresh process.

Before timing, the script asserts that hamsym, the torch HL reference, torch
SGD and JAX reach the same weights (and hamsym and torch HL the same costates) after a
few steps, to 1e-9. torch runs on one thread (torch.set_num_threads(1)); the
modules of the main table are generated with threads=False (one thread, like torch
and JAX); a separate section times threads=True on the 1024- and 4096-wide nets. glibc's malloc
thresholds are fixed so torch reuses its per-step gradient blocks (see
tune_malloc; --default-malloc to skip). The whole run takes a few minutes on a
2-core machine.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

NETS = [  # (label, sizes, module name)
    ("4-32-32-2", [4, 32, 32, 2], "bench_small"),
    ("64-256-256-10", [64, 256, 256, 10], "bench_mid"),
    ("1024-1024-1024-10", [1024, 1024, 1024, 10], "bench_big"),
]
HYPER = dict(gamma=1.0, beta=1.0, theta=0.5, delta=0.1)
TARGETS = {"4-32-32-2": 50.0, "64-256-256-10": 3.0, "1024-1024-1024-10": 1.0}
STEP_TARGET = 1.5    # Integrator.step() from a Python loop / run(), per step (issue #11)
JAX_TARGETS = {"4-32-32-2": 2.0, "64-256-256-10": 1.2, "1024-1024-1024-10": 1.2}   # JAX / hamsym run()
# issue #18: hamsym float32 at least as fast as float64 (1.8x on the bandwidth-bound net),
# and JAX float32 / hamsym float32
F32_TARGETS = {"4-32-32-2": 1.0, "64-256-256-10": 1.0, "1024-1024-1024-10": 1.8}
JAX_F32_TARGETS = {"4-32-32-2": 2.0, "64-256-256-10": 1.5, "1024-1024-1024-10": 1.5}
F32_CHECK_TOL = 1e-4       # float32 learners against the float64 one after CHECK_STEPS steps
CHECK_STEPS = 20
CHECK_TOL = 1e-9
F64 = 8  # bytes

# Run in a fresh interpreter: import the generated file under the name hs.load gives
# it (Numba's cache pickles that module name, so it has to match), then time the
# first call of run() (compile, or load from the cache) and a second call.
_CHILD = r"""
import importlib.util, json, sys, time
t0 = time.perf_counter()
import numpy as np, numba
t1 = time.perf_counter()
path, modname, n_in, n_out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
spec = importlib.util.spec_from_file_location(modname, path)
mod = importlib.util.module_from_spec(spec)
sys.modules[modname] = mod
spec.loader.exec_module(mod)
t2 = time.perf_counter()
integ = mod.Integrator(seed=0)
U, Y = np.zeros((2, n_in)), np.zeros((2, n_out))
integ.run(U, Y)
t3 = time.perf_counter()
integ.run(U, Y)
t4 = time.perf_counter()
print(json.dumps({"import_numba": t1 - t0, "import_module": t2 - t1,
                  "first_run": t3 - t2, "second_run": t4 - t3}))
"""


# ----------------------------------------------------------------------------- helpers

def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def n_params(sizes):
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def bytes_per_step(sizes):
    """Bytes the fused hamsym step moves, float64, by the model printed below.

    Layer l (W_l: n_out x n_in, b_l: n_out):
      forward       reads W_l, b_l once                                 8 B/param
      update        reads W_l, p_W_l, writes W_l, p_W_l in one pass     32 B/param
                    (the message dH/dh_{l-1} = W_l^T v is computed in that
                    same pass, from the old W_l, so W_l is not read again)
    so 40 B/param. Vectors (activations, messages, u, y) are O(n) against O(n^2)
    and left out. The floor for separate float64 W and p_W arrays is 32 B/param
    (the update pass).
    """
    total = 0
    for n_in, n_out in zip(sizes, sizes[1:]):
        total += (n_in * n_out + n_out) * (8 + 32)
    return total


def copy_bandwidth(n_doubles, budget=0.15):
    """numpy copy GB/s (read + write counted, as STREAM does) on two arrays of n doubles."""
    src = np.full(n_doubles, 1.5)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    t = time.perf_counter()
    np.copyto(dst, src)
    one = max(time.perf_counter() - t, 1e-7)
    inner = max(1, int(budget / 5 / one))

    def loop():
        for _ in range(inner):
            np.copyto(dst, src)
    return 2 * n_doubles * F64 * inner / median_time(loop, 5) / 1e9


_UPDATE = None


def update_bandwidth(n_doubles, budget=0.15):
    """GB/s of the update pass alone (read W, p; write W, p: 32 B/element), Numba, one thread.

    The same loop shape as the generated update with a constant gradient: the
    attainable bandwidth for the dominant part of the step at a given footprint.
    """
    global _UPDATE
    if _UPDATE is None:
        import numba

        @numba.njit(fastmath={"reassoc", "contract"})
        def update(w, p, g, aw, ds, db, times):
            for _ in range(times):
                for i in range(w.shape[0]):
                    q = aw * p[i] - ds * g
                    w[i] -= db * q
                    p[i] = q
        _UPDATE = update
    w, p = np.full(n_doubles, 0.5), np.zeros(n_doubles)
    _UPDATE(w, p, 0.0, 0.5, -0.1, 0.1, 1)
    t = time.perf_counter()
    _UPDATE(w, p, 0.0, 0.5, -0.1, 0.1, 1)
    inner = max(1, int(budget / 5 / max(time.perf_counter() - t, 1e-7)))
    return 32 * n_doubles * inner / median_time(lambda: _UPDATE(w, p, 0.0, 0.5, -0.1, 0.1, inner), 5) / 1e9


def stream_data(sizes, steps, seed):
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(steps, sizes[0])) * min(1.0, 2.0 / math.sqrt(sizes[0]))
    Y = 0.1 * rng.normal(size=(steps, sizes[-1]))
    return U, Y


def clamp(x, lo, hi):
    return int(max(lo, min(hi, x)))


# ----------------------------------------------------------------------------- torch

def tune_malloc():
    """Let glibc recycle torch's large per-step blocks instead of faulting in fresh pages.

    Eager torch allocates new gradient tensors every step (8 MB each on the
    1024-wide net). With glibc's default, adaptive mmap/trim thresholds, whether
    those blocks come back from the heap or as fresh zeroed pages (one minor fault
    per 4 KiB) depends on the heap's history, and the step time of a torch loop
    jumps between ~6 and ~11 ms from one run to the next. Fixed thresholds make
    torch's time stable and its best. hamsym allocates nothing per step.
    Returns a description for the header.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024) and libc.mallopt(m_trim_threshold, 1 << 30)
        return ("glibc mallopt: mmap threshold 32 MiB, trim threshold 1 GiB (large blocks are reused)"
                if ok else "glibc mallopt refused; malloc left at its defaults")
    except (OSError, AttributeError):
        return "not glibc; malloc left at its defaults"


def torch_forward(params, u):
    h = u
    layers = len(params) // 2
    for k in range(layers):
        h = F.linear(h, params[2 * k], params[2 * k + 1])
        if k < layers - 1:
            h = torch.tanh(h)
    return h


class TorchHL:
    """Non-local HL (flip = -1) in eager PyTorch, one sample per call."""

    def __init__(self, weights, names, gamma, beta, theta, delta):
        self.params = [torch.tensor(weights[n].copy(), requires_grad=True) for n in names]
        self.costates = [torch.zeros_like(p, requires_grad=False) for p in self.params]
        self.gamma, self.a, self.d, self.db = gamma, 1.0 - theta, delta, delta * beta

    def step(self, u, y):
        for w in self.params:
            w.grad = None
        o = torch_forward(self.params, u)
        h = (0.5 * self.gamma) * ((o - y) ** 2).sum()     # the part of H that depends on w
        h.backward()                                       # w.grad = dH/dw
        with torch.no_grad():
            for w, p in zip(self.params, self.costates):
                p.mul_(self.a).add_(w.grad, alpha=self.d)  # p <- (1 - theta) p + delta dH/dw
                w.sub_(p, alpha=self.db)                   # w <- w - delta beta p
        return h


class TorchSGD:
    """torch.optim.SGD with momentum, out of the box, one sample per call."""

    def __init__(self, weights, names, gamma, beta, theta, delta):
        self.params = [torch.tensor(weights[n].copy(), requires_grad=True) for n in names]
        self.opt = torch.optim.SGD(self.params, lr=delta ** 2 * beta * gamma, momentum=1.0 - theta)
        self.gamma = gamma

    def step(self, u, y):
        self.opt.zero_grad()
        o = torch_forward(self.params, u)
        loss = (0.5 * self.gamma) * ((o - y) ** 2).sum()
        loss.backward()
        self.opt.step()
        return loss


# ----------------------------------------------------------------------------- JAX

def import_jax(all_cores):
    """jax with float64, or None (with the reason) when it is not installed."""
    if not all_cores:        # one thread, as torch and the plain hamsym kernels
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false"
                                   " intra_op_parallelism_threads=1").strip()
    try:
        import jax
    except ImportError as exc:
        return None, f"jax not installed ({exc}); pip install -e '.[bench]' adds the JAX column"
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    return jax, f"jax {jax.__version__} (jit + lax.scan over the stream, float64 and float32, CPU, " + (
        "all cores)" if all_cores else "one thread: XLA_FLAGS intra_op_parallelism_threads=1)")


class JaxHL:
    """The same non-local HL update in JAX: one jit-compiled lax.scan over the stream."""

    def __init__(self, jax, weights, names, gamma, beta, theta, delta):
        jnp = jax.numpy
        a, d, db = 1.0 - theta, delta, delta * beta
        layers = len(names) // 2

        def loss(params, u, y):
            h = u
            for k in range(layers):
                h = params[2 * k] @ h + params[2 * k + 1]
                if k < layers - 1:
                    h = jnp.tanh(h)
            return (0.5 * gamma) * jnp.sum((h - y) ** 2)

        grad = jax.value_and_grad(loss)

        def one(carry, sample):
            params, costates = carry
            h, g = grad(params, *sample)
            costates = [a * p + d * gw for p, gw in zip(costates, g)]   # p <- (1-theta) p + delta dH/dw
            params = [w - db * p for w, p in zip(params, costates)]     # w <- w - delta beta p
            return (params, costates), h

        self._run = jax.jit(lambda carry, U, Y: jax.lax.scan(one, carry, (U, Y)))
        # the weights' float type throughout: Python floats above are weakly typed in JAX
        self.dtype = weights[names[0]].dtype
        self.carry = ([jnp.asarray(weights[n]) for n in names],
                      [jnp.zeros_like(jnp.asarray(weights[n])) for n in names])
        self.jnp = jnp

    def data(self, U, Y):
        """The stream as device arrays of the weights' type (converted once, outside the timing)."""
        return self.jnp.asarray(U, self.dtype), self.jnp.asarray(Y, self.dtype)

    def run(self, U, Y):
        self.carry, losses = self._run(self.carry, U, Y)
        return losses.block_until_ready()

    def weights(self):
        return [np.asarray(w) for w in self.carry[0]]

    def costates(self):
        return [np.asarray(p) for p in self.carry[1]]


# ----------------------------------------------------------------------------- parts

def header():
    print("== environment")
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
          f"numba {__import__('numba').__version__}, hamsym {__import__('hamsym').__version__}")
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    caches = []
    for idx in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            kind = (idx / "type").read_text().strip()
            if kind != "Instruction":
                caches.append(f"L{(idx / 'level').read_text().strip()} {(idx / 'size').read_text().strip()}")
        except OSError:
            pass
    print(f"cpu: {cpu}, {os.cpu_count()} logical cpus; caches (per cpu0 view): {', '.join(caches) or '?'}")
    env = {k: os.environ.get(k, "-") for k in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS",
           "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "NUMBA_CACHE_DIR")}
    print("env: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    print(f"torch: num_threads={torch.get_num_threads()}, interop_threads={torch.get_num_interop_threads()}, "
          f"parallel backend={'OpenMP' if 'OpenMP' in torch.__config__.parallel_info() else '?'}, "
          f"mkl={torch.backends.mkl.is_available()}")
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        print(f"numpy BLAS: {blas.get('name')} {blas.get('version')} "
              f"({blas.get('openblas configuration', '').strip()}); numpy copies are single-threaded")
    except Exception as exc:   # older numpy
        print(f"numpy BLAS: unknown ({exc})")
    print("hamsym kernels: main table generated with threads=False -> one thread")


def build(tmp, hs, mlp, nets=NETS, threads=False):
    mods = {}
    for label, sizes, name in nets:
        net = mlp(sizes, hs.tanh, loss="squared", name=name)
        system = hs.derive(net, **HYPER)
        path = tmp / name / f"{name}.py"        # one directory (and __pycache__) per module
        hs.generate(system, path, threads=threads)
        mtime = path.stat().st_mtime_ns
        mod = hs.load(system, path, threads=threads)   # imports; compiles at the first call
        assert path.stat().st_mtime_ns == mtime, "load() rewrote the module"
        mods[label] = (mod, path, sizes)
    return mods


def compile_times(mods):
    print("\n== Numba compile time (a fresh subprocess each; the first run() call compiles "
          "or loads the cache)")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT")}
    rows = []
    for label, (mod, path, sizes) in mods.items():
        cache = path.parent / "__pycache__"
        shutil.rmtree(cache, ignore_errors=True)
        res = {}
        for phase in ("cold", "warm"):
            out = subprocess.run([sys.executable, "-c", _CHILD, str(path), mod.__name__,
                                  str(sizes[0]), str(sizes[-1])],
                                 env=env, capture_output=True, text=True, check=True)
            res[phase] = json.loads(out.stdout.strip().splitlines()[-1])
            if phase == "cold":
                files = sorted(p.name for p in cache.glob("*.nb*")) if cache.exists() else []
                assert files, f"no Numba cache written in {cache}"
                res["files"] = len(files)
        rows.append((label, res))
    print(f"{'module':>20} {'cache':>6} {'import numba':>13} {'import module':>14} "
          f"{'1st run()':>10} {'2nd run()':>10} {'total':>8}")
    for label, res in rows:
        for phase in ("cold", "warm"):
            r = res[phase]
            total = r["import_numba"] + r["import_module"] + r["first_run"]
            print(f"{label if phase == 'cold' else '':>20} {phase:>6} {r['import_numba']:12.3f}s "
                  f"{r['import_module']:13.3f}s {r['first_run']:9.3f}s {r['second_run'] * 1e3:8.3f}ms "
                  f"{total:7.2f}s")
    print(f"(cold = empty __pycache__ beside the generated file; it then holds {rows[0][1]['files']} "
          "cache files per module; warm = a second fresh process that loads them)")


def sanity_check(mod, sizes, jax):
    integ = mod.Integrator(seed=0)
    names = list(integ.weights)
    w0 = {n: a.copy() for n, a in integ.weights.items()}
    U, Y = stream_data(sizes, CHECK_STEPS, seed=7)
    hl = TorchHL(w0, names, **HYPER)
    sgd = TorchSGD(w0, names, **HYPER)
    hs_losses = integ.run(U, Y)
    th_losses = []
    for u, y in zip(torch.from_numpy(U), torch.from_numpy(Y)):
        th_losses.append(float(hl.step(u, y).detach()))
        sgd.step(u, y)
    err_w = max(float(np.abs(integ.weights[n] - p.detach().numpy()).max()) for n, p in zip(names, hl.params))
    err_p = max(float(np.abs(integ.costates[n] - p.numpy()).max()) for n, p in zip(names, hl.costates))
    err_s = max(float(np.abs(integ.weights[n] - p.detach().numpy()).max()) for n, p in zip(names, sgd.params))
    err_l = float(np.abs(hs_losses - np.array(th_losses)).max())
    moved = max(float(np.abs(integ.weights[n] - w0[n]).max()) for n in names)
    assert moved > 1e-6, "weights did not move; the check would be vacuous"
    checks = [("weights vs torch HL", err_w), ("costates vs torch HL", err_p),
              ("weights vs torch SGD", err_s), ("losses vs torch HL", err_l)]
    err_j = None
    if jax is not None:
        jx = JaxHL(jax, w0, names, **HYPER)
        j_losses = np.asarray(jx.run(*jx.data(U, Y)))
        err_j = max(max(float(np.abs(integ.weights[n] - w).max()) for n, w in zip(names, jx.weights())),
                    max(float(np.abs(integ.costates[n] - p).max()) for n, p in zip(names, jx.costates())))
        checks += [("weights and costates vs JAX HL", err_j),
                   ("losses vs JAX HL", float(np.abs(hs_losses - j_losses).max()))]
    for what, err in checks:
        assert err < CHECK_TOL, f"{sizes}: {what} differ by {err:.2e} after {CHECK_STEPS} steps"
    return err_w, err_p, err_s, err_j, moved


def sanity_check_f32(mod, sizes, jax):
    """hamsym and JAX in float32 against hamsym in float64 (checked above against torch),
    all three from the same float32 weights and stream: max |difference| of the weights and
    costates after CHECK_STEPS steps, asserted < F32_CHECK_TOL."""
    single = mod.Integrator(seed=0, dtype=np.float32)
    names = list(single.weights)
    w32 = {n: a.copy() for n, a in single.weights.items()}
    double = mod.Integrator(seed=0, weights=w32)
    U, Y = (a.astype(np.float32) for a in stream_data(sizes, CHECK_STEPS, seed=7))
    double.run(U.astype(np.float64), Y.astype(np.float64))
    single.run(U, Y)

    def err(weights, costates):
        return max(max(float(np.abs(double.weights[n] - w).max()) for n, w in zip(names, weights)),
                   max(float(np.abs(double.costates[n] - p).max()) for n, p in zip(names, costates)))
    err_hs = err([single.weights[n] for n in names], [single.costates[n] for n in names])
    assert err_hs < F32_CHECK_TOL, f"{sizes}: hamsym float32 differs by {err_hs:.2e}"
    err_j = None
    if jax is not None:
        jx = JaxHL(jax, w32, names, **HYPER)
        jx.run(*jx.data(U, Y))
        assert jx.weights()[0].dtype == np.float32
        err_j = err(jx.weights(), jx.costates())
        assert err_j < F32_CHECK_TOL, f"{sizes}: JAX float32 differs by {err_j:.2e}"
    return err_hs, err_j


def time_net(mod, sizes, repeats, target, jax):
    integ = mod.Integrator(seed=0)
    names = list(integ.weights)
    w0 = {n: a.copy() for n, a in integ.weights.items()}
    hl = TorchHL(w0, names, **HYPER)
    sgd = TorchSGD(w0, names, **HYPER)

    # calibrate: one warm-up/estimate per method, then steps so that a repeat lasts ~target s
    Uc, Yc = stream_data(sizes, 200, seed=1)
    integ.run(Uc[:2], Yc[:2])                                   # compile / cache load
    t_hs = median_time(lambda: integ.run(Uc, Yc), 3) / len(Uc)
    n_hs = clamp(target / t_hs, 20, 2_000_000)
    Ut, Yt = torch.from_numpy(Uc), torch.from_numpy(Yc)

    def est(step, k, us=Ut, ys=Yt):
        for i in range(2):
            step(us[i], ys[i])
        t = time.perf_counter()
        for i in range(k):
            step(us[i], ys[i])
        return (time.perf_counter() - t) / k

    k_cal = 3 if sizes[1] >= 1024 else 30
    # the module-level kernel with every array, as Integrator.step called it before binding
    unbound = mod.step
    arrays, scalars, work = tuple(integ._arrays()), integ._scalars(), tuple(integ.work.values())

    def kernel_step(u, y):
        return unbound(*arrays, u, y, *scalars, *work)

    n_th = {m: clamp(target / est(s, k_cal), 3, 20_000) for m, s in
            (("hl", hl.step), ("sgd", sgd.step))}
    n_th.update((m, clamp(target / est(s, k_cal, Uc, Yc), 3, 20_000)) for m, s in
                (("py", integ.step), ("kernel", kernel_step)))

    n_max = max(n_hs, *n_th.values())
    U, Y = stream_data(sizes, n_max, seed=2)
    Un, Yn = U[:n_hs], Y[:n_hs]
    rows_u = torch.from_numpy(U).unbind(0)                     # views made once, outside timing
    rows_y = torch.from_numpy(Y).unbind(0)
    rows_un, rows_yn = list(U), list(Y)

    def run_hs():
        run_hs.losses = integ.run(Un, Yn)

    def loop(step, n, us, ys):
        def f():
            for i in range(n):
                step(us[i], ys[i])
        return f

    jobs = {"hamsym": (run_hs, n_hs),
            "py": (loop(integ.step, n_th["py"], rows_un, rows_yn), n_th["py"]),
            "kernel": (loop(kernel_step, n_th["kernel"], rows_un, rows_yn), n_th["kernel"]),
            "hl": (loop(hl.step, n_th["hl"], rows_u, rows_y), n_th["hl"]),
            "sgd": (loop(sgd.step, n_th["sgd"], rows_u, rows_y), n_th["sgd"])}
    # float32: the same draw of weights, rounded; float32 streams
    integ32 = mod.Integrator(seed=0, dtype=np.float32)
    Uc32, Yc32 = Uc.astype(np.float32), Yc.astype(np.float32)
    integ32.run(Uc32[:2], Yc32[:2])
    n_hs32 = clamp(target / (median_time(lambda: integ32.run(Uc32, Yc32), 3) / len(Uc)), 20, 2_000_000)
    U32, Y32 = (a.astype(np.float32) for a in stream_data(sizes, n_hs32, seed=2))

    def run_hs32():
        run_hs32.losses = integ32.run(U32, Y32)
    jobs["hamsym32"] = (run_hs32, n_hs32)
    n_th["hamsym32"] = n_hs32
    if jax is not None:
        jxs = {}
        for key, weights in (("jax", w0), ("jax32", {n: a.astype(np.float32) for n, a in w0.items()})):
            jx = jxs[key] = JaxHL(jax, weights, names, **HYPER)
            jx.run(*jx.data(Uc, Yc))                            # compile for length 200
            n_jax = clamp(target / (median_time(lambda: jx.run(*jx.data(Uc, Yc)), 3) / len(Uc)),
                          20, 2_000_000)
            Uj, Yj = jx.data(*stream_data(sizes, n_jax, seed=2))
            jx.run(Uj, Yj)                                      # compile for the timed length
            jobs[key] = (lambda jx=jx, Uj=Uj, Yj=Yj: jx.run(Uj, Yj), n_jax)
            n_th[key] = n_jax
    times = {k: [] for k in jobs}
    order = list(jobs)
    for r in range(repeats):               # interleaved, rotating the order: drift hits all alike
        for key in order[r % len(order):] + order[:r % len(order)]:
            fn, n = jobs[key]
            t = time.perf_counter()
            fn()
            times[key].append((time.perf_counter() - t) / n)
    med = {k: statistics.median(v) for k, v in times.items()}
    med.update({k + "_min": min(v) for k, v in times.items()})
    spread = {k: (max(v) - min(v)) / statistics.median(v) for k, v in times.items()}
    finite = all(np.all(np.isfinite(a)) for a in [*integ.weights.values(), *integ32.weights.values()])
    with torch.no_grad():
        finite &= all(bool(torch.isfinite(p).all()) for p in hl.params + sgd.params)
    if jax is not None:
        finite &= all(np.all(np.isfinite(w)) for jx in jxs.values() for w in jx.weights())
    return med, spread, {"hamsym": n_hs, **n_th}, finite, float(np.mean(run_hs.losses[-20:]))


def guard_cost(mod, sizes, repeats, target):
    """Median time per step of run() with the divergence guard on and off: one learner
    (the same arrays, so memory layout cannot tell the two apart), the flag toggled."""
    learner = mod.Integrator(seed=0)
    U, Y = stream_data(sizes, 200, seed=3)
    learner.run(U[:2], Y[:2])
    n = clamp(target / (median_time(lambda: learner.run(U, Y), 3) / len(U)), 20, 2_000_000)
    U, Y = stream_data(sizes, n, seed=4)
    times = {True: [], False: []}
    for r in range(2 * repeats):                 # interleaved, alternating which goes first
        for flag in ((True, False) if r % 2 else (False, True)):
            learner.check_finite = flag
            t = time.perf_counter()
            learner.run(U, Y)
            times[flag].append((time.perf_counter() - t) / n)
    return statistics.median(times[True]), statistics.median(times[False]), n


_IR_CHILD = r"""
import collections, importlib.util, json, re, sys
import numpy as np
path, modname, n_in, n_out, dtype = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
spec = importlib.util.spec_from_file_location(modname, path)
mod = importlib.util.module_from_spec(spec)
sys.modules[modname] = mod
spec.loader.exec_module(mod)
mod.Integrator(seed=0, dtype=dtype).run(np.zeros((2, n_in), dtype), np.zeros((2, n_out), dtype))
ir = "\n".join(mod.update_net.inspect_llvm().values())
ops = collections.Counter()
for op, width, kind in re.findall(r"= (fmul|fadd|fsub|fdiv) (?:<(\d+) x )?(double|float)", ir):
    ops[f"{op} {'f64' if kind == 'double' else 'f32'} x{width or 1}"] += 1
widen = len(re.findall(r"= fpext <", ir)) + len(re.findall(r"= fpext float", ir))
print(json.dumps({"ops": dict(ops), "tanh_calls": ir.count("@tanh(") + ir.count("@tanhf("),
                  "fpext": widen}))
"""


def vector_evidence(mods):
    """Compile each update kernel in a fresh process with an empty cache (cached code
    cannot be inspected) and count the LLVM float instructions by type and vector width."""
    print("\n== vectorisation: float instructions in the LLVM IR of update_net, by type and width "
          "(f64 x8 = <8 x double>, x1 = scalar); libm tanh calls; float32 values widened to "
          "float64 (fpext: the CPython wrapper boxes the float32 loss, 1)")
    for dtype in ("float64", "float32"):
        for label, (mod, path, sizes) in mods.items():
            with tempfile.TemporaryDirectory() as cache:
                env = {**os.environ, "NUMBA_CACHE_DIR": cache}
                env.pop("NUMBA_BOUNDSCHECK", None)
                out = subprocess.run([sys.executable, "-c", _IR_CHILD, str(path), mod.__name__ + "_ir",
                                      str(sizes[0]), str(sizes[-1]), dtype], env=env,
                                     capture_output=True, text=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            ops = ", ".join(f"{k} {v}" for k, v in sorted(res["ops"].items()))
            print(f"{label:>20} {dtype}: {ops}; libm tanh calls {res['tanh_calls']}; fpext {res['fpext']}")


def threads_speedup(tmp, hs, mlp, repeats, target):
    """run() of a module generated with threads=False against threads=True (every
    matrix loop on all Numba threads), interleaved; same bits either way. Also says
    whether the default, threads="auto", threads the network (layers of
    2^20 weights or more)."""
    import numba
    nets = [("1024-1024-1024-10", [1024, 1024, 1024, 10], "bench_big"),
            ("4096-4096-10", [4096, 4096, 10], "bench_wide")]
    print(f"\n== all cores on one network: threads=False vs threads=True "
          f"({numba.get_num_threads()} Numba threads, {os.cpu_count()} logical cpus)")
    one = build(tmp / "one", hs, mlp, nets, threads=False)
    many = build(tmp / "many", hs, mlp, nets, threads=True)
    for label, sizes, name in nets:
        system = hs.derive(mlp(sizes, hs.tanh, loss="squared", name=name), **HYPER)
        auto = re.search(r"^@numba\.njit\(parallel=True, \*\*_(?:JIT|HOT)\)\ndef (update|emit|forward)",
                         hs.render(system, threads="auto"), re.M) is not None
        a, b = one[label][0].Integrator(seed=0), many[label][0].Integrator(seed=0)
        U, Y = stream_data(sizes, 4, seed=3)
        la, lb = a.run(U, Y), b.run(U, Y)
        same = np.array_equal(la, lb) and all(np.array_equal(a.weights[n], b.weights[n]) for n in a.weights)
        n = clamp(target / (median_time(lambda: a.run(U, Y), 1) / len(U)), 5, 100_000)
        U, Y = stream_data(sizes, n, seed=4)
        times = {"one": [], "many": []}
        for r in range(repeats):
            for key, learner in (("one", a), ("many", b)) if r % 2 else (("many", b), ("one", a)):
                t = time.perf_counter()
                learner.run(U, Y)
                times[key].append((time.perf_counter() - t) / n)
        t1, tm = (statistics.median(times[k]) for k in ("one", "many"))
        print(f"{label:>20}: one thread {t1 * 1e6:10.1f} us/step, threads {tm * 1e6:10.1f} us/step "
              f"(best {min(times['one']) * 1e6:.1f} / {min(times['many']) * 1e6:.1f}): speedup "
              f"{t1 / tm:.2f}x; bit-identical after 4 steps: {same}; "
              f"threads='auto' {'threads it' if auto else 'keeps one thread'}")
    print(f"(Numba threading layer: {numba.threading_layer()}; a loaded machine slows the "
          "threaded kernels most: each parallel loop waits for its slowest thread)")


def defaults_vs_jax(tmp, hs, mlp, repeats, target):
    """1024-1024-1024-10 as a user gets it without options: the module generated with the
    default threads="auto" (its 1024x1024 layers threaded) against JAX with XLA's default
    threads. XLA fixes its threads at import, so both are timed, interleaved, in a fresh
    process (defaults_child)."""
    label, sizes, name = NETS[2]
    mod, path, _ = build(tmp / "auto", hs, mlp, [NETS[2]], threads="auto")[label]
    print(f"\n== defaults on {label}: hamsym threads='auto' vs JAX with XLA's default threads "
          "(a fresh process, interleaved repeats)")
    child = subprocess.run([sys.executable, __file__, "--defaults-child", str(path), mod.__name__,
                            "--repeats", str(repeats), "--target", str(target)],
                           capture_output=True, text=True, timeout=1800)
    if child.returncode != 0:
        print(f"child failed: {child.stderr.strip().splitlines()[-1:]}")
        return
    got = json.loads(child.stdout.strip().splitlines()[-1])
    if got is None:
        print("jax not installed: skipped")
        return
    ratio = got["jax"] / got["hamsym"]
    print(f"{label:>20}: hamsym {got['hamsym'] * 1e6:.1f} us/step ({got['threads']} Numba threads), "
          f"JAX {got['jax'] * 1e6:.1f} us/step: JAX / hamsym = {ratio:.2f}x "
          f"(target >= {JAX_TARGETS[label]:g}x: {'met' if ratio >= JAX_TARGETS[label] else 'NOT met'})")


def defaults_child(path, modname, repeats, target):
    """The child of defaults_vs_jax: prints {"hamsym": s/step, "jax": s/step, "threads": n}."""
    import importlib.util
    import numba
    jax, _ = import_jax(all_cores=True)
    if jax is None:
        print(json.dumps(None))
        return 0
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    sizes = NETS[2][1]
    integ = mod.Integrator(seed=0)
    jx = JaxHL(jax, {n: a.copy() for n, a in integ.weights.items()}, list(integ.weights), **HYPER)
    Uc, Yc = stream_data(sizes, 20, seed=1)
    integ.run(Uc[:2], Yc[:2])                                   # compile
    n = clamp(target / (median_time(lambda: integ.run(Uc, Yc), 3) / len(Uc)), 5, 100_000)
    U, Y = stream_data(sizes, n, seed=2)
    Uj, Yj = jx.data(U, Y)
    jx.run(Uj, Yj)                                              # compile for this length
    jobs = [("hamsym", lambda: integ.run(U, Y)), ("jax", lambda: jx.run(Uj, Yj))]
    times = {key: [] for key, _ in jobs}
    for r in range(repeats):
        for key, fn in jobs if r % 2 else jobs[::-1]:
            t = time.perf_counter()
            fn()
            times[key].append((time.perf_counter() - t) / n)
    print(json.dumps({**{k: statistics.median(v) for k, v in times.items()},
                      "threads": numba.get_num_threads()}))
    return 0


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats per method (median)")
    ap.add_argument("--target", type=float, default=0.2, help="seconds per repeat per method")
    ap.add_argument("--no-compile", action="store_true", help="skip the compile-time subprocesses")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir with the generated modules")
    ap.add_argument("--no-threads", action="store_true",
                    help="skip the threads section (1024- and 4096-wide modules, threaded and not)")
    ap.add_argument("--jax-all-cores", action="store_true",
                    help="let XLA use every core (default: one thread, like torch and the kernels)")
    ap.add_argument("--default-malloc", action="store_true",
                    help="leave glibc's adaptive malloc thresholds alone (torch times become bimodal)")
    ap.add_argument("--defaults-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.defaults_child:
        return defaults_child(*args.defaults_child, args.repeats, args.target)
    t_start = time.perf_counter()

    malloc = "defaults (--default-malloc)" if args.default_malloc else tune_malloc()
    torch.set_num_threads(1)
    jax, jax_note = import_jax(args.jax_all_cores)
    import hamsym as hs
    from hamsym.declare.zoo import mlp

    header()
    print(f"malloc: {malloc}")
    print(f"JAX: {jax_note}")
    print("nets: tanh hidden layers, linear output, biases, loss |o-y|^2/2; non-local HL, flip=-1, "
          + ", ".join(f"{k}={v}" for k, v in HYPER.items())
          + f"; SGD lr={HYPER['delta'] ** 2 * HYPER['beta'] * HYPER['gamma']:g}, "
          f"momentum={1 - HYPER['theta']:g}; batch 1, float64 (and float32 where marked)")

    tmp = Path(tempfile.mkdtemp(prefix="hamsym_bench_"))
    try:
        mods = build(tmp, hs, mlp)
        print(f"generated modules in {tmp}" + ("" if args.keep else " (removed at exit; --keep keeps it)"))
        if not args.no_compile:
            compile_times(mods)
        vector_evidence(mods)

        print(f"\n== sanity: {CHECK_STEPS} steps from the same weights, max |difference| "
              f"(asserted < {CHECK_TOL:g})")
        for label, (mod, path, sizes) in mods.items():
            t = time.perf_counter()
            mod.Integrator(seed=0).run(*stream_data(sizes, 2, seed=0))
            first = time.perf_counter() - t
            ew, ep, es, ej, moved = sanity_check(mod, sizes, jax)
            jtxt = "" if ej is None else f", weights+costates JAX {ej:.1e}"
            print(f"{label:>20}: weights HL {ew:.1e}, costates HL {ep:.1e}, weights SGD {es:.1e}{jtxt} "
                  f"(weights moved up to {moved:.1e}); parent's first run() {first:.3f}s")
            e32, j32 = sanity_check_f32(mod, sizes, jax)
            print(f"{'':>20}  float32 against float64 from the same float32 start (asserted < "
                  f"{F32_CHECK_TOL:g}): weights+costates hamsym {e32:.1e}"
                  + ("" if j32 is None else f", JAX {j32:.1e}"))

        print(f"\n== time per learning step (median of {args.repeats} interleaved repeats, "
              f"~{args.target:g}s each)")
        results = {}
        for label, (mod, path, sizes) in mods.items():
            results[label] = time_net(mod, sizes, args.repeats, args.target, jax)

        labels = list(results)
        w = 21

        def row(name, values, fmt):
            print(f"{name:<34}" + "".join(f"{fmt(v):>{w}}" for v in values))

        row("", labels, str)
        row("parameters", [n_params(mods[l][2]) for l in labels], lambda v: f"{v:,}")
        us = lambda v: f"{v[0]:.2f} ({v[1]:.2f})"
        for key, name in (("hamsym", "hamsym run()"), ("hamsym32", "hamsym run() float32"),
                          ("py", "hamsym step() py loop"),
                          ("kernel", "step kernel, all arrays"),
                          ("jax", "JAX jit+scan HL"), ("jax32", "JAX jit+scan HL float32"),
                          ("hl", "torch eager HL"), ("sgd", "torch SGD momentum")):
            if key.startswith("jax") and jax is None:
                continue
            row(f"{name:<22}  [us/step]", [(results[l][0][key] * 1e6, results[l][0][key + "_min"] * 1e6)
                                           for l in labels], us)
        ratio = lambda a, b: [results[l][0][a] / results[l][0][b] for l in labels]
        if jax is not None:
            row("JAX HL / hamsym run()         [x]", ratio("jax", "hamsym"), lambda v: f"{v:.2f}")
            row("  target (issue)              [x]", [JAX_TARGETS[l] for l in labels], lambda v: f">= {v:g}")
        row("hamsym float64 / float32      [x]", ratio("hamsym", "hamsym32"), lambda v: f"{v:.2f}")
        row("  target (issue #18)          [x]", [F32_TARGETS[l] for l in labels], lambda v: f">= {v:g}")
        if jax is not None:
            row("JAX float64 / float32         [x]", ratio("jax", "jax32"), lambda v: f"{v:.2f}")
            row("JAX / hamsym, float32         [x]", ratio("jax32", "hamsym32"), lambda v: f"{v:.2f}")
            row("  target (issue #18)          [x]", [JAX_F32_TARGETS[l] for l in labels],
                lambda v: f">= {v:g}")
        row("torch HL / hamsym run()       [x]", ratio("hl", "hamsym"), lambda v: f"{v:.1f}")
        row("  target (issue)              [x]", [TARGETS[l] for l in labels], lambda v: f">= {v:g}")
        row("torch SGD / hamsym run()      [x]", ratio("sgd", "hamsym"), lambda v: f"{v:.1f}")
        row("torch HL / hamsym step()      [x]", ratio("hl", "py"), lambda v: f"{v:.1f}")
        row("hamsym step() / run()         [x]", ratio("py", "hamsym"), lambda v: f"{v:.2f}")
        row("  target (issue #11)          [x]", [STEP_TARGET for l in labels], lambda v: f"<= {v:g}")
        row("step kernel, all arrays / run [x]", ratio("kernel", "hamsym"), lambda v: f"{v:.2f}")
        row("spread (max-min)/med hs|HL|SGD", [results[l][1] for l in labels],
            lambda s: f"{s['hamsym'] * 100:.0f}|{s['hl'] * 100:.0f}|{s['sgd'] * 100:.0f}%")
        row("steps per repeat hs|HL|SGD|JAX", [results[l][2] for l in labels],
            lambda n: f"{n['hamsym']}|{n['hl']}|{n['sgd']}|{n.get('jax', '-')}")
        row("steps per repeat float32 hs|JAX", [results[l][2] for l in labels],
            lambda n: f"{n['hamsym32']}|{n.get('jax32', '-')}")
        row("weights finite / hs loss (last 20)", [(results[l][3], results[l][4]) for l in labels],
            lambda v: f"{v[0]} / {v[1]:.3g}")
        print("(times: median (best) over the repeats; ratios use medians)")

        print("\n== bytes moved per step, model (float64, see bytes_per_step): forward reads W once "
              "(8 B/param), the update reads + writes "
              "W and p_W in one pass (32), computing the message to the layer below on the way: 40 B/param")
        nbytes = {l: bytes_per_step(mods[l][2]) for l in labels}
        upd = {l: update_bandwidth(n_params(mods[l][2])) for l in labels}
        row("bytes per param", [nbytes[l] / n_params(mods[l][2]) for l in labels], lambda v: f"{v:.1f}")
        row("bytes per step [MB]", [nbytes[l] / 1e6 for l in labels], lambda v: f"{v:.3f}")
        row("footprint W + p_W [MB]", [2 * n_params(mods[l][2]) * F64 / 1e6 for l in labels],
            lambda v: f"{v:.3f}")
        row("hamsym achieved [GB/s]", [(nbytes[l] / results[l][0]["hamsym"] / 1e9,
                                        nbytes[l] / results[l][0]["hamsym_min"] / 1e9) for l in labels],
            lambda v: f"{v[0]:.1f} ({v[1]:.1f})")
        row("update pass alone [GB/s]", [upd[l] for l in labels], lambda v: f"{v:.1f}")
        row("hamsym (best) / update pass [%]",
            [nbytes[l] / results[l][0]["hamsym_min"] / 1e9 / upd[l] * 100 for l in labels],
            lambda v: f"{v:.0f}")
        big = 32 * 1024 * 1024                                               # 2 x 256 MiB
        print(f"DRAM reference, 2 x 256 MiB arrays: numpy copy {copy_bandwidth(big):.1f} GB/s "
              f"(read + write counted, like STREAM), update pass alone {update_bandwidth(big):.1f} GB/s")
        print("(update pass alone: a Numba loop p = a*p - c; w -= d*p over two arrays of the net's "
              "parameter count, 32 B/param, cache-warm; achieved GB/s in parentheses uses the best time)")

        if not args.no_threads:
            threads_speedup(tmp, hs, mlp, args.repeats, args.target)
            defaults_vs_jax(tmp, hs, mlp, args.repeats, args.target)

        label = "64-256-256-10"
        t_on, t_off, n = guard_cost(mods[label][0], mods[label][2], args.repeats, args.target)
        print(f"\n== divergence guard on {label} (run() of {n} steps, median of "
              f"{2 * args.repeats} interleaved repeats)")
        print(f"check_finite on {t_on * 1e6:.2f} us/step, off {t_off * 1e6:.2f} us/step: "
              f"cost {(t_on / t_off - 1) * 100:+.1f}% (target < 3%)")

        print("\n== targets (same run)")
        ok_all = True
        for l in labels:
            ratio = results[l][0]["hl"] / results[l][0]["hamsym"]
            ok = ratio >= TARGETS[l]
            ok_all &= ok
            print(f"{l:>20}: torch HL / hamsym = {ratio:7.1f}x, target >= {TARGETS[l]:g}x: "
                  f"{'met' if ok else 'NOT met'}")
        for l in labels:
            ratio = results[l][0]["py"] / results[l][0]["hamsym"]
            ok = ratio <= STEP_TARGET
            ok_all &= ok
            print(f"{l:>20}: Integrator.step() / run() = {ratio:5.2f}x "
                  f"({results[l][0]['py'] * 1e6:.2f} vs {results[l][0]['hamsym'] * 1e6:.2f} us/step), "
                  f"target <= {STEP_TARGET:g}x: {'met' if ok else 'NOT met'}")
        if jax is None:
            print(f"JAX / hamsym not measured: {jax_note}")
        for l in labels if jax is not None else ():
            ratio = results[l][0]["jax"] / results[l][0]["hamsym"]
            ok = ratio >= JAX_TARGETS[l]
            ok_all &= ok
            print(f"{l:>20}: JAX HL / hamsym   = {ratio:7.2f}x, target >= {JAX_TARGETS[l]:g}x: "
                  f"{'met' if ok else 'NOT met'}")
        for l in labels:
            ratio = results[l][0]["hamsym"] / results[l][0]["hamsym32"]
            ok = ratio >= F32_TARGETS[l]
            ok_all &= ok
            print(f"{l:>20}: hamsym float64 / float32 = {ratio:5.2f}x "
                  f"({results[l][0]['hamsym'] * 1e6:.2f} vs {results[l][0]['hamsym32'] * 1e6:.2f} us/step), "
                  f"target >= {F32_TARGETS[l]:g}x: {'met' if ok else 'NOT met'}")
        for l in labels if jax is not None else ():
            ratio = results[l][0]["jax32"] / results[l][0]["hamsym32"]
            ok = ratio >= JAX_F32_TARGETS[l]
            ok_all &= ok
            print(f"{l:>20}: JAX / hamsym float32 = {ratio:6.2f}x "
                  f"({results[l][0]['jax32'] * 1e6:.2f} vs {results[l][0]['hamsym32'] * 1e6:.2f} us/step; "
                  f"JAX float64 / float32 = {results[l][0]['jax'] / results[l][0]['jax32']:.2f}x), "
                  f"target >= {JAX_F32_TARGETS[l]:g}x: {'met' if ok else 'NOT met'}")
        print(f"\ntotal wall time {time.perf_counter() - t_start:.1f}s")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
