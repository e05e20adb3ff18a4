"""Reading and writing the collector's own small files without ever hanging or half-writing.

A FIFO, a device or a directory where a file is expected would make a plain `open()` block or
fail obscurely, so files are opened non-blocking and checked to be regular files first. Writes go
to a temporary file first and become visible by rename, in two steps, so that the caller can make
sure the new content is on disk before it does what the content records.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from collector.errors import StateWriteError

NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


class NotARegularFile(OSError):
    """The path exists but is a FIFO, a directory, a device or a socket."""


def kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_regular(path: Path, limit: int) -> tuple[bytes, os.stat_result]:
    """The bytes of `path` (at most `limit`) and its stat; NotARegularFile for anything else.

    FileNotFoundError and other OSErrors pass through for the caller to word.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFile(errno.EINVAL, f"{path} is {kind_of(info.st_mode)}, not a regular file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise OSError(errno.EFBIG, f"{path} is larger than {limit:,} bytes")
        return b"".join(chunks), info
    finally:
        os.close(fd)


class StagedWrite:
    """New content for `path`, written and fsynced to a temporary file, not yet visible."""

    def __init__(self, path: Path, temporary: Path):
        self.path = path
        self._temporary: Path | None = temporary

    def commit(self) -> None:
        """Makes the new content the file's content (rename, then fsync of the directory)."""
        if self._temporary is None:
            return
        try:
            os.replace(self._temporary, self.path)
            self._temporary = None
            dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            self.abort()
            raise _write_error(self.path, exc) from None

    def abort(self) -> None:
        """Forgets the new content (a no-op after commit)."""
        if self._temporary is not None:
            with contextlib.suppress(OSError):
                self._temporary.unlink()
            self._temporary = None


def stage_write(path: Path, payload: bytes) -> StagedWrite:
    """Writes `payload` beside `path` and fsyncs it; StateWriteError (no_space set) when the disk is full."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # left by a kill -9 of a process that had our pid
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise _write_error(path, exc) from None
    return StagedWrite(path, temporary)


def atomic_write(path: Path, payload: bytes) -> None:
    stage_write(path, payload).commit()


def _write_error(path: Path, exc: OSError) -> StateWriteError:
    no_space = exc.errno in NO_SPACE_ERRNOS
    reason = exc.strerror or str(exc)
    return StateWriteError(f"cannot write {path}: {reason}", no_space=no_space)
