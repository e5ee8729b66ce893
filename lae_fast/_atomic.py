"""Atomic file replacement: every file lae-fast writes goes through here.

A write goes to a temporary file beside the target, named ``.NAME.lae-fast-NN.tmp`` (one of
16 slots, so concurrent writers of one file do not collide) so a leftover is recognisable; the file is flushed, fsynced and renamed over the target,
so a reader sees the old file or the new one, never half of one. On top of that:

* the target must be a regular file (or not exist yet): a directory, device, FIFO or
  socket is refused (as root, ``os.replace`` would otherwise swap ``/dev/null`` for a
  regular file); a symbolic link is followed, the file it points to is replaced;
* SIGTERM during a write (main thread, default SIGTERM action) removes the temporary
  file and then ends the process by the same signal;
* SIGKILL cannot be caught: the writer holds an exclusive ``flock`` on its temporary
  file, the kernel drops it when the process dies, and the next write of the same
  target removes every temporary file of that target whose lock is free (it checks
  the 16 slot names: no scan of the folder, which may hold thousands of files).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import stat
import threading
import time
from typing import BinaryIO, Iterator, List, Set, Tuple, Union

try:  # POSIX only; elsewhere stale temporary files are simply not detected
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["atomic_write", "atomic_path", "check_target", "temp_name_pattern", "TEMP_TAG"]

PathLike = Union[str, "os.PathLike[str]"]

#: marks lae-fast's temporary files: ``.NAME`` + TEMP_TAG + a two-digit slot + ``.tmp``
TEMP_TAG = ".lae-fast-"
_SUFFIX = ".tmp"
# NAME_MAX is 255 on common file systems; the tag, slot number and suffix take 17 characters
_MAX_BASE = 200
#: temporary file names per target: concurrent writers of one file beyond this wait for a free one
_SLOTS = 16
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))

# temporary files this process is writing now: never "stale", whatever their lock says
# (flock emulated over NFS is per process, so a lock test cannot tell our own threads apart)
_live: Set[str] = set()
_live_lock = threading.Lock()


class _Terminated(BaseException):
    """Raised by our SIGTERM handler so that cleanup code runs before the process ends."""


def _prefix(target: str) -> str:
    return "." + os.path.basename(target)[:_MAX_BASE] + TEMP_TAG


def _slots(target: str) -> List[str]:
    """The temporary file names of ``target``: a fixed few, so finding stale ones needs no folder scan."""
    base = os.path.join(os.path.dirname(target), _prefix(target))
    return [f"{base}{k:02d}{_SUFFIX}" for k in range(_SLOTS)]


def temp_name_pattern(target: PathLike) -> "re.Pattern[str]":
    """The names of the temporary files written for ``target`` (in its directory)."""
    return re.compile(re.escape(_prefix(os.fspath(target))) + r"[0-9]{2}" + re.escape(_SUFFIX) + r"\Z")


def _kind(mode: int) -> str:
    return next((label for test, label in _KINDS if test(mode)), "not a regular file")


def check_target(path: PathLike) -> str:
    """The real path an atomic write of ``path`` replaces, after refusing what must never be replaced.

    Call it before long work whose result goes to ``path``, so a bad output path fails
    first rather than last. Raises as :func:`atomic_write` does.
    """
    name = os.fspath(path)
    if not isinstance(name, str) or not name:
        raise ValueError(f"an output path must be a non-empty file name, got {path!r}")
    real = os.path.realpath(name)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise NotADirectoryError(errno.ENOTDIR, "a folder on this output path is a file, not a folder",
                                 name) from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        what = _kind(st.st_mode)
        shown = name if real == os.path.abspath(name) else f"{name} (-> {real})"
        error = IsADirectoryError if stat.S_ISDIR(st.st_mode) else FileExistsError
        raise error(f"{shown}: is {what}, not a regular file; lae-fast writes a new file and renames it over the "
                    "target, so it never writes into directories, devices, FIFOs or sockets; pass the path of a "
                    "regular file (new or existing)")
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, "the folder of this output path does not exist; create it first",
                                name)
    return real


def _is_live(path: str) -> bool:
    with _live_lock:
        return path in _live


def _remove_if_stale(path: str) -> bool:
    """Remove a temporary file whose writer died (its flock is free); True if removed or absent."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a live writer holds it
        try:
            if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:
            return False
        return True
    finally:
        os.close(fd)


def _remove_stale(target: str) -> None:
    """Remove the temporary files of ``target`` left by writers that died."""
    for path in _slots(target):
        if not _is_live(path) and os.path.lexists(path):
            _remove_if_stale(path)


def _create_temp(target: str, mode: int) -> Tuple[int, str]:
    """A new locked temporary file beside ``target``: ``(fd, path)``, in the first free slot."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    while True:
        for path in _slots(target):
            try:
                fd = os.open(path, flags, mode)  # the kernel applies the umask, as a plain open() would
            except FileExistsError:
                continue  # a live writer's (stale ones were removed just before)
            if fcntl is None:
                return fd, path
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink:
                return fd, path
            os.close(fd)  # a concurrent writer's sweep took it before we locked it: try again
        time.sleep(0.01)  # every slot is being written by someone else: wait for one to finish
        _remove_stale(target)


@contextlib.contextmanager
def _sigterm_cleans_up() -> Iterator[None]:
    """While active, SIGTERM raises (so cleanup runs), then the process still dies of it.

    Only in the main thread and only when SIGTERM has its default action: a program that
    handles SIGTERM itself keeps control of its own shutdown.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def handler(signum, frame):
        raise _Terminated()

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        raise SystemExit(128 + signal.SIGTERM) from None  # only reached if SIGTERM is blocked
    finally:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _replacing(path: PathLike) -> Iterator[Tuple[int, str]]:
    """A locked temporary file beside ``path``; renamed over ``path`` if the block succeeds."""
    target = check_target(path)
    try:
        old_mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        old_mode = None
    with _sigterm_cleans_up():
        _remove_stale(target)
        fd, tmp = _create_temp(target, 0o666 if old_mode is None else 0o600)
        with _live_lock:
            _live.add(tmp)
        try:
            yield fd, tmp
            # the block may have rewritten the file by name: sync what the name holds now
            sync_fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(sync_fd)
            finally:
                os.close(sync_fd)
            if old_mode is not None:
                os.chmod(tmp, old_mode)  # replacing a file keeps its permissions
            os.replace(tmp, target)
            _fsync_folder(os.path.dirname(target))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        finally:
            with _live_lock:
                _live.discard(tmp)
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: PathLike) -> Iterator[BinaryIO]:
    """Write ``path`` atomically: yields a binary file; on success it replaces ``path``.

    Parameters
    ----------
    path : str or path-like
        A regular file (replaced, keeping its permissions) or a new name in an
        existing folder. A symbolic link is followed.

    Yields
    ------
    binary file object
        Opened on a temporary file ``.NAME.lae-fast-NN.tmp`` beside ``path``.

    Raises
    ------
    IsADirectoryError, FileExistsError
        ``path`` is a directory, or a device, FIFO or socket.
    FileNotFoundError
        The folder of ``path`` does not exist.

    Notes
    -----
    On any error or interrupt (and on SIGTERM, see the module docstring) the
    temporary file is removed and ``path`` is untouched. Temporary files left by
    a killed writer of the same ``path`` are removed by the next write.
    """
    with _replacing(path) as (fd, _):
        with os.fdopen(os.dup(fd), "wb") as fh:
            yield fh
            fh.flush()


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[str]:
    """Like :func:`atomic_write` for tools that write by file name: yields the temporary path.

    The block writes (or overwrites) the yielded path, e.g. ``fig.savefig(tmp)`` or
    ``torch.onnx.export(..., tmp)``; on success it replaces ``path``.
    """
    with _replacing(path) as (_, tmp):
        yield tmp
