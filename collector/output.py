"""stdout: one activity per line, exactly as the API returned it, flushed once per page."""

from __future__ import annotations

import json
from typing import Any, BinaryIO

from collector.errors import OutputClosed

# Compact and ASCII-only: JSON-equal to the API's object, and safe for any byte-oriented reader
# (a lone surrogate in a string stays an escape instead of breaking the UTF-8 of the line).
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


class NdjsonOutput:
    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.lines_written = 0

    def write_page(self, activities: list[dict[str, Any]]) -> None:
        """Writes and flushes; raises OutputClosed if the reader is gone (then nothing may be saved)."""
        if not activities:
            return
        payload = ("\n".join(map(_encode, activities)) + "\n").encode("ascii")
        try:
            self._stream.write(payload)
            self._stream.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError) as exc:
            raise OutputClosed(f"stdout is closed, the reader went away ({type(exc).__name__})") from None
        except OSError as exc:
            raise OutputClosed(f"cannot write to stdout: {exc.strerror}") from None
        self.lines_written += len(activities)
