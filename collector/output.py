"""stdout: one activity per line, exactly as the API returned it, flushed once per page."""

from __future__ import annotations

from typing import BinaryIO

from collector.errors import OutputClosed


class NdjsonOutput:
    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.lines_written = 0

    def write_page(self, lines: list[str]) -> None:
        """Writes and flushes; raises OutputClosed if the reader is gone (then nothing may be saved)."""
        if not lines:
            return
        # Lines are the API's own JSON text: valid UTF-8, and a lone surrogate stays an escape.
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        try:
            self._stream.write(payload)
            self._stream.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError) as exc:
            raise OutputClosed(f"stdout is closed, the reader went away ({type(exc).__name__})") from None
        except OSError as exc:
            raise OutputClosed(f"cannot write to stdout: {exc.strerror}") from None
        self.lines_written += len(lines)
