"""Files and folders written safely, and where flare keeps its cache (one implementation).

A file or folder is written under a temporary name and renamed at the end: a crash leaves the
old one or the new one, never half of one. `folder_lock` keeps parallel processes from writing
the same folder at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

ENV_VAR = "FLARE_CACHE"
DEFAULT_CACHE = "~/.cache/flare"


def cache_root() -> Path:
    """`$FLARE_CACHE`, else `~/.cache/flare`."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_CACHE).expanduser()



@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a unique temporary path next to `path` that becomes `path` when the block succeeds
    (for writers that want a file name, such as safetensors' `save_file`); on an exception the
    temporary file is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make result files private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` under a unique temporary name next to `path`, then rename it into place."""
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    return Path(path)


@contextlib.contextmanager
def atomic_folder(target: Path, keep_existing: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes `target` when the block succeeds.

    On an exception the temporary folder is removed and `target` is left as it was.
    An existing `target` is replaced only once the new folder is complete; with `keep_existing`
    (content named by its own hash, so any copy is as good) it is never replaced: the new folder
    is dropped, and a reader of `target` never meets a moment without it.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield tmp
        _open_permissions(tmp)
        if keep_existing:
            try:
                os.rename(tmp, target)  # fails where another writer's copy is already there
            except OSError:
                if not target.is_dir():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
            return
        old = None
        if target.exists():
            # Move the old copy aside first: a rename onto a non-empty folder fails.
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / target.name)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _open_permissions(folder: Path) -> None:
    """mkdtemp makes 0700 folders (and some writers 0600 files); a shared cache wants the
    usual umask-based permissions instead."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.rglob("*"):
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def lock_path(target: Path) -> Path:
    """The lock file of `target` (`folder_lock`): `.<name>.lock` beside it."""
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def folder_lock(target: Path, on_wait=None, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on `target` (its `lock_path`), so that parallel test runs or CLI calls
    convert a model once instead of racing, and two processes never train the same run (POSIX only;
    elsewhere a no-op). Yields True while the lock is held; with `wait=False` it yields False at once,
    holding nothing, where another process holds it. The holder's process id and host are written in
    the file while it holds the lock (`lock_holder`); the OS releases the lock of a process that dies."""
    try:
        import fcntl
    except ImportError:  # Windows: the atomic rename still keeps the folder consistent
        yield True
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path(target), "a+") as handle:  # not "w": that would empty a holder's file
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        _rewrite(handle, f"{os.getpid()} {socket.gethostname()}\n")
        try:
            yield True
        finally:
            _rewrite(handle, "")
            fcntl.flock(handle, fcntl.LOCK_UN)


def _rewrite(handle, text: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(text)
    handle.flush()


def lock_holder(target: Path) -> int | None:
    """The process id holding `target`'s `folder_lock`, when it is a live process on this machine (None:
    not held, held on another host, or its holder died: the OS released it). A process id reused by an
    unrelated process after its holder was killed is not told apart."""
    try:
        pid, host = lock_path(target).read_text().split()
    except (OSError, ValueError):  # no file, or empty: nobody holds it
        return None
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return int(pid)
