"""Whether a process holds a file lock: how a run folder and a sweep know they are live.

A run (`runs/run_folder.py`) and a sweep (`sweeps/launch.py`) each hold an fcntl lock on a file
in their folder for as long as their process lives; the kernel drops it when the process dies,
even by `kill -9`, so a held lock is the one sure sign that the work is still running.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


def lock_held(path: Path) -> bool:
    """True when some process holds an fcntl lock on `path` (False when there is no such file)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
