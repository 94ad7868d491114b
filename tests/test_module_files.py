"""Generated files: standalone, deterministic, atomic, never silently stale."""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hamsym as hs
from conftest import numba_cache_beside_module
from hamsym.codegen import render as R
from hamsym.runtime import files as F
from hamsym.declare.zoo import mlp


def _system(sizes=(3, 5, 2), theta=0.3, name="small"):
    return hs.derive(mlp(list(sizes), name=name), theta=theta)


def test_module_runs_without_hamsym_sympy_or_jinja(tmp_path):
    hs.generate(_system(), tmp_path / "standalone.py")
    script = textwrap.dedent(f"""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in ("hamsym", "sympy", "jinja2"):
                    raise ImportError("blocked " + name)
        sys.meta_path.insert(0, Block())
        sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np, standalone
        integ = standalone.Integrator(seed=0)
        losses = integ.run(np.ones((20, 3)), np.zeros((20, 2)))
        assert losses[-1] < losses[0], losses
        bad = [m for m in sys.modules if m.split(".")[0] in ("hamsym", "sympy", "jinja2")]
        assert not bad, bad
        print("ok", losses[0], losses[-1])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")


def test_same_spec_gives_identical_bytes_in_fresh_processes(tmp_path):
    code = ("import hamsym as hs; from hamsym.declare.zoo import mlp; import sys; "
            "sys.stdout.write(hs.render(hs.derive(mlp([3, 5, 4, 2], [hs.tanh, hs.relu], "
            "loss='cross_entropy'), theta=0.2)))")
    outs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.append(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                   env=env, timeout=300, check=True).stdout)
    assert outs[0] == outs[1]
    assert "SPEC_HASH" in outs[0] and R.is_hamsym_module(outs[0])


def test_unchanged_file_is_not_rewritten(tmp_path):
    path = hs.generate(_system(), tmp_path / "m.py")
    stamp = path.stat().st_mtime_ns
    os.utime(path, ns=(stamp - 10**9, stamp - 10**9))
    hs.generate(_system(), path)
    assert path.stat().st_mtime_ns == stamp - 10**9          # left alone: numba's cache holds


def test_stale_file_is_regenerated(tmp_path):
    path = hs.generate(_system(theta=0.3), tmp_path / "m.py")
    hs.generate(_system(theta=0.7), path)                    # another spec, same path
    assert "'theta': 0.7" in path.read_text()
    mod = hs.load(_system(theta=0.7), path)
    assert mod.HYPER["theta"] == 0.7


def test_edited_or_foreign_file_is_refused_unless_overwrite(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("print('not generated')\n")
    for call in (hs.generate, hs.load):
        with pytest.raises(FileExistsError, match="m.py: exists and is not a module hamsym"):
            call(_system(), path)
        assert path.read_text() == "print('not generated')\n"
    hs.generate(_system(), path, overwrite=True)
    assert R.is_hamsym_module(path.read_text())
    edited = path.read_text().replace("_aw = _F(1.0 + flip * theta)", "_aw = _F(1.0)")
    path.write_text(edited)
    assert not R.is_hamsym_module(path.read_text())
    with pytest.raises(FileExistsError, match="or was edited since"):
        hs.load(_system(), path)
    assert path.read_text() == edited
    mod = hs.load(_system(), path, overwrite=True)
    assert R.is_hamsym_module(path.read_text())
    assert mod.SPEC_HASH in path.read_text()


def test_symbolic_link_is_never_written_through(tmp_path):
    target = tmp_path / "target.py"
    target.write_text("print('mine')\n")
    link = tmp_path / "link.py"
    link.symlink_to(target)
    with pytest.raises(FileExistsError, match="symbolic link"):
        hs.generate(_system(), link, overwrite=True)
    assert link.is_symlink() and target.read_text() == "print('mine')\n"
    with pytest.raises(FileExistsError, match="symbolic link"):
        R.write_atomic(link, "x")
    assert link.is_symlink() and target.read_text() == "print('mine')\n"


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = hs.generate(_system(theta=0.3), tmp_path / "m.py")
    before = path.read_text()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(F.os, "replace", boom)
    with pytest.raises(OSError):
        hs.generate(_system(theta=0.9), path)
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.py", hs.runtime.NAME])


def test_local_with_weight_reset_warns_and_freezes(load):
    with pytest.warns(hs.FrozenWeightsWarning):
        mod = load(_system(), name="frozen", scheme="local", reset_weight_costate=True)
    integ = mod.Integrator(seed=0)
    w0 = {k: v.copy() for k, v in integ.weights.items()}
    with pytest.warns(UserWarning, match="frozen"):
        integ.run(np.ones((10, 3)), np.zeros((10, 2)))
    for k in w0:
        np.testing.assert_array_equal(integ.weights[k], w0[k])


def test_beta_zero_warns(load):
    mod = load(_system())
    integ = mod.Integrator(seed=0, beta=0.0)
    with pytest.warns(UserWarning, match="beta = 0"):
        integ.step(np.ones(3), np.zeros(2))


def test_integrator_checks_its_inputs(load):
    mod = load(_system())
    with pytest.raises(TypeError, match="unknown hyperparameter"):
        mod.Integrator(gama=1.0)
    with pytest.raises(KeyError, match="unknown weight"):
        mod.Integrator(weights={"W9": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="W1"):
        mod.Integrator(weights={"W1": np.zeros((3, 5))})
    integ = mod.Integrator(weights={"W1": np.ones((5, 3)), "b1": np.ones((5, 1))})
    np.testing.assert_array_equal(integ.weights["b1"], np.ones(5))
    with pytest.raises(ValueError, match="u: expected shape"):
        integ.step(np.ones(4), np.zeros(2))
    with pytest.raises(ValueError, match="same length"):
        integ.run(np.ones((5, 3)), np.zeros((4, 2)))
    assert integ.run(np.ones((0, 3)), np.zeros((0, 2))).shape == (0,)


def test_unknown_options_are_refused():
    with pytest.raises(hs.DeclarationError, match="unknown scheme"):
        hs.render(_system(), scheme="jacobi-ish")
    with pytest.raises(ValueError, match="dtype"):
        hs.render(_system(), dtype="float16")


def test_cache_made_by_load_serves_a_plain_import(tmp_path, monkeypatch):
    """Numba's cache remembers the module name: load() must import under the name a
    plain `import` uses, or the cached file breaks the user's own import."""
    monkeypatch.delenv("NUMBA_CACHE_DIR")                 # Numba's own cache, not the suite's
    monkeypatch.delenv("NUMBA_CACHE_LOCATOR_CLASSES")
    system = _system(name="plain")
    with numba_cache_beside_module():
        mod = hs.load(system, tmp_path / "plain.py")
    mod.Integrator(seed=0).run(np.ones((5, 3)), np.zeros((5, 2)))      # fills __pycache__
    assert any((tmp_path / "__pycache__").glob("plain.*.nbi"))
    script = ("import sys, numpy as np; sys.path.insert(0, sys.argv[1]); import plain; "
              "print(plain.Integrator(seed=0).run(np.ones((5, 3)), np.zeros((5, 2)))[-1])")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == pytest.approx(
        mod.Integrator(seed=0).run(np.ones((5, 3)), np.zeros((5, 2)))[-1], abs=1e-15)


_MOVED = """
import sys
for name in ("hamsym", "sympy", "jinja2", "torch"):
    sys.modules[name] = None                # importing any of them now fails
sys.path.insert(0, sys.argv[1])
import numpy as np, moved
learner = moved.Integrator(seed=0)
print(learner.step(np.ones(3), np.zeros(2)), learner.run(np.ones((5, 3)), np.zeros((5, 2)))[-1])
print(sum(moved._span.stats.cache_hits.values()), sum(moved._span.stats.cache_misses.values()))
"""


def test_a_folder_copied_with_its_cache_runs_where_hamsym_is_absent(tmp_path, monkeypatch):
    """The cache hamsym's process wrote names hamsym.runtime (its runtime there): a copy of
    the folder, __pycache__ and all, compiles afresh where hamsym is absent, instead of
    failing to load it, and rewrites it for the next process."""
    monkeypatch.delenv("NUMBA_CACHE_DIR")                 # Numba's own cache, not the suite's
    monkeypatch.delenv("NUMBA_CACHE_LOCATOR_CLASSES")
    made = tmp_path / "made"
    with numba_cache_beside_module():
        mod = hs.load(_system(name="moved"), made / "moved.py")
    learner = mod.Integrator(seed=0)
    want = [learner.step(np.ones(3), np.zeros(2)), learner.run(np.ones((5, 3)), np.zeros((5, 2)))[-1]]
    assert any((made / "__pycache__").glob("moved._span*.nbi"))
    moved = tmp_path / "moved"
    shutil.copytree(made, moved)
    runs = [subprocess.run([sys.executable, "-c", _MOVED, str(moved)], capture_output=True,
                           text=True, timeout=300) for _ in range(2)]
    for out in runs:
        assert out.returncode == 0, out.stderr
        assert [float(x) for x in out.stdout.split()[:2]] == want
    assert runs[0].stdout.split()[2:] == ["0", "1"]       # compiled afresh ...
    assert runs[1].stdout.split()[2:] == ["1", "0"]       # ... and cached for the next


def test_forward_reads_what_the_network_computes_and_changes_nothing(load):
    from hamsym.declare.zoo import oscillator_bank
    mod = load(_system(name="fw_mlp"))
    integ = mod.Integrator(seed=3)
    before = {k: v.copy() for k, v in {**integ.weights, **integ.costates}.items()}
    u = np.array([0.3, -0.2, 0.5])
    out = integ.forward(u)
    W1, b1, W2, b2 = (integ.weights[k] for k in ("W1", "b1", "W2", "b2"))
    h = np.tanh(W1 @ u + b1)
    np.testing.assert_allclose(out["h1"], h, rtol=0, atol=1e-15)
    np.testing.assert_allclose(out["o"], W2 @ h + b2, rtol=0, atol=1e-15)
    for k, v in {**integ.weights, **integ.costates}.items():
        np.testing.assert_array_equal(v, before[k])
    y = np.array([0.1, 0.2])
    assert integ.step(u, y) == pytest.approx(0.5 * np.sum((out["o"] - y) ** 2), abs=1e-15)

    bank = load(hs.derive(oscillator_bank(3)), name="fw_bank").Integrator(
        states={"a": np.ones(3), "b": np.zeros(3)})
    o = bank.forward()["o"]                               # a generator has no inputs
    np.testing.assert_allclose(o, bank.weights["Ca"] @ np.ones(3), rtol=0, atol=1e-15)


def test_float32_state_network_in_the_local_scheme(load):
    from hamsym.declare.zoo import delay_network
    system = hs.derive(delay_network([3, 6, 2], name="f32_delay"), beta=0.1, theta=0.2)
    mod = load(system, name="f32_delay", scheme="local")
    a, b = mod.Integrator(seed=0), mod.Integrator(seed=0, dtype="float32")
    rng = np.random.default_rng(0)
    U, Y = rng.normal(size=(3000, 3)), rng.normal(size=(3000, 2))
    a.run(U, Y)
    assert b.run_stream(zip(U, Y), chunk=700) == 3000
    assert b.weights["W1"].dtype == b.states["x1"].dtype == b.costates["x1"].dtype == np.float32
    for k in a.weights:
        np.testing.assert_allclose(b.weights[k], a.weights[k], rtol=0, atol=1e-4)   # measured 2.4e-6
