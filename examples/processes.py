"""Fully local HL with every layer in its own process (the paper's fourth showcase).

The local scheme gives each layer two kernels, emit_<layer> and update_<layer>,
that read only the layer's own arrays, the state vectors its neighbours publish
(_k_<state>) and the messages they send (_m_<from>_<to>). Here each layer runs in
a separate process; the arrays live in shared memory and a barrier separates the
three phases of a step: publish states, emit messages, update. The weights after
the stream are compared with the single-process run of the same module: the math
does not change, only where it runs.

    python examples/processes.py
"""

import inspect
import multiprocessing as mp
import sys
import tempfile
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

HYPER = ("gamma", "beta", "theta", "theta_neurons", "flip", "delta")


def _attach(layout, block):
    """name -> numpy view into one shared memory block."""
    return {name: np.ndarray(shape, np.float64, buffer=block.buf, offset=offset)
            for name, (offset, shape) in layout.items()}


def _layer(path, unit, layout, block_name, scalars, steps, barrier):
    """One layer's process: its own kernels, reading the shared arrays by name."""
    sys.path.insert(0, str(Path(path).parent))
    module = __import__(Path(path).stem)         # the name hs.load used: Numba's cache serves it
    block = shared_memory.SharedMemory(name=block_name)
    arrays = _attach(layout, block)
    emit, update = getattr(module, f"emit_{unit}", None), getattr(module, f"update_{unit}")

    def call(kernel, k):
        names = inspect.signature(kernel.py_func).parameters
        kernel(*(scalars[n] if n in scalars else
                 arrays[f"{n}_stream"][k] if f"{n}_stream" in arrays else arrays[n] for n in names))

    mine = [x for x in module.STATES if x in inspect.signature(update.py_func).parameters]
    for k in range(steps):
        for x in mine:                       # 1. publish my state vector
            if f"_k_{x}" in arrays:
                arrays[f"_k_{x}"][:] = arrays[x]
        barrier.wait()
        if emit is not None:                 # 2. send my messages
            call(emit, k)
        barrier.wait()
        call(update, k)                      # 3. update my own arrays
        barrier.wait()
    arrays.clear()                           # drop the views before closing the block
    block.close()


def distributed_run(module, path, learner, U, Y):
    """Run learner's module over the stream with one process per layer; returns the
    learned weights (the learner itself is not changed)."""
    units = sorted({name.split("_", 1)[1] for name in dir(module) if name.startswith("update_")})
    arrays = {**learner.weights, **{f"p_{k}": v for k, v in learner.costates.items()},
              **learner.states, **learner.work, "u_stream": U, "y_stream": Y}
    layout, offset = {}, 0
    for name, a in arrays.items():
        layout[name] = (offset, a.shape)
        offset += a.nbytes
    block = shared_memory.SharedMemory(create=True, size=max(offset, 8))
    try:
        views = _attach(layout, block)
        for name, a in arrays.items():
            views[name][...] = a
        scalars = dict(zip(HYPER + tuple(module.PARAMS), learner._scalars()))
        ctx = mp.get_context("spawn")
        barrier = ctx.Barrier(len(units), timeout=120)   # a failed layer cannot hang the rest
        workers = [ctx.Process(target=_layer, args=(str(path), unit, layout, block.name, scalars,
                                                    len(U), barrier)) for unit in units]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=600)
            if w.is_alive():
                w.terminate()
        if any(w.exitcode for w in workers):
            raise RuntimeError("a layer process failed")
        return {name: views[name].copy() for name in learner.weights}
    finally:
        block.close()
        block.unlink()


def main(steps=300, out_dir=None):
    import hamsym as hs
    from hamsym.zoo import delay_network

    out_dir = Path(out_dir or tempfile.mkdtemp())
    net = delay_network([4, 8, 6, 2], [hs.tanh, hs.sigmoid, hs.identity], name="layers_apart")
    system = hs.derive(net, gamma=1.0, beta=0.1, theta=0.2, theta_neurons=0.0, delta=0.1)
    path = out_dir / "layers_apart.py"
    module = hs.load(system, path, scheme="local")
    rng = np.random.default_rng(0)
    U, Y = rng.normal(size=(steps, 4)), rng.normal(size=(steps, 2))

    together = module.Integrator(seed=1)
    module.Integrator(seed=1).run(U[:2], Y[:2])         # compile once, for the processes' cache
    apart = distributed_run(module, path, module.Integrator(seed=1), U, Y)
    together.run(U, Y)
    gap = max(np.abs(apart[k] - together.weights[k]).max() for k in apart)
    moved = max(np.abs(together.weights[k] - module.Integrator(seed=1).weights[k]).max()
                for k in apart)
    print(f"{steps} steps, 3 layers in 3 processes: weights moved up to {moved:.3f}; "
          f"max |separate - together| = {gap:.1e}")
    return gap, moved


if __name__ == "__main__":
    main()
