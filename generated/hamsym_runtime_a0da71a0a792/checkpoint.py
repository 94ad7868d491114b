"""Checkpoints: one .npz file (a zip of .npy arrays and a JSON header), written whole or
not at all, byte for byte the same for the same learner, and read back only after all
of it was checked.

Compatibility is keyed on the module's STRUCTURE (network, schedule, dtype and kernels:
its source less its default hyperparameters), so a checkpoint resumes in a module
regenerated with other default values; the checkpoint's own values come back with it.
Nothing is ever unpickled.
"""

import io
import json
import math
import os
import stat
import zipfile

import numpy as np

from .files import write_atomic
from .per_weight import follows

MAGIC = "hamsym checkpoint"
VERSION = 1
_HEADER = "_meta.npy"
_EPOCH = (1980, 1, 1, 0, 0, 0)          # zip entries carry no clock time: same bytes each time


class CheckpointError(ValueError):
    """A file that cannot be restored here; the message names the file and the field."""

    def __init__(self, path, message):
        super().__init__(f"{path}: {message}")
        self.path = os.fspath(path)


def write(path, tables, kind, meta, arrays):
    """Write meta (JSON-able) and arrays ({name: array}) to path as one checkpoint of
    this module; returns the path."""
    header = dict(meta, format=MAGIC, version=VERSION, kind=kind, module=tables.module,
                  spec_hash=tables.spec_hash, structure=tables.structure)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
        for name, a in [("_meta", np.array(json.dumps(header, sort_keys=True)))] + \
                sorted(arrays.items()):
            entry = zipfile.ZipInfo(name + ".npy", _EPOCH)
            entry.external_attr = 0o644 << 16
            with z.open(entry, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asarray(a, order="C"), allow_pickle=False)
    write_atomic(path, buffer.getvalue())
    return path


def read(path, tables, kind):
    """(meta, {name: array}) of the checkpoint at path, checked to be a checkpoint of
    this module's structure and of this kind (a learner, an ensemble, a rank); nothing
    else is checked here (the learner checks what it reads against its declaration)."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise CheckpointError(path, f"cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(path, "not a hamsym checkpoint (not a regular file)")
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if _HEADER not in names:
                raise CheckpointError(path, "not a hamsym checkpoint (no header)")
            meta = _header(path, z)
            _compatible(path, meta, tables, kind)
            arrays = {}
            for name in names:
                if name == _HEADER:
                    continue
                if not name.endswith(".npy"):
                    raise CheckpointError(path, f"unknown entry {name!r}")
                arrays[name[:-4]] = _array(path, z, name)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, RuntimeError,
            NotImplementedError) as exc:
        raise CheckpointError(path, f"not a hamsym checkpoint ({type(exc).__name__}: "
                                    f"{exc})") from None
    return meta, arrays


def _header(path, z):
    with z.open(_HEADER) as fh:
        a = np.lib.format.read_array(fh, allow_pickle=False)
    try:
        meta = json.loads(str(a[()]) if a.shape == () else "")
    except (json.JSONDecodeError, TypeError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != MAGIC:
        raise CheckpointError(path, "not a hamsym checkpoint (no valid header)")
    if meta.get("version") != VERSION:
        raise CheckpointError(path, f"version: {meta.get('version')!r}; this runtime reads "
                                    f"version {VERSION}")
    return meta


def _compatible(path, meta, tables, kind):
    found = meta.get("kind")
    if found != kind:
        names = {"learner": "one learner: use Integrator.restore",
                 "ensemble": "an ensemble: use Ensemble.restore",
                 "rank": "one rank of a distributed run: use DistributedIntegrator.restore"}
        raise CheckpointError(path, f"kind: holds {names.get(found, repr(found))}")
    if meta.get("structure") != tables.structure:
        raise CheckpointError(
            path, f"structure: saved by module {meta.get('module')} (SPEC_HASH "
                  f"{meta.get('spec_hash')}); this is {tables.module} (SPEC_HASH "
                  f"{tables.spec_hash}): another network, schedule, dtype or hamsym version "
                  "(a module that differs only in default hyperparameters would do)")


def _array(path, z, name):
    with z.open(name) as fh:
        try:
            a = np.lib.format.read_array(fh, allow_pickle=False)
        except ValueError as exc:
            raise CheckpointError(path, f"{name[:-4]}: {exc}") from None
    if a.dtype.kind not in "f":
        raise CheckpointError(path, f"{name[:-4]}: dtype {a.dtype}, expected floats")
    return a


# -- checks of what a learner reads -------------------------------------------------------

def fields(path, meta, expected):
    """meta's fields, exactly those of `expected` ({name: check(path, name, value)})."""
    extra = sorted(set(meta) - set(expected) - {"format", "version", "kind", "module",
                                                 "spec_hash", "structure"})
    if extra:
        raise CheckpointError(path, f"unknown field(s) {extra}")
    missing = sorted(set(expected) - set(meta))
    if missing:
        raise CheckpointError(path, f"field(s) {missing} missing")
    return {name: check(path, name, meta[name]) for name, check in expected.items()}


def arrays_of(path, arrays, declared, dtype, lead=()):
    """{kind: {name: array}} from the checkpoint's arrays "kind.name", each exactly of its
    declared shape (lead + shape) and dtype; declared: {kind: {name: shape}}."""
    want = {f"{kind}.{name}": lead + shape for kind, table in declared.items()
            for name, shape in table.items()}
    missing = sorted(set(want) - set(arrays))
    if missing:
        raise CheckpointError(path, f"array(s) {missing} missing")
    extra = sorted(set(arrays) - set(want))
    if extra:
        raise CheckpointError(path, f"unknown array(s) {extra}")
    out = {kind: {} for kind in declared}
    for key, shape in want.items():
        a = arrays[key]
        if a.shape != shape:
            raise CheckpointError(path, f"{key}: shape {a.shape}, declared {shape}")
        if a.dtype != dtype:
            raise CheckpointError(path, f"{key}: dtype {a.dtype}, the checkpoint says {dtype}")
        kind, name = key.split(".", 1)
        out[kind][name] = a
    return out


def count(path, name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(path, f"{name}: {value!r}, expected an integer >= 0")
    return value


def flag(path, name, value):
    if not isinstance(value, bool):
        raise CheckpointError(path, f"{name}: {value!r}, expected true or false")
    return value


def dtype_name(path, name, value):
    if value not in ("float32", "float64"):
        raise CheckpointError(path, f"{name}: {value!r}, expected 'float32' or 'float64'")
    return np.dtype(value)


def hyper_values(known, per_learner=None):
    """A check of the hyperparameters: exactly the module's names, each a finite real
    (theta_neurons may be null); per_learner=K: each a list of K of them."""
    def check(path, name, value):
        if not isinstance(value, dict):
            raise CheckpointError(path, f"{name}: expected a table of values")
        unknown = sorted(set(value) - set(known))
        missing = sorted(set(known) - set(value))
        if unknown or missing:
            raise CheckpointError(path, f"{name}: " + "; ".join(
                ([f"unknown {unknown}"] if unknown else []) +
                ([f"missing {missing}"] if missing else [])))
        for key, v in value.items():
            values = v if per_learner is not None else [v]
            if per_learner is not None and (not isinstance(v, list) or len(v) != per_learner):
                raise CheckpointError(path, f"{name}.{key}: expected {per_learner} values")
            for one in values:
                if one is None and follows(key):
                    continue
                if isinstance(one, bool) or not isinstance(one, (int, float)) or \
                        not math.isfinite(one):
                    raise CheckpointError(path, f"{name}.{key}: {one!r}, expected a finite "
                                                "number")
        return value
    return check
