"""`python -m collector [backfill|status] ...`: the entry point Vector runs; `ccl` calls the same."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collector.errors import CollectorError
from collector.health import DEFAULT_MAX_LAG
from collector.log import JsonLog
from collector.settings import (
    STATE_DIR_ENV,
    OptionParser,
    backfill_parser,
    collect_parser,
    default_state_dir,
    positive_duration,
    settings_from_args,
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "backfill":
        return backfill_main(argv[1:], "python -m collector backfill")
    if argv and argv[0] == "status":
        return status_main(argv[1:], "python -m collector status")
    return collect_main(argv, "python -m collector")


def collect_main(argv: list[str], prog: str) -> int:
    from collector.runner import run_collect

    args = collect_parser(prog).parse_args(argv)
    log = JsonLog(level=args.log_level, fmt=args.log_format)
    try:
        settings = settings_from_args(args)
    except CollectorError as error:
        log.error(str(error))
        return error.exit_code
    return run_collect(settings, log)


def backfill_main(argv: list[str], prog: str) -> int:
    from collector.backfill import run_backfill

    args = backfill_parser(prog).parse_args(argv)
    log = JsonLog(level=args.log_level, fmt=args.log_format, logger="backfill")
    try:
        settings = settings_from_args(args)
    except CollectorError as error:
        log.error(str(error))
        return error.exit_code
    return run_backfill(settings, log)


STATUS_DESCRIPTION = """\
Describe a collector's state directory in words: the newest activity read, the last success and
error, counts. With --check, say in one line whether the collector is healthy and exit 0 if it is,
1 if not (for Kubernetes probes, Docker's HEALTHCHECK, systemd timers, monitoring scripts).
"""

STATUS_EPILOG = """\
unhealthy (--check exits 1) when, in this order:
  - the state directory is missing or cannot be read (corrupt, or written by a newer collector)
  - no collector is running on it (unless --allow-not-running)
  - the last error is newer than the last success
  - no cycle has completed yet (a first run still reading back)
  - the collector last caught up with the feed longer ago than --max-lag

examples:
  python3 -m collector status --state-dir /var/lib/vector/claude-compliance-logs/collector --check
  ccl status --json --check --max-lag 5m
"""


def status_parser(prog: str) -> argparse.ArgumentParser:
    parser = OptionParser(prog=prog, description=STATUS_DESCRIPTION, epilog=STATUS_EPILOG)
    parser.add_argument("--state-dir", type=Path, metavar="DIR",
                        default=default_state_dir(),
                        help=f"the collector's state directory (env {STATE_DIR_ENV})")
    parser.add_argument("--json", action="store_true",
                        help="print the report as JSON, every time in RFC 3339 (with --check, the verdict too)")
    parser.add_argument("--check", action="store_true",
                        help="one line, healthy or unhealthy and why; exit 0 when healthy, 1 when not")
    parser.add_argument("--max-lag", type=positive_duration, default=DEFAULT_MAX_LAG, metavar="DURATION",
                        help="--check: unhealthy when the collector last caught up with the feed longer ago "
                        "than this (default 10m)")
    parser.add_argument("--allow-not-running", action="store_true",
                        help="--check: a collector run with --once on a schedule (Fluent Bit, cron) is not "
                        "running between runs; do not count that as unhealthy")
    return parser


def status_main(argv: list[str], prog: str) -> int:
    from collector.health import run_status

    args = status_parser(prog).parse_args(argv)
    return run_status(args.state_dir, args.json, args.check, args.max_lag, args.allow_not_running)
