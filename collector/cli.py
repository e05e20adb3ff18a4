"""`python -m collector [backfill|status] ...`: the entry point Vector runs; `ccl` calls the same."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from collector.errors import EXIT_USAGE, CollectorError
from collector.log import JsonLog
from collector.redact import Redactor
from collector.settings import (
    KEY_ENV,
    STATE_DIR_ENV,
    backfill_parser,
    collect_parser,
    default_state_dir,
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


def status_main(argv: list[str], prog: str) -> int:
    from collector.status import describe, render_text

    parser = argparse.ArgumentParser(prog=prog, description="Describe a collector's state directory in words.")
    parser.add_argument("--state-dir", type=Path, metavar="DIR",
                        default=default_state_dir(),
                        help=f"the collector's state directory (env {STATE_DIR_ENV})")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    redactor = Redactor()
    redactor.add(os.environ.get(KEY_ENV, "").strip())
    try:
        report = describe(args.state_dir, redactor=redactor)
    except CollectorError as error:
        print(f"error: {redactor.text(str(error))}", file=sys.stderr)
        return error.exit_code if error.exit_code else EXIT_USAGE
    print(json.dumps(report, indent=2, default=str) if args.json else render_text(report))
    return 0
