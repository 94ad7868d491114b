"""The committed modules in generated/ never drift from the templates, and the
README's example runs as printed.

To refresh generated/ after changing hamsym: `python tests/test_generated.py`.
"""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hamsym as hs

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
EXAMPLE = next(block for block in re.findall(r"```python\n(.*?)```", README, re.S)
               if 'hs.Network("readme_mlp")' in block)


def readme_system():
    """The README example up to its derivation (no learning, no file written)."""
    head = EXAMPLE[:EXAMPLE.index("print(system)")]
    scope = {}
    exec(compile(head, "README.md", "exec"), scope)
    return scope["system"], {}


SOURCES = {"readme_mlp.py": readme_system}


def _recorded(text, name):
    return ast.literal_eval(re.search(rf"^{name} = (.*)$", text, re.M).group(1))


def test_every_generated_file_has_a_known_source():
    assert sorted(p.name for p in (ROOT / "generated").glob("*.py")) == sorted(SOURCES)


@pytest.mark.parametrize("name", sorted(SOURCES))
@pytest.mark.fast
def test_generated_file_matches_a_fresh_render(name):
    committed = (ROOT / "generated" / name).read_text()
    system, options = SOURCES[name]()
    fresh = hs.render(system, versions=_recorded(committed, "VERSIONS"), **options)
    assert fresh == committed, f"generated/{name} drifted: run `python tests/test_generated.py`"


def test_readme_example_runs(tmp_path):
    out = subprocess.run([sys.executable, "-c", EXAMPLE], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    first, last = map(float, out.stdout.strip().splitlines()[-1].split(" -> "))
    assert last < 0.2 * first
    assert (tmp_path / "generated" / "readme_mlp.py").exists()


def test_readme_quotes_what_print_shows():
    quoted = re.search(r"`print\(system\)` shows, among others,\n\n```\n(.*?)```", README, re.S).group(1)
    printed = [line.strip() for line in str(readme_system()[0]).splitlines()]
    for line in quoted.strip().splitlines():
        assert line.strip() in printed, line


def test_generated_holds_the_runtime_of_its_modules_byte_for_byte():
    folders = sorted(p.name for p in (ROOT / "generated").iterdir() if p.is_dir()
                     and p.name.startswith("hamsym_runtime_"))
    assert folders == [hs.runtime.NAME], "stale runtime in generated/: run " \
        "`python tests/test_generated.py`"
    copy = ROOT / "generated" / hs.runtime.NAME
    package = sorted(Path(hs.runtime.FOLDER).glob("*.py"))
    assert sorted(p.name for p in copy.glob("*.py")) == [p.name for p in package]
    for source in package:
        assert (copy / source.name).read_bytes() == source.read_bytes(), source.name


_STANDALONE = """
import sys
for name in ("hamsym", "sympy", "jinja2", "torch"):
    sys.modules[name] = None                # importing any of them now fails
sys.path.insert(0, sys.argv[1])
import numpy as np
module = __import__(sys.argv[2])
learner = module.Integrator(seed=0)
U = np.random.default_rng(0).normal(size=(20, 4))
print(learner.run(U, np.sin(U[:, :2]))[-1])
print(sorted(m.split(".")[0] for m, v in sys.modules.items() if v is not None and m.split(".")[0] in
             ("numpy", "numba", "scipy", "hamsym", "sympy", "jinja2", "torch")))
"""


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_generated_module_imports_with_numpy_numba_and_scipy_alone(name, tmp_path):
    # a copy elsewhere, as an engineer drops it into a project: the file and its runtime
    import shutil
    shutil.copy(ROOT / "generated" / name, tmp_path / name)
    shutil.copytree(ROOT / "generated" / hs.runtime.NAME, tmp_path / hs.runtime.NAME)
    # and compiles it there, as on a machine without hamsym (the suite's shared Numba
    # cache holds kernels compiled where the runtime is hamsym.runtime: conftest.py)
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "NUMBA_CACHE_LOCATOR_CLASSES")}
    out = subprocess.run([sys.executable, "-c", _STANDALONE, str(tmp_path), name[:-3]],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.splitlines()[0]) >= 0
    assert set(ast.literal_eval(out.stdout.splitlines()[1])) <= {"numpy", "numba", "scipy"}


def test_a_module_refuses_an_edited_runtime(tmp_path):
    import shutil
    shutil.copy(ROOT / "generated" / "readme_mlp.py", tmp_path / "readme_mlp.py")
    runtime = shutil.copytree(ROOT / "generated" / hs.runtime.NAME, tmp_path / hs.runtime.NAME)
    (runtime / "learner.py").write_text((runtime / "learner.py").read_text() + "# edited\n")
    out = subprocess.run([sys.executable, "-c", "import readme_mlp"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "its files were changed" in out.stderr
    shutil.rmtree(runtime)
    out = subprocess.run([sys.executable, "-c", "import readme_mlp"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and f"needs its runtime, the folder {hs.runtime.NAME}" in out.stderr


if __name__ == "__main__":
    import shutil
    for name, source in SOURCES.items():
        system, options = source()
        hs.generate(system, ROOT / "generated" / name, **options)
        print("wrote generated/" + name)
    for stale in (ROOT / "generated").glob("hamsym_runtime_*"):
        if stale.name != hs.runtime.NAME:
            shutil.rmtree(stale)
            print("removed generated/" + stale.name)


def test_kernels_compile_without_reference_counting(tmp_path):
    """Numba's reference counts cost two atomic operations per array argument of every
    kernel call (half of a small network's step); the step and the loops that call it
    allocate nothing, so the module turns them off where Numba has the option (it does
    in the tested versions)."""
    system, _ = readme_system()
    mod = hs.load(system, tmp_path / "no_nrt_mlp.py")
    hot = [mod.step, mod.run, mod._span, mod._span_record, mod._prediction]
    hot += [getattr(mod, name) for name in dir(mod) if name.startswith(("update_", "emit_"))]
    for kernel in hot:
        assert kernel.targetoptions.get("_nrt") is False, kernel
    learner = mod.Integrator(seed=0)
    U = np.random.default_rng(0).normal(size=(50, 4))
    assert np.isfinite(learner.run(U, np.sin(U[:, :2]))).all()
    assert np.isfinite(learner.run(U, np.sin(U[:, :2]), metrics="mae")[1].summary()["mae"])
