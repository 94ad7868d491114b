"""The suite's Numba cache (conftest.py, numba_session_cache.py): the same module in
another folder is served from the cache, not compiled again; another module is not."""

import shutil
import subprocess
import sys

import hamsym as hs
from hamsym.declare.zoo import mlp

_CHILD = """
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
import cached
cached.Integrator(seed=0).run(np.ones((3, 2)), np.ones((3, 1)))
print(sum(cached._span.stats.cache_hits.values()))      # the loop run() compiles
"""


def _hits(folder):
    out = subprocess.run([sys.executable, "-c", _CHILD, str(folder)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def test_a_copy_elsewhere_is_served_from_the_cache(tmp_path):
    for beta in (0.5, 0.25):                  # the second: another module, same name
        first, second = tmp_path / f"a{beta}", tmp_path / f"b{beta}"
        hs.generate(hs.derive(mlp([2, 3, 1], name="cached"), beta=beta), first / "cached.py")
        assert _hits(first) == 0                               # compiled (and cached)
        shutil.copytree(first, second, ignore=shutil.ignore_patterns("__pycache__"))
        assert _hits(second) == 1                              # the copy: from the cache
        assert _hits(first) == 1
