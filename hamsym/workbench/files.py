"""Files a user hands hamsym to read: only regular files, checked before they are opened.

A folder cannot be read, a FIFO blocks the reader forever, and a device such as
/dev/zero never ends (a reader fills the memory): all are refused by their kind,
which stat tells without opening the file.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from ..errors import InputError


def regular_file(path, what, error=InputError, *, max_bytes=None):
    """path as a Path, if it names a non-empty regular file (a symlink to one is fine:
    reading through it changes nothing); else error(message naming `what` and path).
    max_bytes: refuse larger files (for files read whole into memory)."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{what} {path}: no such file") from None
    except OSError as err:
        raise error(f"{what} {path}: cannot read it: {err.strerror or err}") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{what} {path}: is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(info.st_mode) else
                "a socket" if stat.S_ISSOCK(info.st_mode) else "a device")
        raise error(f"{what} {path}: is {kind}, not a regular file")
    if info.st_size == 0:
        raise error(f"{what} {path}: the file is empty (0 bytes)")
    if max_bytes is not None and info.st_size > max_bytes:
        raise error(f"{what} {path}: {info.st_size} bytes; at most {max_bytes} are read")
    return path


def sha256(path):
    """The SHA-256 of a file's bytes (hex), read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
