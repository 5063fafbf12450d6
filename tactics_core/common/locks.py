"""Whether a process holds a file lock, whether a pid still runs: how a run folder and a sweep
know they are live.

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


def pid_alive(pid: int) -> bool:
    """True when `pid` runs on this host and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
        return stat[stat.rfind(")") + 2 :][:1] != "Z"
    except OSError:
        return True  # no /proc (macOS): trust kill(0)
