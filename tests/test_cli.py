"""The `hamsym` command end to end, in subprocesses, in a clean temporary folder."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import hamsym

SPECS = Path(__file__).resolve().parent.parent / "examples" / "specs"




@pytest.fixture
def work(tmp_path):
    for name in ("mlp.toml", "rnn.toml"):
        shutil.copy(SPECS / name, tmp_path / name)
    return tmp_path


@pytest.mark.fast
def test_derive_prints_the_equations(work):
    out = hamsym("derive", "mlp.toml", cwd=work).stdout
    assert "p_W1' = flip*(theta/delta*p_W1 - (dH_dh1 * tanh'(W1 @ u + b1)) @ u.T)" in out
    latex = hamsym("derive", "mlp.toml", "--latex", cwd=work).stdout
    assert "\\tanh" in latex and "&=" in latex


def test_generate_writes_an_importable_module(work):
    path = hamsym("generate", "mlp.toml", "-o", "gen", cwd=work).stdout.strip()
    assert Path(work, path) == work / "gen" / "mlp.py"
    probe = "import sys; sys.path.insert(0, 'gen'); import mlp; print(mlp.SCHEME, list(mlp.WEIGHTS))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=work, capture_output=True, text=True)
    assert out.stdout.strip() == "nonlocal ['W1', 'b1', 'W2', 'b2']", out.stderr


@pytest.mark.fast
def test_errors_name_the_key_and_exit_2(work):
    (work / "bad.toml").write_text((work / "mlp.toml").read_text().replace(
        'o = "W2 @ h1 + b2"', 'o = "W2 @ h1 + open(b2)"'))
    proc = hamsym("derive", "bad.toml", cwd=work, ok=False)
    assert proc.returncode == 2
    assert "bad.toml: [instants] o, column 11: unknown function `open`" in proc.stderr
    assert sorted(p.name for p in work.iterdir()) == ["bad.toml", "mlp.toml", "rnn.toml"]


def test_check_against_autograd(work):
    out = hamsym("check", "mlp.toml", cwd=work).stdout
    assert "scheme nonlocal" in out and out.strip().endswith("OK")


def test_check_without_torch_says_so(work):
    fake = work / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise ImportError('no torch here')\n")
    env = {**os.environ, "PYTHONPATH": str(fake) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = hamsym("check", "mlp.toml", cwd=work, env=env, ok=False)
    assert proc.returncode == 3
    assert "PyTorch autograd, which is not installed" in proc.stderr
    # everything but the check itself works without torch
    assert "H  =" in hamsym("derive", "mlp.toml", cwd=work, env=env).stdout


def test_library_does_not_import_torch():
    code = ("import sys, hamsym, hamsym.workbench.spec, hamsym.workbench.cli, hamsym.workbench.check, hamsym.workbench.streams, "
            "hamsym.workbench.runner, hamsym.workbench.plot, hamsym.workbench.river; print('torch' in sys.modules, "
            "'matplotlib' in sys.modules, 'river' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False", "False"], out.stderr


def test_run_and_resume_equal_one_run(work):
    rng = np.random.default_rng(0)
    U = rng.normal(size=(3000, 2))
    table = np.hstack([U, np.tanh(np.roll(U, 1, axis=0)[:, :1])])   # y_k = tanh(u_{k-1}[0])
    np.savetxt(work / "s.csv", table, delimiter=",", header="u0,u1,y", comments="")
    np.save(work / "s.npy", table)
    record = ("--record", "loss,x,o,|A|", "--every", "10")
    bar = hamsym("run", "rnn.toml", "--stream", "s.npy", "-o", "whole", "--chunk", "700",
                 *record, "--progress", cwd=work).stderr
    assert "3000/3000" in bar and "loss=" in bar, bar        # one bar over the whole run
    hamsym("run", "rnn.toml", "--stream", "s.csv", "-o", "parts", "--steps", "1234", *record,
           cwd=work)
    # the same samples in another file: --skip says where to go on (the same file would
    # need nothing: its run.json says what was consumed)
    out = hamsym("run", "rnn.toml", "--stream", "s.npy", "-o", "parts", *record,
                 "--resume", "parts/checkpoint.npz", "--skip", "1234", cwd=work).stdout
    assert "steps 1234 -> 3000" in out
    with np.load(work / "whole/record.npz") as a, np.load(work / "parts/record.npz") as b:
        assert sorted(a.files) == sorted(b.files) == sorted(["step", "loss", "x", "o", "|A|"])
        assert a["x"].shape == (300, 8)
        for key in a.files:                                   # resumed: the rows of one run
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        np.testing.assert_array_equal(a["loss"], np.load(work / "whole/losses.npy")[9::10])
    bad = hamsym("run", "rnn.toml", "--stream", "s.npy", "-o", "fresh", "--record", "h9",
                 cwd=work, ok=False)
    assert bad.returncode == 2 and "cannot record 'h9': valid keys are 'loss', 'o'" in bad.stderr
    assert not (work / "fresh").exists()                      # refused: nothing written
    np.save(work / "m.npy", np.zeros((5, 6)))                 # a stream of mlp's width
    other = hamsym("run", "mlp.toml", "--stream", "m.npy", "-o", "parts", "--resume",
                   "parts/checkpoint.npz", cwd=work, ok=False)
    assert other.returncode == 2 and "SPEC_HASH" in other.stderr   # another network's checkpoint
    whole, parts = np.load(work / "whole/losses.npy"), np.load(work / "parts/losses.npy")
    assert whole.shape == (3000,)
    np.testing.assert_array_equal(whole, parts)
    with np.load(work / "whole/checkpoint.npz") as a, np.load(work / "parts/checkpoint.npz") as b:
        arrays = [k for k in a.files if k != "_meta"]       # _meta names each module's file
        assert sorted(arrays) == sorted(k for k in b.files if k != "_meta") and arrays
        for key in arrays:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert whole[-300:].mean() < whole[:300].mean()


def test_sweep_is_hs_sweep_read_a_chunk_at_a_time(work):
    """`hamsym sweep` against hs.sweep of the same module on the whole stream in memory:
    the same table (mean losses to rounding: summed a chunk at a time), the same
    learners bit for bit, and curves that are each chunk's mean loss."""
    import hamsym as hs
    from hamsym.workbench.spec import load_spec
    from hamsym.workbench.sweeps import grid_ensemble
    rng = np.random.default_rng(1)
    U = rng.normal(size=(900, 4))
    Y = np.tanh(U[:, :2])
    np.save(work / "s.npy", np.hstack([U, Y]))
    out = hamsym("sweep", "mlp.toml", "--stream", "s.npy", "--grid", "beta=0.5,2",
                 "--grid", "theta=0.1,0.4", "--seeds", "3-4", "--window", "50", "--chunk", "400",
                 "--progress", "-o", "grid", cwd=work)
    assert "900/900" in out.stderr and "best loss=" in out.stderr, out.stderr   # one bar
    assert "mlp: 8 learners, 900 rows of the stream" in out.stdout and "best: beta = " in out.stdout
    got = np.genfromtxt(work / "grid/sweep.csv", delimiter=",", names=True, dtype=None,
                        encoding="utf-8")
    mod = load_spec(work / "mlp.toml").load(work / "grid/mlp.py")     # the module it wrote
    grid = {"beta": [0.5, 2], "theta": [0.1, 0.4]}
    want, ensemble = hs.sweep(mod, grid, (U, Y), seeds=[3, 4], window=50, frame=False,
                              return_ensemble=True)
    assert got.dtype.names == want.dtype.names
    for name in ("beta", "theta", "seed", "final_loss", "diverged"):
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    np.testing.assert_allclose(got["mean_loss"], want["mean_loss"], rtol=1e-12)
    assert not list((work / "grid").glob("*.part"))          # written whole, then renamed
    saved = mod.Ensemble.restore(work / "grid/ensemble.npz")
    assert saved.step_count.tolist() == [900] * 8
    for kind in ("weights", "states", "costates"):
        for name, a in getattr(saved, kind).items():
            np.testing.assert_array_equal(a, getattr(ensemble, kind)[name], err_msg=name)
    losses = grid_ensemble(mod, grid, [3, 4])[0].run(U, Y)
    chunks = [losses[:, a:b].mean(axis=1) for a, b in ((0, 400), (400, 800), (800, 900))]
    np.testing.assert_allclose(np.load(work / "grid/curves.npy"), np.stack(chunks, axis=1),
                               rtol=1e-12)
    bad = hamsym("sweep", "mlp.toml", "--stream", "s.npy", "--grid", "betta=1", cwd=work, ok=False)
    assert bad.returncode == 2 and "--grid betta: not a hyperparameter or param of mlp" in bad.stderr
    bad = hamsym("sweep", "mlp.toml", "--stream", "s.npy", "--grid", "beta", cwd=work, ok=False)
    assert bad.returncode == 2 and "expected NAME=VALUE,VALUE" in bad.stderr


def test_sweep_writes_what_was_done_when_interrupted(work, monkeypatch, capsys):
    """Ctrl-C between two chunks of the stream file: the table, curves and ensemble of
    the rows done are written, and the exit status is 130."""
    from hamsym.workbench import cli, streams
    U = np.random.default_rng(2).normal(size=(300, 4))
    blocks = [(U[:100], np.tanh(U[:100, :2])), (U[100:200], np.tanh(U[100:200, :2]))]

    def stream(*args, **kwargs):
        yield blocks[0]
        yield blocks[1]
        raise KeyboardInterrupt
    monkeypatch.setattr(streams, "from_file", stream)
    code = cli.main(["sweep", str(work / "mlp.toml"), "--stream", "unused.csv",
                     "--grid", "beta=1,2", "-o", str(work / "cut")])
    assert code == 130 and "interrupted by Ctrl-C" in capsys.readouterr().out
    table = np.genfromtxt(work / "cut/sweep.csv", delimiter=",", names=True, dtype=None,
                          encoding="utf-8")
    assert len(table) == 2 and np.isfinite(table["mean_loss"]).all()
    assert np.load(work / "cut/curves.npy").shape == (2, 2)
    import hamsym.workbench.spec
    mod = hamsym.workbench.spec.load_spec(work / "mlp.toml").load(work / "cut/mlp.py")
    assert mod.Ensemble.restore(work / "cut/ensemble.npz").step_count.tolist() == [200, 200]


def test_readme_workbench_commands_parse():
    """Every command of the README's Workbench section parses with the real parser."""
    import re
    import shlex

    from hamsym.workbench.cli import parser
    readme = (SPECS.parent.parent / "README.md").read_text()
    section = readme[readme.index("## Workbench"):]
    section = section[:section.index("\n## ", 5)]
    bash = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [shlex.split(line, comments=True) for line in bash.splitlines() if line.strip()]
    assert len(commands) == 5
    for words in commands:
        assert words[0] == "hamsym"
        args = parser().parse_args(words[1:])
        assert Path(SPECS.parent.parent, args.spec).exists(), args.spec
    compile(re.search(r"```python\n(.*?)```", section, re.S).group(1), "README.md", "exec")


def test_readme_quick_start_is_five_commands_and_five_lines_of_python():
    """Right after the install commands: five CLI lines that parse with the real parser
    and name existing specs, and five lines of Python that compile."""
    import re
    import shlex

    from hamsym.workbench.cli import parser
    readme = (SPECS.parent.parent / "README.md").read_text()
    section = readme[readme.index("## Quick start"):]
    section = section[:section.index("\n## ", 5)]
    assert readme.index("## Install and test") < readme.index("## Quick start") < \
        readme.index("## Example")
    bash = re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip().splitlines()
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1).strip().splitlines()
    assert len(bash) == 5 and len(python) == 5
    for words in (shlex.split(line, comments=True) for line in bash):
        if words[0] == "hamsym":
            args = parser().parse_args(words[1:])
            assert Path(SPECS.parent.parent, args.spec).exists(), args.spec
    compile("\n".join(python), "README.md", "exec")
