"""Sweeps split over machines: `hamsym sweep --shard i/N` runs one slice of the grid's
rows, `hamsym sweep-merge DIR` joins the N slices into the table one machine writes.

Shard i of N takes the rows K*i//N .. K*(i+1)//N - 1 of the grid (K rows, in the order
of the unsharded table), so the shards in order are the table. Each writes its files
into DIR/shard-i-of-N/ with shard.json: the spec file's SHA-256, the module's
SPEC_HASH, the grid, seeds, window, chunk, stream settings, the SHA-256 of the stream
rows it learned, and whether it finished. A learner's steps do not depend on which
others share its ensemble, so the merged table equals the unsharded one bit for bit.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from pathlib import Path

import numpy as np

from ..codegen.render import write_atomic

MANIFEST = "shard.json"
TABLE = "sweep.csv"
CURVES = "curves.npy"
_FOLDER = re.compile(r"^shard-(\d+)-of-(\d+)$")
# what every shard of one sweep must share
_SAME = ("spec_sha256", "spec_hash", "grid", "seeds", "window", "chunk", "steps", "stream",
         "stream_sha256", "stream_rows", "columns", "rows_total")


def parse_shard(text):
    """"i/N" (0 <= i < N) -> (i, N)."""
    found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not found or not int(found[1]) < int(found[2]):
        raise ValueError(f"--shard {text!r}: expected i/N with 0 <= i < N, e.g. --shard 0/8 "
                         "(Slurm: --shard $SLURM_ARRAY_TASK_ID/8 with --array=0-7)")
    return int(found[1]), int(found[2])


def shard_rows(total, i, n):
    """The grid rows of shard i of n, as a range; refused when a shard would be empty."""
    if n > total:
        raise ValueError(f"--shard {i}/{n}: the grid has {total} rows, so at most {total} "
                         "shards")
    return range(total * i // n, total * (i + 1) // n)


def folder(out, i, n):
    return Path(out) / f"shard-{i}-of-{n}"


class StreamDigest:
    """SHA-256 of the rows of a stream's blocks (each row's values in order, float64), the
    same however the stream is cut into blocks."""

    def __init__(self):
        self._sha, self.rows = hashlib.sha256(), 0

    def feed(self, blocks):
        for block in blocks:
            rows = np.hstack([np.asarray(a, np.float64).reshape(len(a), -1) for a in block])
            self._sha.update(np.ascontiguousarray(rows).tobytes())
            self.rows += len(rows)
            yield block

    def hexdigest(self):
        return self._sha.hexdigest()


def write_manifest(path, **facts):
    write_atomic(path, json.dumps(facts, indent=1, sort_keys=True) + "\n")




def merge(directory):
    """(table text, curves, facts of shard 0) of the shards in `directory`; refused with
    a message naming the shard when one is missing, unfinished or of another sweep."""
    directory = Path(directory)
    found = {}
    for sub in sorted(p for p in directory.iterdir() if p.is_dir()) if directory.is_dir() else []:
        match = _FOLDER.match(sub.name)
        if match:
            found.setdefault(int(match[2]), {})[int(match[1])] = sub
    if not found:
        raise ValueError(f"{directory}: no shard folders (shard-i-of-N, written by "
                         "hamsym sweep --shard i/N -o " f"{directory})")
    if len(found) > 1:
        raise ValueError(f"{directory}: shards of different splits "
                         f"({', '.join(f'of {n}' for n in sorted(found))}); keep one split")
    (n, shards), = found.items()
    facts = []
    for i in range(n):
        name = f"shard {i}/{n}"
        if i not in shards:
            raise ValueError(f"{name} is missing: no {folder(directory, i, n)} (not run yet, "
                             "or it failed)")
        path = shards[i] / MANIFEST
        if not path.exists():
            raise ValueError(f"{name} ({shards[i]}) has no {MANIFEST}: it is still running, "
                             "or it stopped before writing its results")
        try:
            fact = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"{name}: {path} cannot be read ({err})") from None
        if not isinstance(fact, dict) or {"shard", "rows", *_SAME} - set(fact):
            raise ValueError(f"{name}: {path} is not a shard.json written by hamsym sweep "
                             "--shard (keys are missing)")
        if fact.get("shard") != [i, n]:
            raise ValueError(f"{name}: {path} says it is shard {fact.get('shard')}")
        if not fact.get("complete"):
            raise ValueError(f"{name} ({shards[i]}) was interrupted after "
                             f"{fact.get('stream_rows')} rows of the stream: run it again")
        for key in _SAME:
            if i and fact.get(key) != facts[0].get(key):
                raise ValueError(f"{name} ({shards[i]}) is not of the same sweep as shard 0/{n}: "
                                 f"{_differs(key, fact.get(key), facts[0].get(key))}")
        facts.append(fact)
    header, rows, curves = None, [], []
    for i, fact in enumerate(facts):
        name = f"shard {i}/{n}"
        table = list(csv.reader(io.StringIO((shards[i] / TABLE).read_text(encoding="utf-8"))))
        if header is None:
            header = table[0]
        want = fact["rows"][1] - fact["rows"][0]
        if table[0] != header or len(table) - 1 != want:
            raise ValueError(f"{name}: {shards[i] / TABLE} has {len(table) - 1} rows of columns "
                             f"{table[0]}; expected {want} of {header}")
        rows += table[1:]
        curve = np.load(shards[i] / CURVES)
        if curve.shape[0] != want or curves and curve.shape[1] != curves[0].shape[1]:
            raise ValueError(f"{name}: {shards[i] / CURVES} has shape {curve.shape}")
        curves.append(curve)
    if [r for f in facts for r in range(*f["rows"])] != list(range(facts[0]["rows_total"])):
        raise ValueError(f"{directory}: the shards' rows do not cover the grid's "
                         f"{facts[0]['rows_total']} rows once each")
    text = io.StringIO()
    csv.writer(text).writerows([header] + rows)
    return text.getvalue(), np.concatenate(curves, axis=0), facts[0]


def _differs(key, got, want):
    what = {"spec_sha256": "another spec file", "spec_hash": "another generated module",
            "stream_sha256": "another stream (or another --steps)", "stream_rows":
            "another number of stream rows", "stream": "other [stream] settings",
            "rows_total": "another grid size"}.get(key, f"another {key}")
    if key.endswith("sha256") or key == "spec_hash":
        got, want = str(got)[:12], str(want)[:12]
    return f"{what} ({key} {got!r}, shard 0 has {want!r})"


def best_row(text, names):
    """The line that `hamsym sweep` prints for the best row of a merged table."""
    rows = list(csv.DictReader(io.StringIO(text)))
    finite = [r for r in rows if not math.isnan(float(r["final_loss"]))]
    if not finite:
        return None
    best = min(finite, key=lambda r: float(r["final_loss"]))
    return "best: " + ", ".join(f"{name} = {float(best[name]):g}" for name in names)
