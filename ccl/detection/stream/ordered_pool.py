"""Batches of work done by N processes, results handed back in the order the batches went in.

At most a few batches per process are in flight: a slow consumer makes the reader wait instead of
letting results pile up in memory. The processes are forked, so they start with everything the
parent had prepared (compiled rules and VRL, which do not pickle); where there is no fork (Windows)
or with no job, the work runs inline.

Not `multiprocessing.Pool`: its worker-maintenance thread waits on the results pipe among other
things, so while results wait there to be read it wakes up again and again, holding the
interpreter lock a fifth of the time in `ccl detect` on normalized input and slowing the reading
process that runs the engine. Here batch i goes to process i mod N and its result is read from
that process, in order, by the caller's thread; one thread only writes batches (the writes block
while a process is busy, and must not stop the caller from reading results meanwhile).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection
from typing import Any, TypeVar

Batch = TypeVar("Batch")
Result = TypeVar("Result")

IN_FLIGHT_PER_JOB = 3


class WorkerDied(RuntimeError):
    """A process of the pool ended without answering (killed, out of memory)."""


def ordered_map(work: Callable[[Batch], Result], batches: Iterable[Batch], jobs: int,
                busy: Callable[[], int] | None = None) -> Iterator[Result]:
    """`work(batch)` for each batch, in order, on `jobs` forked processes (0: in this process).

    `work` must be a module-level function; what it uses must be in place before the first batch.
    An exception raised by `work` in a process is raised here, with its own type and message.
    `busy()`, asked before each batch, is how many of the processes get batches (at least one, at
    most `jobs`): the others wait, leaving their CPU to the caller while it has work of its own.
    """
    if jobs < 1 or "fork" not in multiprocessing.get_all_start_methods():
        for batch in batches:
            yield work(batch)
        return
    context = multiprocessing.get_context("fork")
    workers = []
    to_send: queue.Queue[tuple[Connection, Any] | None] = queue.Queue()
    sender = threading.Thread(target=_send_all, args=(to_send,), daemon=True)
    try:
        for _ in range(jobs):
            tasks_out, tasks_in = context.Pipe(duplex=False)
            results_out, results_in = context.Pipe(duplex=False)
            process = context.Process(target=_serve, args=(work, tasks_out, results_in), daemon=True)
            process.start()
            tasks_out.close()
            results_in.close()
            workers.append((process, tasks_in, results_out))
        sender.start()
        pending: deque[int] = deque()  # the worker of each batch in flight, oldest first
        for number, batch in enumerate(batches):
            used = jobs if busy is None else max(1, min(jobs, busy()))
            worker = number % used
            to_send.put((workers[worker][1], batch))
            pending.append(worker)
            while len(pending) >= used * IN_FLIGHT_PER_JOB:
                yield _receive(workers[pending.popleft()])
        while pending:
            yield _receive(workers[pending.popleft()])
    finally:
        to_send.put(None)
        for process, tasks_in, results_out in workers:
            if process.is_alive():
                process.terminate()
            process.join()
            tasks_in.close()
            results_out.close()
        if sender.is_alive():
            sender.join(timeout=1)


def _receive(worker: tuple[Any, Connection, Connection]) -> Any:
    process, _, results_out = worker
    try:
        ok, value = results_out.recv()
    except (EOFError, OSError):
        raise WorkerDied(f"a `ccl detect` process (pid {process.pid}) ended without finishing its work") from None
    if not ok:
        raise value
    return value


def _send_all(to_send: queue.Queue[tuple[Connection, Any] | None]) -> None:
    while (item := to_send.get()) is not None:
        connection, batch = item
        try:
            connection.send(batch)
        except OSError:  # the process is gone: the caller finds out when it reads its result
            continue


def _serve(work: Callable[[Any], Any], tasks: Connection, results: Connection) -> None:
    # Ctrl-C reaches the whole process group: the parent stops the processes; they must not print tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while True:
            try:
                batch = tasks.recv()
            except EOFError:
                break
            try:
                answer = (True, work(batch))
            except Exception as error:  # handed to the caller, which raises it
                answer = (False, error)
            try:
                results.send(answer)
            except Exception:  # an exception that does not pickle: its type and message
                results.send((False, RuntimeError(f"{type(answer[1]).__name__}: {answer[1]}")))
    finally:
        os._exit(0)  # no atexit handlers or buffered output of the parent's, copied by the fork
