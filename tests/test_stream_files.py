"""Stream files that are truncated, mutated or random: the readers either read them
correctly or raise StreamError (naming the file), never another exception. And the
row or line an error names is the one in the file, not in a chunk."""

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hamsym.errors import BadRowError, StreamError
from hamsym.workbench import streams

# derandomize: the same examples on every run (the project's tests are deterministic)
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
SIZES = [2, 1]                      # u (2) and y (1): three columns


def _table(rows, seed=0):
    return np.random.default_rng(seed).normal(size=(rows, 3))


def _encoded(fmt, table):
    """A valid stream file of the table, as bytes."""
    buf = io.BytesIO()
    if fmt == "npy":
        np.save(buf, table)
    elif fmt == "npz":
        np.savez(buf, u=table[:, :2], y=table[:, 2:])
    else:
        text = io.StringIO()
        np.savetxt(text, table, delimiter=",", header="u0,u1,y", comments="")
        return text.getvalue().encode()
    return buf.getvalue()


def _read(data, fmt, chunk=7):
    """What from_file makes of the bytes: the (U, Y) read, or the StreamError raised."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"s.{fmt}"
        path.write_bytes(data)
        try:
            blocks = list(streams.from_file(path, SIZES, chunk=chunk, names=["u", "y"]))
        except StreamError as err:
            assert str(err).startswith(("stream ", str(path))), err
            return err
    assert blocks and all(len(b) == 2 and b[0].shape[1] == 2 and b[1].shape[1] == 1
                          for b in blocks)
    return np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])


@pytest.mark.parametrize("fmt", ["npy", "npz", "csv"])
def test_valid_files_read_back(fmt):
    table = _table(23)
    U, Y = _read(_encoded(fmt, table), fmt)
    np.testing.assert_array_equal(np.hstack([U, Y]), table)


@pytest.mark.parametrize("fmt", ["npy", "npz", "csv"])
@SETTINGS
@given(data=st.data())
def test_truncated_files_read_or_raise_stream_error(fmt, data):
    whole = _encoded(fmt, _table(15))
    cut = data.draw(st.integers(0, len(whole) - 1), label="cut")
    _read(whole[:cut], fmt)


@pytest.mark.parametrize("fmt", ["npy", "npz", "csv"])
@SETTINGS
@given(data=st.data())
def test_mutated_files_read_or_raise_stream_error(fmt, data):
    whole = bytearray(_encoded(fmt, _table(15)))
    for _ in range(data.draw(st.integers(1, 6), label="mutations")):
        at = data.draw(st.integers(0, len(whole) - 1), label="at")
        how = data.draw(st.sampled_from(["set", "insert", "delete"]), label="how")
        byte = data.draw(st.integers(0, 255), label="byte")
        if how == "set":
            whole[at] = byte
        elif how == "insert":
            whole.insert(at, byte)
        elif len(whole) > 1:
            del whole[at]
    got = _read(bytes(whole), fmt)
    if isinstance(got, BadRowError):
        assert got.row is not None and got.column is not None


@pytest.mark.parametrize("fmt", ["npy", "npz", "csv"])
@SETTINGS
@given(raw=st.binary(max_size=400))
@example(raw=b"")
@example(raw=b"\x93NUMPY")
@example(raw=b"PK\x03\x04")
def test_random_bytes_read_or_raise_stream_error(fmt, raw):
    _read(raw, fmt)


CELLS = st.sampled_from(["1", "-2.5", "3e4", "nan", "inf", "-inf", "", " ", "x", "1+2j", "1e999",
                         "0x10", "1_0", "#", "\t4", "'5'", "é", "\x00"])


@SETTINGS
@given(lines=st.lists(st.lists(CELLS, min_size=0, max_size=5), max_size=12),
       chunk=st.integers(1, 5))
def test_csv_of_any_cells_reads_or_names_the_line(lines, chunk):
    text = "\n".join(",".join(cells) for cells in lines).encode()
    got = _read(text, "csv", chunk=chunk)
    if isinstance(got, StreamError) and got.line is not None:
        assert 1 <= got.line <= max(1, len(lines)) and f"line {got.line}" in str(got)


def test_a_bad_cell_is_named_by_its_line_in_the_file_not_in_the_chunk(tmp_path):
    table = _table(5000)
    text = io.StringIO()
    np.savetxt(text, table, delimiter=",", header="u0,u1,y", comments="")
    lines = text.getvalue().splitlines()
    lines[4501] = lines[4501].replace(",", ",oops", 1)          # data row 4500, line 4502
    path = tmp_path / "s.csv"
    path.write_text("\n".join(lines) + "\n")
    read = []
    with pytest.raises(StreamError, match=r"s\.csv, line 4502: column 1: '.*oops.*' is not a "
                                          "number") as err:
        for block in streams.from_file(path, SIZES, chunk=4096):
            read.append(len(block[0]))
    assert err.value.line == 4502 and read == [4096]


@pytest.mark.parametrize("fmt", ["npy", "npz", "csv"])
def test_rows_that_are_not_finite_stop_or_are_skipped(fmt, tmp_path):
    table = _table(30)
    table[12, 1], table[20, 2] = np.nan, -np.inf
    path = tmp_path / f"s.{fmt}"
    path.write_bytes(_encoded(fmt, table))
    seen = []
    with pytest.raises(BadRowError) as err:
        for u, y in streams.from_file(path, SIZES, chunk=8, names=["u", "y"]):
            seen.append(np.hstack([u, y]))
    np.testing.assert_array_equal(np.concatenate(seen), table[:12])   # the rows before it
    e = err.value
    assert (e.path, e.row, e.column) == (path, 12, 1)
    assert e.line == (14 if fmt == "csv" else None)                    # after the header line
    assert ("line 14 (data row 12)" if fmt == "csv" else "row 12") in str(e) and "u[1]" in str(e)
    stream = streams.from_file(path, SIZES, chunk=8, names=["u", "y"], on_bad_row="skip")
    kept = np.concatenate([np.hstack(b) for b in stream])
    np.testing.assert_array_equal(kept, np.delete(table, [12, 20], axis=0))
    assert stream.skipped == 2 and stream.rows == 30


def test_files_that_are_not_regular_are_refused_without_opening_them(tmp_path):
    fifo = tmp_path / "s.csv"
    os.mkfifo(fifo)                     # opening it would block forever
    for path, says in ((fifo, "is a FIFO"), (tmp_path, "is a folder"),
                       (Path("/dev/zero"), "is a device"), (tmp_path / "no.npy", "no such file")):
        with pytest.raises(StreamError, match=says):
            streams.from_file(path, SIZES)
