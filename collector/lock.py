"""One collector per state directory: an exclusive `flock` on a lock file, kept honest.

A `flock` belongs to the file, not to its name: if someone deletes the lock file, the next
collector creates a new file and locks that one while the first still runs. So the holder checks,
before every save and while it sleeps, that the name still leads to the file it locked; if not, it
takes the name back, or stops when another collector already has it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from pathlib import Path

from collector.errors import StateError
from collector.files import kind_of


class StateLock:
    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait_seconds: float) -> None:
        """Takes the lock, waiting up to `wait_seconds` for a holder to go (a restarting Vector overlaps)."""
        deadline = time.monotonic() + wait_seconds
        while True:
            fd = self._open()
            if self._try_lock(fd):
                if self._still_named(fd):
                    self._take(fd)
                    return
                os.close(fd)  # deleted or replaced between our open and our lock: open the name again
                continue
            os.close(fd)
            if time.monotonic() >= deadline:
                raise StateError(
                    f"state directory {self.path.parent} is in use by another collector (pid {holder_pid(self.path)}); "
                    "two collectors must not share one state: stop the other one or use another --state-dir"
                )
            time.sleep(0.1)

    def verify(self) -> bool:
        """True when the lock file had been deleted or replaced and this process took it back.

        Raises StateError when another process holds the lock file now: this one must stop.
        """
        if self._fd is None or self._still_named(self._fd):
            return False
        fd = self._open()
        if not self._try_lock(fd) or not self._still_named(fd):
            os.close(fd)
            raise StateError(
                f"the lock file {self.path} was deleted or replaced and another collector (pid "
                f"{holder_pid(self.path)}) now uses this state directory; stopping so that two collectors never "
                "share one state"
            )
        self.release()
        self._take(fd)
        return True

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _open(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateError(f"cannot open the lock file {self.path}: {_why(self.path, exc)}") from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise StateError(f"the lock file {self.path} is {kind_of(mode)}; remove it (the collector creates it)")
        return fd

    def _try_lock(self, fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return False
            os.close(fd)
            raise StateError(f"cannot lock {self.path}: {exc.strerror}") from None
        return True

    def _still_named(self, fd: int) -> bool:
        """Whether the path still leads to the file behind `fd` (not deleted, not replaced)."""
        try:
            named = os.lstat(self.path)
        except OSError:
            return False
        mine = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)

    def _take(self, fd: int) -> None:
        self._fd = fd
        with contextlib.suppress(OSError):  # the pid is for people; a full disk must not stop the lock
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def holder_pid(path: Path) -> str:
    """The pid written in a lock file, for messages ("unknown" when it cannot be read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return "unknown"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "unknown"
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    return text if text.isdigit() else "unknown"


def _why(path: Path, exc: OSError) -> str:
    if exc.errno == errno.EISDIR:
        return "it is a directory; remove it (the collector creates it)"
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link; remove it (the collector creates it)"
    return exc.strerror or str(exc)
