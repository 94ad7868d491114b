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
import itertools
import math
import sys
from pathlib import Path

import numpy as np

from ..codegen.render import write_atomic
from . import per_weight_spec
from ..derive.hamiltonian import DEFAULTS
from ..derive.underflow import underflow
from ..errors import InputError
from ..runtime.progress import progress_bar
from .find_beta import hl_settings, sgd_equivalent
from .run_scaling import SIDECAR, RunScaling
from .runner import _length, _limit, open_stream, overrides, stream_layout
from .files import sha256 as file_sha256
from .shards import MANIFEST, StreamDigest, best_row, folder, merge, parse_shard, shard_rows, \
    write_manifest
from .spec import MAX_SEED, initial, load_spec
from .sweeps import grid_ensemble, grid_size, tabulate

TABLE = "sweep.csv"
CURVES = "curves.npy"
ENSEMBLE = "ensemble.npz"
MAX_LEARNERS = 10_000          # a grid beyond this is a typo, not a sweep


def sweep_spec(args):
    spec = load_spec(args.spec)
    layout = stream_layout(spec, args)
    grid = _grid(args.grid)
    fixed = overrides(spec, getattr(args, "set", None))
    both = sorted(set(fixed) & set(grid))
    if both:
        raise InputError(f"--set {both[0]} and --grid {both[0]}: give it once")
    if args.window < 1:
        raise InputError(f"--window {args.window}: must be at least 1")
    known = per_weight_spec.known(spec)
    unknown = [name for name in grid if name not in known]
    if unknown:
        raise InputError(per_weight_spec.unknown_message(spec, "--grid", unknown[0]) or
                         f"--grid {unknown[0]}: not a hyperparameter or param of "
                         f"{spec.network.name}; those are {known}")
    seeds = _seeds(args.seeds) if args.seeds else None
    learners = math.prod(len(v) for v in grid.values()) * len(seeds or [0])
    if learners > MAX_LEARNERS:
        raise InputError(f"--grid and --seeds ask for {learners} learners; at most "
                         f"{MAX_LEARNERS} run as one ensemble")
    _check_underflow(spec, grid)
    stream = open_stream(spec, args, layout)   # checked before anything is written
    out = Path(args.output)
    shard = part = None
    if getattr(args, "shard", None) is not None:   # one slice of the grid's rows, own folder
        shard = parse_shard(args.shard)
        grid_rows = grid_size(grid, _seeds(args.seeds) if args.seeds else [0])
        part = shard_rows(grid_rows, *shard)
        out = folder(out, *shard)
    out.mkdir(parents=True, exist_ok=True)
    module = spec.load(out / f"{spec.network.name}.py")
    init = initial(spec, module)
    seeds = seeds or [init.get("seed", 0)]
    init.pop("seed", None)
    init.update(fixed)
    ensemble, columns = grid_ensemble(module, grid, seeds, init, part=part, recent=args.window)
    blocks = stream
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
    if getattr(stream, "skipped", 0):
        print(f"skipped {stream.skipped} rows of {args.stream} holding NaN or inf "
              "(--on-bad-row skip)")
    if not ensemble.diverged.all() and rows:
        best = int(np.nanargmin(table["final_loss"]))
        print("best: " + ", ".join(f"{name} = {table[name][best]:g}" for name in
                                   [*grid, "seed", "final_loss"]))
        hyper = {**module.HYPER, **{k: v for k, v in fixed.items() if k in module.HYPER},
                 **{k: float(table[k][best]) for k in grid if k in module.HYPER}}
        print(f"best's HL: {hl_settings(hyper)}; {sgd_equivalent(hyper)}")
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


def _grid(texts):
    """The --grid options as {name: values}; a name given twice is refused (the first
    would be dropped without a word)."""
    grid = {}
    for text in texts:
        name, values = _grid_value(text)
        if name in grid:
            raise InputError(f"--grid {name}: given twice; give all its values in one "
                             f"--grid {name}=V1,V2,...")
        grid[per_weight_spec.scalar(name)] = values     # beta.W1: beta__W1
    return grid


def _check_underflow(spec, grid):
    """Refuse grid values with which a learner's updates underflow (see derive.underflow)."""
    base = {**DEFAULTS, **spec.hyper}
    dtype = spec.module.get("dtype", "float64")
    for values in itertools.product(*(grid.get(k, [base[k]]) for k in ("delta", "beta", "gamma"))):
        why = underflow(dict(zip(("delta", "beta", "gamma"), values)), dtype)
        if why:
            raise InputError(f"--grid: {why}")


def _grid_value(text):
    """"beta=0.1,0.3,1" -> ("beta", [0.1, 0.3, 1.0])."""
    name, sep, values = text.partition("=")
    try:
        if not (sep and name.strip() and values.strip()):
            raise ValueError
        numbers = [float(v) for v in values.split(",")]
    except ValueError:
        raise InputError(f"--grid {text!r}: expected NAME=VALUE,VALUE,..., "
                         "e.g. --grid beta=0.1,0.3") from None
    bad = [v for v in numbers if not math.isfinite(v)]
    if bad:
        raise InputError(f"--grid {name.strip()}: {bad[0]} is not a finite number")
    return name.strip(), numbers


def _seeds(text):
    """"0,1,2" or "0-4" (both ends included) -> a list of ints."""
    try:
        if "-" in text.strip("-"):
            first, last = (int(v) for v in text.split("-"))
            if not 0 <= first <= last:
                raise InputError(f"--seeds {text!r}: a range runs from a seed >= 0 up to a "
                                 "larger one, e.g. 0-4")
            if last - first >= MAX_LEARNERS:
                raise InputError(f"--seeds {text!r}: {last - first + 1} seeds; at most "
                                 f"{MAX_LEARNERS} learners run as one ensemble")
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(v) for v in text.split(",")]
    except InputError:
        raise
    except ValueError:
        raise InputError(f"--seeds {text!r}: expected a list 0,1,2 or a range 0-4") from None
    if not seeds:
        raise InputError(f"--seeds {text!r}: no seed")
    bad = [v for v in seeds if not 0 <= v <= MAX_SEED]
    if bad:
        raise InputError(f"--seeds {text!r}: seed {bad[0]} is not from 0 to 2**63 - 1")
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
