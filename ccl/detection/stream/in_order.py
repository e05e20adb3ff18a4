"""Detection while the input is still being read, for input that turns out to be in time order.

A backfill writes newest first (read backwards, that is oldest first) and Vector's archive is in
order: for such input, sorting is wasted work and the engine could run alongside the reading. The
feed below does that on speculation: it feeds the engine as long as events arrive in (time, input
position) order, and gives up for good at the first that does not, leaving the sorted path to do
the work. Its signals wait in a temporary file until the input has ended in order, since an event
read later could still have changed them.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from typing import Any

from ccl.detection.engine import Engine
from ccl.detection.stream.prepare import deserialize

SignalJson = dict[str, Any]


class InOrderFeed:
    def __init__(self, engine: Engine, forget_every: int):
        self.engine: Engine | None = engine
        self.forget_every = forget_every
        self.moment = float("-inf")
        self.ties: list[tuple[int, bytes]] = []  # the events at `moment`, fed once a later time shows up
        self.fed = 0
        self.signals = 0
        self._spool = tempfile.TemporaryFile(prefix="ccl-detect-signals-")  # noqa: SIM115 (closed by give_up/finish)

    @property
    def alive(self) -> bool:
        return self.engine is not None

    def add(self, moment: float, position: int, payload: bytes) -> None:
        if self.engine is None:
            return
        if moment > self.moment:
            self._feed_ties()
            self.moment = moment
        elif moment < self.moment:
            self.give_up()
            return
        self.ties.append((position, payload))

    def give_up(self) -> None:
        """Out of order: drop the engine's state and the spooled signals."""
        self.engine, self.ties = None, []
        self._spool.close()

    def finish(self) -> Iterator[SignalJson]:
        """Every signal, in the order they were raised; only once the whole input was fed in order."""
        assert self.engine is not None
        self._feed_ties()
        self._spool_all(self.engine.finish())
        self.engine = None
        self._spool.seek(0)
        try:
            for _ in range(self.signals):
                yield pickle.load(self._spool)
        finally:
            self._spool.close()

    def _feed_ties(self) -> None:
        assert self.engine is not None
        ties = sorted(self.ties) if len(self.ties) > 1 else self.ties  # read backwards, ties come last first
        for _, payload in ties:
            matches, event = deserialize(payload)
            self.engine.feed_matched(self.moment, event, matches)
            self.fed += 1
            if self.fed % self.forget_every == 0:
                self.engine.forget_before(self.moment)
                self._spool_all(self.engine.take_finished())
        self.ties = []

    def _spool_all(self, signals: list[Any]) -> None:
        for signal in signals:
            pickle.dump(signal.to_json(), self._spool, pickle.HIGHEST_PROTOCOL)
            self.signals += 1
