"""Chosen columns of a table stored in a file, read a block at a time.

A .csv is read line by line, so the file may be longer than memory and may hold
columns that are not numbers (dates, labels) as long as none of them is chosen; its
first line is a header when a chosen field of it is not a number (and must be one
when columns are chosen by name). A .npy table is memory-mapped; a .npz must hold the
table as its only array. Errors name the file, and for a .csv the line.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np


def column_names(path):
    """The header of a .csv file (its first line's fields), or None (no header, or not a .csv)."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return None
    first = _first_line(path)
    fields = _fields(first)
    return fields if not all(_is_number(f) for f in fields) else None


def column_count(path):
    """How many columns the table in the file has."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return len(_fields(_first_line(path)))
    table = _table(path)
    return 1 if table.ndim == 1 else table.shape[1]


def resolve(path, columns):
    """0-based column numbers for `columns` (names of the header, or numbers)."""
    names = None
    out = []
    count = column_count(path)
    for c in columns:
        if isinstance(c, str):
            if names is None:
                names = column_names(path)
                if names is None:
                    raise ValueError(f"{path}: column {c!r} is asked for by name, but the file "
                                     "has no header line; give 0-based column numbers")
            if c not in names:
                raise ValueError(f"{path}: no column {c!r}; its header has "
                                 f"{', '.join(map(repr, names))}")
            out.append(names.index(c))
        elif isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < count:
            out.append(int(c))
        else:
            raise ValueError(f"{path}: column {c!r} is not one of its {count} columns "
                             f"(0-based numbers 0..{count - 1}, or names of the header)")
    return out


def column_blocks(path, columns, chunk=4096):
    """Blocks (m, len(columns)) of the chosen columns (0-based numbers, from resolve)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv_blocks(path, list(columns), chunk)
        return
    table = _table(path)
    table = table.reshape(len(table), -1)
    for start in range(0, len(table), chunk):
        yield np.array(table[start:start + chunk][:, columns], dtype=float)


def _table(path):
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, mmap_mode="r")
    if suffix == ".npz":
        with np.load(path) as archive:
            if len(archive.files) != 1:
                raise ValueError(f"{path}: arrays {archive.files}; a stream of columns needs "
                                 "the table as the only array")
            return archive[archive.files[0]]
    raise ValueError(f"{path}: unknown stream format {suffix!r}; use .npy, .npz or .csv")


def _csv_blocks(path, columns, chunk):
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
        fields = _fields(first)
        header = not all(_is_number(fields[c]) for c in columns if c < len(fields))
        rows = [] if header else [first]
        line = 2 if header else 1              # the file's line number of rows[0]
        while True:
            rows += list(itertools.islice(fh, chunk - len(rows)))
            if not rows:
                return
            try:
                block = np.loadtxt(rows, delimiter=",", usecols=columns, ndmin=2)
            except (ValueError, IndexError):
                raise ValueError(_bad_line(path, rows, line, columns)) from None
            yield block
            line += len(rows)
            rows = []


def _bad_line(path, rows, line, columns):
    """The message for the first row of a block that does not parse."""
    for k, row in enumerate(rows):
        if not row.strip():
            continue                           # loadtxt skips blank lines
        fields = _fields(row)
        missing = [c for c in columns if c >= len(fields)]
        if missing:
            return (f"{path}, line {line + k}: {len(fields)} fields, but column {missing[0]} "
                    "is read")
        bad = [c for c in columns if not _is_number(fields[c])]
        if bad:
            return f"{path}, line {line + k}, column {bad[0]}: {fields[bad[0]]!r} is not a number"
    return f"{path}: lines {line} to {line + len(rows) - 1} cannot be read as numbers"


def _first_line(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.readline()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (UTF-8), so not a .csv table") from None


def _fields(line):
    return [f.strip() for f in line.rstrip("\r\n").split(",")]


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False
