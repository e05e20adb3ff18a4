"""A bound on the whole of one HTTP exchange, which httpx's per-read timeouts do not give.

A server that sends one byte every few seconds never trips a read timeout, so a request could
last for ever. A real-time interval timer (SIGALRM) interrupts whatever the request is blocked
in, headers or body. Signals reach only the main thread: elsewhere the deadline is not set and
httpx's timeouts are all there is.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class DeadlineExceeded(BaseException):
    """Raised inside the request when its time is up.

    A BaseException, as ShutdownRequested is, so that no `except Exception` in the HTTP stack
    turns it into something else on its way out.
    """


class Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self._previous: object = None
        self._armed = False

    def __enter__(self) -> Deadline:
        if self.seconds > 0 and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGALRM, self._expire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self._armed = True
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            previous = self._previous if self._previous is not None else signal.SIG_DFL
            signal.signal(signal.SIGALRM, previous)  # type: ignore[arg-type]
            self._armed = False

    @staticmethod
    def _expire(_signum: int, _frame: FrameType | None) -> None:
        raise DeadlineExceeded()
