"""Detection while the input is still being read, for input that turns out to be (nearly) in time order.

A backfill writes newest first (read backwards, that is oldest first), Vector's archive is in order,
and a collector catching up writes pages that are newest first inside but oldest page first: out of
order only within a page. For such input, sorting everything is wasted work and the engine could
run alongside the reading. The feed below does that on speculation: it holds the latest `window`
events in a heap and feeds the engine the earliest of them, in (time, input position) order, as
long as no event arrives earlier than one already fed; at the first that does (the input is out of
order by more than the window), it gives up for good and the sorted path does the work. Its signals
wait in a temporary file until the input has ended, since an event read later could still have
changed them.
"""

from __future__ import annotations

import heapq
import pickle
import tempfile
from collections.abc import Iterator
from typing import Any

from ccl.detection.engine import Engine
from ccl.detection.stream.prepare import deserialize

SignalJson = dict[str, Any]


class InOrderFeed:
    def __init__(self, engine: Engine, forget_every: int, window: int):
        self.engine: Engine | None = engine
        self.forget_every = forget_every
        self.window = max(1, window)
        self.pending: list[tuple[float, int, bytes]] = []  # a heap: the events read but not fed yet
        self.last_fed = (float("-inf"), -1)
        self.latest = float("-inf")
        self.reordered = 0  # events that arrived after a later one: the input was not strictly in order
        self.fed = 0
        self.signals = 0
        self._spool = tempfile.TemporaryFile(prefix="ccl-detect-signals-")  # noqa: SIM115 (closed by give_up/finish)

    @property
    def alive(self) -> bool:
        return self.engine is not None

    def add(self, moment: float, position: int, payload: bytes) -> None:
        if self.engine is None:
            return
        if (moment, position) < self.last_fed:
            self.give_up()
            return
        if moment < self.latest:
            self.reordered += 1
        else:
            self.latest = moment
        heapq.heappush(self.pending, (moment, position, payload))
        if len(self.pending) > self.window:
            self._feed(*heapq.heappop(self.pending))

    def give_up(self) -> None:
        """Out of order beyond the window: drop the engine's state and the spooled signals."""
        self.engine, self.pending = None, []
        self._spool.close()

    def finish(self) -> Iterator[SignalJson]:
        """Every signal, in the order they were raised; only once the whole input was fed in order."""
        assert self.engine is not None
        while self.pending:
            self._feed(*heapq.heappop(self.pending))
        self._spool_all(self.engine.finish())
        self.engine = None
        self._spool.seek(0)
        try:
            for _ in range(self.signals):
                yield pickle.load(self._spool)
        finally:
            self._spool.close()

    def _feed(self, moment: float, position: int, payload: bytes) -> None:
        assert self.engine is not None
        self.last_fed = (moment, position)
        matches, event = deserialize(payload)
        self.engine.feed_matched(moment, event, matches)
        self.fed += 1
        if self.fed % self.forget_every == 0:
            # Every event earlier than `moment` has been fed: one still pending or read later is not earlier.
            self.engine.forget_before(moment)
            self._spool_all(self.engine.take_finished())

    def _spool_all(self, signals: list[Any]) -> None:
        for signal in signals:
            pickle.dump(signal.to_json(), self._spool, pickle.HIGHEST_PROTOCOL)
            self.signals += 1
