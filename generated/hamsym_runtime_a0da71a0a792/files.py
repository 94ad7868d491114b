"""Files written whole or not at all, never through a link.

A file is written to a temporary name in its folder and renamed over the old one, so a
reader sees the old file or the new one, never a part, and a full disk leaves the old
file as it was. A path that is a symbolic link is refused: writing would replace the
link, or, done in place, change the file it points to, neither of which hamsym made.
"""

import glob
import os
import secrets
from pathlib import Path


def write_atomic(path, text):
    """Write text (str, as UTF-8, or bytes) to path so that readers see the old file or
    the new one, never a part; the new file gets the mode any new file gets (umask). The
    content goes to an unnamed file first (O_TMPFILE), so a process killed while writing
    leaves nothing behind; where that is not available, a named temporary file, which a
    later write removes once the process that made it is gone."""
    path = not_a_link(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    try:
        if not _publish_unnamed(path.parent, data, tmp):
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def not_a_link(path):
    """path, unless it is a symbolic link (FileExistsError naming it)."""
    if Path(path).is_symlink():
        raise FileExistsError(f"{path}: is a symbolic link; hamsym never writes through one "
                              "nor replaces it: give the path of a regular file")
    return path


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]
    os.fsync(fd)


def _publish_unnamed(folder, data, tmp):
    """Write data to an unnamed file in folder, then give it the name tmp. False where
    the platform or file system has no unnamed files."""
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o666)
    except (AttributeError, OSError):
        return False
    try:
        _write_all(fd, data)
        # linkat(AT_SYMLINK_FOLLOW) through /proc names an unnamed file; a dir fd makes
        # os.link call linkat rather than link (which would not follow the /proc link)
        folder_fd = os.open(folder, os.O_RDONLY)
        try:
            os.link(f"/proc/self/fd/{fd}", tmp, src_dir_fd=folder_fd, follow_symlinks=True)
        except OSError:
            return False
        finally:
            os.close(folder_fd)
    finally:
        os.close(fd)
    return True


def _remove_orphans(path):
    """Temporary files of path left by processes that no longer run."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            pid = int(tmp.name[len(path.name) + 2:].split(".")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, PermissionError, OSError):
            pass                               # not ours, or a live process of another user
