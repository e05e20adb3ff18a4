"""Sorting more events than memory holds: sorted runs spilled to temporary files, then merged.

Items are (time, sequence, payload): the sequence (input order) breaks ties, so the order is the
same as sorting everything in memory by (time, input position), as the whole-input path does.
Up to `buffer_events` items are held in memory; each full buffer is sorted and written to a run
file; `sorted_items` merges the runs (at most MAX_FAN_IN at a time) with what is still in memory.
An input that fits in the buffer never touches the disk.
"""

from __future__ import annotations

import heapq
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

Item = tuple[float, int, bytes]
HEADER = struct.Struct("<dqI")  # time, sequence, payload length
MAX_FAN_IN = 128
DEFAULT_SORT_BUFFER = 200_000  # events; about 0.2 GB with the rules' attributes only
FILE_BUFFER = 1 << 20


class SortSpaceError(Exception):
    """A run could not be written to the temporary directory (full disk, no permission)."""


class ExternalSorter:
    def __init__(self, buffer_events: int, temp_dir: Path | None = None):
        self.buffer_events = max(1, buffer_events)
        self._buffer: list[Item] = []
        self._temp_root = temp_dir
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        self._runs: list[Path] = []
        self.items = 0
        self.runs_written = 0

    def add(self, moment: float, sequence: int, payload: bytes) -> None:
        self._buffer.append((moment, sequence, payload))
        self.items += 1
        if len(self._buffer) >= self.buffer_events:
            self._buffer.sort()
            self._runs.append(self._write_run(iter(self._buffer)))
            self._buffer = []

    @property
    def spilled(self) -> bool:
        return self.runs_written > 0

    def sorted_items(self) -> Iterator[Item]:
        """Every item added, in (time, sequence) order; call once, after the last `add`."""
        self._buffer.sort()
        if not self._runs:
            yield from self._buffer
            return
        while len(self._runs) > MAX_FAN_IN:  # merge the oldest runs first, so files stay few
            group, self._runs = self._runs[:MAX_FAN_IN], self._runs[MAX_FAN_IN:]
            self._runs.append(self._write_run(heapq.merge(*(_read_run(path) for path in group))))
            for path in group:
                path.unlink()
        yield from heapq.merge(*(_read_run(path) for path in self._runs), self._buffer)

    def close(self) -> None:
        """Remove the run files (also after an error or an interrupted merge)."""
        self._buffer = []
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None

    def _write_run(self, items: Iterator[Item]) -> Path:
        if self._temp is None:
            self._temp = tempfile.TemporaryDirectory(prefix="ccl-detect-sort-", dir=self._temp_root)
        path = Path(self._temp.name) / f"run-{self.runs_written:06d}"
        self.runs_written += 1
        pack = HEADER.pack
        try:
            with path.open("wb", buffering=FILE_BUFFER) as out:
                for moment, sequence, payload in items:
                    out.write(pack(moment, sequence, len(payload)))
                    out.write(payload)
        except OSError as error:
            raise SortSpaceError(f"cannot write a sorted run to {path.parent}: {error.strerror}; "
                                 "free some space there, point TMPDIR elsewhere or raise --sort-buffer") from None
        return path


def _read_run(path: Path) -> Iterator[Item]:
    size, unpack = HEADER.size, HEADER.unpack
    with path.open("rb", buffering=FILE_BUFFER) as run:
        read = run.read
        while header := read(size):
            moment, sequence, length = unpack(header)
            yield moment, sequence, read(length)
