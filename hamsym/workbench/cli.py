"""The `hamsym` command: derive, generate, check and run networks written in spec files.

    hamsym derive SPEC [--latex]          the Hamiltonian and Hamilton's equations
    hamsym generate SPEC -o DIR           write the integrator module, print its path
    hamsym check SPEC                     one generated step against PyTorch autograd
    hamsym run SPEC --stream FILE -o DIR  learn from a .npy/.npz/.csv stream
        [--record loss,h1 --every 100] [--progress] [--lags 8 --standardize]
        [--metrics mae,rmse] [--find-beta 2000]
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
import contextlib
import sys
import warnings
from pathlib import Path

from ..declare.expr import DeclarationError
from ..errors import InputError
from .spec import MAX_SEED
from .stream_files import MAX_CHUNK, ON_BAD_ROW

#: exit codes of the command (docs/workbench.md)
OK, FAILED, BAD_INPUT, MISSING, INTERRUPTED = 0, 1, 2, 3, 130
MAX_COUNT = 2 ** 53            # steps, every, window: far beyond any run, still exact


def _spec(path):
    from .spec import load_spec
    return load_spec(path)


def cmd_derive(args):
    system = _spec(args.spec).derive()
    print(system.latex() if args.latex else system)
    return 0


def cmd_generate(args):
    spec = _spec(args.spec)
    out = Path(args.output)            # made when the module is written, not before
    options = {"scheme": args.scheme} if args.scheme else {}
    path = spec.generate(out / f"{spec.network.name}.py", overwrite=args.overwrite, **options)
    print(path)
    return 0


def cmd_check(args):
    from .check import check_spec
    from .runner import overrides
    spec = _spec(args.spec)
    given = overrides(spec, args.set)
    own = [name for name in given if "__" in name]
    if own:
        print(f"hamsym check: --set {own[0].replace('__', '.', 1)}: the check steps with "
              "the global hyperparameters only", file=sys.stderr)
        return 2
    spec.hyper.update(given)
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


def count(low=1, high=MAX_COUNT):
    """An argparse type: an integer from low to high (the message names the bounds)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high}, "
                                             f"got {value}")
        return value
    return parse


def tolerance(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def add_set(p):
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a "
                   "hyperparameter or param, e.g. --set beta=0.5 (repeat for more); on "
                   "--resume, over the checkpoint's values")


def add_on_bad_row(p):
    p.add_argument("--on-bad-row", choices=ON_BAD_ROW, default="stop",
                   help="a stream row holding NaN or inf: stop there (exit 5, naming the file "
                        "and row; the default) or skip it (counted in the summary)")


def parser():
    p = argparse.ArgumentParser(prog="hamsym", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Spec files: docs/workbench.md; examples in examples/specs/. "
                                       "Exit codes: 0 done, 1 failed (a check, a divergence, a "
                                       "bug), 2 bad input, 3 a missing extra, 130 Ctrl-C.")
    p.add_argument("--debug", action="store_true",
                   help="show Python's traceback of an error instead of one message")
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's default must not undo `hamsym --debug run ...`
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show Python's traceback of an error instead of one message")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("derive", parents=[common],
                       help="print the Hamiltonian and Hamilton's equations")
    d.add_argument("spec", help="the network's TOML spec file")
    d.add_argument("--latex", action="store_true", help="LaTeX source instead of text")
    d.set_defaults(func=cmd_derive)

    g = sub.add_parser("generate", parents=[common],
                       help="write the integrator module; prints its path")
    g.add_argument("spec")
    g.add_argument("-o", "--output", default="generated", help="folder (default: generated)")
    g.add_argument("--scheme", choices=("local", "nonlocal", "partial"),
                   help="override the spec's [module] scheme")
    g.add_argument("--overwrite", action="store_true",
                   help="replace a file at the module's path that is not a hamsym module "
                        "(refused otherwise)")
    g.set_defaults(func=cmd_generate)

    c = sub.add_parser("check", parents=[common],
                       help="one step of the generated module against PyTorch autograd")
    c.add_argument("spec")
    c.add_argument("--scheme", choices=("local", "nonlocal", "partial"),
                   help="default: the spec's scheme ('partial' uses the spec's groups)")
    c.add_argument("--seed", type=count(0, MAX_SEED), default=0)
    c.add_argument("--tolerance", type=tolerance, default=1e-10)
    add_set(c)
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("run", parents=[common],
                       help="learn from a stream file; writes losses and a checkpoint")
    r.add_argument("spec")
    r.add_argument("--stream", required=True,
                   help=".npy/.npz/.csv; columns are the inputs then the targets, in "
                        "declaration order (a .npz may name arrays after them instead)")
    r.add_argument("-o", "--output", default="run", help="folder for the module, losses and "
                   "checkpoint (default: run)")
    r.add_argument("--resume", metavar="CHECKPOINT", help="continue from a checkpoint: on the "
                   "stream it learned, after the last sample it consumed (its run.json says "
                   "which); another stream from its first row")
    r.add_argument("--skip", type=count(0), metavar="N", help="skip the stream's first N "
                   "samples (instead of what --resume would skip)")
    r.add_argument("--checkpoint-every", type=count(), metavar="N", help="also write the "
                   "checkpoint, losses, record and run.json every N steps")
    r.add_argument("--overwrite", action="store_true", help="replace the run that -o holds")
    add_set(r)
    r.add_argument("--chunk", type=count(1, MAX_CHUNK), default=4096,
                   help="samples per compiled call")
    r.add_argument("--steps", type=count(), help="stop after this many samples")
    r.add_argument("--record", metavar="KEYS", help="comma-separated keys to record into "
                   "record.npz, e.g. loss,o,h1,'|W1|' (the loss, outputs, states, weights, "
                   "weight norms; an unknown key lists the valid ones)")
    r.add_argument("--every", type=count(), metavar="N", help="record every N steps (default 1)")
    r.add_argument("--metrics", metavar="KEYS", help="measure these before each update, beside "
                   "a naive baseline, into metrics.npz: mae,rmse (a regression loss), accuracy "
                   "(softmax cross-entropy) or all")
    r.add_argument("--baseline", choices=("last", "mean", "majority"), help="what --metrics "
                   "compares with: the previous step's target (default with --lags), the "
                   "running mean of the targets (default otherwise), the most frequent class "
                   "(accuracy)")
    r.add_argument("--find-beta", type=count(8), nargs="?", const=2000, metavar="N",
                   help="first sweep beta on the stream's first N samples (default 2000) as "
                        "hamsym find-beta does, then learn with the proposed beta")
    add_on_bad_row(r)
    r.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a progress bar on stderr (needs tqdm); default: when stderr is a "
                        "terminal")
    stream_options(r)
    r.set_defaults(func=cmd_run)

    w = sub.add_parser("sweep", parents=[common],
                       help="a grid of hyperparameters and seeds on one stream file, "
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
    w.add_argument("--window", type=count(), default=1000,
                   help="final_loss is the mean over the last WINDOW steps (default 1000)")
    w.add_argument("--chunk", type=count(1, MAX_CHUNK), default=4096,
                   help="samples per compiled call")
    w.add_argument("--steps", type=count(), help="stop after this many samples")
    add_on_bad_row(w)
    w.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a progress bar on stderr (needs tqdm); default: when stderr is a "
                        "terminal")
    add_set(w)
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
    """Run the command; returns its exit code. No Python traceback reaches the user
    (unless --debug): every error is one message naming what is at fault."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as stop:      # --help, or a usage error argparse has printed
        return stop.code if isinstance(stop.code, int) else BAD_INPUT
    if args.debug:
        return args.func(args)
    name = f"hamsym {args.command}"
    with _one_line_warnings(name):
        try:
            return args.func(args)
        except KeyboardInterrupt:
            return _say(name, "interrupted (Ctrl-C)", INTERRUPTED)
        except (InputError, DeclarationError, ValueError) as err:
            return _say(name, err, BAD_INPUT)    # SpecError included: names file, key, column
        except OSError as err:
            return _say(name, _os_message(err), BAD_INPUT)
        except ImportError as err:
            return _say(name, err, MISSING)
        except MemoryError:
            return _say(name, "out of memory", FAILED)
        except ArithmeticError as err:           # a learner's DivergenceError
            return _say(name, err, FAILED)
        except Exception as err:
            return _say(name, f"internal error, {type(err).__name__}: {err} (a bug of hamsym; "
                        "`hamsym --debug ...` shows where)", FAILED)


def _say(name, message, code):
    print(f"{name}: {message}", file=sys.stderr)
    return code


def _os_message(err):
    if err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err)


@contextlib.contextmanager
def _one_line_warnings(name):
    """Warnings as one line each, without the source line Python prints under them, and
    each message once (a spec's hyperparameters are checked when read and when derived)."""
    shown = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if str(message) not in shown:
            shown.add(str(message))
            print(f"{name}: warning: {message}", file=sys.stderr)
    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


if __name__ == "__main__":      # pragma: no cover
    sys.exit(main())
