"""stdout: one activity per line, exactly as the API returned it, written whole once per page."""

from __future__ import annotations

import os
from typing import Any, BinaryIO

from collector.errors import OutputClosed
from collector.log import JsonLog

DEFAULT_MAX_LINE_BYTES = 16 << 20


class NdjsonOutput:
    def __init__(self, stream: BinaryIO, log: JsonLog | None = None, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES):
        self._stream = stream
        self._log = log
        self.max_line_bytes = max_line_bytes
        try:
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):  # an in-memory stream (tests, embedding)
            self._fd = None
        self.lines_written = 0

    def write_page(self, lines: list[str], activities: list[dict[str, Any]] | None = None) -> None:
        """Writes every byte of the page, or raises OutputClosed (then the page is not delivered).

        On a pipe whose reader is slower than us (Vector under back-pressure) a write can return
        after part of the page, above all when a signal interrupts it; the count is checked and the
        rest written, so that a SIGTERM never leaves a half-written line or an unsaved tail.
        """
        if not lines:
            return
        self._report_long_lines(lines, activities)
        # Lines are the API's own JSON text, valid UTF-8 (the page reader replaced anything else).
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        try:
            if self._fd is None:
                self._stream.write(payload)
                self._stream.flush()
            else:
                self._stream.flush()  # nothing may sit in the buffer ahead of the page
                _write_all(self._fd, payload)
        except (BrokenPipeError, ConnectionResetError, ValueError) as exc:
            raise OutputClosed(f"stdout is closed, the reader went away ({type(exc).__name__})") from None
        except OSError as exc:
            raise OutputClosed(f"cannot write to stdout: {exc.strerror}") from None
        self.lines_written += len(lines)

    def _report_long_lines(self, lines: list[str], activities: list[dict[str, Any]] | None) -> None:
        """An ERROR naming each activity longer than --max-line-bytes; the line still goes out.

        The reader (Vector's framing) is configured with a cap above this one; if a line still
        exceeds the reader's cap, it drops it, and this line in the log is how the loss shows.
        """
        limit = self.max_line_bytes
        if self._log is None:
            return
        for index, line in enumerate(lines):
            if len(line) * 4 <= limit:  # UTF-8 takes at most 4 bytes a character: surely short
                continue
            size = len(line.encode("utf-8"))
            if size > limit:
                activity = activities[index] if activities is not None and index < len(activities) else {}
                self._log.error("an activity line is longer than --max-line-bytes; it is emitted, but a reader "
                                "with a smaller line limit (Vector's framing max_length) drops it",
                                activity_id=str(activity.get("id")), line_bytes=size, max_line_bytes=limit)


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        # os.write retries by itself after a signal that did not raise (PEP 475) and returns the
        # count of a partial write, which is how a slow pipe reader shows up.
        written = os.write(fd, view)
        view = view[written:]
