"""Where generated modules go, and what load() imports: every file is one spec, a
module never shadows another, writes are atomic, and bad options or paths are
refused before anything is written."""

import ast
from pathlib import Path
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import hamsym as hs
import hamsym.codegen.render as R
from hamsym.declare.network import _RESERVED, RUNTIME_KEYWORDS
from hamsym.declare.zoo import delay_network, mlp


def _system(name="paths", **hyper):
    return hs.derive(mlp([3, 4, 2], name=name), **hyper)


def test_default_path_names_the_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = hs.generate(_system(gamma=0.5))
    b = hs.generate(_system(gamma=2.0))
    assert a != b and a.parent.name == b.parent.name == "generated"
    assert a.stem == f"paths_{R.spec_hash(a.read_text())[:12]}"
    assert hs.generate(_system(gamma=0.5)) == a                     # same spec, same file
    mods = [hs.load(_system(gamma=g)) for g in (0.5, 2.0)]
    assert [m.Integrator(seed=0).hyper["gamma"] for m in mods] == [0.5, 2.0]


def test_load_checks_that_it_imported_what_it_wrote(tmp_path, monkeypatch):
    """Another process writes a different spec to the same path between our write
    and our import: load() must refuse, not train with the other spec."""
    path = tmp_path / "raced.py"
    other = R.render(_system(name="raced", gamma=2.0))
    write = R._write

    def racing_write(system, p, options, overwrite=False):
        out, source = write(system, p, options, overwrite)
        R.write_atomic(out, other)                                    # the other job's file
        return out, source
    monkeypatch.setattr(R, "_write", racing_write)
    with pytest.raises(RuntimeError, match="another process|Another process"):
        hs.load(_system(name="raced", gamma=0.5), path)
    assert "raced" not in sys.modules


def test_unknown_options_are_named_with_the_valid_ones(tmp_path):
    for fn in (hs.load, hs.generate):
        with pytest.raises(TypeError, match="'shceme'.*valid options: scheme, groups"):
            fn(_system(), tmp_path / "o.py", shceme="local")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name, match", [
    ("noext", "must end in .py"), ("mod.txt", "must end in .py"),
    ("math.py", "standard library"), ("json.py", "standard library"),
    ("numpy.py", "importable module"), ("sympy.py", "importable module"),
    ("1abc.py", "identifier"), ("class.py", "identifier"),
])
def test_bad_module_paths_are_refused_before_writing(tmp_path, name, match):
    for fn in (hs.load, hs.generate):
        with pytest.raises(ValueError, match=match):
            fn(_system(), tmp_path / name)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("options, match", [
    (dict(reset_neuron_costate="yes"), "reset_neuron_costate='yes'"),
    (dict(reset_weight_costate=1), "reset_weight_costate=1"),
    (dict(scheme="partial", groups=[["x9"]]), "'x9'"),
    (dict(scheme="partial", groups=[[]]), "group 0 is empty"),
    (dict(scheme="partial", groups=[["x1", "x2"]]), r"\['x3'\] are in no group"),
    (dict(scheme="partial", groups="x1"), "list of lists"),
])
def test_bad_schedules_are_refused_and_nothing_is_written(tmp_path, options, match):
    system = hs.derive(delay_network([2, 3, 3, 1], name="sch"))
    with pytest.raises(hs.DeclarationError, match=match):
        hs.load(system, tmp_path / "sch.py", **options)
    assert not list(tmp_path.iterdir())


def test_generated_file_mode_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = hs.generate(_system(), tmp_path / "mode.py")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640


_KILLED = """
import os, time
import hamsym.runtime.files as R
if {no_unnamed}:
    R._publish_unnamed = lambda *a: False
def stall(fd, data):
    os.write(fd, data[:10])
    open({ready!r}, "w").close()
    time.sleep(60)
R._write_all = stall
R.write_atomic({target!r}, "x" * 1000)
"""


@pytest.mark.parametrize("no_unnamed", [False, True], ids=["unnamed-file", "named-temporary"])
def test_generation_killed_while_writing_leaves_no_temporary(tmp_path, no_unnamed):
    ready, target = tmp_path / "ready", tmp_path / "out" / "killed.py"
    code = _KILLED.format(ready=str(ready), target=str(target), no_unnamed=no_unnamed)
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while not ready.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert ready.exists(), "the child never started writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = sorted(p.name for p in target.parent.iterdir())
    if not no_unnamed:
        assert left == []                                # nothing had a name yet
    else:                                                # the next write removes the orphan
        assert len(left) == 1 and left[0].endswith(".tmp")
        R.write_atomic(target, "y")
        assert sorted(p.name for p in target.parent.iterdir()) == ["killed.py"]


@pytest.mark.parametrize("name", ["u_stream", "update_x1", "emit_x1", "INPUTS", "Integrator",
                                  "WORK", "forward", "a__b", "step", "losses"])
def test_names_of_generated_code_are_refused_at_declaration(name):
    net = hs.Network("names")
    with pytest.raises(hs.DeclarationError, match=repr(name)):
        net.weight(name, 3)


def test_reserved_names_cover_every_top_level_name_of_a_module(tmp_path):
    """A declared name becomes an argument of the module's functions; it must not
    shadow a name the module defines, whatever the module grows to define."""
    system = hs.derive(delay_network([2, 3, 1], name="reserved"))
    for scheme in ("local", "nonlocal"):
        tree = ast.parse(R.render(system, scheme=scheme))
        names = set()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
        loose = {n for n in names if not n.startswith(("_", "emit_", "update_", "advance_"))}
        assert loose <= _RESERVED, loose - _RESERVED


def test_runtime_keywords_cover_every_keyword_of_the_public_classes():
    """Inputs and targets become parameters of run() beside its keywords, and params are
    passed by name beside Integrator's: every keyword a user can pass to a public
    method of a public class of a module (the distributed one included) is refused as
    a declared name."""
    declared = set()
    found = set()
    # the public classes of a module are the runtime's, subclassed with its tables
    for source in sorted(Path(hs.runtime.FOLDER).glob("*.py")):
        for cls in ast.walk(ast.parse(source.read_text())):
            if not isinstance(cls, ast.ClassDef) or cls.name not in (
                    "Integrator", "Ensemble", "Recorder", "DistributedIntegrator"):
                continue                     # what users build from a module
            for f in cls.body:
                if isinstance(f, ast.FunctionDef) and (f.name == "__init__" or
                                                       not f.name.startswith("_")):
                    a = f.args
                    with_default = (a.posonlyargs + a.args)[len(a.posonlyargs + a.args)
                                                             - len(a.defaults):]
                    found |= {x.arg for x in with_default + a.kwonlyargs} - declared
    assert {"record", "every", "progress", "seed", "chunk"} <= found
    assert found <= RUNTIME_KEYWORDS | _RESERVED, found - RUNTIME_KEYWORDS - _RESERVED


def test_race_between_two_sweep_jobs_on_the_default_path(tmp_path):
    """Two processes derive different gammas of one network at the same moment and
    load the default path: each trains with its own gamma."""
    job = textwrap.dedent("""
        import sys, time
        import hamsym as hs
        from hamsym.declare.zoo import mlp
        gamma, start = float(sys.argv[1]), float(sys.argv[2])
        system = hs.derive(mlp([4, 8, 2], name="sweep"), gamma=gamma)
        while time.time() < start:
            pass
        mod = hs.load(system)
        print(mod.Integrator(seed=0).hyper["gamma"])
    """)
    start = time.time() + 3
    jobs = [subprocess.Popen([sys.executable, "-c", job, str(g), str(start)], cwd=tmp_path,
                             stdout=subprocess.PIPE, text=True) for g in (0.5, 2.0)]
    got = [float(j.communicate(timeout=120)[0].split()[-1]) for j in jobs]
    assert got == [0.5, 2.0]
    assert len(list((tmp_path / "generated").glob("sweep_*.py"))) == 2


def test_run_after_load_of_the_default_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mod = hs.load(_system(name="dflt"))
    assert np.isfinite(mod.Integrator(seed=0).run(np.ones((3, 3)), np.zeros((3, 2)))).all()
