"""The online standardisation of a `hamsym run`: one Standardizer per input and target,
its state in a sidecar of the checkpoint, and the recorded outputs in original units.

The sidecar (scaler.npz beside checkpoint.npz) holds the statistics, the [stream]
settings and the SHA-256 of the checkpoint written with it, so a resumed run takes
exactly the statistics of the step it resumes from (bit-identical to one run), and a
sidecar left from another run, or a checkpoint written without one, is refused.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from ..codegen.render import write_atomic
from .files import sha256 as _sha256
from .welford import NotFiniteError, Standardizer

SIDECAR = "scaler.npz"


def sidecar(checkpoint):
    """The path of the scaler written with `checkpoint`."""
    return Path(checkpoint).with_name(SIDECAR)


class RunScaling:
    """Standardizers of a run's inputs and targets (stream order), applied to its blocks."""

    def __init__(self, module, stream):
        self.stream = stream
        self.names = list(module.INPUTS) + list(module.TARGETS)
        self.targets = dict(module.TARGETS)
        self.outputs = module.OUTPUTS
        self.scalers = {name: Standardizer(warmup=stream.warmup) for name in self.names}
        self._rows = {name: [] for name in self.targets}   # (steps, centre, scale, y) blocks

    def apply(self, blocks, step, every=None, source="the stream", units=None):
        """The blocks standardised; step: the learner's step of their first row. With
        every, keeps the targets' statistics and values at the steps a Recorder of
        that period records (for original_units). With units (a target's name), each
        block ends with that target as read and the centre and scale of every row
        (Metrics.original_units). source names the stream in errors."""
        for block in blocks:
            out, extra = [], ()
            steps = np.arange(step, step + len(block[0]))
            kept = np.flatnonzero((steps + 1) % every == 0) if every else None
            for name, a in zip(self.names, block):
                try:
                    if name == units:
                        z, centre, scale = self.scalers[name].transform(a, stats=True)
                        extra = (a, centre, scale)
                        if kept is None:
                            out.append(z)
                            continue
                    elif kept is None or name not in self.targets:
                        out.append(self.scalers[name].transform(a))
                        continue
                    else:
                        z, centre, scale = self.scalers[name].transform(a, stats=True)
                except NotFiniteError as err:        # named by the learner's step
                    raise ValueError(f"{source}: the sample of step {step + err.row} has "
                                     f"{err.value} in {name}[{err.column}], not a finite "
                                     "number (it would spoil the standardisation)") from None
                self._rows[name].append((steps[kept], centre[kept], scale[kept], a[kept]))
                out.append(z)
            step += len(block[0])
            yield tuple(out) + extra

    def original_units(self, record):
        """(record with each output of a target's shape mapped back to that target's
        original units, {output: (target, mean |output - target| over the rows)})."""
        record = dict(record)
        report = {}
        for key in list(record):
            if key not in self.outputs:
                continue
            shape = record[key].shape[1:]
            match = [t for t, s in self.targets.items() if tuple(s) == tuple(shape)]
            if len(match) != 1 or not self._rows[match[0]]:
                continue
            steps, centre, scale, y = (np.concatenate(parts) for parts in zip(*self._rows[match[0]]))
            at = np.searchsorted(steps, record["step"])
            if not (at < len(steps)).all() or not (steps[np.minimum(at, len(steps) - 1)]
                                                   == record["step"]).all():
                continue                  # rows this run did not standardise
            rows = record[key].reshape(len(at), -1)
            value = rows * scale[at] + centre[at]
            record[key] = value.reshape(record[key].shape)
            report[key] = (match[0], float(np.abs(value - y[at]).mean()) if len(at) else np.nan)
        return record, report

    # -- the sidecar ----------------------------------------------------------------------
    def save(self, path, checkpoint):
        meta = {"stream": self.stream.describe(), "checkpoint_sha256": _sha256(checkpoint),
                "arrays": self.names}
        arrays = {f"{name}.{key}": value for name, scaler in self.scalers.items()
                  for key, value in scaler.state().items()}
        data = io.BytesIO()
        np.savez(data, _meta=np.array(json.dumps(meta)), **arrays)
        write_atomic(path, data.getvalue())

    def restore(self, path, checkpoint):
        """Take the statistics saved with `checkpoint`; refused (the scalers untouched)
        if the sidecar is missing, belongs to another checkpoint or other settings."""
        path = Path(path)
        if not path.exists():
            raise ValueError(f"{path} is missing: a standardised run resumes from the "
                             f"statistics saved beside its checkpoint {checkpoint}; was that "
                             "run standardised?")
        meta, arrays = _read(path)
        if meta.get("checkpoint_sha256") != _sha256(checkpoint):
            raise ValueError(f"{path} was written with another checkpoint than {checkpoint} "
                             "(another run's, or the run stopped between writing the two)")
        if meta.get("stream") != json.loads(json.dumps(self.stream.describe())):
            raise ValueError(f"{path} was written with the stream settings {meta.get('stream')}; "
                             f"this run has {self.stream.describe()}: resume with the same "
                             "[stream] and options")
        if meta.get("arrays") != self.names:
            raise ValueError(f"{path} standardises {meta.get('arrays')}, this network's stream "
                             f"is {self.names}")
        self.scalers = {name: Standardizer.from_state(
            {key: arrays[f"{name}.{key}"] for key in ("count", "warmup", "mean", "m2")})
            for name in self.names}


def refuse_unscaled_resume(checkpoint):
    """A checkpoint written by a standardised run resumed without standardisation would
    learn from values of other units: refused."""
    path = sidecar(checkpoint)
    if not path.exists():
        return
    try:
        meta, _ = _read(path)
    except ValueError:
        return
    if meta.get("checkpoint_sha256") == _sha256(checkpoint):
        raise ValueError(f"{checkpoint} was written by a standardised run ({path}): resume it "
                         "with --standardize (or standardize = true in [stream])")


def _read(path):
    try:
        with np.load(path, allow_pickle=False) as f:
            return json.loads(str(f["_meta"])), {k: f[k] for k in f.files if k != "_meta"}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a scaler written by hamsym run ({err})") from None


