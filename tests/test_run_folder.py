"""`hamsym run` never loses work: stopped by Ctrl-C, a bad row or a divergence, it saves
its last good state, says how to resume, and the resumed run is bit for bit the run
that was not stopped. Resuming knows which stream it learned; a folder that holds
another run is not taken over by mistake."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import hamsym as hs
from conftest import hamsym

SPECS = Path(__file__).resolve().parent.parent / "examples" / "specs"




@pytest.fixture
def work(tmp_path):
    shutil.copy(SPECS / "mlp.toml", tmp_path / "mlp.toml")
    rng = np.random.default_rng(0)
    U = rng.normal(size=(3000, 4))
    np.save(tmp_path / "s.npy", np.hstack([U, np.sin(U[:, :2])]))
    return tmp_path


def _same_run(a, b):
    """Two run folders hold the same learner and losses, bit for bit."""
    np.testing.assert_array_equal(np.load(a / "losses.npy"), np.load(b / "losses.npy"))
    assert (a / "checkpoint.npz").read_bytes() == (b / "checkpoint.npz").read_bytes()


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_a_bad_row_stops_after_the_rows_before_it_and_resumes_as_one_run(work):
    table = np.load(work / "s.npy")
    table[1500, 2] = np.nan
    np.save(work / "n.npy", table)
    hamsym("run", "mlp.toml", "--stream", "n.npy", "-o", "whole", "--on-bad-row", "skip",
           "--set", "beta=0.5", cwd=work)
    stopped = hamsym("run", "mlp.toml", "--stream", "n.npy", "-o", "parts", "--set", "beta=0.5",
                     "--chunk", "700", cwd=work, ok=False)
    assert stopped.returncode == 5, stopped.stderr
    line = stopped.stderr.strip().splitlines()[-1]
    assert "n.npy, row 1500: nan in column 2" in line and "Traceback" not in stopped.stderr
    assert "the work up to step 1500 (1500 samples of n.npy) is saved in parts" in line
    assert "--resume parts/checkpoint.npz" in line and line.endswith("--on-bad-row skip")
    assert len(np.load(work / "parts/losses.npy")) == 1500
    manifest = json.loads((work / "parts/run.json").read_text())
    assert manifest["consumed"] == manifest["step_count"] == 1500
    resume = line.split("Resume: ")[1].split()
    assert resume[:2] == ["hamsym", "run"]
    hamsym(*resume[1:], cwd=work)                      # the command it printed, as printed
    _same_run(work / "whole", work / "parts")


def test_divergence_saves_the_learner_before_the_step_that_diverged(work):
    out = hamsym("run", "mlp.toml", "--stream", "s.npy", "-o", "wild", "--set", "beta=400",
                 "--chunk", "500", cwd=work, ok=False)
    assert out.returncode == 4, out.stderr
    assert "diverged: the loss is" in out.stderr and "Traceback" not in out.stderr
    losses = np.load(work / "wild/losses.npy")
    assert len(losses) > 0 and np.isfinite(losses).all()
    # the saved learner is the one that took exactly those steps, in Python
    spec = hs.load_spec(work / "mlp.toml")
    mod = spec.load(work / "wild" / "mlp.py")
    saved = mod.Integrator.restore(work / "wild/checkpoint.npz")
    assert saved.step_count == len(losses) and saved.hyper["beta"] == 400
    twin = hs.workbench.spec.integrator(spec, mod, beta=400.0)
    table = np.load(work / "s.npy")
    np.testing.assert_array_equal(twin.run(table[:len(losses), :4], table[:len(losses), 4:]),
                                  losses)
    for name, a in twin.weights.items():
        np.testing.assert_array_equal(saved.weights[name], a, err_msg=name)
    # resumed with a step size that does not diverge, it learns on from there
    hamsym("run", "mlp.toml", "--stream", "s.npy", "-o", "wild", "--resume",
           "wild/checkpoint.npz", "--set", "beta=1e-6", cwd=work)
    assert len(np.load(work / "wild/losses.npy")) == 3000


def test_ctrl_c_saves_the_run_and_resume_is_one_run(work):
    table = np.load(work / "s.npy")
    np.save(work / "long.npy", np.tile(table, (60, 1)))          # 180,000 samples
    hamsym("run", "mlp.toml", "--stream", "long.npy", "-o", "whole", "--set", "beta=0.5",
           "--steps", "120000", cwd=work)
    proc = subprocess.Popen([sys.executable, "-m", "hamsym", "run", "mlp.toml", "--stream",
                             "long.npy", "-o", "parts", "--set", "beta=0.5", "--steps", "120000",
                             "--checkpoint-every", "1000", "--chunk", "500"],
                            cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (work / "parts/run.json").exists() and time.time() < deadline:
        time.sleep(0.01)                   # the first periodic checkpoint: it is learning
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted (Ctrl-C)" in err and "Traceback" not in err
    manifest = json.loads((work / "parts/run.json").read_text())
    assert 0 < manifest["step_count"] < 120000
    assert len(np.load(work / "parts/losses.npy")) == manifest["step_count"]
    hamsym("run", "mlp.toml", "--stream", "long.npy", "-o", "parts", "--set", "beta=0.5",
           "--steps", str(120000 - manifest["consumed"]), "--resume", "parts/checkpoint.npz",
           cwd=work)
    _same_run(work / "whole", work / "parts")


def test_periodic_checkpoints_are_consistent_moments(work):
    hamsym("run", "mlp.toml", "--stream", "s.npy", "-o", "run", "--checkpoint-every", "700",
           "--steps", "1000", "--chunk", "300", "--set", "beta=0.5", cwd=work)
    manifest = json.loads((work / "run/run.json").read_text())
    assert manifest["step_count"] == manifest["consumed"] == 1000
    spec = hs.load_spec(work / "mlp.toml")
    mod = spec.load(work / "run" / "mlp.py")
    assert mod.Integrator.restore(work / "run/checkpoint.npz").step_count == 1000


def test_resume_knows_the_stream_it_learned(work):
    hamsym("run", "mlp.toml", "--stream", "s.npy", "-o", "a", "--steps", "1000", "--set",
           "beta=0.5", cwd=work)
    same = hamsym("run", "mlp.toml", "--stream", "s.npy", "-o", "a", "--resume",
                  "a/checkpoint.npz", cwd=work)
    assert "steps 1000 -> 3000" in same.stdout            # after the rows it consumed
    other = np.load(work / "s.npy")[:500]
    np.save(work / "short.npy", other)
    fresh = hamsym("run", "mlp.toml", "--stream", "short.npy", "-o", "a", "--resume",
                   "a/checkpoint.npz", cwd=work)
    assert "steps 3000 -> 3500" in fresh.stdout           # another stream: from its first row
    assert "is not the stream a/checkpoint.npz learned" in fresh.stderr
    skipped = hamsym("run", "mlp.toml", "--stream", "short.npy", "-o", "a", "--resume",
                     "a/checkpoint.npz", "--skip", "400", cwd=work)
    assert "steps 3500 -> 3600" in skipped.stdout


def test_a_checkpoint_keeps_its_hyperparameters_unless_set(work):
    hamsym("run", "mlp.toml", "--stream", "s.npy", "-o", "a", "--steps", "100", "--set",
           "beta=0.25", "--set", "theta=0.2", cwd=work)
    # the spec's default beta changes: same structure, so the checkpoint still resumes
    text = (work / "mlp.toml").read_text().replace("beta = 2.0", "beta = 0.5")
    (work / "mlp.toml").write_text(text)
    hamsym("run", "mlp.toml", "--stream", "s.npy", "-o", "a", "--steps", "100", "--resume",
           "a/checkpoint.npz", "--set", "theta=0.3", cwd=work)
    spec = hs.load_spec(work / "mlp.toml")
    mod = spec.load(work / "a" / "mlp.py")
    hyper = mod.Integrator.restore(work / "a/checkpoint.npz").hyper
    assert hyper["beta"] == 0.25 and hyper["theta"] == 0.3


@pytest.mark.parametrize("extra, match", [
    ((), "-o a: holds another run (checkpoint.npz, losses.npy, run.json)"),
    (("--set", "beta"), "--set 'beta': expected NAME=VALUE"),
    (("--set", "nope=1"), "--set nope: not a hyperparameter or param of mlp"),
    (("--set", "beta=1", "--set", "beta=2"), "--set beta: given twice"),
    (("--set", "beta=x"), "--set beta=x: not a number"),
    (("--set", "beta=inf"), "--set beta=inf: must be finite"),
])
def test_refused_runs_change_nothing(work, extra, match):
    hamsym("run", "mlp.toml", "--stream", "s.npy", "-o", "a", "--steps", "10", cwd=work)
    before = _files(work / "a")
    bad = hamsym("run", "mlp.toml", "--stream", "s.npy", "-o", "a", *extra, cwd=work, ok=False)
    assert bad.returncode == 2 and match in bad.stderr, bad.stderr
    assert _files(work / "a") == before


def test_overwrite_replaces_the_other_run_whole(work):
    hamsym("run", "mlp.toml", "--stream", "s.npy", "-o", "a", "--steps", "10", "--record",
           "loss", cwd=work)
    hamsym("run", "mlp.toml", "--stream", "s.npy", "-o", "a", "--steps", "20", "--overwrite",
           cwd=work)
    assert len(np.load(work / "a/losses.npy")) == 20
    assert not (work / "a/record.npz").exists()            # the other run's, not this one's


def test_links_are_refused(work):
    (work / "elsewhere").mkdir()
    (work / "linked").symlink_to(work / "elsewhere")
    bad = hamsym("run", "mlp.toml", "--stream", "s.npy", "-o", "linked", cwd=work, ok=False)
    assert bad.returncode == 2 and "is a symbolic link" in bad.stderr
    assert not list((work / "elsewhere").iterdir())
    (work / "b").mkdir()
    (work / "theirs.npy").write_bytes(b"keep")
    (work / "b" / "losses.npy").symlink_to(work / "theirs.npy")
    bad = hamsym("run", "mlp.toml", "--stream", "s.npy", "-o", "b", "--overwrite", cwd=work,
                 ok=False)
    assert bad.returncode == 2 and "losses.npy is a symbolic link" in bad.stderr
    assert (work / "theirs.npy").read_bytes() == b"keep"
    assert sorted(p.name for p in (work / "b").iterdir()) == ["losses.npy"]
