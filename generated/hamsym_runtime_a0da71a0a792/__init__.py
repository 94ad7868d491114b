"""The runtime of generated modules: ordinary Python, the same for every network.

A generated module holds its network's kernels and tables; this package holds the rest
(learners, ensembles, distributed runs, recording, checkpoints, interrupts and the
static Numba helpers the kernels call). hamsym writes a copy of this package, byte for
byte, into a folder beside each generated module, named by the digest of its files
(hamsym_runtime_<digest>), so the module needs nothing but numpy, numba and scipy. The
module checks the copy's digest when it is imported, and refuses an edited one.

This file is kept light (no Numba) because hamsym reads DIGEST when it renders a module.
"""

import hashlib
import os

FOLDER = os.path.dirname(os.path.abspath(__file__))


def digest(folder=FOLDER):
    """SHA-256 of the runtime's files in folder: each .py file's name and bytes, in name
    order."""
    h = hashlib.sha256()
    for name in sorted(f for f in os.listdir(folder) if f.endswith(".py")):
        with open(os.path.join(folder, name), "rb") as fh:
            h.update(name.encode() + b"\0" + fh.read() + b"\0")
    return h.hexdigest()


DIGEST = digest()
NAME = "hamsym_runtime_" + DIGEST[:12]     # the folder and package name of its copies
