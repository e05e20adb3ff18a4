"""`ccl detect` over inputs of any size: memory bounded by the sort buffer and the rules' state.

    lines (files, directories, stdin; gzip/zstd)
      -> LineFilter: lines no rule can match are dropped unparsed (raw ones by `type`)
      -> Preparer on `jobs` processes, in input order: parse, normalize if raw, time, keep what rules read
      -> ExternalSorter: (time, input position) order; runs spill to temporary files past the buffer
      -> Engine.feed, event after event; every FORGET_EVERY events the engine forgets what no window
         can reach, and signals that can no longer change are written out, in the order they were raised.

The signals are the same, in the same order, as the whole-input path's (Engine.run over every event
in memory); tests/test_detect_stream.py checks it on every rule test and on the simulator's stories.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from ccl.detect_prepare import NORMALIZED, LineFilter, Preparer, deserialize
from ccl.engine import Engine, Signal
from ccl.event_files import Source, read_lines
from ccl.external_sort import DEFAULT_SORT_BUFFER, ExternalSorter
from ccl.ordered_pool import ordered_map
from ccl.progress import Progress
from ccl.rules import Rule

BATCH_LINES = 500
FORGET_EVERY = 20_000


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class StreamSettings:
    jobs: int = 1
    sort_buffer: int = DEFAULT_SORT_BUFFER
    temp_dir: Path | None = None
    forget_every: int = FORGET_EVERY
    geoip_db: Path | None = None


@dataclass
class StreamReport:
    events: int = 0  # readable events, matched or not (as the whole-input path counts them)
    skipped: int = 0  # of which no rule can match
    bad_lines: int = 0
    signals: int = 0
    runs_on_disk: int = 0


def detect_stream(sources: list[Source], rules: list[Rule], settings: StreamSettings,
                  emit: Callable[[Signal], None], problem: Callable[[str], None],
                  progress: Progress | None = None) -> StreamReport:
    """Run `rules` over every event of `sources`; `emit` gets each signal once it is final.

    Raises InputError (unreadable input), GeoIpError or VrlError (normalizer), SortSpaceError.
    """
    engine = Engine(rules)
    line_filter = LineFilter(engine.event_names())
    report = StreamReport()
    progress = progress or Progress()
    sorter = ExternalSorter(settings.sort_buffer, settings.temp_dir)
    try:
        _read_and_sort(sources, engine, line_filter, settings, sorter, report, problem, progress)
        report.runs_on_disk = sorter.runs_written
        for fed, (moment, _, payload) in enumerate(sorter.sorted_items(), start=1):
            matches, event = deserialize(payload)
            engine.feed_matched(moment, event, matches)
            if fed % settings.forget_every == 0:
                engine.forget_before(moment)
                _emit_all(engine.take_finished(), emit, report)
                if progress.due():
                    progress.show(_status(report, fed, progress, sorter.items))
        _emit_all(engine.finish(), emit, report)
    finally:
        sorter.close()
        progress.clear()
    return report


def _read_and_sort(sources: list[Source], engine: Engine, line_filter: LineFilter, settings: StreamSettings,
                   sorter: ExternalSorter, report: StreamReport, problem: Callable[[str], None],
                   progress: Progress) -> None:
    names: deque[str] = deque()  # the source of each batch in flight, in order
    batches = _batches(sources, line_filter, names, report)
    first = next(batches, None)
    if first is not None:
        global _preparer
        _preparer = Preparer(engine, settings.geoip_db)
        if any(not NORMALIZED.search(line) for _, line in first):
            _preparer.normalizer  # noqa: B018 (compiled once here, before the processes fork, not once in each)
        sequence = 0
        with closing(ordered_map(_prepare, itertools.chain([first], batches), settings.jobs)) as prepared:
            for results in prepared:
                name = names.popleft()
                for result in results:
                    if result is None:  # no time, or no rule's query matches it: the engine would ignore it
                        continue
                    if type(result[1]) is str:
                        report.bad_lines += 1
                        problem(f"{name}:{result[0]}: {result[1]}; line skipped")
                        continue
                    sorter.add(result[0], sequence, result[1])  # type: ignore[arg-type]
                    sequence += 1
                if progress.due():
                    progress.show(_status(report, 0, progress, 0))
        _preparer = None
    report.skipped = line_filter.skipped
    report.events -= report.bad_lines


def _batches(sources: list[Source], line_filter: LineFilter, names: deque[str],
             report: StreamReport) -> Iterator[list[tuple[int, bytes]]]:
    needed = line_filter.needed
    for source in sources:
        batch: list[tuple[int, bytes]] = []
        for number, line in read_lines(source):
            if not line.strip():
                continue
            report.events += 1  # unusable lines are taken off at the end
            if needed(line):
                batch.append((number, line))
                if len(batch) >= BATCH_LINES:
                    names.append(source.name)
                    yield batch
                    batch = []
        if batch:
            names.append(source.name)
            yield batch


def _emit_all(signals: list[Signal], emit: Callable[[Signal], None], report: StreamReport) -> None:
    for signal in signals:
        emit(signal)
        report.signals += 1


def _status(report: StreamReport, fed: int, progress: Progress, total: int) -> str:
    if not total:
        return f"{report.events:,} events read ({progress.rate(report.events):,.0f}/s)"
    return (f"{report.events:,} events read, {fed:,} of {total:,} through the rules, "
            f"{report.signals:,} signals so far")


# -- in each process of the pool ------------------------------------------------------------------

_preparer: Preparer | None = None  # set before the processes fork; each then has its own copy


def _prepare(lines: list[tuple[int, bytes]]) -> list:
    assert _preparer is not None
    return _preparer.prepare(lines)
