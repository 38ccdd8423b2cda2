"""Atomic files and the temporaries a killed writer leaves behind (no JAX: the harness uses it too).

Every file the sandbox writes goes through a temporary file in the destination folder, renamed
into place (atomic on POSIX), so a reader never sees half a file. A temporary's name starts with
`.tmp-<pid>-`: a process killed by SIGKILL cannot delete its own, so the next run deletes those
whose writer is no longer alive (`remove_stale_temps`) and leaves a concurrent writer's alone.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def temp_prefix(name: str) -> str:
    """The prefix of this process's temporary files for the destination `name`."""
    return f"{TEMP_PREFIX}{os.getpid()}-{name}."


def file_mode() -> int:
    """0o666 minus the process umask: the mode `open()` would give a new file (mkstemp gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, renamed into place.

    The temporary name carries the writer's pid (`.tmp-<pid>-...`) so a later run can tell a
    leftover of a killed process from a write in progress (`remove_stale_temps`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def alive(pid: int) -> bool:
    """Whether process `pid` exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete `.tmp-<pid>-*` files in `folder` (recursively) whose writer is no longer running."""
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.rglob(f"{TEMP_PREFIX}*"):
        try:
            pid = int(p.name[len(TEMP_PREFIX):].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not alive(pid):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
