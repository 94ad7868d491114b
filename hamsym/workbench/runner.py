"""`hamsym run`: learn a spec's network from a stream file, in chunks, with checkpoints.

The output folder gets the generated module, losses.npy (every step's loss, the
previous runs' included when resuming) and checkpoint.npz, written by the
Integrator's own `save` (weights, states, costates, hyperparameters, step count and
the module's SPEC_HASH; written whole or not at all). `--resume` reads it back with
`Integrator.restore`, which refuses a checkpoint of another network or schedule,
and skips the samples already learned. `--record KEYS --every N` writes record.npz
(one array per key and "step", rows as the module's Recorder takes them; a resumed
run keeps the earlier rows), `--progress` shows one bar over the whole run.
The spec's [stream] (or --lags, --standardize, ...) lays the file's columns out and
standardises them online; the statistics go to scaler.npz beside the checkpoint
(run_scaling), and recorded outputs come back in the target's units.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from . import streams
from ..runtime.progress import progress_bar
from .run_scaling import SIDECAR, RunScaling, refuse_unscaled_resume, sidecar
from .spec import integrator, load_spec

CHECKPOINT = "checkpoint.npz"
LOSSES = "losses.npy"
RECORD = "record.npz"


def run_spec(args):
    spec = load_spec(args.spec)
    layout = stream_layout(spec, args)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    module = spec.load(out / f"{spec.network.name}.py")
    if args.resume:
        learner = module.Integrator.restore(args.resume)
    else:
        learner = integrator(spec, module)
    done = learner.step_count
    scaling = RunScaling(module, layout) if layout.standardize else None
    if args.resume and scaling is not None:   # the statistics of the step it resumes from
        scaling.restore(sidecar(args.resume), args.resume)
    elif args.resume:
        refuse_unscaled_resume(args.resume)
    blocks = layout.blocks(args.stream, module, chunk=args.chunk)
    blocks = _skip(blocks, done)          # a resumed run continues where the stream stopped
    if args.steps is not None:
        blocks = _limit(blocks, args.steps)
    previous = np.load(out / LOSSES) if args.resume and (out / LOSSES).exists() else np.empty(0)
    previous = previous[:done]
    losses = [previous]
    steps = done
    if args.every is not None and not args.record:
        raise ValueError("--every says how often to record: give --record too")
    recorder = module.Recorder(args.record.split(","), args.every or 1) if args.record else None
    if scaling is not None:               # after skip and limit: the rows learned, in order
        blocks = scaling.apply(blocks, done, recorder.every if recorder is not None else None,
                               source=args.stream)
    total = _length(args.stream, done, args.steps, layout)
    try:
        bar, owned = progress_bar(args.progress, total)
    except ImportError as err:
        print(f"hamsym run: {err}", file=sys.stderr)
        return 3
    try:
        for block in blocks:
            losses.append(learner.run(*block, record=recorder,
                                      progress=False if bar is None else bar))
            steps += len(losses[-1])
    finally:
        if owned:
            bar.close()
    all_losses = np.concatenate(losses)
    np.save(out / LOSSES, all_losses)
    learner.save(out / CHECKPOINT)
    if scaling is not None:
        scaling.save(out / SIDECAR, out / CHECKPOINT)
    predictions = {}
    if recorder is not None:
        record = recorder
        if scaling is not None:           # outputs back in the targets' units
            record, predictions = scaling.original_units(recorder)
        _save_record(out / RECORD, record, done if args.resume else None)
    new = all_losses[done:]
    tail = new[-max(1, len(new) // 10):] if len(new) else new
    print(f"{spec.network.name}: steps {done} -> {steps}; mean loss of the last "
          f"{len(tail)} steps {tail.mean() if len(tail) else float('nan'):.6g}")
    if scaling is not None:
        print(f"the losses are of the standardised values; scaler: {out / SIDECAR}")
        for name, (target, error) in predictions.items():
            print(f"{name} in the units of {target} (record.npz): mean |{name} - {target}| over "
                  f"the {recorder.rows} new recorded steps {error:.6g}")
    print(f"losses: {out / LOSSES}\ncheckpoint: {out / CHECKPOINT}" +
          (f"\nrecord: {out / RECORD} ({recorder.rows} new rows)" if recorder is not None else ""))
    return 0


def stream_layout(spec, args):
    """The spec's [stream] with the command's --lags, --horizon, --standardize, --warmup."""
    return spec.stream.with_options(**{key: getattr(args, key, None) for key in
                                       ("lags", "horizon", "standardize", "warmup")})


def _length(path, done, limit, layout=None):
    """Steps this run will take, when cheap to know (a .npy table), else None."""
    if Path(path).suffix.lower() != ".npy":
        return limit
    windows = 0 if layout is None else layout.steps_back + layout.ahead - 1
    rows = max(0, np.load(path, mmap_mode="r").shape[0] - windows - done)
    return rows if limit is None else min(rows, limit)


def _save_record(path, recorder, done):
    """record.npz: the recorder's arrays; resuming (done steps), the rows of the earlier
    run before step `done` come first when it recorded the same keys."""
    arrays = dict(recorder)
    if done is not None and path.exists():
        with np.load(path) as old:
            if sorted(old.files) == sorted(arrays):
                keep = old["step"] < done
                arrays = {k: np.concatenate([old[k][keep], a]) for k, a in arrays.items()}
    np.savez(path, **arrays)


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
