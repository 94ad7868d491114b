"""`hamsym plot RUN_DIR`: PNG figures of what a `hamsym run` wrote, steps on the x axis.

- losses.png: the loss of every step (faint) and its moving average (losses.npy); the
  losses of a standardised run are of the standardised values, and the axis says so;
  a run that diverged is drawn up to the step before and the step is marked;
- record_<key>.png, one per key of record.npz: the recorded rows against the step of
  each; an output of a target's shape is in that target's original units when the
  run was standardised (hamsym run wrote it so, with scaler.npz), and the axis says so;
  arrays of more than 12 entries show their first 12;
- metrics.png, when the folder has metrics.npz or metrics.csv: one panel per metric
  against "step", with `<metric>_baseline` dashed beside its metric when present.

What the run's network reads and computes (its targets, its outputs) comes from the
tables of its generated module in the folder, read as text: nothing is compiled.
"""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import numpy as np

from ..runtime.files import write_atomic
from . import plot
from .run_scaling import SIDECAR

LOSSES, RECORD = "losses.npy", "record.npz"
METRICS = ("metrics.npz", "metrics.csv")
MAX_LINES = 12


def plot_command(args):
    try:
        paths = plot_run(args.run_dir, args.output, window=args.window)
    except ImportError as err:               # matplotlib is the plot extra
        import sys
        print(f"hamsym plot: {err}", file=sys.stderr)
        return 3
    for path in paths:
        print(path)
    return 0


def plot_run(folder, output=None, *, window=None):
    """Write the figures of the run in `folder` into `output` (default the folder);
    returns their paths."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder (give the -o folder of hamsym run)")
    found = [folder / n for n in (LOSSES, RECORD, *METRICS) if (folder / n).is_file()]
    if not found:
        raise ValueError(f"{folder}: no {LOSSES}, {RECORD} or metrics file to draw; is it "
                         "the -o folder of hamsym run?")
    if window is not None and window < 1:
        raise ValueError(f"--window {window}: must be at least 1")
    out = Path(output) if output is not None else folder
    tables = run_tables(folder)
    standardised = (folder / SIDECAR).is_file()
    name = tables.get("name", folder.name)
    paths = []
    if (folder / LOSSES).is_file():
        paths.append(_losses(folder / LOSSES, out, name, window, standardised))
    if (folder / RECORD).is_file():
        paths += _record(folder / RECORD, out, name, tables, standardised)
    for metrics in METRICS:
        if (folder / metrics).is_file():
            paths.append(_metrics(folder / metrics, out, name, standardised))
            break
    return paths


def run_tables(folder):
    """{"name", "targets": {name: shape}, "outputs": [names]} of the generated module in
    the folder (its literal tables, parsed as text), or {} if there is none."""
    for path in sorted(Path(folder).glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if not re.search(r'^SPEC_HASH = "[0-9a-f]+"$', text, re.M):
            continue
        tables = {"name": path.stem}
        for key, table in (("targets", "TARGETS"), ("outputs", "OUTPUTS")):
            m = re.search(rf"^{table} = (.*)$", text, re.M)
            try:
                tables[key] = ast.literal_eval(m.group(1)) if m else {}
            except (ValueError, SyntaxError):
                tables[key] = {}
        return tables
    return {}


def _save(fig, path):
    """The figure as PNG, written whole or not at all."""
    data = io.BytesIO()
    fig.savefig(data, format="png", dpi=120)
    import matplotlib.pyplot as plt
    plt.close(fig)
    write_atomic(path, data.getvalue())
    return path


def _losses(path, out, name, window, standardised):
    losses = np.load(path, mmap_mode="r")
    losses = np.asarray(losses, dtype=float).ravel()
    bad = np.flatnonzero(~np.isfinite(losses))
    shown = losses[:bad[0]] if bad.size else losses
    window = window or int(min(1000, max(1, len(shown) // 50)))
    positive = shown.size and (shown > 0).all()
    fig = plot.losses({"loss": shown}, window=window, log=bool(positive),
                      title=f"{name}: loss of every step, before it learns ({len(losses)} steps)")
    ax = fig.axes[0]
    ax.set_xlabel("step")
    ax.set_ylabel("loss of the standardised values" if standardised else "loss")
    if bad.size:
        ax.axvline(bad[0], color="C3", ls=":", lw=1)
        ax.text(bad[0], 0.98, f" not finite at step {bad[0]}", transform=ax.get_xaxis_transform(),
                va="top", ha="right", color="C3", fontsize="small")
    return _save(fig, out / "losses.png")


def _record(path, out, name, tables, standardised):
    plt = plot._pyplot()
    with np.load(path, allow_pickle=False) as f:
        record = {k: f[k] for k in f.files}
    if "step" not in record:
        raise ValueError(f"{path}: no 'step' array; not a record.npz of hamsym run")
    steps = record.pop("step")
    every = int(np.diff(steps).min()) if len(steps) > 1 else 1
    paths = []
    for key, rows in record.items():
        rows = np.asarray(rows, dtype=float).reshape(len(steps), -1)
        fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
        width = rows.shape[1]
        for j in range(min(width, MAX_LINES)):
            ax.plot(steps, rows[:, j], lw=1, label=f"{key}[{j}]" if width > 1 else key)
        shown = f" (the first {MAX_LINES} of {width} entries)" if width > MAX_LINES else ""
        ax.set_title(f"{name}: {key}, recorded every {every} step{'s' * (every > 1)}{shown}")
        ax.set_xlabel("step")
        ax.set_ylabel(_units(key, rows.shape[1], tables, standardised))
        if 1 < width <= 8:
            ax.legend(fontsize="small", loc="best")
        paths.append(_save(fig, out / f"record_{_file_part(key)}.png"))
    return paths


def _units(key, width, tables, standardised):
    """The axis label of a recorded key: the target's units for an output of its shape."""
    targets = tables.get("targets", {})
    match = [t for t, s in targets.items() if int(np.prod(s, dtype=int)) == width
             and key in tables.get("outputs", {})]
    if len(match) == 1:
        units = "original units" if standardised else "units"
        return f"{key} (in the {units} of target {match[0]})"
    if key == "loss" and standardised:
        return "loss of the standardised values"
    return key


def _file_part(key):
    """A record key as a file name part: |W1| is norm_W1."""
    m = re.fullmatch(r"\|(\w+)\|", key)
    return f"norm_{m.group(1)}" if m else re.sub(r"[^\w.-]", "_", key)


def _metrics(path, out, name, standardised=False):
    plt = plot._pyplot()
    columns = _read_metrics(path)
    steps = columns.pop("step")
    metrics = [k for k in columns if not k.endswith("_baseline")]
    if not metrics:
        raise ValueError(f"{path}: no metric beside 'step'")
    fig, axes = plt.subplots(len(metrics), 1, figsize=(8, 2.6 * len(metrics)), squeeze=False,
                             layout="constrained", sharex=True)
    for ax, key in zip(axes[:, 0], metrics):
        ax.plot(steps, columns[key], color="C0", lw=1.2, label=key)
        if f"{key}_baseline" in columns:
            ax.plot(steps, columns[f"{key}_baseline"], color="C7", lw=1.2, ls="--",
                    label=f"{key} of the baseline")
            ax.legend(fontsize="small", loc="best")
        ax.set_ylabel(key)
    axes[-1, 0].set_xlabel("step")
    # hamsym run measures a standardised run in the target's original units
    units = ", in the target's original units" if standardised else ""
    axes[0, 0].set_title(f"{name}: metrics over the run{units} ({path.name})")
    return _save(fig, out / "metrics.png")


def _read_metrics(path):
    """{column: (T,) array} of metrics.npz (one array per column) or metrics.csv (a
    header line of column names); "step" is required."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            columns = {k: np.asarray(f[k], dtype=float).ravel() for k in f.files}
    else:
        with open(path, encoding="utf-8") as fh:
            header = [h.strip() for h in fh.readline().split(",")]
        try:
            values = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        if values.shape[1] != len(header):
            raise ValueError(f"{path}: {len(header)} names in the header, {values.shape[1]} "
                             "columns of values")
        columns = dict(zip(header, values.T))
    if "step" not in columns:
        raise ValueError(f"{path}: no 'step' column (the x axis); columns {list(columns)}")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"{path}: columns of different lengths {sorted(lengths)}")
    return columns
