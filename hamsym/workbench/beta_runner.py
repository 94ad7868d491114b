"""`hamsym find-beta`: a short beta sweep on the first samples of a stream file
(find_beta), printing every beta tried, the proposal and its SGD twin.

The stream is read as `hamsym run` reads it (the spec's [stream] and --lags,
--standardize, ...: standardised online exactly as the run would), and the learners
start as the run would start (the spec's [init]), so the proposal is for that run.
Nothing is written except the generated module (in --output, default a temporary
folder).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from .find_beta import NoStableBeta, find_beta
from .run_scaling import RunScaling
from .runner import stream_layout
from .spec import initial, load_spec


def find_beta_spec(args):
    spec = load_spec(args.spec)
    layout = stream_layout(spec, args)
    if args.samples < 8:
        raise ValueError(f"--samples {args.samples}: the sweep compares the first and last "
                         "quarter of the window; give at least 8")
    if args.chunk < 1:
        raise ValueError(f"--chunk {args.chunk}: must be at least 1")
    if not args.margin >= 1:
        raise ValueError(f"--margin {args.margin}: must be at least 1 (the proposal is "
                         "beta_max / margin)")
    betas = _betas(args.betas) if args.betas else None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.output) if args.output else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        module = spec.load(out / f"{spec.network.name}.py")
        init = initial(spec, module)
        seed = init.pop("seed", 0) if args.seed is None else args.seed
        init.pop("seed", None)
        blocks = layout.blocks(args.stream, module, chunk=min(args.chunk, args.samples))
        if layout.standardize:
            blocks = RunScaling(module, layout).apply(blocks, 0, source=args.stream)
        try:
            report = find_beta(module, blocks, n=args.samples, betas=betas, seed=seed,
                               margin=args.margin, init=init)
        except NoStableBeta as err:
            print(f"hamsym find-beta: {args.stream}: {err}", file=sys.stderr)
            return 1
    print(f"{spec.network.name} ({module.SCHEME} scheme), stream {args.stream}")
    print(report)
    print(f"to use it: beta = {report.beta:.4g} under [hyper] in {args.spec}")
    return 0


def _betas(text):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--betas {text!r}: expected numbers separated by commas, "
                         "e.g. 0.01,0.1,1") from None
    if not values:
        raise ValueError(f"--betas {text!r}: give at least one value")
    return values
