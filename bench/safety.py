"""Three rules every writer follows: a name given by a user is one folder name inside its root; files are
published by rename (readers never see a torn file); temp files left by a killed writer are swept by one
rule (`is_stale_temp`)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

NAME_RULE = "a name is one folder name: not empty, not '.' or '..', without '/' or '\\', not an absolute path"
# Temp entries are hidden and say so in their name: `.<target>.pid<N>.<random>.tmp` (ours), `.<target>.<random>.tmp`
# (train's checkpoint folders), `.<target>.building-<random>` (provisioned models).
_TEMP = re.compile(r"^\..*(\.tmp|\.pid\d+\..*|\.building-.*)$")
_PID = re.compile(r"\.pid(\d+)\.")
# A temp without a pid in its name is stale once untouched this long: publishing a checkpoint takes seconds.
STALE_AFTER_S = 3600.0


def check_name(name: str, what: str) -> str:
    """`name` if it is safe as one path component under its root; ValueError naming the rule otherwise."""
    text = str(name)
    if (not text.strip() or text in (".", "..") or "/" in text or "\\" in text or "\x00" in text
            or os.path.isabs(text)):
        raise ValueError(f"{what} {text!r} is not allowed: {NAME_RULE}")
    return text


def inside(root: Path, path: Path, what: str) -> Path:
    """`path` resolved, if it lies inside `root` (symlinks followed); ValueError otherwise."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    if resolved != base and base not in resolved.parents:
        raise ValueError(f"{what} {path} resolves to {resolved}, outside {base}")
    return resolved


def temp_prefix(name: str) -> str:
    """Prefix of a temp entry for `name`, with this process' id so that a sweep knows when it is orphaned."""
    return f".{name}.pid{os.getpid()}."


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temp file in the same folder, then rename: readers never see a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; results are shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def publish_folder(target: Path, write: Callable[[Path], None],
                   keep_existing: Callable[[Path], bool] = lambda target: False) -> Path:
    """write(folder) into a temp folder beside `target`, then put it in place by renames: a reader sees the old
    folder or the new one, never half of one, and a failure leaves nothing behind. The temp folder carries this
    process' id (temp_prefix), so is_stale_temp tells a killed build from a running one, and gets the
    permissions of a plainly created folder (mkdtemp's 0700 and 0600 files would hide a shared cache).
    If `target` exists by then: keep_existing(target) True keeps it and drops ours (a concurrent build that
    finished first); False moves it aside and replaces it; it may raise to refuse."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f"{temp_prefix(target.name)}building-"))
    aside = target.with_name(f"{temp_prefix(target.name)}old")
    try:
        write(work)
        mask = _umask()
        for path in [work, *work.rglob("*")]:
            path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)
        try:
            os.rename(work, target)  # atomic; fails when target exists and is not empty
            return target
        except OSError:
            if not target.exists():
                raise
        if keep_existing(target):
            return target
        os.rename(target, aside)
        try:
            os.rename(work, target)
        except OSError:
            if not target.exists():  # put the previous folder back rather than leave none
                os.rename(aside, target)
            raise
        return target
    finally:
        for leftover in (work, aside):
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def is_stale_temp(path: Path, now: float | None = None) -> bool:
    """A temp entry whose writer is gone: the pid in its name is dead, or it has none and is over an hour old."""
    if not _TEMP.match(path.name):
        return False
    pid = _PID.search(path.name)
    if pid:
        return int(pid.group(1)) != os.getpid() and not _pid_alive(int(pid.group(1)))
    try:
        age = (time.time() if now is None else now) - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    return age > STALE_AFTER_S


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the stale temp entries directly inside `folder`; returns what was removed."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for path in entries:
        if is_stale_temp(path):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed
