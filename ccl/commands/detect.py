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
from ccl.engine import Engine
from ccl.geoip import GeoIpError
from ccl.normalize import SOURCE, Normalizer
from ccl.rules import build_rule
from ccl.vrl import VrlError

# In a normalized event (keys sorted, as VRL writes them) `evt` starts with its name: read it
# without parsing the line, and skip lines no rule can match. Anything else is parsed in full.
EVENT_NAME = re.compile(rb'"evt":\s*\{\s*"name":\s*"([a-z0-9_]+)"')
SOURCE_BYTES = SOURCE.encode()


def is_normalized(event: dict[str, Any]) -> bool:
    return event.get("ddsource") == SOURCE and isinstance(event.get("evt"), dict)


def run_detect(events_source: str, rules_dir: Path, geoip_db: Path | None) -> int:
    assets, code = load_valid((rules_dir,))
    if code:
        return code
    rules = [build_rule(asset) for asset in assets if asset.kind == "rule"]
    normalizer: Normalizer | None = None
    try:
        # Bytes: most lines of a large file are never parsed, so they are never decoded either.
        stream = sys.stdin.buffer if events_source == "-" else open(events_source, "rb")  # noqa: SIM115
    except OSError as error:
        print(f"error: {events_source}: {error.strerror}", file=sys.stderr)
        return 2
    events, bad = [], 0
    name = "<stdin>" if events_source == "-" else events_source
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
        for line_number, event, problem in read_ndjson(stream, needed):
            if problem:
                bad += 1
                print(f"{name}:{line_number}: {problem}; line skipped", file=sys.stderr)
                continue
            if not is_normalized(event):
                if normalizer is None:
                    normalizer = Normalizer(geoip_db)
                event = normalizer.normalize(event)
            events.append(event)
    except (GeoIpError, VrlError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    signals = engine.run(events)
    gc.enable()
    try:
        for signal in signals:
            sys.stdout.write(json.dumps(signal.to_json(), ensure_ascii=False) + "\n")
    except BrokenPipeError:
        return 0
    print(f"{len(events) + skipped:,} events ({skipped:,} no rule can match), {len(rules)} rules, "
          f"{len(signals)} signals", file=sys.stderr)
    return 2 if bad else 0
