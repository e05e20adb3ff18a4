"""`ccl detect`: the rules over a stream of activities, one JSON signal per line."""

from __future__ import annotations

import gc
import json
import re
import sys
from pathlib import Path
from typing import Any

from ccl.commands.normalize import read_ndjson
from ccl.commands.validate import load_valid
from ccl.detection.engine import Engine
from ccl.detection.rules import Rule, build_rule
from ccl.detection.stream.detect import StreamSettings, detect_stream
from ccl.detection.stream.event_files import InputError, Source, find_sources, open_binary
from ccl.detection.stream.external_sort import SortSpaceError
from ccl.detection.stream.prepare import is_normalized
from ccl.vector.geoip import GeoIpError
from ccl.vector.normalize import SOURCE, Normalizer
from ccl.vector.vrl import VrlError


def run_detect(inputs: list[str], rules_dir: Path, settings: StreamSettings, whole_input: bool = False) -> int:
    assets, code = load_valid((rules_dir,))
    if code:
        return code
    rules = [build_rule(asset) for asset in assets if asset.kind == "rule"]
    try:
        sources = find_sources(inputs)
        if whole_input:
            return run_whole_input(sources, rules, settings.geoip_db)
        report = detect_stream(sources, rules, settings, _write_signal, _problem)
    except BrokenPipeError:
        return 0  # the reader (e.g. `head`) has what it wanted
    except (InputError, GeoIpError, VrlError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SortSpaceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; the signals written so far are final, the others were not written", file=sys.stderr)
        return 130
    order = ""
    if not report.events:
        pass  # nothing to say about the order of no events
    elif report.in_order == "nearly":
        order = f"; in time order within {report.window:,} events: detected while reading"
    elif report.in_order:
        order = f"; already in time order ({report.in_order}): detected while reading, nothing sorted"
    elif report.runs_on_disk:
        order = f"; sorted in {report.runs_on_disk:,} runs on disk"
    if report.read_again_after:
        order += (f"{',' if order else ';'} read twice (out of time order by more than {report.window:,} events "
                  f"after {report.read_again_after:,} lines)")
    print(f"{report.events:,} events ({report.skipped:,} no rule can match), {len(rules)} rules, "
          f"{report.signals} signals{order}", file=sys.stderr)
    return 2 if report.bad_lines else 0


def _write_signal(signal: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(signal, ensure_ascii=False) + "\n")


def _problem(message: str) -> None:
    print(message, file=sys.stderr)


# -- the whole-input path (hidden --whole-input): every event in memory, then sorted -------------
# Kept as it was before streaming, so that the benchmark and the equivalence tests compare against it.

# In a normalized event (keys sorted, as VRL writes them) `evt` starts with its name: read it
# without parsing the line, and skip lines no rule can match. Anything else is parsed in full.
EVENT_NAME = re.compile(rb'"evt":\s*\{\s*"name":\s*"([a-z0-9_]+)"')
SOURCE_BYTES = SOURCE.encode()


def run_whole_input(sources: list[Source], rules: list[Rule], geoip_db: Path | None) -> int:
    normalizer: Normalizer | None = None
    events: list[dict[str, Any]] = []
    bad = 0
    # Millions of small dicts, none cyclic: the cyclic collector would rescan them again and
    # again while they are read (it made reading 5x slower), so it rests until the end.
    gc.disable()
    engine = Engine(rules)
    wanted = engine.event_names()
    skipped = 0

    wanted_bytes = None if wanted is None else {name.encode() for name in wanted}

    def needed(line: bytes) -> bool:
        nonlocal skipped
        if wanted_bytes is None or SOURCE_BYTES not in line:
            return True
        match = EVENT_NAME.search(line)
        if match is None or match.group(1) in wanted_bytes:
            return True
        skipped += 1
        return False

    try:
        for source in sources:
            stream = open_binary(source)
            try:
                for line_number, event, problem in read_ndjson(stream, needed):
                    if problem:
                        bad += 1
                        print(f"{source.name}:{line_number}: {problem}; line skipped", file=sys.stderr)
                        continue
                    if not is_normalized(event):
                        if normalizer is None:
                            normalizer = Normalizer(geoip_db)
                        event = normalizer.normalize(event)
                    events.append(event)
            finally:
                if source.path is not None:
                    stream.close()
        signals = engine.run(events)
    finally:
        gc.enable()
    for signal in signals:
        _write_signal(signal.to_json())
    print(f"{len(events) + skipped:,} events ({skipped:,} no rule can match), {len(rules)} rules, "
          f"{len(signals)} signals", file=sys.stderr)
    return 2 if bad else 0
