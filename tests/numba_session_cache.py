"""One Numba cache for a whole test session, keyed by what a file says, not where it is.

Numba keys its cache on a module's path, so the same generated module written into a
hundred tmp_path folders (every `hamsym run` writes one into its run folder) compiles a
hundred times. Under this locator (conftest.py selects it with NUMBA_CACHE_LOCATOR_CLASSES
for the session and its subprocesses) compiled code lives in NUMBA_CACHE_DIR under the
SHA-256 of the file's content, so identical files compile once per session.

Safe because a generated module's text names everything its kernels are built from: the
network, the options and the digest of the runtime it calls. Numba itself still checks
its version and the machine's CPU in each index. A process that sets no NUMBA_CACHE_DIR
falls back to Numba's own locators.
"""

import functools
import hashlib
import os

from numba.core import config
from numba.core.caching import UserProvidedCacheLocator


@functools.lru_cache(maxsize=None)
def _digest(path, mtime, size):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:24]


class ByContent(UserProvidedCacheLocator):
    """Numba's locator for NUMBA_CACHE_DIR (used only when that is set), one folder per
    file content instead of per file path."""

    def __init__(self, py_func, py_file):
        super().__init__(py_func, py_file)
        st = os.stat(py_file)
        self._cache_path = os.path.join(config.CACHE_DIR, _digest(py_file, st.st_mtime_ns, st.st_size))
