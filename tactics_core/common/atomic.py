"""Crash-safe file writes: temp file in the same folder, fsync, rename.

A kill -9 at any instant leaves either the old file or the new one, never a
torn one. Used for checkpoints, tokenizer.json, presets, run state and export
folders, and (`swap_dir`) for the corpus folders that `tactics demo` and
`tactics import` replace.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

PARTIAL_SUFFIX = ".partial"
# A temp folder younger than this is never taken for stale (see remove_stale_partials).
PARTIAL_MIN_AGE_S = 60.0


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path next to `path`; on success fsync it and rename over `path`.

    The caller writes the temp path by any means (e.g. `torch.save`,
    `tokenizer.save`). On an exception the temp file is removed and `path`
    is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Build a folder under a hidden temp name, then rename it to `final`.

    The folder appears complete or not at all. `final` must not exist yet. The writer holds
    an flock on the temp folder until it is renamed, so `remove_stale_partials` can tell the
    temp folder of a live writer from one a killed writer left behind (the OS drops the lock).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=PARTIAL_SUFFIX, dir=final.parent))
    fd = os.open(tmp, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield tmp
        for child in tmp.rglob("*"):
            if child.is_file():
                with open(child, "rb") as fh:
                    os.fsync(fh.fileno())
        os.rename(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(fd)  # releases the lock


def remove_stale_partials(folder: str | os.PathLike, older_than_s: float = PARTIAL_MIN_AGE_S) -> list[Path]:
    """Remove the `.NAME.*.partial` temp folders of `atomic_dir` writers that died mid-write.

    A partial is stale when no process holds its lock and it is older than `older_than_s`
    (the age spares a writer between creating the folder and locking it, and one of a version
    from before the lock). Returns what was removed; never raises.
    """
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for path in entries:
        if not (path.name.startswith(".") and path.name.endswith(PARTIAL_SUFFIX)):
            continue
        try:
            if path.is_symlink() or not path.is_dir() or now - path.stat().st_mtime < older_than_s:
                continue
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live writer holds it
        else:
            shutil.rmtree(path, ignore_errors=True)  # under our lock: no writer can take it meanwhile
            if not path.exists():
                removed.append(path)
        finally:
            os.close(fd)
    return removed


class DirSwap:
    """What `swap_dir` yields: the folder to fill, and (after the swap) whether an old one was replaced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.replaced = False


@contextlib.contextmanager
def swap_dir(final: str | os.PathLike, replaceable: Callable[[], bool]) -> Iterator[DirSwap]:
    """Build a folder under a hidden temp name beside `final`, then swap it in for `final` whole.

    `replaceable()` is asked right before the swap, because something may have
    appeared at `final` while the folder was built: True moves the old folder
    aside (deleted only once the new one is in place), False means `final` is
    absent or empty; it raises to refuse. On any failure the temp folder goes
    and the old folder is put back, so an interrupted run never leaves half a
    folder in place of the user's.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    swap = DirSwap(Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=PARTIAL_SUFFIX, dir=final.parent)))
    old: Path | None = None
    try:
        yield swap
        swap.replaced = replaceable()
        if swap.replaced:
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
            os.rename(final, old / final.name)
        elif final.exists():
            final.rmdir()  # empty
        os.rename(swap.path, final)
    except BaseException:
        shutil.rmtree(swap.path, ignore_errors=True)
        if old is not None and not final.exists():
            os.rename(old / final.name, final)  # put the user's folder back
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
