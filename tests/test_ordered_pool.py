"""ordered_map: the work of `ccl detect`'s processes comes back in order, and their failures come back too."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time

import pytest

from ccl.detection.stream.ordered_pool import WorkerDied, ordered_map


class Refused(ValueError):
    pass


def slow_square(number: int) -> tuple[int, int]:
    time.sleep(random.Random(number).random() / 200)  # batches finish out of order
    return number, os.getpid()


def refuse_seven(number: int) -> int:
    if number == 7:
        raise Refused(f"batch {number} is unusable")
    return number


def die_on_five(number: int) -> int:
    if number == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return number


@pytest.fixture(autouse=True)
def no_hang():
    signal.alarm(60)  # a pool that waits forever fails the test instead of the suite
    yield
    signal.alarm(0)


def test_results_come_back_in_order_from_every_process():
    results = list(ordered_map(slow_square, range(60), 2))
    assert [number for number, _ in results] == list(range(60))
    assert len({pid for _, pid in results} - {os.getpid()}) == 2


def test_only_the_processes_asked_for_get_batches():
    """`busy` says how many of the processes get work (the others leave their CPU to the caller)."""
    asked = iter([1] * 30 + [2] * 30)
    results = list(ordered_map(slow_square, range(60), 2, busy=lambda: next(asked)))
    assert [number for number, _ in results] == list(range(60))
    assert len({pid for _, pid in results[:30]}) == 1  # one process while one was asked for
    assert len({pid for _, pid in results[30:]}) == 2


def test_an_exception_in_a_process_is_raised_with_its_type_and_message():
    seen = []
    with pytest.raises(Refused, match="batch 7 is unusable"):
        for result in ordered_map(refuse_seven, range(20), 2):
            seen.append(result)
    assert seen == list(range(7))
    assert multiprocessing.active_children() == []


def test_a_process_that_dies_is_reported_not_waited_for():
    with pytest.raises(WorkerDied, match="ended without finishing its work"):
        list(ordered_map(die_on_five, range(20), 2))
    assert multiprocessing.active_children() == []


def test_stopping_early_stops_the_processes():
    results = ordered_map(slow_square, range(1000), 2)
    assert next(results)[0] == 0
    results.close()
    assert multiprocessing.active_children() == []
