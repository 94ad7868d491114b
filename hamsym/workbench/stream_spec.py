"""The [stream] table of a spec file: which file columns feed the inputs and the
targets, lagged windows of a time series, and online standardisation.

    [stream]
    inputs = ["value"]     # file columns (header names or 0-based numbers); default: all
    targets = ["value"]    # default: the inputs' columns (with a horizon), else the others
    lags = 8               # the inputs are each column's last 8 values, oldest first
    horizon = 1            # the target is 1 step after the newest input (default 1 with lags)
    standardize = true     # Welford: each value standardised with the statistics before it
    warmup = 1000          # the statistics stop (freeze) after 1000 rows

Without lags, inputs or targets, the file is read as before: its columns are the
inputs, then the targets, in declaration order. `hamsym run` and `hamsym sweep` take
--lags, --horizon, --standardize and --warmup too; they override the table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import streams
from .columns import column_blocks, column_count, column_names, resolve
from .lags import lagged

KEYS = ("inputs", "targets", "lags", "horizon", "standardize", "warmup")


@dataclass(frozen=True)
class StreamSpec:
    """What [stream] (and the command's options) say; `origin` names them in errors."""

    inputs: tuple | None = None
    targets: tuple | None = None
    lags: int | None = None
    horizon: int | None = None
    standardize: bool = False
    warmup: int | None = None
    origin: str = "[stream]"

    @property
    def windows(self):
        """True when the file's columns are chosen or lagged (not the plain layout)."""
        return not (self.inputs is None and self.targets is None and self.lags is None
                    and self.horizon is None)

    @property
    def steps_back(self):
        return 1 if self.lags is None else self.lags

    @property
    def ahead(self):
        return self.horizon if self.horizon is not None else (1 if self.lags is not None else 0)

    def describe(self):
        """The settings that a resumed run must share, as JSON-able values."""
        return {"inputs": None if self.inputs is None else list(self.inputs),
                "targets": None if self.targets is None else list(self.targets),
                "lags": self.steps_back, "horizon": self.ahead,
                "standardize": self.standardize, "warmup": self.warmup}

    def with_options(self, *, lags=None, horizon=None, standardize=None, warmup=None):
        """This spec with the command line's options (None: not given) in place of the
        table's values."""
        given = {k: v for k, v in (("lags", lags), ("horizon", horizon),
                                   ("standardize", standardize), ("warmup", warmup))
                 if v is not None}
        for key, least in (("lags", 1), ("horizon", 0), ("warmup", 1)):
            if key in given and given[key] < least:
                raise ValueError(f"--{key} {given[key]}: must be at least {least}")
        if "warmup" in given and not given.get("standardize", self.standardize):
            raise ValueError("--warmup freezes the standardisation's statistics: give "
                             "--standardize too (or standardize = true in [stream])")
        if not given:
            return self
        options = ", ".join(f"--{k} {v}" if not isinstance(v, bool) else
                            f"--{'' if v else 'no-'}standardize" for k, v in given.items())
        return replace(self, **given, origin=f"{self.origin} with {options}")

    def blocks(self, path, module, chunk=4096, on_bad_row="stop"):
        """Blocks of the stream file as tuples of arrays, one per input and target of
        `module` (declaration order), laid out as this spec says. on_bad_row: what a row
        holding NaN or inf does (streams.from_file); lagged windows share rows, so there
        a bad row always stops the stream."""
        names = list(module.INPUTS) + list(module.TARGETS)
        sizes = [int(np.prod(s)) for s in {**module.INPUTS, **module.TARGETS}.values()]
        if not self.windows:
            return streams.from_file(path, sizes, chunk=chunk, names=names,
                                     on_bad_row=on_bad_row)
        if on_bad_row != "stop":
            raise ValueError(f"--on-bad-row {on_bad_row}: a lagged stream's windows share "
                             "rows, so a bad row cannot be skipped alone; clean the file or "
                             "use --on-bad-row stop")
        cols_in, cols_out = self._columns(path)
        n_in = sum(sizes[:len(module.INPUTS)])
        n_out = sum(sizes[len(module.INPUTS):])
        labels = column_names(path)
        show = (lambda cols: ", ".join(repr(labels[c]) if labels else str(c) for c in cols))
        if self.steps_back * len(cols_in) != n_in:
            raise ValueError(
                f"{self.origin}: {self.steps_back} lag{'s' * (self.steps_back > 1)} of "
                f"{len(cols_in)} input column{'s' * (len(cols_in) > 1)} ({show(cols_in)}) make "
                f"{self.steps_back * len(cols_in)} input values, but the network's inputs "
                f"take {n_in} ({_sizes(module.INPUTS)})")
        if len(cols_out) != n_out:
            raise ValueError(
                f"{self.origin}: {len(cols_out)} target column{'s' * (len(cols_out) > 1)} "
                f"({show(cols_out)}), but the network's targets take {n_out} "
                f"({_sizes(module.TARGETS)})")
        return self._lagged(path, cols_in, cols_out, sizes, len(module.INPUTS), chunk)

    def _lagged(self, path, cols_in, cols_out, sizes, inputs, chunk):
        read = sorted(set(cols_in) | set(cols_out))     # only the columns used are parsed
        where = {c: i for i, c in enumerate(read)}
        edges = np.cumsum([0] + sizes)
        for U, Y in lagged(column_blocks(path, read, chunk), self.steps_back, self.ahead,
                           inputs=[where[c] for c in cols_in],
                           targets=[where[c] for c in cols_out]):
            row = np.hstack([U, Y])
            yield tuple(row[:, a:b] for a, b in zip(edges, edges[1:]))

    def _columns(self, path):
        count = column_count(path)
        everything = list(range(count))
        cols_in = None if self.inputs is None else resolve(path, self.inputs)
        cols_out = None if self.targets is None else resolve(path, self.targets)
        if self.ahead >= 1:
            cols_in = everything if cols_in is None else cols_in
            cols_out = cols_in if cols_out is None else cols_out
        else:                     # the target of a row is in the row: not among the inputs
            if cols_in is None and cols_out is None:
                raise ValueError(f"{self.origin}: with horizon 0 the targets are columns of "
                                 "the same row: say which (targets = [...])")
            cols_in = [c for c in everything if c not in cols_out] if cols_in is None else cols_in
            cols_out = [c for c in everything if c not in cols_in] if cols_out is None else cols_out
        for what, cols in (("inputs", cols_in), ("targets", cols_out)):
            if not cols:
                raise ValueError(f"{self.origin}: no column is left for the {what} of {path}")
        return cols_in, cols_out


def _sizes(arrays):
    return ", ".join(f"{name}: {int(np.prod(shape))}" for name, shape in arrays.items())


def read_table(table, source, fail):
    """The StreamSpec of a parsed [stream] table; fail(key, message) raises the spec's
    error naming the file and key."""
    if not isinstance(table, dict):
        fail("stream", f"expected a table [stream], got {type(table).__name__}")
    for key in table:
        if key not in KEYS:
            fail(f"[stream] {key}", f"unknown key; known: {', '.join(KEYS)}")
    given = {}
    for key in ("inputs", "targets"):
        if key in table:
            cols = table[key]
            if isinstance(cols, (str, int)) and not isinstance(cols, bool):
                cols = [cols]
            if not (isinstance(cols, list) and cols and all(
                    isinstance(c, str) or isinstance(c, int) and not isinstance(c, bool) and c >= 0
                    for c in cols)):
                fail(f"[stream] {key}", "expected a list of column names (the header's) or "
                     f'0-based column numbers, e.g. ["value"] or [0], got {cols!r}')
            if len(set(cols)) != len(cols):
                fail(f"[stream] {key}", f"a column is repeated: {cols!r}")
            given[key] = tuple(cols)
    for key, least in (("lags", 1), ("horizon", 0), ("warmup", 1)):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                fail(f"[stream] {key}", f"expected an integer >= {least}, got {value!r}")
            given[key] = value
    if "standardize" in table:
        if not isinstance(table["standardize"], bool):
            fail("[stream] standardize", f"expected true or false, got {table['standardize']!r}")
        given["standardize"] = table["standardize"]
    if "warmup" in given and not given.get("standardize"):
        fail("[stream] warmup", "freezes the standardisation's statistics: set "
             "standardize = true too")
    return StreamSpec(**given, origin=f"{source}: [stream]" if table else str(source))
