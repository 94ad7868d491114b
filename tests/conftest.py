import contextlib
import os
import shutil
import subprocess
import sys
import tempfile

# Every generated kernel runs with Numba's bounds checking in the test suite: an index
# out of range is an IndexError here, not silent heap corruption. Set before Numba is
# imported (hamsym imports it only when a generated module is loaded).
os.environ.setdefault("NUMBA_BOUNDSCHECK", "1")

# One Numba cache for the session, its xdist workers and every subprocess they start
# (hamsym commands, fresh-process resumes, MPI ranks), keyed by file content
# (numba_session_cache.py): the same module generated into many folders compiles once.
# The first process to get here (the xdist controller, or a plain run) makes it.
TESTS = os.path.dirname(os.path.abspath(__file__))
_OWN_CACHE = "NUMBA_CACHE_DIR" not in os.environ
if _OWN_CACHE:
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="hamsym-numba-")
os.environ.setdefault("NUMBA_CACHE_LOCATOR_CLASSES", "numba_session_cache.ByContent,"
                      "UserProvidedCacheLocator,InTreeCacheLocator,UserWideCacheLocator")
if TESTS not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (TESTS, os.environ.get("PYTHONPATH")) if p)

import coverage_pause  # noqa: E402
import pytest  # noqa: E402

import hamsym as hs  # noqa: E402

coverage_pause.install()


@contextlib.contextmanager
def numba_cache_beside_module():
    """Numba's own cache (in __pycache__ beside the module) for the modules imported
    inside, instead of the session's: for tests of that cache, or that need kernels
    compiled in this process (Numba picks a function's cache when the module defines it)."""
    import numba
    saved = numba.config.CACHE_DIR, numba.config.CACHE_LOCATOR_CLASSES
    numba.config.CACHE_DIR = numba.config.CACHE_LOCATOR_CLASSES = ""
    try:
        yield
    finally:
        numba.config.CACHE_DIR, numba.config.CACHE_LOCATOR_CLASSES = saved


def pytest_unconfigure(config):
    if _OWN_CACHE and not hasattr(config, "workerinput"):
        shutil.rmtree(os.environ["NUMBA_CACHE_DIR"], ignore_errors=True)


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


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist, the tests of one file run on one worker, where they share the
    modules its fixtures compiled; the random networks, each compiling its own module,
    are dealt out one by one. (xdist's loadgroup marks no longer group under pytest 9,
    which keeps node ids elsewhere: hence a scheduler of our own.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split("::", 1)[0]
            return nodeid if path.endswith("test_random_networks.py") else path

    return ByFile(config, log)


def hamsym(*args, cwd, env=None, ok=True):
    """The `hamsym` command in a subprocess (ok: it must succeed)."""
    proc = subprocess.run([sys.executable, "-m", "hamsym", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc
