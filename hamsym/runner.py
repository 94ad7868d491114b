"""`hamsym run`: learn a spec's network from a stream file, in chunks, with checkpoints.

The output folder gets the generated module, losses.npy (every step's loss, the
previous runs' included when resuming) and checkpoint.npz (weights, states, costates,
hyperparameters and the step count), written to a temporary file and renamed, so an
interrupted run leaves the previous checkpoint whole.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import streams
from .spec import integrator, load_spec

CHECKPOINT = "checkpoint.npz"
LOSSES = "losses.npy"


def save_checkpoint(learner, path, steps):
    """Weights, states, costates, hyperparameters and the step count, in one .npz."""
    path = Path(path)
    arrays = {f"weight/{k}": v for k, v in learner.weights.items()}
    arrays |= {f"state/{k}": v for k, v in learner.states.items()}
    arrays |= {f"costate/{k}": v for k, v in learner.costates.items()}
    arrays |= {f"hyper/{k}": np.float64(np.nan if v is None else v)
               for k, v in learner.hyper.items()}
    arrays["steps"] = np.int64(steps)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def restore_checkpoint(learner, path):
    """Copy a checkpoint into a learner of the same module; returns the step count."""
    with np.load(path) as ck:
        for key in ck.files:
            kind, _, name = key.partition("/")
            target = {"weight": learner.weights, "state": learner.states,
                      "costate": learner.costates}.get(kind)
            if target is not None:
                if name not in target or target[name].shape != ck[key].shape:
                    raise ValueError(f"{path}: {kind} {name!r} does not fit this network")
                target[name][...] = ck[key]
            elif kind == "hyper":
                value = float(ck[key])
                learner.hyper[name] = None if np.isnan(value) else value
        return int(ck["steps"])


def run_spec(args):
    spec = load_spec(args.spec)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    module = spec.load(out / f"{spec.network.name}.py")
    learner = integrator(spec, module)
    done = 0
    if args.resume:
        done = restore_checkpoint(learner, args.resume)
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
    save_checkpoint(learner, out / CHECKPOINT, steps)
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
