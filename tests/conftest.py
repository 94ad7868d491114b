import os
import subprocess
import sys

# Every generated kernel runs with Numba's bounds checking in the test suite: an index
# out of range is an IndexError here, not silent heap corruption. Set before Numba is
# imported (hamsym imports it only when a generated module is loaded).
os.environ.setdefault("NUMBA_BOUNDSCHECK", "1")

import pytest

import hamsym as hs


@pytest.fixture(scope="session")
def gen_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("generated")


@pytest.fixture
def load(gen_dir):
    """Generate and import a module; modules are shared across the session so each
    distinct one is compiled by Numba once."""
    def _load(system, name=None, **options):
        tag = "".join(c if c.isalnum() else "_" for c in
                      "_".join(f"{k}_{v}" for k, v in sorted(options.items())))
        path = gen_dir / f"{name or system.net.name}{'__' + tag if tag else ''}.py"
        return hs.load(system, path, **options)
    return _load


def runtime_of(mod, part):
    """A part of the runtime a generated module runs on (e.g. "interrupt"), for tests
    that stand something in for it."""
    import importlib
    return importlib.import_module(f"{mod.RUNTIME}.{part}")


class _PressedAfterOneSlice:
    """Stands in for the runtime's CtrlC: Ctrl-C 'pressed' at the second look, that is
    after the first compiled slice, without sending a signal."""
    def __init__(self):
        self.looks = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @property
    def pressed(self):
        self.looks += 1
        return self.looks > 1


@pytest.fixture
def ctrl_c_after_one_slice():
    return _PressedAfterOneSlice


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (--dist loadgroup), the tests of one file run on one worker,
    where they share the modules its fixtures compiled; the random networks, each
    compiling its own module, are dealt out one by one."""
    for item in items:
        if item.path.name != "test_random_networks.py":
            item.add_marker(pytest.mark.xdist_group(item.path.name))


def hamsym(*args, cwd, env=None, ok=True):
    """The `hamsym` command in a subprocess (ok: it must succeed)."""
    proc = subprocess.run([sys.executable, "-m", "hamsym", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc
