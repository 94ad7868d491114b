"""`hamsym sweep`: a grid of hyperparameters (and seeds) learning one stream file at once.

Every combination is one learner of the spec's module's Ensemble (the learners share
the stream and are stepped in one parallel compiled call), so the stream is read
once, a chunk at a time, whatever its length. The output folder gets the generated
module, sweep.csv (one row per learner: the grid values, seed, final_loss (mean loss
over the last --window steps), mean_loss (over the whole stream), diverged), curves.npy
(each learner's mean loss per chunk: a (K, chunks) learning curve) and ensemble.npz
(every learner's state, for `mod.Ensemble.restore`). Ctrl-C writes all of them for the
rows done, then exits with 130. `--shard I/N` runs one slice of the grid's rows into
OUTPUT/shard-I-of-N/ and `hamsym sweep-merge` joins the slices (shards).
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import numpy as np

from . import streams
from ..runtime.progress import progress_bar
from ..codegen.render import write_atomic
from .run_scaling import SIDECAR, RunScaling
from .runner import _length, _limit, stream_layout
from .shards import MANIFEST, StreamDigest, best_row, file_sha256, folder, merge, \
    parse_shard, shard_rows, write_manifest
from .spec import initial, load_spec
from .sweeps import grid_ensemble, grid_size, tabulate

TABLE = "sweep.csv"
CURVES = "curves.npy"
ENSEMBLE = "ensemble.npz"


def sweep_spec(args):
    spec = load_spec(args.spec)
    layout = stream_layout(spec, args)
    grid = dict(_grid_value(text) for text in args.grid)
    if args.window < 1:
        raise ValueError(f"--window {args.window}: must be at least 1")
    out = Path(args.output)
    shard = part = None
    if getattr(args, "shard", None) is not None:   # one slice of the grid's rows, own folder
        shard = parse_shard(args.shard)
        grid_rows = grid_size(grid, _seeds(args.seeds) if args.seeds else [0])
        part = shard_rows(grid_rows, *shard)
        out = folder(out, *shard)
    out.mkdir(parents=True, exist_ok=True)
    module = spec.load(out / f"{spec.network.name}.py")
    unknown = [name for name in grid if name not in module.HYPER and name not in module.PARAMS]
    if unknown:
        raise ValueError(f"--grid {unknown[0]}: not a hyperparameter or param of "
                         f"{spec.network.name}; those are {list(module.HYPER) + list(module.PARAMS)}")
    init = initial(spec, module)
    seeds = _seeds(args.seeds) if args.seeds else [init.get("seed", 0)]
    init.pop("seed", None)
    ensemble, columns = grid_ensemble(module, grid, seeds, init, part=part, recent=args.window)
    blocks = layout.blocks(args.stream, module, chunk=args.chunk)
    if args.steps is not None:
        blocks = _limit(blocks, args.steps)
    digest = StreamDigest()
    blocks = digest.feed(blocks)            # the rows learned, for sweep-merge's check
    scaling = RunScaling(module, layout) if layout.standardize else None
    if scaling is not None:
        blocks = scaling.apply(blocks, 0, source=args.stream)
    try:
        bar, owned = progress_bar(args.progress, _length(args.stream, 0, args.steps, layout))
    except ImportError as err:
        print(f"hamsym sweep: {err}", file=sys.stderr)
        return 3
    total, count, curves, rows = np.zeros(ensemble.K), np.zeros(ensemble.K), [], 0
    interrupted = False
    try:
        for block in blocks:
            try:
                losses = ensemble.run(*block, progress=False if bar is None else bar)
            except module.Interrupted as exc:        # between two steps of every learner
                losses, interrupted = exc.losses, True
            if losses.shape[1]:
                finite = np.isfinite(losses)        # a frozen learner's losses are NaN
                sums = np.where(finite, losses, 0.0).sum(axis=1)
                total += sums
                count += finite.sum(axis=1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    curves.append(sums / finite.sum(axis=1))
                rows += losses.shape[1]
            if interrupted:
                break
    except KeyboardInterrupt:                           # between two chunks
        interrupted = True
    finally:
        if owned:
            bar.close()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    final = ensemble.recent_loss() if rows else np.full(ensemble.K, np.nan)
    table = tabulate(columns, final, mean, ensemble.diverged, frame=False)
    _write_table(out / TABLE, table)
    npy = io.BytesIO()
    np.save(npy, np.stack(curves, axis=1) if curves else np.zeros((ensemble.K, 0)))
    write_atomic(out / CURVES, npy.getvalue())
    ensemble.save(out / ENSEMBLE)
    if scaling is not None:
        scaling.save(out / SIDECAR, out / ENSEMBLE)
    if shard is not None:
        write_manifest(out / MANIFEST, shard=list(shard), rows=[part.start, part.stop],
                       rows_total=grid_rows, complete=not interrupted,
                       spec_sha256=file_sha256(args.spec), spec_hash=module.SPEC_HASH,
                       grid=grid, seeds=[int(s) for s in seeds], window=args.window,
                       chunk=args.chunk, steps=args.steps, stream=layout.describe(),
                       stream_sha256=digest.hexdigest(), stream_rows=digest.rows,
                       columns=list(table.dtype.names))
    print(f"{spec.network.name}: {ensemble.K} learners"
          + (f" (rows {part.start} to {part.stop - 1} of {grid_rows}: shard "
             f"{shard[0]}/{shard[1]})"
             if shard else "") + f", {rows} rows of the stream"
          + (" (interrupted by Ctrl-C: what was done is written)" if interrupted else ""))
    if not ensemble.diverged.all() and rows:
        best = int(np.nanargmin(table["final_loss"]))
        print("best: " + ", ".join(f"{name} = {table[name][best]:g}" for name in
                                   [*grid, "seed", "final_loss"]))
    print(f"table: {out / TABLE}\ncurves: {out / CURVES}\nensemble: {out / ENSEMBLE}")
    return 130 if interrupted else 0


def merge_shards(args):
    """`hamsym sweep-merge`: the shards' tables and curves joined, in grid order."""
    text, curves, facts = merge(args.folder)
    out = Path(args.output or args.folder)
    write_atomic(out / TABLE, text)
    npy = io.BytesIO()
    np.save(npy, curves)
    write_atomic(out / CURVES, npy.getvalue())
    n = facts["shard"][1]
    print(f"{n} shards, {facts['rows_total']} learners, {facts['stream_rows']} rows of the stream")
    best = best_row(text, [*facts["grid"], "seed", "final_loss"])
    if best:
        print(best)
    print(f"table: {out / TABLE}\ncurves: {out / CURVES}\nensembles: "
          f"{Path(args.folder) / f'shard-I-of-{n}' / ENSEMBLE} (learner i of shard I is row "
          "rows[0] + i of the table; rows: in the shard's shard.json)")
    return 0


def _grid_value(text):
    """"beta=0.1,0.3,1" -> ("beta", [0.1, 0.3, 1.0])."""
    name, sep, values = text.partition("=")
    try:
        if not (sep and name.strip() and values.strip()):
            raise ValueError
        return name.strip(), [float(v) for v in values.split(",")]
    except ValueError:
        raise ValueError(f"--grid {text!r}: expected NAME=VALUE,VALUE,..., "
                         "e.g. --grid beta=0.1,0.3") from None


def _seeds(text):
    """"0,1,2" or "0-4" (both ends included) -> a list of ints."""
    try:
        if "-" in text.strip("-"):
            first, last = (int(v) for v in text.split("-"))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected a list 0,1,2 or a range 0-4") from None
    if not seeds:
        raise ValueError(f"--seeds {text!r}: no seed")
    return seeds


def _write_table(path, table):
    """The structured array as CSV, written whole or not at all."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(table.dtype.names)
    for row in table:
        writer.writerow([repr(float(v)) if isinstance(v, np.floating) else
                         bool(v) if isinstance(v, np.bool_) else int(v) for v in row])
    write_atomic(path, text.getvalue())
