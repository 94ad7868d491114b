"""Stream files (.npy, .npz, .csv), checked where they enter, then read a chunk at a time.

Opening a file checks what can be checked without reading it all: that it is a
regular file with data, its format, its element type (real numbers only: a complex
stream would lose its imaginary part), its width against the arrays a step takes.
Reading checks every row: a cell that is not a number, a row of another width, and
a row holding NaN or inf are refused where they are, naming the file and the row
(for a .csv, its line in the file). A row that is not finite is bad data, not
divergence: with on_bad_row="stop" the stream yields the rows before it and raises
BadRowError; with "skip" it drops the row and counts it (`FileStream.skipped`).
Anything else that goes wrong inside NumPy or zipfile on a damaged file is
reported as a StreamError naming the file.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..errors import BadRowError, StreamError
from .files import regular_file

ON_BAD_ROW = ("stop", "skip")
MAX_CHUNK = 1 << 24            # samples per block: a block is held in memory
MAX_LINE = 1 << 20             # bytes in one .csv line
CHECKED_NOW = 1024             # .csv lines parsed when the file is opened


def split(table, sizes):
    """Columns of a (T, sum(sizes)) block as a tuple of (T, size) arrays."""
    edges = np.cumsum([0] + list(sizes))
    if table.shape[1] != edges[-1]:
        raise ValueError(f"{table.shape[1]} columns, but the stream's arrays need {edges[-1]} "
                         f"({' + '.join(map(str, sizes))})")
    return tuple(table[:, a:b] for a, b in zip(edges, edges[1:]))


def from_file(path, sizes, *, chunk=4096, names=None, on_bad_row="stop"):
    """A stream stored in a file, read a chunk at a time: an iterable of blocks.

    sizes: the widths of the arrays one step takes, e.g. [4, 2] for u (4) and y (2);
    .npy (one (T, sum(sizes)) table, memory-mapped) and .csv (the same table, read
    line by line; a first line of names, blank lines and # comments are skipped) are
    split by columns. A .npz holds one array per name (names=["u", "y"]) or the table
    as its only array. The file is checked now (StreamError if it cannot be a stream); its
    rows as they are read. on_bad_row: "stop" or "skip" a row holding NaN or inf.
    """
    return FileStream(path, sizes, chunk=chunk, names=names, on_bad_row=on_bad_row)


class FileStream:
    """The blocks of a stream file; `skipped` counts the rows dropped by on_bad_row="skip"
    and `rows` the data rows read so far (skipped ones included)."""

    def __init__(self, path, sizes, *, chunk=4096, names=None, on_bad_row="stop"):
        if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= MAX_CHUNK:
            raise StreamError(f"chunk {chunk!r}: expected an integer from 1 to {MAX_CHUNK}")
        if on_bad_row not in ON_BAD_ROW:
            raise StreamError(f"on_bad_row {on_bad_row!r}: expected one of {', '.join(ON_BAD_ROW)}")
        self.path = regular_file(path, "stream", StreamError)
        self.sizes, self.chunk, self.on_bad_row = [int(s) for s in sizes], chunk, on_bad_row
        self.names = list(names) if names else None
        self.skipped = self.rows = 0
        suffix = self.path.suffix.lower()
        if suffix not in (".npy", ".npz", ".csv"):
            self.fail(f"unknown stream format {suffix!r}; use .npy, .npz or .csv")
        self.format = suffix[1:]
        self._arrays = getattr(self, "_open_" + self.format)()

    def fail(self, message, row=None, line=None):
        where = f", line {line}" if line is not None else f", row {row}" if row is not None else ""
        raise StreamError(f"{self.path}{where}: {message}", path=self.path, row=row, line=line)

    def _need(self):
        named = self.names and len(self.names) == len(self.sizes)
        return " + ".join(f"{n}: {s}" if named else str(s) for n, s in
                          zip(self.names or self.sizes, self.sizes))

    def _check_table(self, a, what):
        """a (an array of the file) as a (T, n) table of real numbers, or refused."""
        if a.dtype.names is not None or a.dtype.kind not in "biuf":
            kind = {"c": "complex numbers", "O": "Python objects", "U": "text",
                    "S": "bytes"}.get(a.dtype.kind, f"elements of type {a.dtype}")
            self.fail(f"{what} holds {kind}; hamsym learns from real numbers only")
        if a.ndim == 0:
            self.fail(f"{what} is a single number, not a table of rows")
        if len(a) == 0:
            self.fail(f"{what} has no rows: the stream is empty")
        return a.reshape(len(a), -1) if a.ndim != 2 else a

    # -- opening: the checks made before any row is learned -----------------------------------

    def _open_npy(self):
        try:
            table = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except Exception as err:            # NumPy's parser fails on damaged files in many ways
            self.fail(f"not a readable .npy file ({_reason(err)})")
        if not isinstance(table, np.ndarray):      # a .npz archive under a .npy name
            table.close()
            self.fail("not a .npy array file (an .npz archive?)")
        table = self._check_table(table, "the array")
        self._width(table.shape[1], "the array has")
        return [table]

    def _open_npz(self):
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                files = list(archive.files)
                if self.names and all(n in files for n in self.names):
                    chosen = self.names
                elif len(files) == 1:
                    chosen = files
                else:
                    self.fail(f"arrays {files}; expected "
                              + (f"{self.names} or " if self.names else "") + "one table")
                arrays = {n: archive[n] for n in chosen}
        except StreamError:
            raise
        except MemoryError:
            self.fail("an array of the archive is larger than the memory")
        except Exception as err:            # zipfile, zlib and NumPy fail in many ways
            self.fail(f"not a readable .npz archive ({_reason(err)})")
        tables = [self._check_table(a, f"array {n!r}") for n, a in arrays.items()]
        lengths = {n: len(t) for n, t in zip(arrays, tables)}
        if len(set(lengths.values())) > 1:
            self.fail(f"arrays of different lengths: {lengths}")
        if len(tables) == 1:
            self._width(tables[0].shape[1], "the array has")
            return tables
        widths = [t.shape[1] for t in tables]
        if widths != self.sizes:
            self.fail(f"arrays {list(arrays)} have widths {widths}; the stream needs "
                      f"{self._need()}")
        return tables

    def _open_csv(self):
        lines = self._lines()
        rows = list(itertools.islice(lines, min(self.chunk, CHECKED_NOW)))
        lines.close()
        if not rows:
            self.fail("no data rows: the stream is empty")
        line, text = rows[0]
        self._width(len(text.split(",")), "the first row has", line=line)
        self._parse(rows)          # a bad file mostly shows in its first lines: before any work
        return None

    def _width(self, columns, what, line=None):
        if columns != sum(self.sizes):
            self.fail(f"{what} {columns} column{'s' * (columns != 1)}; the stream needs "
                      f"{sum(self.sizes)} ({self._need()})", line=line)

    # -- reading ------------------------------------------------------------------------------

    def __iter__(self):
        blocks = self._csv_blocks() if self.format == "csv" else self._array_blocks()
        for start, block, lines in blocks:
            yield from self._finite(start, block, lines)

    def _array_blocks(self):
        length = len(self._arrays[0])
        for start in range(0, length, self.chunk):
            parts = [np.asarray(a[start:start + self.chunk], dtype=float) for a in self._arrays]
            yield start, np.hstack(parts) if len(parts) > 1 else parts[0], None

    def _finite(self, start, block, lines):
        """The block split into the stream's arrays, with its rows that are not finite
        stopped at or dropped."""
        self.rows = start + len(block)
        good = np.isfinite(block).all(axis=1)
        if good.all():
            yield split(block, self.sizes)
            return
        if self.on_bad_row == "skip":
            self.skipped += int((~good).sum())
            if good.any():
                yield split(block[good], self.sizes)
            return
        i = int(np.argmin(good))
        if i:
            yield split(block[:i], self.sizes)
        column = int(np.argmin(np.isfinite(block[i])))
        row, line = start + i, None if lines is None else lines[i]
        where = f"line {line} (data row {row})" if line is not None else f"row {row}"
        raise BadRowError(f"{self.path}, {where}: {block[i, column]} in column {column}"
                          f"{self._column_name(column)}: the data must be finite numbers; "
                          "--on-bad-row skip (on_bad_row=\"skip\") drops such rows",
                          path=self.path, row=row, line=line, column=column)

    def _column_name(self, column):
        if not self.names or len(self.names) != len(self.sizes):
            return ""
        for name, size in zip(self.names, self.sizes):
            if column < size:
                return f" ({name}[{column}])" if size > 1 else f" ({name})"
            column -= size
        return ""

    def _lines(self):
        """(line number, text) of the data lines of the .csv: the header (a first line
        with no number in it), blank lines and # comments left out."""
        try:
            fh = open(self.path, "rb")
        except OSError as err:
            self.fail(f"cannot read it: {err.strerror or err}")
        with fh:
            number, first = 0, True
            while True:
                raw = fh.readline(MAX_LINE + 1)
                if not raw:
                    return
                number += 1
                if len(raw) > MAX_LINE:
                    self.fail(f"a line longer than {MAX_LINE} bytes", line=number)
                try:
                    text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as err:
                    self.fail(f"not UTF-8 text (byte {err.start + 1} of the line)", line=number)
                text = text.split("#", 1)[0].strip()
                if not text:
                    continue
                if first:
                    first = False
                    if _is_header(text):
                        continue
                yield number, text

    def _csv_blocks(self):
        lines, start = self._lines(), 0
        while True:
            rows = []
            for item in lines:
                rows.append(item)
                if len(rows) == self.chunk:
                    break
            if not rows:
                return
            yield start, self._parse(rows), [n for n, _ in rows]
            start += len(rows)
            if len(rows) < self.chunk:
                return

    def _parse(self, rows):
        """The rows' numbers as a (len(rows), width) table; a bad cell is named by its line."""
        width = sum(self.sizes)
        try:
            block = np.loadtxt([text for _, text in rows], delimiter=",", ndmin=2,
                               comments=None, dtype=float)
            if block.shape == (len(rows), width):
                return block
        except ValueError:
            pass
        # the exact line at fault, and the same rules as loadtxt where it passed
        out = np.empty((len(rows), width))
        for i, (number, text) in enumerate(rows):
            cells = text.split(",")
            if len(cells) != width:
                self.fail(f"{len(cells)} values; the stream needs {width} ({self._need()})",
                          line=number)
            for j, cell in enumerate(cells):
                out[i, j] = _number(cell, lambda why: self.fail(f"column {j}: {why}", line=number))
        return out


def _number(cell, fail):
    cell = cell.strip()
    if not cell:
        fail("an empty cell")
    try:
        return float(cell)
    except ValueError:
        pass
    try:
        complex(cell)
    except ValueError:
        fail(f"{cell[:40]!r} is not a number")
    fail(f"{cell[:40]!r} is a complex number; hamsym learns from real streams only")


def _is_header(text):
    """A first line none of whose cells is a number names the columns; one with some
    numbers is data (a bad cell in it is reported, not skipped as a header)."""
    for cell in text.split(","):
        try:
            float(cell)
            return False
        except ValueError:
            pass
        try:            # a complex cell is data (refused as such); "j" alone is a name
            complex(cell.strip())
            if any(c.isdigit() for c in cell):
                return False
        except ValueError:
            pass
    return True


def _reason(err):
    text = str(err).splitlines()[0][:200] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
