"""`hamsym run`: learn a spec's network from a stream file, in chunks, with checkpoints.

The output folder gets the generated module, losses.npy (every step's loss, the
previous runs' included when resuming) and checkpoint.npz, written by the
Integrator's own `save` (weights, states, costates, hyperparameters, step count and
the module's SPEC_HASH; written whole or not at all). `--resume` reads it back with
`Integrator.restore`, which refuses a checkpoint of another network or schedule,
and skips the samples already learned. `--record KEYS --every N` writes record.npz
(one array per key and "step", rows as the module's Recorder takes them; a resumed
run keeps the earlier rows), `--progress` shows one bar over the whole run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from . import streams
from ..errors import InputError
from .spec import integrator, load_spec

CHECKPOINT = "checkpoint.npz"
LOSSES = "losses.npy"
RECORD = "record.npz"


def open_stream(spec, args):
    """The --stream file of the spec's network, checked before anything is written
    (StreamError naming the file); its rows are checked as they are read."""
    data = spec.network.of_kind("input") + spec.network.of_kind("target")
    return streams.from_file(args.stream, [int(np.prod(v.shape)) for v in data],
                             chunk=args.chunk, names=[v.name for v in data],
                             on_bad_row=getattr(args, "on_bad_row", "stop"))


def run_spec(args):
    spec = load_spec(args.spec)
    if args.every is not None and not args.record:
        raise InputError("--every says how often to record: give --record too")
    stream = open_stream(spec, args)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    module = spec.load(out / f"{spec.network.name}.py")
    if args.resume:
        learner = module.Integrator.restore(args.resume)
    else:
        learner = integrator(spec, module)
    done = learner.step_count
    blocks = _skip(stream, done)          # a resumed run continues where the stream stopped
    if args.steps is not None:
        blocks = _limit(blocks, args.steps)
    previous = np.load(out / LOSSES) if args.resume and (out / LOSSES).exists() else np.empty(0)
    previous = previous[:done]
    losses = [previous]
    steps = done
    recorder = module.Recorder(args.record.split(","), args.every or 1) if args.record else None
    total = _length(args.stream, done, args.steps)
    try:
        bar, owned = module._progress_bar(args.progress, total)
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
    if recorder is not None:
        _save_record(out / RECORD, recorder, done if args.resume else None)
    new = all_losses[done:]
    tail = new[-max(1, len(new) // 10):] if len(new) else new
    print(f"{spec.network.name}: steps {done} -> {steps}; mean loss of the last "
          f"{len(tail)} steps {tail.mean() if len(tail) else float('nan'):.6g}")
    if getattr(stream, "skipped", 0):
        print(f"skipped {stream.skipped} rows of {args.stream} holding NaN or inf "
              "(--on-bad-row skip)")
    print(f"losses: {out / LOSSES}\ncheckpoint: {out / CHECKPOINT}" +
          (f"\nrecord: {out / RECORD} ({recorder.rows} new rows)" if recorder is not None else ""))
    return 0


def _length(path, done, limit):
    """Steps this run will take, when cheap to know (a .npy table), else None."""
    if Path(path).suffix.lower() != ".npy":
        return limit
    rows = max(0, np.load(path, mmap_mode="r").shape[0] - done)
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
