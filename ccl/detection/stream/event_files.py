"""Where `ccl detect` reads events from: files, directories (Vector's archive), stdin; compressed or not.

Compression is recognised by its magic number, not by the file's name, so that `activities.ndjson`
written gzip-compressed by Vector's file sink (`compression = "gzip"`) is read as well. zstd needs
the `zstandard` package (part of the `tool` extra); gzip needs nothing.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Any

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
READ_BUFFER = 1 << 20


class InputError(Exception):
    """An input cannot be read; the message names it and says why."""


@dataclass(frozen=True)
class Source:
    name: str  # as the user wrote it (or the file found under a directory), for messages
    path: Path | None  # None for stdin


def find_sources(arguments: list[str]) -> list[Source]:
    """Each argument is a file, a directory (every file under it, in name order, hidden ones aside) or `-`."""
    sources: list[Source] = []
    for argument in arguments:
        if argument == "-":
            sources.append(Source("<stdin>", None))
            continue
        path = Path(argument)
        if path.is_dir():
            found = sorted(file for file in path.rglob("*") if file.is_file()
                           and not any(part.startswith(".") for part in file.relative_to(path).parts))
            if not found:
                raise InputError(f"{argument}: a directory with no files in it")
            sources.extend(Source(str(file), file) for file in found)
        elif path.exists():
            sources.append(Source(argument, path))
        else:
            raise InputError(f"{argument}: no such file or directory")
    return sources


def open_binary(source: Source) -> IO[bytes]:
    """The source's bytes, decompressed if they are gzip or zstd."""
    try:
        raw: IO[bytes] = sys.stdin.buffer if source.path is None else open(source.path, "rb")  # noqa: SIM115
    except OSError as error:
        raise InputError(f"{source.name}: {error.strerror}") from None
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw, READ_BUFFER)  # type: ignore[arg-type]
    magic = buffered.peek(4)[:4]
    if magic.startswith(GZIP_MAGIC):
        return io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"), READ_BUFFER)  # type: ignore[arg-type]
    if magic == ZSTD_MAGIC:
        try:
            import zstandard
        except ImportError:
            buffered.close()
            raise InputError(f"{source.name}: zstd-compressed; reading it needs the zstandard package "
                             "(pip install 'claude-compliance-logs[tool]' or pip install zstandard)") from None
        return io.BufferedReader(_ZstdFrames(buffered, zstandard), READ_BUFFER)
    return buffered


class _ZstdFrames(io.RawIOBase):
    """Decompressed zstd, frame after frame; a stream that ends inside a frame is an error.

    (zstandard's own stream reader returns a truncated frame as a shorter stream, silently.)
    """

    def __init__(self, compressed: IO[bytes], zstandard: ModuleType):
        self._compressed, self._zstandard = compressed, zstandard
        self._frame = zstandard.ZstdDecompressor().decompressobj()
        self._in_frame = False
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._compressed.read(READ_BUFFER)
            if not chunk:
                if self._in_frame:
                    raise EOFError("the zstd stream ends in the middle of a frame (truncated file?)")
                return 0
            self._pending = self._decompress(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _decompress(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            self._in_frame = True
            out.append(self._frame.decompress(chunk))
            chunk = b""
            if self._frame.eof:
                self._in_frame = False
                chunk = self._frame.unused_data
                self._frame = self._zstandard.ZstdDecompressor().decompressobj()
        return b"".join(out)

    def close(self) -> None:
        self._compressed.close()
        super().close()


def is_plain_file(source: Source) -> bool:
    """A regular, uncompressed file: one that can be read backwards."""
    if source.path is None or not source.path.is_file():
        return False
    with source.path.open("rb") as file:
        magic = file.read(4)
    return not (magic.startswith(GZIP_MAGIC) or magic == ZSTD_MAGIC)


def count_lines(path: Path) -> int:
    """Lines as `read_lines` numbers them (a last line without a newline counts)."""
    count, last = 0, b"\n"
    with path.open("rb") as file:
        while block := file.read(READ_BUFFER):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def read_lines(source: Source) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for every line of the source; a corrupt compressed stream is an InputError."""
    stream = open_binary(source)
    line_number = 0
    try:
        for line_number, line in enumerate(stream, start=1):
            yield line_number, line
    except Exception as error:
        # gzip: BadGzipFile (an OSError), EOFError when truncated; zstandard: ZstdError; disks: OSError.
        if isinstance(error, OSError | EOFError) or type(error).__name__ == "ZstdError":
            raise InputError(f"{source.name}: unreadable after line {line_number}: {error}") from None
        raise
    finally:
        if source.path is not None:
            stream.close()


def read_blocks(source: Source, size: int = READ_BUFFER) -> Iterator[tuple[int, bytes]]:
    """(number of its first line, whole lines) for the source's lines, about `size` bytes at a time:
    what `read_lines` yields, in fewer, larger pieces (split them at b"\\n"; the last keeps no newline)."""
    stream = open_binary(source)
    first, pending, lines_before = 1, b"", 0
    try:
        while chunk := stream.read(size):
            chunk = pending + chunk
            cut = chunk.rfind(b"\n")
            if cut < 0:
                pending = chunk
                continue
            block, pending = chunk[:cut], chunk[cut + 1:]
            lines_before = block.count(b"\n") + 1
            yield first, block
            first += lines_before
        if pending:
            yield first, pending
    except Exception as error:
        if isinstance(error, OSError | EOFError) or type(error).__name__ == "ZstdError":
            raise InputError(f"{source.name}: unreadable after line {first - 1}: {error}") from None
        raise
    finally:
        if source.path is not None:
            stream.close()


def spans(path: Path, size: int) -> list[tuple[int, int]]:
    """The byte ranges of about `size` bytes that cover a plain file, for `read_span` (each reading
    process reads its own: the process that hands them out reads nothing)."""
    try:
        end = path.stat().st_size
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}") from None
    return [(start, min(start + size, end)) for start in range(0, end, size)]


def read_span(source: Source, start: int, end: int, limit: int) -> bytes | None:
    """The lines of a plain file that start in bytes [start, end), whole (the last one is read on past
    `end` up to its newline or `limit`, the file's size), joined as `read_blocks` joins them; None if no
    line starts there. The spans of `spans` give each line once, as `read_lines` numbers them."""
    assert source.path is not None
    try:
        with source.path.open("rb", buffering=0) as file:
            descriptor = file.fileno()
            begin = max(start - 1, 0)
            data = os.pread(descriptor, end - begin, begin)
            if start > 0:  # a line starts at `start` only if the byte before it ends one
                cut = data.find(b"\n")
                if cut < 0 or begin + cut + 1 >= end:
                    return None
                data = data[cut + 1:]
            if data.endswith(b"\n"):
                return data[:-1]
            rest, position = [], end
            while position < limit:
                chunk = os.pread(descriptor, min(READ_BUFFER, limit - position), position)
                if not chunk:
                    break
                cut = chunk.find(b"\n")
                if cut >= 0:
                    rest.append(chunk[:cut])
                    break
                rest.append(chunk)
                position += len(chunk)
    except OSError as error:
        raise InputError(f"{source.name}: {error.strerror}") from None
    return data + b"".join(rest) if rest else data


def last_line(source: Source) -> bytes | None:
    """The last line of a plain file that is not blank, None if there is none."""
    assert source.path is not None
    ranges = spans(source.path, READ_BUFFER)
    for start, end in reversed(ranges):
        block = read_span(source, start, end, ranges[-1][1])
        for line in reversed(block.split(b"\n") if block is not None else []):
            if line.strip():
                return line
    return None
