"""The catalogue of hostile inputs (issue #17): spec files, stream files, arguments,
names and activations a user may give hamsym by mistake or on purpose.

Each command-line case runs the `hamsym` command (main(), in-process, in a temporary
folder) and asserts: the exit code documented in docs/workbench.md, a message that
names the file, row, line, key or argument at fault, no Python traceback, no file
changed outside the output folder (nothing at all for a refusal before work), and no
temporary file left. The Python API cases follow.
"""

import hashlib
import io
import math
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sympy

import hamsym as hs
import hamsym.codegen.render as R
from hamsym.declare import safe_form
from hamsym.declare.network import RUNTIME_KEYWORDS
from hamsym.errors import BadRowError, StreamError
from hamsym.workbench import cli, streams


def spec(inputs="u = 2", targets="y = 1", weights="W = [1, 2]",
         loss="sum_squares(W @ u - y) / 2", tables="", top=""):
    """The text of a spec file: a linear model u (2) -> y (1), with changes."""
    return (f'name = "tiny"\nloss = "{loss}"\n{top}\n[inputs]\n{inputs}\n[targets]\n{targets}\n'
            f'[weights]\n{weights}\n{tables}\n')


def activation(formula):
    return spec(loss="sum_squares(W @ act(u) - y)", tables=f'[activations]\nact = "{formula}"')


def npy(a, **kw):
    buf = io.BytesIO()
    np.save(buf, a, **kw)
    return buf.getvalue()


def npz(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def table(rows=40, bad=()):
    a = np.random.default_rng(0).normal(size=(rows, 3))
    for (i, j), v in bad:
        a[i, j] = v
    return a


def _balanced_sum(terms):
    """(a + b) + (c + d): as many terms, nested only log2(n) deep."""
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"({_balanced_sum(terms[:half])} + {_balanced_sum(terms[half:])})"


def csv(*lines):
    return "\n".join(lines) + "\n"


FIFO, FOLDER = object(), object()
STREAM = npy(table())
RUN = ["run", "tiny.toml", "-o", "out", "--stream"]
SWEEP = ["sweep", "tiny.toml", "--stream", "s.npy", "-o", "out"]


def case(name, argv, code, *says, files=None, writes=(), marks=()):
    """argv run in a folder holding tiny.toml and s.npy (and `files`); `says`: substrings
    of the message; `writes`: the folders the command may change."""
    return pytest.param(argv, code, says, files or {}, writes, id=name, marks=marks)


CASES = [
    # -- spec files ---------------------------------------------------------------------------
    case("spec_missing", ["derive", "nope.toml"], 2, "spec file nope.toml: no such file"),
    case("spec_folder", ["derive", "d.toml"], 2, "spec file d.toml: is a folder",
         files={"d.toml": FOLDER}),
    case("spec_fifo", ["derive", "f.toml"], 2, "spec file f.toml: is a FIFO", files={"f.toml": FIFO}),
    case("spec_dev_zero", ["derive", "/dev/zero"], 2, "spec file /dev/zero: is a device"),
    case("spec_empty", ["derive", "e.toml"], 2, "spec file e.toml: the file is empty",
         files={"e.toml": ""}),
    case("spec_truncated", ["derive", "t.toml"], 2, "t.toml: not valid TOML",
         files={"t.toml": spec()[:40]}),
    case("spec_truncated_at_a_table", ["derive", "t.toml"], 2,
         "t.toml: loss, column 13: unknown name `W`",
         files={"t.toml": spec().split("[weights]")[0] + "[weights]\n"}),
    case("spec_binary", ["derive", "b.toml"], 2, "b.toml, line 2: not UTF-8 text",
         files={"b.toml": b'name = "x"\n\xff\xfe\x00'}),
    case("spec_huge", ["derive", "h.toml"], 2, "spec file h.toml: 2097152 bytes; at most",
         files={"h.toml": "#" * (2 << 20)}),
    case("spec_nested_too_deeply", ["derive", "n.toml"], 2, "n.toml: arrays or tables nested "
         "too deeply", files={"n.toml": "a = " + "[" * 100_000 + "]" * 100_000}),
    case("spec_unknown_key", ["derive", "k.toml"], 2, "k.toml: nmae: unknown key",
         files={"k.toml": 'nmae = "x"\n' + spec()}),
    case("seed_negative", ["derive", "s.toml"], 2,
         "s.toml: [init] seed: expected an integer from 0 to 2**63 - 1, got -1",
         files={"s.toml": spec(tables="[init]\nseed = -1")}),
    case("seed_float", ["derive", "s.toml"], 2, "[init] seed: expected an integer",
         files={"s.toml": spec(tables="[init]\nseed = 1.5")}),
    case("hyper_nan", ["derive", "n.toml"], 2, "n.toml: [hyper]", "beta=nan must be a finite",
         files={"n.toml": spec(tables="[hyper]\nbeta = nan")}),
    case("expression_import", ["derive", "x.toml"], 2, "x.toml: loss, column",
         "unknown function `__import__`",
         files={"x.toml": spec(loss="__import__('os') + sum_squares(W @ u - y)")}),
    # -- declared names -------------------------------------------------------------------------
    case("input_record", ["derive", "n.toml"], 2, "n.toml: [inputs] record: input name 'record' "
         "is a keyword argument of the generated module",
         files={"n.toml": spec(inputs="record = 2", loss="sum_squares(W @ record - y)")}),
    case("target_every", ["derive", "n.toml"], 2, "[targets] every: target name 'every'",
         files={"n.toml": spec(targets="every = 1", loss="sum_squares(W @ u - every)")}),
    case("weight_progress", ["derive", "n.toml"], 2, "[weights] progress: weight name 'progress'",
         files={"n.toml": spec(weights="progress = [1, 2]", loss="sum_squares(progress @ u - y)")}),
    case("param_seed", ["derive", "n.toml"], 2, "[params] seed: param name 'seed'",
         files={"n.toml": spec(tables="[params]\nseed = 1.0")}),
    case("input_chunk", ["derive", "n.toml"], 2, "[inputs] chunk: input name 'chunk'",
         files={"n.toml": spec(inputs="chunk = 2", loss="sum_squares(W @ chunk - y)")}),
    case("fullwidth_beside_ascii", ["derive", "n.toml"], 2,
         "[weights] Ｗ: weight 'Ｗ' and weight 'W' are one Python identifier, 'W'",
         files={"n.toml": spec(weights='W = [1, 2]\n"Ｗ" = [1, 2]')}),
    case("fullwidth_W1_beside_W1", ["derive", "n.toml"], 2,
         "[weights] W1: weight 'W1' and input 'Ｗ１' are one Python identifier, 'W1'",
         files={"n.toml": spec(inputs='"Ｗ１" = 2', weights="W1 = [1, 2]",
                               loss="sum_squares(W1 @ Ｗ１ - y)")}),
    case("fullwidth_reserved", ["derive", "n.toml"], 2,
         "input name 'ｌｏｓｓ' is reserved by hamsym (Python reads it as 'loss')",
         files={"n.toml": spec(inputs='"ｌｏｓｓ" = 2')}),
    case("fullwidth_keyword", ["derive", "n.toml"], 2,
         "input name 'ｒｅｃｏｒｄ' (Python reads it as 'record') is a keyword argument",
         files={"n.toml": spec(inputs='"ｒｅｃｏｒｄ" = 2')}),
    # -- activations ----------------------------------------------------------------------------
    case("activation_log", ["derive", "a.toml"], 2,
         "[activations] act: activation act = log(t) is not real at t = -1000",
         files={"a.toml": activation("log(t)")}),
    case("activation_sqrt", ["derive", "a.toml"], 2, "activation act = sqrt(t) is not real at t =",
         files={"a.toml": activation("sqrt(t)")}),
    case("activation_reciprocal", ["derive", "a.toml"], 2,
         "activation act = 1/t is singular at t = 0 (its value there is infinite)",
         files={"a.toml": activation("1 / t")}),
    case("activation_sinc", ["derive", "a.toml"], 2,
         "activation act = sin(t)/t is singular at t = 0 (its value there is undefined)",
         files={"a.toml": activation("sin(t) / t")}),
    case("activation_log_of_abs", ["derive", "a.toml"], 2, "activation act = log(Abs(t)) is "
         "singular at t = 0", files={"a.toml": activation("log(abs(t))")}),
    case("activation_too_large", ["derive", "a.toml"], 2,
         "activation act: the formula has more than 400 nodes",
         files={"a.toml": activation(_balanced_sum([f"tanh({k}*t)" for k in range(1, 200)]))}),
    case("activation_too_deep", ["derive", "a.toml"], 2, "activation act: the formula has more "
         "than 40 levels of nesting", files={"a.toml": activation("tanh(" * 45 + "t" + ")" * 45)}),
    case("activation_no_safe_form", ["derive", "a.toml"], 2,
         "activation act = log(exp(t) + 1): its floating-point value at t = 710 is inf",
         files={"a.toml": activation("log(1 + exp(t))")}),
    case("activation_log_cosh_is_rewritten", ["derive", "a.toml"], 0,
         files={"a.toml": activation("log(cosh(t))")}),
    case("activation_exp_exp_exp", ["derive", "a.toml"], 0,
         files={"a.toml": activation("exp(exp(exp(t)))")}),
    # -- hyperparameters ------------------------------------------------------------------------
    case("delta_underflows", ["derive", "h.toml"], 2, "h.toml: [hyper]", "delta=1e-300",
         "delta^2*beta*gamma = 1e-600 underflows in float64",
         files={"h.toml": spec(tables="[hyper]\ndelta = 1e-300")}),
    case("delta_underflows_float32", ["generate", "h.toml", "-o", "gen"], 2, "dtype float32",
         "delta=1e-20", "underflows in float32",
         files={"h.toml": spec(tables='[hyper]\ndelta = 1e-20\n[module]\ndtype = "float32"')}),
    case("delta_zero", ["derive", "h.toml"], 2, "delta must be positive",
         files={"h.toml": spec(tables="[hyper]\ndelta = 0.0")}),
    # -- generated files ------------------------------------------------------------------------
    case("generate_over_a_user_file", ["generate", "tiny.toml", "-o", "gen"], 2,
         "gen/tiny.py: exists and is not a module hamsym generated", "--overwrite",
         files={"gen/tiny.py": "print('mine')\n"}),
    case("generate_overwrite", ["generate", "tiny.toml", "-o", "gen", "--overwrite"], 0,
         files={"gen/tiny.py": "print('mine')\n"}, writes=("gen",)),
    case("generate_through_a_symlink", ["generate", "tiny.toml", "-o", "gen"], 2,
         "gen/tiny.py: is a symbolic link", files={"mine.py": "x = 1\n",
                                                   "gen/tiny.py": ("link", "../mine.py")}),
    case("generate_through_a_symlink_overwrite", ["generate", "tiny.toml", "-o", "gen",
                                                  "--overwrite"], 2, "is a symbolic link",
         files={"mine.py": "x = 1\n", "gen/tiny.py": ("link", "../mine.py")}),
    case("generate_onto_a_folder", ["generate", "tiny.toml", "-o", "gen"], 2,
         "gen/tiny.py: exists and is not a regular file", files={"gen/tiny.py": FOLDER}),
    case("generate_into_a_file", ["generate", "tiny.toml", "-o", "gen"], 2, "gen/tiny.py",
         files={"gen": "a file, not a folder\n"}),
    case("generate_stdlib_name", ["generate", "os.toml", "-o", "gen"], 2,
         "'os' is a module of Python's standard library",
         files={"os.toml": spec().replace('name = "tiny"', 'name = "os"')}),
    # -- stream files ---------------------------------------------------------------------------
    case("stream_missing", RUN + ["nope.npy"], 2, "stream nope.npy: no such file"),
    case("stream_folder", RUN + ["d.npy"], 2, "stream d.npy: is a folder", files={"d.npy": FOLDER}),
    case("stream_fifo", RUN + ["f.csv"], 2, "stream f.csv: is a FIFO", files={"f.csv": FIFO}),
    case("stream_dev_zero", RUN + ["/dev/zero"], 2, "stream /dev/zero: is a device"),
    case("stream_empty_npy", RUN + ["e.npy"], 2, "stream e.npy: the file is empty (0 bytes)",
         files={"e.npy": b""}),
    case("stream_empty_csv", RUN + ["e.csv"], 2, "stream e.csv: the file is empty",
         files={"e.csv": b""}),
    case("stream_npy_header_cut", RUN + ["t.npy"], 2, "t.npy: not a readable .npy file",
         files={"t.npy": STREAM[:60]}),
    case("stream_npy_data_cut", RUN + ["t.npy"], 2, "t.npy: not a readable .npy file",
         files={"t.npy": STREAM[:-16]}),
    case("stream_npy_garbage", RUN + ["g.npy"], 2, "g.npy: not a readable .npy file",
         files={"g.npy": b"hello, world\n" * 20}),
    case("stream_npz_cut", RUN + ["t.npz"], 2, "t.npz: not a readable .npz archive",
         files={"t.npz": npz(u=table()[:, :2], y=table()[:, 2:])[:-30]}),
    case("stream_npz_garbage", RUN + ["g.npz"], 2, "g.npz: not a readable .npz archive",
         files={"g.npz": b"PK\x03\x04" + b"\x00" * 50}),
    case("stream_npz_other_names", RUN + ["n.npz"], 2,
         "n.npz: arrays ['a', 'b']; expected ['u', 'y'] or one table",
         files={"n.npz": npz(a=table()[:, :2], b=table()[:, 2:])}),
    case("stream_npz_lengths", RUN + ["n.npz"], 2, "n.npz: arrays of different lengths",
         files={"n.npz": npz(u=table()[:, :2], y=table()[:-1, 2:])}),
    case("stream_npz_no_rows", RUN + ["n.npz"], 2, "n.npz: array 'u' has no rows",
         files={"n.npz": npz(u=np.zeros((0, 2)), y=np.zeros((0, 1)))}),
    case("stream_npz_widths", RUN + ["n.npz"], 2, "n.npz: arrays ['u', 'y'] have widths [3, 1]",
         files={"n.npz": npz(u=np.zeros((4, 3)), y=np.zeros((4, 1)))}),
    case("stream_npy_complex", RUN + ["c.npy"], 2, "c.npy: the array holds complex numbers",
         files={"c.npy": npy(table() + 1j)}),
    case("stream_npy_objects", RUN + ["o.npy"], 2, "o.npy: not a readable .npy file",
         files={"o.npy": npy(np.array([[1, "a", None]], dtype=object), allow_pickle=True)}),
    case("stream_npy_structured", RUN + ["r.npy"], 2, "r.npy: the array holds elements of type",
         files={"r.npy": npy(np.zeros(4, dtype=[("a", float), ("b", float), ("c", float)]))}),
    case("stream_npy_text", RUN + ["x.npy"], 2, "x.npy: the array holds text",
         files={"x.npy": npy(np.array([["1", "2", "3"]]))}),
    case("stream_npy_no_rows", RUN + ["z.npy"], 2, "z.npy: the array has no rows",
         files={"z.npy": npy(np.zeros((0, 3)))}),
    case("stream_npy_scalar", RUN + ["z.npy"], 2, "z.npy: the array is a single number",
         files={"z.npy": npy(np.float64(1.0))}),
    case("stream_npy_width", RUN + ["w.npy"], 2,
         "w.npy: the array has 4 columns; the stream needs 3 (u: 2 + y: 1)",
         files={"w.npy": npy(np.zeros((5, 4)))}),
    case("stream_csv_width", RUN + ["w.csv"], 2, "w.csv, line 2: the first row has 2 columns",
         files={"w.csv": csv("u0,u1,y", "1,2", "3,4")}),
    case("stream_csv_bad_cell", RUN + ["b.csv"], 2, "b.csv, line 3: column 1: 'abc' is not a number",
         files={"b.csv": csv("u0,u1,y", "1,2,3", "1,abc,3")}, marks=pytest.mark.fast),
    case("stream_csv_complex", RUN + ["c.csv"], 2,
         "c.csv, line 1: column 2: '1+2j' is a complex number",
         files={"c.csv": csv("1,2,1+2j", "1,2,3")}),
    case("stream_csv_ragged", RUN + ["r.csv"], 2, "r.csv, line 4: 2 values; the stream needs 3",
         files={"r.csv": csv("1,2,3", "# a comment", "", "1,2", "1,2,3")}),
    case("stream_csv_empty_cell", RUN + ["e.csv"], 2, "e.csv, line 1: column 1: an empty cell",
         files={"e.csv": csv("1,,3")}),
    case("stream_csv_header_only", RUN + ["h.csv"], 2, "h.csv: no data rows: the stream is empty",
         files={"h.csv": csv("u0,u1,y")}),
    case("stream_csv_not_utf8", RUN + ["n.csv"], 2, "n.csv, line 3: not UTF-8 text",
         files={"n.csv": b"1,2,3\n4,5,6\n7,\xff,9\n"}),
    case("stream_csv_long_line", RUN + ["l.csv"], 2, "l.csv, line 1: a line longer than 1048576",
         files={"l.csv": "1," * 600_000 + "1\n"}),
    case("stream_unknown_format", RUN + ["s.txt"], 2, "s.txt: unknown stream format '.txt'",
         files={"s.txt": "1,2,3\n"}),
    case("stream_no_suffix", RUN + ["data"], 2, "data: unknown stream format ''",
         files={"data": "1,2,3\n"}),
    # a bad row stops the run with exit 5 after saving the rows before it
    case("stream_nan_first_row", RUN + ["n.npy"], 5,
         "n.npy, row 0: nan in column 0 (u[0]): the data must be finite numbers",
         files={"n.npy": npy(table(bad=[((0, 0), np.nan)]))}, writes=("out",)),
    case("stream_inf_first_csv_row", RUN + ["i.csv"], 5,
         "i.csv, line 2 (data row 0): inf in column 2 (y)",
         files={"i.csv": csv("u0,u1,y", "1,2,inf", "1,2,3")}, writes=("out",)),
    case("stream_nan_mid_stream", RUN + ["n.npy"], 5, "n.npy, row 20: nan in column 1 (u[1])",
         files={"n.npy": npy(table(bad=[((20, 1), np.nan)]))}, writes=("out",)),
    case("stream_bad_rows_skipped", RUN + ["n.npy", "--on-bad-row", "skip"], 0,
         "skipped 2 rows of n.npy holding NaN or inf",
         files={"n.npy": npy(table(bad=[((5, 1), np.nan), ((9, 2), -np.inf)]))}, writes=("out",)),
    case("sweep_bad_rows_skipped", SWEEP[:3] + ["n.npy"] + SWEEP[4:] + ["--on-bad-row", "skip",
                                                                      "--grid", "beta=0.5,1"], 0,
         "2 learners, 38 rows", "skipped 2 rows of n.npy holding NaN or inf",
         files={"n.npy": npy(table(bad=[((5, 1), np.nan), ((9, 2), -np.inf)]))}, writes=("out",)),
    case("on_bad_row_unknown", RUN + ["s.npy", "--on-bad-row", "ignore"], 2,
         "argument --on-bad-row: invalid choice: 'ignore'"),
    case("sweep_stream_missing", SWEEP[:3] + ["nope.csv"] + SWEEP[4:], 2,
         "stream nope.csv: no such file"),
    # -- arguments ------------------------------------------------------------------------------
    case("steps_negative", RUN + ["s.npy", "--steps", "-5"], 2,
         "argument --steps: expected an integer from 1 to"),
    case("steps_zero", RUN + ["s.npy", "--steps", "0"], 2, "argument --steps: expected an integer "
         "from 1", ),
    case("steps_text", RUN + ["s.npy", "--steps", "ten"], 2,
         "argument --steps: expected an integer, got 'ten'"),
    case("steps_absurd", RUN + ["s.npy", "--steps", str(10 ** 30)], 2,
         "argument --steps: expected an integer from 1 to 9007199254740992"),
    case("chunk_negative", RUN + ["s.npy", "--chunk", "-1"], 2, "argument --chunk: expected an "
         "integer from 1 to 16777216, got -1"),
    case("chunk_zero", RUN + ["s.npy", "--chunk", "0"], 2, "argument --chunk"),
    case("chunk_absurd", RUN + ["s.npy", "--chunk", "1000000000"], 2, "argument --chunk"),
    case("every_zero", RUN + ["s.npy", "--record", "loss", "--every", "0"], 2, "argument --every"),
    case("every_without_record", RUN + ["s.npy", "--every", "10"], 2,
         "--every says how often to record: give --record too"),
    case("grid_twice", SWEEP + ["--grid", "beta=1", "--grid", "beta=2"], 2,
         "--grid beta: given twice"),
    case("grid_nan", SWEEP + ["--grid", "beta=1,nan"], 2, "--grid beta: nan is not a finite number"),
    case("grid_inf", SWEEP + ["--grid", "theta=inf"], 2, "--grid theta: inf is not a finite"),
    case("grid_no_values", SWEEP + ["--grid", "beta="], 2, "--grid 'beta=': expected NAME=VALUE"),
    case("grid_unknown_name", SWEEP + ["--grid", "betta=1"], 2,
         "--grid betta: not a hyperparameter or param of tiny"),
    case("grid_complex", SWEEP + ["--grid", "beta=1j"], 2, "--grid 'beta=1j': expected NAME=VALUE"),
    case("grid_underflows", SWEEP + ["--grid", "delta=0.1,1e-300"], 2, "--grid: delta=1e-300",
         "underflows in float64"),
    case("grid_too_many_learners", SWEEP + ["--grid", "beta=" + ",".join(map(str, range(1, 201))),
                                            "--grid", "theta=" + ",".join(["0.5"] * 60)], 2,
         "ask for 12000 learners; at most 10000"),
    case("seeds_negative", SWEEP + ["--seeds=-1"], 2, "--seeds '-1': seed -1 is not from 0"),
    case("seeds_reversed", SWEEP + ["--seeds", "5-2"], 2, "--seeds '5-2': a range runs from"),
    case("seeds_huge_range", SWEEP + ["--seeds", "0-100000000"], 2,
         "--seeds '0-100000000': 100000001 seeds; at most 10000"),
    case("seeds_too_large", SWEEP + ["--seeds", str(2 ** 63)], 2, "is not from 0 to 2**63 - 1"),
    case("seeds_text", SWEEP + ["--seeds", "a-b"], 2, "--seeds 'a-b': expected a list"),
    case("window_zero", SWEEP + ["--window", "0"], 2, "argument --window"),
    case("check_seed_negative", ["check", "tiny.toml", "--seed", "-1"], 2, "argument --seed"),
    case("check_tolerance_nan", ["check", "tiny.toml", "--tolerance", "nan"], 2,
         "argument --tolerance: expected a finite number >= 0"),
    case("no_command", [], 2, "the following arguments are required: command"),
    case("unknown_command", ["bogus"], 2, "invalid choice: 'bogus'"),
    case("run_without_stream", ["run", "tiny.toml"], 2, "the following arguments are required: "
         "--stream"),
]


def _make(root, files):
    for rel, content in {"tiny.toml": spec(), "s.npy": STREAM, **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is FIFO:
            os.mkfifo(path)
        elif content is FOLDER:
            path.mkdir()
        elif isinstance(content, tuple):
            path.symlink_to(content[1])
        else:
            path.write_bytes(content.encode() if isinstance(content, str) else content)


def snapshot(root):
    """Every entry under root: its kind and content (never opening FIFOs or devices)."""
    out = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = Path(folder, name)
            info = os.lstat(path)
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(info.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                out[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                out[rel] = ("dir",) if stat.S_ISDIR(info.st_mode) else ("other",)
    return out


@pytest.mark.parametrize("argv, code, says, files, writes", CASES)
def test_hostile_command_line(argv, code, says, files, writes, tmp_path, monkeypatch, capsys):
    _make(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    got = cli.main(argv)
    out, err = capsys.readouterr()
    after = snapshot(tmp_path)
    assert got == code, err
    for text in says:
        assert text in (err if code else out + err), err
    if code:
        assert err.startswith(("hamsym ", "usage: hamsym")), err
    assert "Traceback" not in err
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    outside = {k for k in changed if not any(k == w or k.startswith(w + "/") for w in writes)}
    assert not outside, outside
    assert not [k for k in after if k.endswith(".tmp")]


def test_no_traceback_reaches_the_shell_unless_debug(tmp_path):
    """The real command in a process of its own: one line on stderr, exit code 2; with
    --debug, Python's traceback."""
    (tmp_path / "tiny.toml").write_text(spec())
    command = [sys.executable, "-m", "hamsym", "run", "tiny.toml", "--stream", "nope.npy"]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == "hamsym run: stream nope.npy: no such file\n"
    debug = subprocess.run(command[:3] + ["--debug"] + command[3:], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "StreamError" in debug.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.toml"]


@pytest.mark.parametrize("raised, code, says", [
    (KeyboardInterrupt(), 130, "hamsym derive: interrupted (Ctrl-C)"),
    (FloatingPointError("diverged at step 7"), 1, "hamsym derive: diverged at step 7"),
    (TypeError("a bug"), 1, "hamsym derive: internal error, TypeError: a bug (a bug of hamsym; "
                            "`hamsym --debug ...` shows where)"),
    (MemoryError(), 1, "hamsym derive: out of memory"),
    (ImportError("no tqdm here"), 3, "hamsym derive: no tqdm here"),
    (PermissionError(13, "Permission denied", "out/x"), 2, "hamsym derive: out/x: Permission "
                                                           "denied"),
])
def test_every_kind_of_error_has_its_exit_code(raised, code, says, monkeypatch, capsys):
    def fail(args):
        raise raised
    monkeypatch.setattr(cli, "cmd_derive", fail)
    assert cli.main(["derive", "any.toml"]) == code
    err = capsys.readouterr().err
    assert err == says + "\n"
    with pytest.raises(type(raised)):                       # --debug: the exception itself
        cli.main(["derive", "any.toml", "--debug"])


def test_warnings_are_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "w.toml").write_text(spec(tables="[hyper]\nbeta = -1.0"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["derive", "w.toml"]) == 0
    err = capsys.readouterr().err
    assert err == "hamsym derive: warning: derive(tiny): beta=-1.0 < 0 moves the weights up the " \
                  "gradient\n"


# -- the Python API ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(RUNTIME_KEYWORDS))
def test_runtime_keywords_are_refused_as_names(name):
    net = hs.Network("kw")
    with pytest.raises(hs.DeclarationError, match=f"input name '{name}' is a keyword argument"):
        net.input(name, 2)
    with pytest.raises(hs.DeclarationError, match=f"param name '{name}' is a keyword argument"):
        net.param(name, 1.0)
    assert not net.vars


def test_names_equal_after_nfkc_are_refused_naming_both():
    net = hs.Network("nfkc")
    net.weight("W1", (1, 2))
    with pytest.raises(hs.DeclarationError, match="input 'Ｗ１' and weight 'W1' are one Python "
                                                  "identifier, 'W1'"):
        net.input("Ｗ１", 2)
    assert list(net.vars) == ["W1"]


def test_a_module_that_does_not_compile_is_never_written(tmp_path, monkeypatch):
    system = hs.derive(hs.zoo.mlp([2, 2, 1], name="broken"))
    monkeypatch.setattr(R, "render", lambda *a, **k: 'SPEC_HASH = ""\ndef step(u, u):\n    pass\n')
    with pytest.raises(RuntimeError, match="module generated for network 'broken' does not "
                                           "compile .duplicate argument 'u'.*nothing was written"):
        hs.load(system, tmp_path / "broken.py")
    assert not list(tmp_path.iterdir())


def test_updates_that_underflow_are_refused_naming_the_values():
    net = hs.zoo.mlp([2, 2, 1], name="tiny_delta")
    with pytest.raises(hs.DeclarationError, match=r"delta=1e-300, beta=1, gamma=1: the update "
                                                  r"factor delta\^2\*beta\*gamma = 1e-600"):
        hs.derive(net, delta=1e-300)
    system = hs.derive(net, delta=1e-20, beta=1e-3)
    hs.render(system)                                                # fine in float64
    with pytest.raises(hs.DeclarationError, match="dtype float32: delta=1e-20, beta=0.001"):
        hs.render(system, dtype="float32")


@pytest.mark.parametrize("formula, says", [
    (lambda t: sympy.log(t), r"activation lg = log\(t\) is not real at t = -1000 \(its value "
                             r"there is 6.90775 \+ 3.14159\*I\)"),
    (lambda t: 1 / t, r"activation lg = 1/t is singular at t = 0 \(its value there is infinite"),
    (lambda t: sympy.sqrt(sympy.Abs(t)), r"activation lg' = .* is singular at t = 0"),
    (lambda t: sympy.atanh(t), r"activation lg = atanh\(t\) is not real at t = -1000"),
])
def test_activations_singular_at_a_probe_name_it_and_the_point(formula, says):
    with pytest.raises(hs.DeclarationError, match=says):
        hs.activation(formula, name="lg")


def test_log_cosh_gets_a_safe_form():
    act = hs.activation(lambda t: sympy.log(sympy.cosh(t)), name="logcosh")
    assert act.stable is not None and act.stable.has(sympy.Abs)
    code = safe_form._evaluate
    from hamsym.codegen.scalar import scalar_code
    text = scalar_code(act.stable, {act.expr.free_symbols.pop(): "t"}, "logcosh")
    assert code(text, -1000.0) == pytest.approx(1000 - math.log(2), rel=1e-15)
    assert code(text, 0.5) == pytest.approx(math.log(math.cosh(0.5)), rel=1e-14)


def test_nested_exponentials_answer_in_seconds_not_minutes():
    """exp(exp(exp(t))) took minutes in SymPy's evalf at t = 1000; the probe bounds its
    intermediates, so this answers in well under a second (the bound is generous)."""
    start = time.monotonic()
    hs.activation(lambda t: sympy.exp(sympy.exp(sympy.exp(t))), name="tower")
    with pytest.raises(hs.DeclarationError, match="activation tower2 = sin"):
        hs.activation(lambda t: sympy.sin(sympy.exp(sympy.exp(t))), name="tower2")
    assert time.monotonic() - start < 60


def test_symbolic_work_has_a_budget_that_names_the_activation(monkeypatch):
    monkeypatch.setattr(safe_form, "BUDGET", 0.0)
    with pytest.raises(hs.DeclarationError, match=r"activation slow: .* took more than 0 s of "
                                                  "symbolic work; give a simpler formula"):
        hs.activation(lambda t: t / (1 + sympy.exp(-t)), name="slow")


def test_stream_arguments_of_the_library_are_checked(tmp_path):
    np.save(tmp_path / "s.npy", table())
    for kwargs, says in (({"chunk": 0}, "chunk 0: expected an integer from 1"),
                         ({"chunk": 2.5}, "chunk 2.5"),
                         ({"on_bad_row": "ignore"}, "on_bad_row 'ignore': expected one of stop")):
        with pytest.raises(StreamError, match=says):
            streams.from_file(tmp_path / "s.npy", [2, 1], **kwargs)


def test_bad_row_error_carries_file_row_and_column(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(csv("u0,u1,y", "1,2,3", "# note", "4,-inf,6"))
    stream = streams.from_file(path, [2, 1], names=["u", "y"])
    with pytest.raises(BadRowError) as err:
        list(stream)
    e = err.value
    assert (e.path, e.row, e.line, e.column) == (path, 1, 4, 1)
    assert str(e).startswith(f"{path}, line 4 (data row 1): -inf in column 1 (u[1])")
