"""`hamsym predict`: what a learned network computes on a stream, written to a file.

    hamsym predict SPEC --checkpoint run1/checkpoint.npz --stream test.csv -o preds.csv

The learner of the checkpoint runs on the stream's inputs with Integrator.predict
(nothing learns: weights and costates stay; the states move from the checkpoint's
as run() would move them), a chunk at a time. The stream is laid out as `hamsym run`
lays it out (the spec's [stream], --lags, ...), targets included: its targets give
the mean absolute error printed at the end.

A standardised run (scaler.npz beside the checkpoint, or in --run-dir) fed its
network standardised values: the inputs are standardised here the same way, from
the statistics saved with the checkpoint and going on online, row by row, as a
resumed run would; the run's stream settings are taken from scaler.npz, and the
predictions go back to the original units of their target (each row with the
statistics of its step).

What is written: the outputs (or states, with --keys) of a target's shape by
default, one column per entry, in the order of --keys: a .npy of shape (T, columns)
or a .csv with a header naming each column (o[0], o[1], ...). Other suffixes are
refused. The file is written whole or not at all.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..runtime.files import write_atomic
from .run_scaling import SIDECAR, RunScaling, sidecar
from .runner import stream_layout
from .spec import load_spec

SUFFIXES = (".npy", ".csv")


def predict_spec(args):
    out = Path(args.output)
    if out.suffix.lower() not in SUFFIXES:
        raise ValueError(f"-o {args.output}: the predictions are written as .npy or .csv, "
                         "chosen by the suffix")
    if args.chunk < 1:
        raise ValueError(f"--chunk {args.chunk}: must be at least 1")
    spec = load_spec(args.spec)
    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        raise ValueError(f"--checkpoint {checkpoint}: no such file")
    scaler = Path(args.run_dir) / SIDECAR if args.run_dir else sidecar(checkpoint)
    if args.run_dir and not scaler.is_file():
        raise ValueError(f"--run-dir {args.run_dir}: no {SIDECAR} there (the run was not "
                         "standardised?)")
    meta = _scaler_meta(scaler) if scaler.is_file() else None
    layout = stream_layout(spec, args)
    if meta is not None and not _stream_options_given(args):
        settings = meta.get("stream", {})     # the run's settings, unless given here
        layout = layout.with_options(**{k: settings.get(k) for k in
                                        ("lags", "horizon", "standardize", "warmup")})
    if layout.standardize and meta is None:
        raise ValueError(f"{args.checkpoint}: standardising needs the run's statistics, "
                         f"{scaler}: not found (give --run-dir, or drop --standardize)")
    with tempfile.TemporaryDirectory() as tmp:
        module = spec.load(_module_path(spec, checkpoint, Path(tmp)))
        learner = module.Integrator.restore(checkpoint)
        scaling = None
        if layout.standardize:
            scaling = RunScaling(module, layout)
            scaling.restore(scaler, checkpoint)
        keys = _keys(module, args.keys)
        blocks = layout.blocks(args.stream, module, chunk=args.chunk)
        columns, errors, rows = [], [], 0
        for block in blocks:
            pred, targets = _predict_block(module, learner, scaling, block, keys, args.stream,
                                           rows)
            columns.append(pred)
            errors.append(_errors(keys, pred, targets))
            rows += len(block[0])
    table = np.concatenate(columns) if columns else np.zeros((0, sum(w for _, w, _ in keys)))
    _write(out, table, _header(keys))
    print(f"{spec.network.name}: {rows} predictions of {', '.join(k for k, _, _ in keys)} "
          f"from {checkpoint} (step {learner.step_count}) on {args.stream}"
          + (" (back in the targets' units)" if scaling is not None else ""))
    for (key, _, target), error in zip(keys, _mean_errors(errors)):
        if target is not None and rows:
            print(f"mean |{key} - {target}| {error:.6g}")
    print(f"predictions: {out}")
    return 0


def _stream_options_given(args):
    return any(getattr(args, k, None) is not None for k in ("lags", "horizon", "standardize",
                                                            "warmup"))


def _scaler_meta(path):
    try:
        with np.load(path, allow_pickle=False) as f:
            return json.loads(str(f["_meta"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a scaler written by hamsym run ({err})") from None


def _module_path(spec, checkpoint, tmp):
    """The run's own module beside the checkpoint when it holds exactly this spec's
    module (compiled already, in Numba's cache), else a temporary one: the run's folder
    is never rewritten."""
    from ..codegen.render import render
    beside = checkpoint.parent / f"{spec.network.name}.py"
    try:
        same = beside.read_text(encoding="utf-8") == render(spec.derive(), **spec.module)
    except (OSError, UnicodeDecodeError):
        same = False
    return beside if same else tmp / f"{spec.network.name}.py"


def _keys(module, text):
    """[(key, width, target of its shape or None)] to write: --keys, else every output
    and state of a target's shape."""
    shapes = {**{k: module.FORWARD[b] for k, b in module.OUTPUTS.items()}, **module.STATES}
    targets = {name: tuple(shape) for name, shape in module.TARGETS.items()}

    def target_of(key):
        match = [t for t, s in targets.items() if s == tuple(shapes[key])]
        return match[0] if len(match) == 1 else None
    if text:
        keys = [k.strip() for k in text.split(",") if k.strip()]
        unknown = [k for k in keys if k not in shapes]
        if unknown or not keys:
            raise ValueError(f"--keys {text}: {unknown[0] if unknown else 'empty'}: not an "
                             f"output or state; those are {', '.join(shapes) or 'none'}")
    else:
        keys = [k for k in shapes if target_of(k) is not None]
        if not keys:
            raise ValueError(f"no output or state of {module.__name__} has a target's shape; "
                             f"choose with --keys from {', '.join(shapes) or 'none'}")
    return [(k, int(np.prod(shapes[k], dtype=int)), target_of(k)) for k in keys]


def _predict_block(module, learner, scaling, block, keys, source, step):
    """(predictions (T, columns), {target: (T, width) in original units})."""
    names = list(module.INPUTS) + list(module.TARGETS)
    values = dict(zip(names, block))
    stats = {}
    if scaling is not None:
        for name in names:
            try:
                z, centre, scale = scaling.scalers[name].transform(values[name], stats=True)
            except ValueError as err:
                raise ValueError(f"{source}: the row {step + getattr(err, 'row', 0)}: {err}") \
                    from None
            stats[name] = (centre, scale)
            if name in module.INPUTS:
                values[name] = z
    inputs = [values[name] for name in module.INPUTS]
    T = len(block[0])
    out = learner.predict(*inputs) if inputs else learner.predict(steps=T)
    parts = []
    for key, width, target in keys:
        a = np.asarray(out[key], dtype=float).reshape(T, width)
        if scaling is not None and target is not None:      # the target's units
            centre, scale = stats[target]
            a = a * scale + centre
        parts.append(a)
    targets = {t: np.asarray(values[t], dtype=float).reshape(T, -1) for t in module.TARGETS}
    return np.hstack(parts), targets


def _errors(keys, pred, targets):
    """Per key: (sum of |prediction - target|, count) over this block."""
    out, at = [], 0
    for key, width, target in keys:
        if target is None:
            out.append((0.0, 0))
        else:
            out.append((float(np.abs(pred[:, at:at + width] - targets[target]).sum()),
                        pred[:, at:at + width].size))
        at += width
    return out


def _mean_errors(blocks):
    if not blocks:
        return []
    sums = np.array([[s for s, _ in b] for b in blocks]).sum(0)
    counts = np.array([[c for _, c in b] for b in blocks]).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return list(sums / counts)


def _header(keys):
    names = []
    for key, width, _ in keys:
        names += [key] if width == 1 else [f"{key}[{i}]" for i in range(width)]
    return names


def _write(path, table, header):
    if path.suffix.lower() == ".npy":
        data = io.BytesIO()
        np.save(data, table)
        write_atomic(path, data.getvalue())
    else:
        text = io.StringIO()
        text.write(",".join(header) + "\n")
        np.savetxt(text, table, delimiter=",", fmt="%.17g")
        write_atomic(path, text.getvalue())
