"""The `hamsym` command: derive, generate, check and run networks written in spec files.

    hamsym derive SPEC [--latex]          the Hamiltonian and Hamilton's equations
    hamsym generate SPEC -o DIR           write the integrator module, print its path
    hamsym check SPEC                     one generated step against PyTorch autograd
    hamsym run SPEC --stream FILE -o DIR  learn from a .npy/.npz/.csv stream
        [--record loss,h1 --every 100] [--progress] [--lags 8 --standardize]
    hamsym sweep SPEC --stream FILE --grid beta=0.1,1 --seeds 0-4 -o DIR
                                          every combination at once, one table
        [--shard I/N]                     one slice of the grid (a cluster array job)
    hamsym sweep-merge DIR                join the shards into the one table
    hamsym find-beta SPEC --stream FILE   propose a stable beta from the first samples
    hamsym plot RUN_DIR                   losses, record.npz and metrics as PNG files
    hamsym predict SPEC --checkpoint C --stream FILE -o preds.npy|csv
                                          the outputs of a learned network on a stream
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..declare.expr import DeclarationError


def _spec(path):
    from .spec import load_spec
    return load_spec(path)


def cmd_derive(args):
    system = _spec(args.spec).derive()
    print(system.latex() if args.latex else system)
    return 0


def cmd_generate(args):
    spec = _spec(args.spec)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    options = {"scheme": args.scheme} if args.scheme else {}
    path = spec.generate(out / f"{spec.network.name}.py", **options)
    print(path)
    return 0


def cmd_check(args):
    from .check import check_spec
    spec = _spec(args.spec)
    try:
        results = check_spec(spec, schemes=[args.scheme] if args.scheme else None, seed=args.seed)
    except ImportError as err:
        print(f"hamsym check: {err}", file=sys.stderr)
        return 3
    worst = 0.0
    for scheme, diffs in results.items():
        gap = max(diffs.values())
        worst = max(worst, gap)
        name = max(diffs, key=diffs.get)
        print(f"{spec.network.name} scheme {scheme}: one step against PyTorch autograd, "
              f"max |difference| {gap:.1e} (at {name}, over {len(diffs)} arrays)")
    ok = worst <= args.tolerance
    print("OK" if ok else f"MISMATCH: {worst:.1e} > tolerance {args.tolerance:g}")
    return 0 if ok else 1


def cmd_run(args):
    from .runner import run_spec
    return run_spec(args)


def cmd_sweep(args):
    from .sweep_runner import sweep_spec
    return sweep_spec(args)


def cmd_sweep_merge(args):
    from .sweep_runner import merge_shards
    return merge_shards(args)


def cmd_find_beta(args):
    from .beta_runner import find_beta_spec
    return find_beta_spec(args)


def cmd_predict(args):
    from .predict_runner import predict_spec
    return predict_spec(args)


def cmd_plot(args):
    from .run_plots import plot_command
    return plot_command(args)


def parser():
    p = argparse.ArgumentParser(prog="hamsym", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Spec files: docs/workbench.md; examples in examples/specs/.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("derive", help="print the Hamiltonian and Hamilton's equations")
    d.add_argument("spec", help="the network's TOML spec file")
    d.add_argument("--latex", action="store_true", help="LaTeX source instead of text")
    d.set_defaults(func=cmd_derive)

    g = sub.add_parser("generate", help="write the integrator module; prints its path")
    g.add_argument("spec")
    g.add_argument("-o", "--output", default="generated", help="folder (default: generated)")
    g.add_argument("--scheme", choices=("local", "nonlocal", "partial"),
                   help="override the spec's [module] scheme")
    g.set_defaults(func=cmd_generate)

    c = sub.add_parser("check", help="one step of the generated module against PyTorch autograd")
    c.add_argument("spec")
    c.add_argument("--scheme", choices=("local", "nonlocal", "partial"),
                   help="default: the spec's scheme ('partial' uses the spec's groups)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--tolerance", type=float, default=1e-10)
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("run", help="learn from a stream file; writes losses and a checkpoint")
    r.add_argument("spec")
    r.add_argument("--stream", required=True,
                   help=".npy/.npz/.csv; columns are the inputs then the targets, in "
                        "declaration order (a .npz may name arrays after them instead)")
    r.add_argument("-o", "--output", default="run", help="folder for the module, losses and "
                   "checkpoint (default: run)")
    r.add_argument("--resume", metavar="CHECKPOINT", help="continue from a checkpoint")
    r.add_argument("--chunk", type=int, default=4096, help="samples per compiled call")
    r.add_argument("--steps", type=int, help="stop after this many samples")
    r.add_argument("--record", metavar="KEYS", help="comma-separated keys to record into "
                   "record.npz, e.g. loss,o,h1,'|W1|' (the loss, outputs, states, weights, "
                   "weight norms; an unknown key lists the valid ones)")
    r.add_argument("--every", type=int, metavar="N", help="record every N steps (default 1)")
    r.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a progress bar on stderr (needs tqdm); default: when stderr is a "
                        "terminal")
    stream_options(r)
    r.set_defaults(func=cmd_run)

    w = sub.add_parser("sweep", help="a grid of hyperparameters and seeds on one stream file, "
                       "as one ensemble; writes a table, curves and the ensemble")
    w.add_argument("spec")
    w.add_argument("--stream", required=True, help="as for run: .npy/.npz/.csv")
    w.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="values of a hyperparameter or param, e.g. --grid beta=0.1,1 "
                        "(repeat for more names: every combination is a learner)")
    w.add_argument("--seeds", metavar="LIST", help="seeds of the initial weights, 0,1,2 or "
                   "0-4 (default: the spec's [init] seed, else 0)")
    w.add_argument("-o", "--output", default="sweep", help="folder for the module, sweep.csv, "
                   "curves.npy and ensemble.npz (default: sweep)")
    w.add_argument("--window", type=int, default=1000,
                   help="final_loss is the mean over the last WINDOW steps (default 1000)")
    w.add_argument("--chunk", type=int, default=4096, help="samples per compiled call")
    w.add_argument("--steps", type=int, help="stop after this many samples")
    w.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a progress bar on stderr (needs tqdm); default: when stderr is a "
                        "terminal")
    w.add_argument("--shard", metavar="I/N", help="run only shard I of N (0 <= I < N) of the "
                   "grid's rows, into OUTPUT/shard-I-of-N/, for cluster array jobs; "
                   "hamsym sweep-merge OUTPUT joins the shards")
    stream_options(w)
    w.set_defaults(func=cmd_sweep)

    m = sub.add_parser("sweep-merge", help="join the shards of hamsym sweep --shard into one "
                       "table, as one machine writes it")
    m.add_argument("folder", help="the -o folder of the shards (holds shard-I-of-N/)")
    m.add_argument("-o", "--output", help="where to write sweep.csv and curves.npy (default: "
                   "the folder)")
    m.set_defaults(func=cmd_sweep_merge)

    b = sub.add_parser("find-beta", help="a short beta sweep on the first samples of a stream; "
                       "proposes the largest stable beta (with a margin) and its SGD twin")
    b.add_argument("spec")
    b.add_argument("--stream", required=True, help="as for run: .npy/.npz/.csv")
    b.add_argument("--samples", type=int, default=2000, metavar="N",
                   help="learn the first N samples of the stream (default 2000)")
    b.add_argument("--betas", metavar="LIST", help="the betas to try, e.g. 0.01,0.1,1 (default: "
                   "the spec's beta times 2^-8 .. 2^4)")
    b.add_argument("--margin", type=float, default=2.0, help="propose the largest stable beta "
                   "divided by this (default 2)")
    b.add_argument("--seed", type=int, help="seed of the initial weights (default: the spec's "
                   "[init] seed, else 0)")
    b.add_argument("--chunk", type=int, default=4096, help="rows read at a time")
    b.add_argument("-o", "--output", help="folder for the generated module (default: a "
                   "temporary folder)")
    stream_options(b)
    b.set_defaults(func=cmd_find_beta)

    q = sub.add_parser("predict", help="the outputs of a learned network on a stream, "
                       "written to a .npy or .csv file")
    q.add_argument("spec")
    q.add_argument("--checkpoint", required=True, help="a checkpoint of hamsym run (or "
                   "Integrator.save)")
    q.add_argument("--stream", required=True, help="as for run: .npy/.npz/.csv, laid out as "
                   "the run's (targets included: they give the error printed)")
    q.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="preds.npy or preds.csv (the suffix chooses the format)")
    q.add_argument("--run-dir", metavar="DIR", help="the run whose scaler.npz standardises the "
                   "inputs and maps the outputs back (default: beside the checkpoint)")
    q.add_argument("--keys", metavar="KEYS", help="outputs or states to write, e.g. o,h1 "
                   "(default: those of a target's shape)")
    q.add_argument("--chunk", type=int, default=4096, help="rows per compiled call")
    stream_options(q)
    q.set_defaults(func=cmd_predict)

    v = sub.add_parser("plot", help="PNG figures of a run folder: losses, recorded signals, "
                       "metrics")
    v.add_argument("run_dir", metavar="RUN_DIR", help="the -o folder of hamsym run")
    v.add_argument("-o", "--output", metavar="DIR", help="folder for the PNG files "
                   "(default: RUN_DIR)")
    v.add_argument("--window", type=int, metavar="N", help="steps of the losses' moving "
                   "average (default: a fiftieth of the run, 1 to 1000)")
    v.set_defaults(func=cmd_plot)
    return p


def stream_options(p):
    """Options that override the spec's [stream] table (docs/workbench.md)."""
    g = p.add_argument_group("time series and standardisation (override the spec's [stream])")
    g.add_argument("--lags", type=int, metavar="N", help="the inputs are the last N values of "
                   "the input columns (a one-column series works directly)")
    g.add_argument("--horizon", type=int, metavar="H", help="the target is H steps after the "
                   "newest input (default 1 with --lags)")
    g.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=None,
                   help="standardise inputs and targets online (Welford): each value with the "
                        "mean and deviation of the values before it")
    g.add_argument("--warmup", type=int, metavar="N", help="freeze the standardisation's "
                   "statistics after N rows")


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except DeclarationError as err:          # SpecError included: names file, key, column
        print(f"hamsym {args.command}: {err}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as err:
        print(f"hamsym {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":      # pragma: no cover
    sys.exit(main())
