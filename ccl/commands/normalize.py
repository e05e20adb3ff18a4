"""`ccl normalize`: raw activities (NDJSON) in, normalized events (NDJSON) out."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ccl.vector.geoip import GeoIpError

try:  # 2-3x faster parsing for `ccl detect` over large files; optional
    from orjson import loads as fast_loads
except ImportError:  # pragma: no cover
    from json import loads as fast_loads
from ccl.vector.normalize import TOO_DEEP, Normalizer
from ccl.vector.vrl import VrlError


def run_normalize(source: str, geoip_db: Path | None) -> int:
    try:
        normalizer = Normalizer(geoip_db)
    except (GeoIpError, VrlError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        stream = sys.stdin if source == "-" else open(source, encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as error:
        print(f"error: {source}: {error.strerror}", file=sys.stderr)
        return 2
    name = "<stdin>" if source == "-" else source
    started = time.monotonic()
    bad_lines = 0
    out = sys.stdout
    try:
        for line_number, activity, problem in read_ndjson(stream):
            if problem:
                bad_lines += 1
                print(f"{name}:{line_number}: {problem}; line skipped", file=sys.stderr)
                continue
            try:
                line = json.dumps(normalizer.normalize(activity), separators=(",", ":"), ensure_ascii=False)
            except RecursionError:
                bad_lines += 1
                print(f"{name}:{line_number}: {TOO_DEEP}; line skipped", file=sys.stderr)
                continue
            out.write(line + "\n")
    except BrokenPipeError:
        return 0  # the reader (e.g. `head`) has what it wanted
    except UnicodeDecodeError as error:
        print(f"error: {name}: not UTF-8 text ({error.reason} at byte {error.start})", file=sys.stderr)
        return 2
    finally:
        if stream is not sys.stdin:
            stream.close()
    _summary(normalizer, bad_lines, time.monotonic() - started, geoip_db is not None)
    return 2 if bad_lines else 0


def read_ndjson(stream: IO[str] | IO[bytes], wanted: Callable[[Any], bool] | None = None
                ) -> Iterator[tuple[int, dict[str, Any], str | None]]:
    """(line number, object, problem) per non-blank line; problem says why a line is unusable.

    Lines may be text or bytes (bytes skip decoding lines that are never parsed). `wanted`, if
    given, sees each raw line first; lines it declines are not parsed.
    """
    for line_number, line in enumerate(stream, start=1):
        if not line.strip() or (wanted is not None and not wanted(line)):
            continue
        try:
            value = fast_loads(line)
        except ValueError:
            try:  # the stdlib accepts what orjson refuses (NaN, integers beyond 64 bits), and words errors well
                value = json.loads(line)
            except UnicodeDecodeError as error:
                yield line_number, {}, f"not UTF-8 ({error.reason} at byte {error.start})"
                continue
            except ValueError as error:
                where = getattr(error, "colno", None)
                yield line_number, {}, f"not JSON ({getattr(error, 'msg', error)} at column {where})"
                continue
            except RecursionError:
                yield line_number, {}, TOO_DEEP
                continue
        if not isinstance(value, dict):
            yield line_number, {}, f"a JSON {type(value).__name__}, not an activity object"
            continue
        yield line_number, value, None


def _summary(normalizer: Normalizer, bad_lines: int, seconds: float, geoip: bool) -> None:
    if not sys.stderr.isatty() and not bad_lines and not normalizer.failed:
        return
    parts = [f"normalized {normalizer.events:,} events in {seconds:.1f} s"]
    if geoip:
        parts.append(f"{normalizer.with_geoip:,} with GeoIP")
    if normalizer.failed:
        parts.append(f"{normalizer.failed:,} passed through unnormalized after a VRL error (see ccl.normalize_error)")
    if bad_lines:
        parts.append(f"{bad_lines:,} unreadable lines skipped")
    print("; ".join(parts), file=sys.stderr)
