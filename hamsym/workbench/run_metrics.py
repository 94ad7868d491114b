"""`hamsym run --metrics` and `--find-beta`: what the run measures beside the loss, and
the beta it learns with.

--metrics mae,rmse (or accuracy, or all) measures the network's prediction and a naive
baseline at every step before its update, in the compiled loop (runtime.metrics), one
row per chunk into metrics.npz ("step", `<key>`, `<key>_baseline`: the columns
`hamsym plot` draws), and prints both at the end. The baseline of a time series
(--lags) is the previous step's target, else the running mean of the targets (the
most frequent class for accuracy); --baseline chooses. A standardised run measures in
the target's original units.

--find-beta N sweeps beta on the first N samples of the stream, read and standardised
as the run reads them, from the run's starting weights (find_beta), and learns with
the proposal.
"""

from __future__ import annotations

import io

import numpy as np

from ..errors import InputError
from ..runtime.files import write_atomic

METRICS = "metrics.npz"


def metrics_of(module, args, layout):
    """The Metrics that --metrics and --baseline ask for (None without --metrics); a
    metric or baseline the network's loss does not offer is refused, naming the option."""
    text = getattr(args, "metrics", None)
    baseline = getattr(args, "baseline", None)
    if text is None:
        if baseline is not None:
            raise InputError("--baseline says what the metrics are compared with: give "
                             "--metrics too")
        return None
    table = module.METRICS
    if table["kind"] is None:
        raise InputError(f"--metrics {text}: {module.__name__}'s loss offers none "
                         f"({table['reason']})")
    keys = [k.strip() for k in text.split(",") if k.strip()]
    keys = list(table["keys"]) if keys == ["all"] else keys
    bad = [k for k in keys if k not in table["keys"]] or ([] if keys else [text])
    if bad:
        raise InputError(f"--metrics {text}: {bad[0]!r} is not offered for this "
                         f"{table['kind']} loss; choose from {', '.join(table['keys'])} or all")
    if len(set(keys)) != len(keys):
        raise InputError(f"--metrics {text}: a metric is named twice")
    if baseline is None and table["kind"] == "regression":
        baseline = "last" if layout.lags is not None else "mean"
    try:
        return module.Metrics(keys, baseline=baseline)
    except ValueError as err:
        raise InputError(f"--baseline {baseline}: {err}") from None


def save_metrics(path, metrics):
    """metrics.npz: one row per chunk, written whole or not at all."""
    buffer = io.BytesIO()
    np.savez(buffer, **metrics.table())
    write_atomic(path, buffer.getvalue())


def print_metrics(metrics, module, standardised, path, resumed=None):
    """The model's figures beside the baseline's, and in which units."""
    target = module.METRICS["target"]
    units = (f"in the original units of target {target} (the prediction mapped back with the "
             "statistics it was standardised with)" if standardised else
             f"in the units of target {target} as the stream gives it")
    print(f"metrics of {module.METRICS['prediction']} against {target}, {units}:")
    print(metrics)
    if resumed is False:
        print("(the checkpoint's run measured other metrics, or none: these start at the "
              "resumed step)")
    print(f"metrics: {path} (one row per chunk)")


def choose_beta(spec, module, args, layout, hyper, blocks):
    """The beta of a short sweep on the first --find-beta samples of `blocks` (the
    stream opened again, as the run reads it), printed."""
    from .find_beta import NoStableBeta, find_beta
    from .run_scaling import RunScaling
    from .spec import initial

    n = args.find_beta
    if args.resume:
        raise InputError("--find-beta starts a run: a resumed run keeps its checkpoint's "
                         "beta (--set beta=... to change it)")
    if "beta" in hyper:
        raise InputError("--find-beta chooses beta: drop --set beta=...")
    init = initial(spec, module)
    seed = init.pop("seed", 0)
    if layout.standardize:
        blocks = RunScaling(module, layout).apply(blocks, 0, source=args.stream)
    try:
        report = find_beta(module, blocks, n=n, seed=seed, init=init, **hyper)
    except NoStableBeta as err:
        raise InputError(f"--find-beta {n}: {err}") from None
    print(f"--find-beta: a beta sweep on the first {report.samples} samples of {args.stream}")
    print(report.table())
    print(f"--find-beta chose beta = {report.beta:.6g} (the largest stable beta "
          f"{report.beta_max:.4g} / {report.margin:g}); {report.sgd}")
    return report.beta
