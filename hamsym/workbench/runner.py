"""`hamsym run`: learn a spec's network from a stream file, and never lose the work.

The run folder (-o) gets the generated module, checkpoint.npz (the learner), losses.npy
(every step's loss, measured before its update; earlier runs' included when resuming),
record.npz (--record: one array per key and "step"), scaler.npz (--standardize: the
online statistics, run_scaling) and run.json (what the checkpoint has consumed of which
stream). Every file is written whole or not at all, and run.json last, so a run folder
always holds one consistent moment of the run.

Stopped by Ctrl-C, by a loss that is not finite or by a bad row of the stream, the run
writes its last good state (for a divergence: the learner before the step that diverged)
and says in one line what happened, where, and the command that resumes. --checkpoint-
every N writes the same every N steps. Resuming on the same stream continues after the
last row consumed; another stream is learned from its first row; --skip N says
otherwise. A folder that holds another run is refused unless --resume or --overwrite.
"""

from __future__ import annotations

import hashlib
import io
import json
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..codegen.lower import storage_shape
from . import per_weight_spec
from ..errors import InputError, StreamError
from .. import runtime
from ..runtime import interrupt
from ..runtime.files import not_a_link, write_atomic
from ..runtime.progress import progress_bar
from .files import sha256 as _sha256
from .find_beta import hl_settings, sgd_equivalent
from .run_metrics import METRICS, choose_beta, metrics_of, print_metrics, save_metrics
from .run_scaling import SIDECAR, RunScaling, refuse_unscaled_resume, sidecar
from .spec import integrator, load_spec

CHECKPOINT = "checkpoint.npz"
LOSSES = "losses.npy"
RECORD = "record.npz"
MANIFEST = "run.json"
OUTPUTS = (CHECKPOINT, LOSSES, RECORD, METRICS, SIDECAR, MANIFEST)

# exit codes of a run that stopped early; its work is saved (docs/workbench.md)
DIVERGED, BAD_ROW, INTERRUPTED = 4, 5, 130
_HEAD = 1 << 16                 # bytes of a stream file hashed to recognise it


def stream_layout(spec, args):
    """The spec's [stream] with the command's --lags, --horizon, --standardize, --warmup."""
    return spec.stream.with_options(**{key: getattr(args, key, None) for key in
                                       ("lags", "horizon", "standardize", "warmup")})


def open_stream(spec, args, layout=None):
    """The blocks of the --stream file laid out for the spec's network, the file checked
    before anything is written (StreamError naming it); its rows are checked as read."""
    layout = stream_layout(spec, args) if layout is None else layout
    net = spec.network
    shapes = SimpleNamespace(**{kind.upper() + "S": {v.name: storage_shape(v.shape)
                                                    for v in net.of_kind(kind)}
                                for kind in ("input", "target")})
    return layout.blocks(args.stream, shapes, chunk=args.chunk,
                         on_bad_row=getattr(args, "on_bad_row", "stop"))


def overrides(spec, texts):
    """--set NAME=VALUE (repeatable) as {name: value}: hyperparameters and params of the
    spec's network; a name given twice, an unknown name or a value that is not a number
    is refused, naming it."""
    known = per_weight_spec.known(spec)
    out = {}
    for text in texts or ():
        given, sep, value = text.partition("=")
        given = given.strip()
        if not sep or not given:
            raise InputError(f"--set {text!r}: expected NAME=VALUE, e.g. --set beta=0.5")
        name = per_weight_spec.scalar(given)        # beta.W1: W1's own beta, beta__W1
        if name not in known:
            raise InputError(per_weight_spec.unknown_message(spec, "--set", given) or
                             f"--set {given}: not a hyperparameter or param of "
                             f"{spec.network.name}; those are {known}")
        if name in out:
            raise InputError(f"--set {given}: given twice")
        try:
            out[name] = None if value.strip() == "none" and \
                (name == "theta_neurons" or "__" in name) else float(value)
        except ValueError:
            raise InputError(f"--set {given}={value}: not a number") from None
        if out[name] is not None and not np.isfinite(out[name]):
            raise InputError(f"--set {given}={value}: must be finite")
    return out


def run_spec(args):
    spec = load_spec(args.spec)
    if args.every is not None and not args.record:
        raise InputError("--every says how often to record: give --record too")
    hyper = overrides(spec, getattr(args, "set", None))
    layout = stream_layout(spec, args)
    stream = open_stream(spec, args, layout)        # checked before anything is written
    out = Path(args.output)
    _claim(out, args)
    module_path = out / f"{spec.network.name}.py"
    top = out                   # the outermost folder this run would create
    while not top.parent.exists():
        top = top.parent
    created = [p for p in (top, module_path, out / runtime.NAME, out / "__pycache__")
               if not p.exists()]
    try:                        # until it learns, a refused run takes back what it wrote
        out.mkdir(parents=True, exist_ok=True)
        module = spec.load(module_path, overwrite=bool(getattr(args, "overwrite", False)))
        metrics = metrics_of(module, args, layout)
        if getattr(args, "find_beta", None):
            hyper["beta"] = choose_beta(spec, module, args, layout, hyper,
                                        open_stream(spec, args, layout))
        if args.resume:
            learner = module.Integrator.restore(args.resume, **hyper)
        else:
            learner = integrator(spec, module, **hyper)
        recorder = module.Recorder(args.record.split(","), args.every or 1) \
            if args.record else None
        done = learner.step_count
        identity = _identity(args.stream, layout)
        skip = _start(args, identity, done, out)
        scaling = RunScaling(module, layout) if layout.standardize else None
        if args.resume and scaling is not None:   # the statistics of the step it resumes from
            scaling.restore(sidecar(args.resume), args.resume)
        elif args.resume:
            refuse_unscaled_resume(args.resume)
    except BaseException:
        _take_back(created)
        raise
    blocks = _skip(stream, skip)
    if args.steps is not None:
        blocks = _limit(blocks, args.steps)
    if scaling is not None:                   # after skip and limit: the rows learned
        blocks = scaling.apply(blocks, done, recorder.every if recorder is not None else None,
                               source=args.stream, units=metrics and module.METRICS["target"])
    every = getattr(args, "checkpoint_every", None)
    if every:
        blocks = _split(blocks, every, done)
    previous = _previous_losses(out, args.resume, done)
    run = Run(module, out, learner, recorder, scaling, identity, skip, previous, args, metrics)
    try:
        bar, owned = progress_bar(args.progress, _length(args.stream, skip, args.steps, layout))
    except ImportError as err:
        print(f"hamsym run: {err}", file=sys.stderr)
        return 3
    try:
        stop = run.learn(blocks, bar, every)
    finally:
        if owned:
            bar.close()
    run.save()
    return run.report(spec, stop, skipped=getattr(stream, "skipped", 0))


class Run:
    """A run under way: the learner, what it has learned from the stream, and saving all
    of it at a consistent moment."""

    def __init__(self, module, out, learner, recorder, scaling, identity, start, previous,
                 args, metrics=None):
        self.module, self.out, self.learner = module, out, learner
        self.recorder, self.scaling, self.metrics = recorder, scaling, metrics
        if metrics is not None and args.resume:     # measure on as one run
            manifest = _manifest(Path(args.resume))
            self.metrics_resumed = bool(manifest and metrics._load(manifest.get("metrics")))
        self.identity, self.args = identity, args
        self.consumed = start                  # samples of the stream learned or skipped
        self.start_step = learner.step_count
        self.losses = [previous]
        self.resumed = bool(args.resume)
        # --overwrite: the other run's files this run does not write, removed when it
        # first saves (a run refused before then leaves the folder as it was)
        self.stale = [] if self.resumed else [
            out / name for name, ours in ((RECORD, recorder), (SIDECAR, scaling),
                                          (METRICS, metrics)) if ours is None]

    def learn(self, blocks, bar, every):
        """Learn the blocks; returns None when the stream ended, else (code, why)."""
        saved = self.learner.step_count
        previous = None                        # the block before, as `start` below
        with interrupt.CtrlC() as ctrl_c:     # Ctrl-C between blocks stops here too
            while True:
                if ctrl_c.pressed:
                    return INTERRUPTED, "interrupted (Ctrl-C)"
                try:
                    block = next(blocks)
                except StopIteration:
                    return None
                except StreamError as err:     # after the rows before the bad one
                    return BAD_ROW, str(err)
                # where to come back to, should a step of this block diverge
                start = (block, self.learner._state(), self._scalers(),
                         None if self.metrics is None else self.metrics._snapshot())
                try:
                    losses = self.learner.run(*self._data(block), record=self.recorder,
                                              progress=False if bar is None else bar,
                                              metrics=self.metrics)
                except self.module.Interrupted as err:
                    return self._back_to(start, err.steps, err.losses, INTERRUPTED,
                                         "interrupted (Ctrl-C)")
                except self.module.DivergenceError as err:
                    # the update before the step whose loss is not finite made it so: that
                    # update is undone too (in the block before, if it was its last)
                    why = (f"diverged: the loss is {err.losses[-1]} at step {err.step}; saved "
                           f"the learner before the update of step {err.step - 1}, which led "
                           "there")
                    if err.index > 0 or previous is None:
                        return self._back_to(start, max(err.index - 1, 0), err.losses[:-1],
                                             DIVERGED, why)
                    before = self.losses.pop()
                    self.consumed -= len(before)
                    return self._back_to(previous, len(before) - 1, before, DIVERGED, why)
                self.losses.append(losses)
                self.consumed += len(losses)
                previous = start
                if every and self.learner.step_count - saved >= every:
                    self.save()
                    saved = self.learner.step_count

    def _data(self, block, steps=None):
        """The block's arrays the learner reads (the first `steps` rows); the target in
        original units and its statistics that a standardised run appends go to the
        metrics."""
        data = len(self.module.INPUTS) + len(self.module.TARGETS)
        cut = (lambda a: a) if steps is None else (lambda a: a[:steps])
        if self.metrics is not None and len(block) > data:
            self.metrics.original_units(*(cut(a) for a in block[data:]))
        return tuple(cut(a) for a in block[:data])

    def _scalers(self):
        return None if self.scaling is None else {
            name: s.state() for name, s in self.scaling.scalers.items()}

    def _back_to(self, start, steps, losses, code, why):
        """Stopped inside a block: the learner after its first `steps` steps, learned
        again from the block's start where the learner went further (the same bits).
        The standardisation's statistics are known at block boundaries only, so a
        standardised run goes back to the block's start."""
        block, state, scaled, measured = start
        if self.scaling is not None:
            steps = 0
            self.scaling.scalers = {name: type(s).from_state(scaled[name])
                                    for name, s in self.scaling.scalers.items()}
        if code == DIVERGED or self.scaling is not None:
            learner = type(self.learner)._from_state(state)
            if measured is not None:            # measured again with the steps kept
                self.metrics._restore(measured)
            if steps:
                learner.run(*self._data(block, steps), progress=False, metrics=self.metrics)
            self.learner = learner
        self.losses.append(np.asarray(losses)[:steps])
        self.consumed += steps
        return code, why

    # -- saving ------------------------------------------------------------------------
    def save(self):
        """checkpoint.npz, losses.npy, record.npz, scaler.npz, then run.json, which ties
        them together: each written whole or not at all."""
        out, learner = self.out, self.learner
        for path in self.stale:
            path.unlink(missing_ok=True)
        self.stale = []
        learner.save(out / CHECKPOINT)
        losses = np.concatenate(self.losses)
        write_atomic(out / LOSSES, _npy(losses))
        if self.recorder is not None:
            record = self.recorder
            if self.scaling is not None:     # outputs back in the targets' units
                record, self.predictions = self.scaling.original_units(self.recorder)
            _save_record(out / RECORD, record, self.start_step if self.resumed else None,
                         learner.step_count)
        if self.scaling is not None:
            self.scaling.save(out / SIDECAR, out / CHECKPOINT)
        if self.metrics is not None:
            save_metrics(out / METRICS, self.metrics)
        manifest = {"stream": self.identity, "consumed": self.consumed,
                    "step_count": learner.step_count, "checkpoint_sha256":
                    _sha256(out / CHECKPOINT)}
        if self.metrics is not None:
            manifest["metrics"] = self.metrics._dump()
        write_atomic(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")

    def report(self, spec, stop, skipped=0):
        """The summary, or one line saying why the run stopped and how to resume; the
        exit code."""
        out, learner = self.out, self.learner
        losses = np.concatenate(self.losses)
        new = losses[self.start_step:]
        tail = new[-max(1, len(new) // 10):] if len(new) else new
        print(f"{spec.network.name}: steps {self.start_step} -> {learner.step_count}; mean loss "
              f"of the last {len(tail)} steps {tail.mean() if len(tail) else float('nan'):.6g}")
        if skipped:
            print(f"skipped {skipped} rows of {self.args.stream} holding NaN or inf "
                  "(--on-bad-row skip)")
        print(f"HL: {hl_settings(learner.hyper)}; {sgd_equivalent(learner.hyper)}")
        if self.metrics is not None:
            print_metrics(self.metrics, self.module, self.scaling is not None,
                          out / METRICS, getattr(self, "metrics_resumed", None))
        if self.scaling is not None:
            print(f"the losses are of the standardised values; scaler: {out / SIDECAR}")
            for name, (target, error) in getattr(self, "predictions", {}).items():
                print(f"{name} in the units of {target} (record.npz): mean |{name} - {target}| "
                      f"over the {self.recorder.rows} new recorded steps {error:.6g}")
        print(f"losses: {out / LOSSES}\ncheckpoint: {out / CHECKPOINT}" +
              (f"\nrecord: {out / RECORD} ({self.recorder.rows} new rows)"
               if self.recorder is not None else ""))
        if stop is None:
            return 0
        code, why = stop
        print(f"hamsym run: {why}; the work up to step {learner.step_count} ({self.consumed} "
              f"samples of {self.args.stream}) is saved in {out}. Resume: "
              f"{_resume_command(self.args, code)}", file=sys.stderr)
        return code


# -- the run folder ---------------------------------------------------------------------

def _claim(out, args):
    """Refuse a run folder that holds another run (unless --resume or --overwrite) or is a
    link (nothing is written outside it)."""
    not_a_link(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"-o {out}: exists and is not a folder")
    found = [name for name in OUTPUTS if (out / name).exists() or (out / name).is_symlink()]
    links = [name for name in found if (out / name).is_symlink()]
    if links:
        raise InputError(f"-o {out}: {', '.join(links)} is a symbolic link; hamsym writes "
                         "only regular files of its own")
    if found and not args.resume and not getattr(args, "overwrite", False):
        raise InputError(f"-o {out}: holds another run ({', '.join(found)}); resume it with "
                         f"--resume {out / CHECKPOINT}, replace it with --overwrite, or choose "
                         "another folder")


def _take_back(created):
    """Remove what a refused run created (folders with what is in them), newest first."""
    import shutil
    for path in reversed(created):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink(missing_ok=True)


def _identity(path, layout):
    """What makes a stream the same stream: its file (path, size, the SHA-256 of its first
    64 KiB) and how it is laid out."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = hashlib.sha256(fh.read(_HEAD)).hexdigest()
    return {"path": str(path.resolve()), "size": path.stat().st_size, "head_sha256": head,
            "layout": json.loads(json.dumps(layout.describe()))}


def _start(args, identity, done, out):
    """The samples of the stream to skip: --skip if given; resuming on the stream the
    checkpoint consumed, what it consumed; else none (another stream, from its start)."""
    if getattr(args, "skip", None) is not None:
        return args.skip
    if not args.resume:
        return 0
    manifest = _manifest(Path(args.resume))
    if manifest is None:                      # a checkpoint without its run.json
        print(f"hamsym run: {args.resume} has no {MANIFEST} beside it saying which stream it "
              f"learned; skipping its {done} steps' samples (--skip N to say otherwise)",
              file=sys.stderr)
        return done
    if manifest["stream"] == identity:
        return manifest["consumed"]
    print(f"hamsym run: {args.stream} is not the stream {args.resume} learned "
          f"({manifest['stream']['path']}): learning it from its first row (--skip N to "
          "say otherwise)", file=sys.stderr)
    return 0


def _manifest(checkpoint):
    """run.json beside the checkpoint, if it belongs to it (else None)."""
    path = checkpoint.with_name(MANIFEST)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(manifest, dict) or manifest.get("checkpoint_sha256") != _sha256(checkpoint):
        return None
    consumed = manifest.get("consumed")
    if not isinstance(consumed, int) or consumed < 0 or not isinstance(manifest.get("stream"),
                                                                      dict):
        return None
    return manifest


def _previous_losses(out, resume, done):
    """The losses of the steps before `done`, from the folder's losses.npy when resuming."""
    if not resume or not (out / LOSSES).is_file():
        return np.empty(0)
    try:
        losses = np.load(out / LOSSES, allow_pickle=False)
    except (OSError, ValueError):
        raise InputError(f"{out / LOSSES}: not a losses file written by hamsym run") from None
    losses = np.asarray(losses, np.float64).reshape(-1)[:done]
    # a checkpoint from elsewhere: the steps before it that this folder never saw are NaN
    return np.concatenate([losses, np.full(done - len(losses), np.nan)])


def _resume_command(args, code):
    words = ["hamsym", "run", args.spec, "--stream", args.stream, "-o", args.output,
             "--resume", str(Path(args.output) / CHECKPOINT)]
    for flag in ("record", "every", "metrics", "baseline", "lags", "horizon", "warmup",
                 "chunk"):
        value = getattr(args, flag, None)
        if value is not None and not (flag == "chunk" and value == 4096):
            words += [f"--{flag}", str(value)]
    if getattr(args, "standardize", None):
        words.append("--standardize")
    for text in getattr(args, "set", None) or ():
        words += ["--set", text]
    if code == BAD_ROW:
        words += ["--on-bad-row", "skip"]
    return " ".join(shlex.quote(w) for w in words)


def _npy(a):
    buffer = io.BytesIO()
    np.save(buffer, a, allow_pickle=False)
    return buffer.getvalue()




def _length(path, done, limit, layout=None):
    """Steps this run will take, when cheap to know (a .npy table), else None."""
    if Path(path).suffix.lower() != ".npy":
        return limit
    windows = 0 if layout is None else layout.steps_back + layout.ahead - 1
    try:
        rows = max(0, np.load(path, mmap_mode="r").shape[0] - windows - done)
    except (OSError, ValueError):
        return limit
    return rows if limit is None else min(rows, limit)


def _save_record(path, recorder, done, upto):
    """record.npz: the recorder's rows of steps before `upto`; resuming (done steps), the
    rows of the earlier run before step `done` come first when it recorded the same keys."""
    arrays = dict(recorder)
    keep = arrays["step"] < upto
    arrays = {k: a[keep] for k, a in arrays.items()}
    if done is not None and path.exists():
        with np.load(path, allow_pickle=False) as old:
            if sorted(old.files) == sorted(arrays):
                before = old["step"] < done
                arrays = {k: np.concatenate([old[k][before], a]) for k, a in arrays.items()}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(path, buffer.getvalue())


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


def _split(blocks, every, step):
    """The blocks cut where the learner's step count reaches a multiple of `every`."""
    for block in blocks:
        start = 0
        while start < len(block[0]):
            cut = min(len(block[0]), start + every - step % every)
            yield tuple(a[start:cut] for a in block)
            step += cut - start
            start = cut


