"""Batches of work done by N processes, results handed back in the order the batches went in.

Unlike `Pool.imap`, at most a few batches per process are in flight: a slow consumer makes the
reader wait instead of letting results pile up in memory. The processes are forked, so they start
with everything the parent had prepared (compiled rules and VRL, which do not pickle); where there
is no fork (Windows) or with one job, the work runs inline.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

Batch = TypeVar("Batch")
Result = TypeVar("Result")

IN_FLIGHT_PER_JOB = 3


def ordered_map(work: Callable[[Batch], Result], batches: Iterable[Batch], jobs: int) -> Iterator[Result]:
    """`work(batch)` for each batch, in order, on `jobs` forked processes.

    `work` must be a module-level function; what it uses must be in place before the first batch.
    """
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for batch in batches:
            yield work(batch)
        return
    pool = multiprocessing.get_context("fork").Pool(jobs, _ignore_interrupts)
    try:
        pending: deque[Any] = deque()
        for batch in batches:
            pending.append(pool.apply_async(work, (batch,)))
            if len(pending) >= jobs * IN_FLIGHT_PER_JOB:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the pool; children must not print tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
