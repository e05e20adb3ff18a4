"""One self-updating status line on stderr, for long runs; nothing at all when stderr is not a terminal."""

from __future__ import annotations

import sys
import time
from typing import IO


class Progress:
    def __init__(self, stream: IO[str] | None = None, interval: float = 0.5):
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self.started = time.monotonic()
        self._next = self.started + interval
        self._width = 0

    def due(self) -> bool:
        """Cheap enough to ask per event: whether `show` would draw now."""
        return self.enabled and time.monotonic() >= self._next

    def rate(self, count: int) -> float:
        return count / max(time.monotonic() - self.started, 1e-9)

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        self._next = time.monotonic() + self.interval
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def clear(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
