"""`ccl detect` over inputs of any size: memory bounded by the sort buffer and the rules' state.

    blocks of lines (files, directories, stdin; gzip/zstd; plain files newest first are read from
    the end) handed to `jobs` processes, results in reading order: plain files as byte ranges each
    process reads itself (counting and reading 2 GB here took 2.7 s of the process that runs the
    engine), compressed files and stdin read here and handed whole:
      -> LineFilter: lines no rule can match are dropped unparsed (raw ones by `type`)
      -> Preparer: parse, normalize if raw (parsed user agents remembered), time, match, keep the
         attributes the matching rules read
      -> InOrderFeed: while the events arrive in (time, input position) order anyway (give or take
         IN_ORDER_WINDOW events: pages newest first inside, oldest page first), the engine runs
         alongside the reading. Until that order has held for a sort buffer's worth of events,
         they also go to the ExternalSorter (runs spill to temporary files past the buffer), which
         sorts them if it breaks; stdin and pipes, which cannot be read twice, go to it to the end.
         Files whose order breaks later than that are read again from the start, into the sorter only.
      -> Engine.feed_matched, event after event; every FORGET_EVERY events the engine forgets what no
         window can reach, and signals that can no longer change are written out in the order raised.

The cyclic garbage collector rests during the run: the engine's windows keep hundreds of thousands
of small objects alive, and each automatic collection walked all of them again (43% of the time on a
5,000-person month, bench/bench_alerts.py). Nothing per event is cyclic (measured: what a run leaves
to collect does not grow with its input); a collection every COLLECT_EVERY events keeps it so.

The signals are the same, in the same order, as the whole-input path's (Engine.run over every event
in memory); tests/test_detect_stream.py checks it on every rule test and on the simulator's stories.
"""

from __future__ import annotations

import gc
import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ccl.detection.engine import Engine
from ccl.detection.rules import Rule
from ccl.detection.signals import event_time
from ccl.detection.stream.event_files import (
    Source,
    count_lines,
    is_plain_file,
    last_line,
    read_blocks,
    read_lines,
    read_span,
    spans,
)
from ccl.detection.stream.external_sort import DEFAULT_SORT_BUFFER, ExternalSorter
from ccl.detection.stream.in_order import InOrderFeed
from ccl.detection.stream.ordered_pool import ordered_map
from ccl.detection.stream.prepare import NORMALIZED, BlockResult, LineFilter, Preparer, deserialize
from ccl.detection.stream.progress import Progress

BLOCK_BYTES = 1 << 19  # lines handed to a process at a time: ~250 normalized events, ~900 raw
FORGET_EVERY = 20_000
# How far out of time order (in events a rule can match) input may be and still go through the rules
# while read: twenty of the API's largest pages. The engine runs this far behind the reading, so the
# window is also work the engine cannot start before the reading and the reading cannot share at the
# end: a window of a full sort buffer (200,000) left a third of a million events' engine work to the
# reading process alone. Input further out of order is sorted (in memory up to the sort buffer).
IN_ORDER_WINDOW = 20_000
COLLECT_EVERY = 1_000_000  # events read or fed between two cyclic garbage collections
SignalJson = dict[str, Any]


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def busy_jobs(raw: bool, jobs: int, feed: InOrderFeed | None) -> Callable[[], int] | None:
    """How many of the `jobs` processes get work, when not all of them should (see ordered_map).

    On normalized input preparing an event costs about what the rules cost: while the rules run
    alongside the reading (in this process), one CPU is left to them, or the processes take turns
    with this one (1,000,000 normalized events in pages on 2 CPUs: 11.2-13.1 s with one process
    preparing, 11.6-14.2 s with two). While the events are only read, to be sorted, every process
    prepares (the same events in no order: 12.1-13.6 s with two, 15.7-18.0 s with one). On raw
    input normalizing is most of the work: every process, always.
    """
    if raw or jobs < 2 or feed is None:
        return None
    return lambda: jobs - 1 if feed.alive else jobs


@dataclass
class StreamSettings:
    jobs: int | None = None  # processes that prepare events beside this one (0: none); None: one per CPU
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
    runs_on_disk: int = 0  # when the events had to be sorted
    read_again_after: int = 0  # events read before files turned out to be out of order (then read again)
    in_order: str = ""  # when they did not: "oldest first", "newest first" or "nearly" (within the window)
    window: int = 0  # how far out of order (events a rule can match) input could be and still be read in order
    jobs: int = 0  # processes that prepared the events beside this one


def detect_stream(sources: list[Source], rules: list[Rule], settings: StreamSettings,
                  emit: Callable[[SignalJson], None], problem: Callable[[str], None],
                  progress: Progress | None = None) -> StreamReport:
    """Run `rules` over every event of `sources`; `emit` gets each signal (as JSON) once it is final.

    Raises InputError (unreadable input), GeoIpError or VrlError (normalizer), SortSpaceError.
    """
    report = StreamReport()
    progress = progress or Progress()
    sorter = ExternalSorter(settings.sort_buffer, settings.temp_dir)
    backwards = _backwards(sources)
    feed = InOrderFeed(Engine(rules), settings.forget_every, min(settings.sort_buffer, IN_ORDER_WINDOW))
    report.window = feed.window
    # Sorting on the side while speculating costs a copy of the prepared input on disk (gigabytes for
    # millions of events) that in-order input never needs: files, which can be read again, stop it
    # once the order has held for a while (most disorder shows within the first sort buffer).
    rereadable = all(source.path is not None and source.path.is_file() for source in sources)
    collecting = gc.isenabled()
    gc.disable()  # the processes forked for the reading inherit it
    try:
        sorted_aside = _read(sources, backwards, rules, settings, sorter, feed, report, problem, progress,
                             stop_sorting_when_in_order=rereadable)
        if feed.alive:
            report.in_order = "nearly" if feed.reordered else "newest first" if backwards else "oldest first"
            for signal in feed.finish():
                _emit(signal, emit, report)
            return report
        if not sorted_aside:  # (_read closed that sorter when it stopped filling it)
            sorter = ExternalSorter(settings.sort_buffer, settings.temp_dir)
            report.read_again_after = report.events + report.bad_lines
            already_reported = report.bad_lines
            report.events = report.skipped = report.bad_lines = 0
            progress.show(f"out of time order by more than {report.window:,} events: reading again, to sort")
            _read(sources, backwards, rules, settings, sorter, None, report,
                  _skipping(already_reported, problem), progress)
        report.runs_on_disk = sorter.runs_written
        engine = Engine(rules)
        for fed, (moment, _, payload) in enumerate(sorter.sorted_items(), start=1):
            matches, event = deserialize(payload)
            engine.feed_matched(moment, event, matches)
            if fed % settings.forget_every == 0:
                engine.forget_before(moment)
                if fed % COLLECT_EVERY < settings.forget_every:
                    gc.collect()
                for signal in engine.take_finished():
                    _emit(signal.to_json(), emit, report)
                if progress.due():
                    progress.show(f"{report.events:,} events read, {fed:,} of {sorter.items:,} through the "
                                  f"rules, {report.signals:,} signals so far")
        for signal in engine.finish():
            _emit(signal.to_json(), emit, report)
    finally:
        if feed.alive:
            feed.give_up()
        sorter.close()
        progress.clear()
        if collecting:
            gc.enable()
    return report


def _skipping(count: int, problem: Callable[[str], None]) -> Callable[[str], None]:
    """`problem`, silent for the first `count` messages: those the first reading already gave."""
    remaining = count

    def report(message: str) -> None:
        nonlocal remaining
        if remaining:
            remaining -= 1
        else:
            problem(message)
    return report


def _emit(signal: SignalJson, emit: Callable[[SignalJson], None], report: StreamReport) -> None:
    emit(signal)
    report.signals += 1


def _backwards(sources: list[Source]) -> bool:
    """Whether the input should be read backwards: plain files whose first event is later than their last."""
    if not sources or not all(is_plain_file(source) for source in sources):
        return False
    first = next((line for _, line in read_lines(sources[0]) if line.strip()), None)
    first_time, last_time = _rough_time(first), _rough_time(last_line(sources[-1]))
    return first_time is not None and last_time is not None and first_time > last_time


def _rough_time(line: bytes | None) -> float | None:
    """The time of a raw or normalized line, to guess the input's order (the engine's own comes later)."""
    try:
        value = orjson.loads(line) if line else None
    except ValueError:
        return None
    return event_time(value) if isinstance(value, dict) else None


def _read(sources: list[Source], backwards: bool, rules: list[Rule], settings: StreamSettings,
          sorter: ExternalSorter, feed: InOrderFeed | None, report: StreamReport, problem: Callable[[str], None],
          progress: Progress, stop_sorting_when_in_order: bool = False) -> bool:
    """Every event into `sorter` and, while it takes them in order, `feed`. With `stop_sorting_when_in_order`
    the sorter is dropped once the feed has held a sort buffer's worth in order, and the reading stops
    where the feed gives up after that. Whether the sorter holds every event."""
    global _preparer, _line_filter
    matcher = Engine(rules)
    in_flight: deque[int] = deque()  # the source of each block handed out, oldest first
    blocks = _blocks(sources, backwards, in_flight)
    first = next(blocks, None)
    add_to_sorter: Callable[[float, int, bytes], None] | None = sorter.add
    if first is not None:
        _preparer, _line_filter = Preparer(matcher, settings.geoip_db), LineFilter(matcher.event_names())
        raw = any(line.strip() and not NORMALIZED.search(line) for line in (_block_bytes(first) or b"").split(b"\n"))
        if raw:
            _preparer.normalizer  # noqa: B018 (compiled once here, before the processes fork, not once in each)
        jobs = report.jobs = usable_cpus() if settings.jobs is None else settings.jobs
        busy = busy_jobs(raw, jobs, feed) if settings.jobs is None else None
        next_collection = report.events + COLLECT_EVERY
        add_to_feed = feed.add if feed is not None else None
        lines_of = _LineNumbers(sources, backwards)
        with closing(ordered_map(_prepare, itertools.chain([first], blocks), jobs, busy)) as prepared:
            for lines, events, skipped, results in prepared:
                base = lines_of.block(in_flight.popleft(), lines)
                report.events += events  # unusable lines are taken off at the end
                report.skipped += skipped
                for result in results:
                    if len(result) == 2:
                        report.bad_lines += 1
                        problem(f"{lines_of.where(result[0])}: {result[1]}; line skipped")
                        continue
                    index, moment, payload = result
                    if add_to_sorter is not None:
                        add_to_sorter(moment, base + index, payload)
                    if add_to_feed is not None:
                        add_to_feed(moment, base + index, payload)
                if report.events >= next_collection:
                    gc.collect()
                    next_collection += COLLECT_EVERY
                alive = feed is not None and feed.alive
                if add_to_sorter is not None and stop_sorting_when_in_order and alive \
                        and feed.fed >= settings.sort_buffer:  # type: ignore[union-attr]
                    sorter.close()
                    add_to_sorter = None
                if add_to_sorter is None and not alive:
                    break  # out of order after all: the caller reads the files again
                if progress.due():
                    progress.show(f"{report.events:,} events read ({progress.rate(report.events):,.0f}/s), "
                                  f"{feed.signals if alive else 0:,} signals so far")  # type: ignore[union-attr]
        _preparer = _line_filter = None
    report.events -= report.bad_lines
    return add_to_sorter is not None


class _LineNumbers:
    """Where the lines of the blocks are, block after block in reading order: a line's position in the
    whole input breaks ties in time (the whole-input path's order: read backwards, the last line is 0
    and earlier ones count down), and its number in its source names it in messages."""

    def __init__(self, sources: list[Source], backwards: bool):
        self.sources, self.backwards = sources, backwards
        self.done = 0  # lines of the blocks before this one, in the whole input and in its source
        self.done_in_source = 0
        self.source = -1
        self.lines = 0
        self._totals: dict[int, int] = {}  # lines per file read backwards: only counted to name a bad line

    def block(self, source: int, lines: int) -> int:
        """Starts the next block (of `lines` lines, from sources[source]): what to add to a line's index
        in the block for its position."""
        self.done += self.lines
        self.done_in_source = self.done_in_source + self.lines if source == self.source else 0
        self.source, self.lines = source, lines
        return -(self.done + lines - 1) if self.backwards else self.done + 1

    def where(self, index: int) -> str:
        """`name:line` of the current block's line `index`."""
        if not self.backwards:
            number = self.done_in_source + index + 1
        else:
            if self.source not in self._totals:
                self._totals[self.source] = count_lines(self.sources[self.source].path)  # type: ignore[arg-type]
            number = self._totals[self.source] - (self.done_in_source + self.lines - 1 - index)
        return f"{self.sources[self.source].name}:{number}"


Task = tuple[bytes | tuple[Source, int, int, int] | None, bool]  # (lines, or a span of a file to read; backwards)


def _blocks(sources: list[Source], backwards: bool, in_flight: deque[int]) -> Iterator[Task]:
    """Blocks of whole lines in reading order, noting in `in_flight` which source each comes from.

    Plain files are handed out as byte ranges that each process reads itself; compressed files and
    stdin are read here. The lines are split, filtered and parsed in the pool.
    """
    if backwards:
        for index in reversed(range(len(sources))):
            yield from _file_spans(sources, index, True, in_flight)
        return
    for index, source in enumerate(sources):
        if is_plain_file(source):
            yield from _file_spans(sources, index, False, in_flight)
        else:
            for _, block in read_blocks(source, BLOCK_BYTES):
                in_flight.append(index)
                yield block, False


def _file_spans(sources: list[Source], index: int, backwards: bool, in_flight: deque[int]) -> Iterator[Task]:
    """The byte ranges of plain file sources[index], last first when `backwards`; each process reads its own."""
    ranges = spans(sources[index].path, BLOCK_BYTES)  # type: ignore[arg-type]
    for start, end in reversed(ranges) if backwards else ranges:
        in_flight.append(index)
        yield (sources[index], start, end, ranges[-1][1]), backwards


def _block_bytes(task: Task) -> bytes | None:
    block = task[0]
    return read_span(*block) if isinstance(block, tuple) else block


# -- in each process of the pool ------------------------------------------------------------------

_preparer: Preparer | None = None  # set before the processes fork; each then has its own copy
_line_filter: LineFilter | None = None


def _prepare(task: Task) -> BlockResult:
    assert _preparer is not None and _line_filter is not None
    return _preparer.prepare_block(_block_bytes(task), task[1], _line_filter)
