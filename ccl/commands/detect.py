"""`ccl detect`: the rules over a stream of activities, one JSON signal per line."""

from __future__ import annotations

import json
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


def is_normalized(event: dict[str, Any]) -> bool:
    return event.get("ddsource") == SOURCE and isinstance(event.get("evt"), dict)


def run_detect(events_source: str, rules_dir: Path, geoip_db: Path | None) -> int:
    assets, code = load_valid((rules_dir,))
    if code:
        return code
    rules = [build_rule(asset) for asset in assets if asset.kind == "rule"]
    normalizer: Normalizer | None = None
    try:
        stream = sys.stdin if events_source == "-" else open(events_source, encoding="utf-8")  # noqa: SIM115
    except OSError as error:
        print(f"error: {events_source}: {error.strerror}", file=sys.stderr)
        return 2
    events, bad = [], 0
    name = "<stdin>" if events_source == "-" else events_source
    try:
        for line_number, event, problem in read_ndjson(stream):
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
        if stream is not sys.stdin:
            stream.close()
    signals = Engine(rules).run(events)
    try:
        for signal in signals:
            sys.stdout.write(json.dumps(signal.to_json(), ensure_ascii=False) + "\n")
    except BrokenPipeError:
        return 0
    print(f"{len(events):,} events, {len(rules)} rules, {len(signals)} signals", file=sys.stderr)
    return 2 if bad else 0
