"""How the kernels are compiled: the Numba options every generated kernel uses."""

import numba

# No fastmath: with reassociation or FMA contraction allowed, the bits a kernel computes
# depend on where LLVM compiled it (inlined into step or run, fresh or from the cache),
# so a resumed run would not repeat an uninterrupted one. IEEE order makes results
# depend on the inputs only.
JIT = dict(cache=True, nogil=True, error_model="numpy")

# Numba also gives every compiled function a C-callable twin (for first-class function
# use), which these kernels never need: leaving it out saves about 6% of a small
# network's compile time (each caller links and re-emits its callees' code). The kernels
# are called from Python and from each other exactly as before.
if hasattr(numba.core.cpu.CPUTargetOptions, "no_cfunc_wrapper"):
    JIT["no_cfunc_wrapper"] = True

# The step and the loops that call it are compiled without Numba's reference counting
# (NRT): they allocate nothing and read only arrays their caller holds, and NRT would add
# an atomic increment and decrement per array argument of every call: half of a small
# network's step. The bits are the same. (A private Numba option: used where it exists.)
HOT = dict(JIT, _nrt=False) if hasattr(numba.core.cpu.CPUTargetOptions, "_nrt") else JIT


def portable_cache(dispatcher):
    """The dispatcher, compiling afresh where its cached code can't be loaded here.

    Numba's cache names the module of every compiled helper a kernel calls. Where
    hamsym generated the module, its runtime is hamsym.runtime itself, so the cache
    names hamsym.runtime.vector_math: a copy of the module's folder, __pycache__ and all,
    moved to a machine without hamsym would fail to load it (ImportError). Such an
    entry is taken as missing: the kernel compiles here and its entry is rewritten with
    the runtime's own name, which both kinds of process can load."""
    cache = getattr(dispatcher, "_cache", None)
    load = getattr(cache, "load_overload", None)
    if load is None:
        return dispatcher

    def load_overload(sig, target_context):
        try:
            return load(sig, target_context)
        except ImportError:
            return None

    cache.load_overload = load_overload
    return dispatcher
