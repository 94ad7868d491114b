"""`hamsym run`: learn a spec's network from a stream file, in chunks, with checkpoints.

The output folder gets the generated module, losses.npy (every step's loss, the
previous runs' included when resuming) and checkpoint.npz, written by the
Integrator's own `save` (weights, states, costates, hyperparameters, step count and
the module's SPEC_HASH; written whole or not at all). `--resume` reads it back with
`Integrator.restore`, which refuses a checkpoint of another network or schedule,
and skips the samples already learned.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import streams
from .spec import integrator, load_spec

CHECKPOINT = "checkpoint.npz"
LOSSES = "losses.npy"


def run_spec(args):
    spec = load_spec(args.spec)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    module = spec.load(out / f"{spec.network.name}.py")
    if args.resume:
        learner = module.Integrator.restore(args.resume)
    else:
        learner = integrator(spec, module)
    done = learner.step_count
    names = list(module.INPUTS) + list(module.TARGETS)
    sizes = [int(np.prod(s)) for s in {**module.INPUTS, **module.TARGETS}.values()]
    blocks = streams.from_file(args.stream, sizes, chunk=args.chunk, names=names)
    blocks = _skip(blocks, done)          # a resumed run continues where the stream stopped
    if args.steps is not None:
        blocks = _limit(blocks, args.steps)
    previous = np.load(out / LOSSES) if args.resume and (out / LOSSES).exists() else np.empty(0)
    previous = previous[:done]
    losses = [previous]
    steps = done
    for block in blocks:
        losses.append(learner.run(*block))
        steps += len(losses[-1])
    all_losses = np.concatenate(losses)
    np.save(out / LOSSES, all_losses)
    learner.save(out / CHECKPOINT)
    new = all_losses[done:]
    tail = new[-max(1, len(new) // 10):] if len(new) else new
    print(f"{spec.network.name}: steps {done} -> {steps}; mean loss of the last "
          f"{len(tail)} steps {tail.mean() if len(tail) else float('nan'):.6g}")
    print(f"losses: {out / LOSSES}\ncheckpoint: {out / CHECKPOINT}")
    return 0


def _skip(blocks, n):
    for block in blocks:
        if n >= len(block[0]):
            n -= len(block[0])
            continue
        yield tuple(a[n:] for a in block)
        n = 0


def _limit(blocks, n):
    for block in blocks:
        if n <= 0:
            return
        yield tuple(a[:n] for a in block)
        n -= len(block[0])
