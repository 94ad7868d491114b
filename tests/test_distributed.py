"""Distributed runs (MPI): every rank runs its units' kernels and exchanges states and
messages; weights, states and costates after 1,000 steps (with a checkpoint and
restore in the middle) equal, bit for bit, those of the single-process module. A
rank that exits mid-run is named by the others within their timeout.

The mpiexec jobs run in subprocesses (tests/mpi_job.py); they are skipped when the
mpi extra (mpi4py, numba-mpi, mpich) is not installed.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import coverage
import numpy as np
import pytest

import hamsym as hs
from conftest import runtime_of
from hamsym.declare.zoo import delay_network

HERE = Path(__file__).resolve().parent
STEPS = 1000
SIZES = [3, 6, 5, 4, 2]                  # four layers
RUNS_2 = [("local", "float64", None), ("local", "float64", {"x1": 0, "x2": 1, "x3": 1, "x4": 1}),
          ("local", "float32", None), ("partial", "float64", None), ("partial", "float32", None)]
GROUPS = [["x1", "x2"], ["x3", "x4"]]


def _mpiexec():
    pytest.importorskip("mpi4py")
    pytest.importorskip("numba_mpi")
    exe = Path(sys.executable).parent / "mpiexec"
    exe = str(exe) if exe.exists() else shutil.which("mpiexec")
    if exe is None:
        pytest.skip("no mpiexec")
    return exe


def _system():
    net = delay_network(SIZES, [hs.tanh, hs.sigmoid, hs.tanh, hs.identity], name="layers")
    return hs.derive(net, gamma=1.0, beta=0.1, theta=0.2, theta_neurons=0.05, delta=0.1)


def _module(folder, scheme, dtype):
    name = f"layers_{scheme}_{dtype}"
    options = dict(scheme=scheme, dtype=dtype, groups=GROUPS if scheme == "partial" else ())
    return name, hs.load(_system(), folder / f"{name}.py", **options)


def _launch(folder, n, runs, fault=None, refusals=None, timeout=600):
    exe = _mpiexec()
    job = {"dir": str(folder), "runs": runs, "fault": fault, "refusals": refusals}
    (folder / f"job{n}.json").write_text(json.dumps(job))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    if coverage.Coverage.current() is not None:     # measured: so are the ranks
        env["COVERAGE_PROCESS_START"] = str(HERE.parent / "pyproject.toml")
    flags = ["-disable-auto-cleanup"] if fault else []
    return subprocess.run([exe, *flags, "-n", str(n), sys.executable, str(HERE / "mpi_job.py"),
                           str(folder / f"job{n}.json")], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """Both mpiexec jobs, run once: -n 2 over five configurations, -n 4 with the fault."""
    _mpiexec()
    folder = tmp_path_factory.mktemp("distributed")
    rng = np.random.default_rng(0)
    np.savez(folder / "stream.npz", U=rng.normal(size=(STEPS, SIZES[0])),
             Y=rng.normal(size=(STEPS, SIZES[-1])))
    refs, runs2 = {}, []
    for i, (scheme, dtype, ranks) in enumerate(RUNS_2):
        name, mod = _module(folder, scheme, dtype)
        if name not in refs:                  # the single-process reference (compiles the kernels)
            data = np.load(folder / "stream.npz")
            learner = mod.Integrator(seed=1)
            losses = learner.run(data["U"], data["Y"])
            refs[name] = (learner, losses)
        runs2.append({"module": name, "ranks": ranks, "out": f"n2_{i}"})
    two = _launch(folder, 2, runs2, refusals="layers_local_float64")
    four = _launch(folder, 4, [{"module": "layers_local_float64", "ranks": None, "out": "n4"}],
                   fault={"module": "layers_local_float64", "victim": 2, "timeout": 3.0})
    return folder, refs, runs2, two, four


def _check(folder, out, reference):
    learner, losses = reference
    got = np.load(folder / f"{out}.npz")
    assert int(got["steps"]) == STEPS
    for kind, table in (("weights", learner.weights), ("states", learner.states),
                        ("costates", learner.costates)):
        for name, a in table.items():
            b = got[f"{kind}/{name}"]
            assert b.dtype == a.dtype and b.shape == a.shape
            assert np.array_equal(a, b), f"{out}: {kind} {name} differs by {np.abs(a - b).max()}"
    assert np.array_equal(got["losses"], losses)
    return got


@pytest.mark.parametrize("i", range(len(RUNS_2)),
                         ids=[f"{s}-{d}-{'placed' if r else 'even'}" for s, d, r in RUNS_2])
def test_two_ranks_bit_identical(jobs, i):
    folder, refs, runs2, two, _ = jobs
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    run = runs2[i]
    got = _check(folder, run["out"], refs[run["module"]])
    assert got["timing"][0] > 0                 # rank 0 spent time in its kernels


def test_four_ranks_bit_identical(jobs):
    folder, refs, _, _, four = jobs
    assert (folder / "n4.npz").exists(), four.stdout[-3000:] + four.stderr[-3000:]
    _check(folder, "n4", refs["layers_local_float64"])


def test_weights_learned(jobs):
    """The comparison is not between untouched arrays: the reference did learn."""
    _, refs, *_ = jobs
    learner, losses = refs["layers_local_float64"]
    assert losses[-100:].mean() < losses[:100].mean()


def test_data_rank_0_refuses_is_refused_on_every_rank(jobs):
    """A bad sample or a NaN given to rank 0 raises on every rank, which stay in step
    (without it, the others waited for the next chunk until their timeout)."""
    folder, *_, two, _ = jobs
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    got = {r: json.loads((folder / f"refusals_{r}.json").read_text()) for r in (0, 1)}
    assert got[0]["stream"] == ("ValueError: sample 5: u has shape (2,), declared (3,); the 5 "
                                "samples before it were applied (steps = 5)")
    assert got[0]["run"].startswith("ValueError: u[3, 1] is nan: the data must be finite numbers")
    assert got[1]["stream"] == ("ValueError: rank 1: rank 0 refused the data of this call (its "
                                "error names it); the 5 steps before it stand")
    assert got[1]["run"] == got[1]["stream"]
    for rank in (0, 1):
        assert (got[rank]["stream_steps"], got[rank]["run_steps"], got[rank]["after"]) == (5, 5, 10)


def test_rank_that_exits_is_named_by_the_others(jobs):
    *_, four = jobs
    # the ranks' lines reach one pipe through mpiexec and may run together: split on the tag
    lines = ["FAILURE" + part for part in four.stdout.split("FAILURE")[1:]]
    reports = {int(f.split("rank=")[1].split()[0]): f for f in lines}
    assert sorted(reports) == [0, 1, 3], four.stdout[-3000:] + four.stderr[-3000:]
    for report in reports.values():
        assert "blames=2" in report and "rank 2 (units x3) stopped answering" in report
        assert float(report.split("after=")[1].split()[0]) < 3.0 + 10.0  # timeout + slack
    assert four.returncode != 0


# -- without MPI ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_module(tmp_path_factory):
    return _module(tmp_path_factory.mktemp("placement"), "local", "float64")[1]


def test_module_imports_without_mpi(local_module):
    """The generated module needs numpy, numba and scipy only until a distributed run."""
    code = ("import sys; sys.modules['mpi4py'] = None; sys.modules['numba_mpi'] = None; "
            f"sys.path.insert(0, {str(Path(local_module.__file__).parent)!r}); "
            f"import {local_module.__name__} as m; assert m.DISTRIBUTABLE; "
            "assert 'hamsym' not in sys.modules\n"
            "try:\n    m.DistributedIntegrator()\nexcept ImportError as e:\n"
            "    assert 'hamsym[mpi]' in str(e)\nelse:\n    raise SystemExit('no error')")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_nonlocal_is_refused(tmp_path):
    mod = hs.load(_system(), tmp_path / "layers_nonlocal.py", scheme="nonlocal")
    assert not mod.DISTRIBUTABLE
    with pytest.raises(ValueError, match="nonlocal.*one Gauss-Seidel sweep through the whole network"):
        mod.DistributedIntegrator()


def _placement(mod, ranks, size):
    return runtime_of(mod, "distributed").placement(mod._built.tables, ranks, size)


def test_placement(local_module):
    def place(ranks, size):
        return _placement(local_module, ranks, size)
    assert place(None, 2) == {"x1": 0, "x2": 0, "x3": 1, "x4": 1}
    assert place(None, 4) == {"x1": 0, "x2": 1, "x3": 2, "x4": 3}
    assert place({"x1": 0, "x2": 1, "x3": 1, "x4": 1}, 2)["x1"] == 0
    with pytest.raises(ValueError, match="5 MPI ranks but only 4 unit"):
        place(None, 5)
    with pytest.raises(ValueError, match=r"rank\(s\) \[2\] but this job has 2 rank"):
        place({"x1": 0, "x2": 1, "x3": 2, "x4": 2}, 2)
    with pytest.raises(ValueError, match=r"rank\(s\) \[2\] of this job of 3 own no unit"):
        place({"x1": 0, "x2": 1, "x3": 1, "x4": 1}, 3)
    with pytest.raises(ValueError, match="no rank given for state"):
        place({"x1": 0}, 1)
    with pytest.raises(KeyError, match="unknown state"):
        place({"x9": 0, "x1": 0, "x2": 0, "x3": 0, "x4": 0}, 1)


def test_partial_groups_stay_on_one_rank(tmp_path):
    _, mod = _module(tmp_path, "partial", "float64")
    assert _placement(mod, None, 2) == {"x1": 0, "x2": 0, "x3": 1, "x4": 1}
    with pytest.raises(ValueError, match=r"states \['x1', 'x2'\] form one unit"):
        _placement(mod, {"x1": 0, "x2": 1, "x3": 1, "x4": 1}, 2)
