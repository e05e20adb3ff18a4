"""SIGTERM and SIGINT: finish the page in hand, save, stop.

Vector sends SIGTERM to the exec child when it shuts down and keeps reading until stdout closes.
Outside a critical section (waiting on the network, sleeping) the signal unwinds at once; inside
one (writing a page and saving the state that follows it) it waits for the section to end.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

from collector.errors import ShutdownRequested


class Shutdown:
    def __init__(self) -> None:
        self.requested: str | None = None
        self._critical_depth = 0

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.requested = signal.Signals(signum).name
        if self._critical_depth == 0:
            raise ShutdownRequested(self.requested)

    @contextmanager
    def critical(self) -> Iterator[None]:
        self._critical_depth += 1
        try:
            yield
        finally:
            self._critical_depth -= 1
        self.check()

    def check(self) -> None:
        if self.requested and self._critical_depth == 0:
            raise ShutdownRequested(self.requested)

    def sleep(self, seconds: float) -> None:
        self.check()
        if seconds > 0:
            time.sleep(seconds)
