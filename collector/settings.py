"""Command-line options and environment, read into one typed object.

`python -m collector` and `ccl collect` share this parser, so the two take exactly the same options.
Secrets are never options: the key comes from `ANTHROPIC_COMPLIANCE_KEY` or a file.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from collector import __version__
from collector.errors import UsageError
from collector.files import NotARegularFile, read_regular
from collector.output import DEFAULT_MAX_LINE_BYTES
from collector.redact import KEY_SHAPED, Redactor
from collector.timeparse import MAX_DURATION_SECONDS, TimeFormatError, parse_duration, parse_instant

KEY_ENV = "ANTHROPIC_COMPLIANCE_KEY"
API_URL_ENV = "CCL_API_URL"
STATE_DIR_ENV = "CCL_STATE_DIR"
DEFAULT_API_URL = "https://api.anthropic.com"
COMPLIANCE_KEY_PREFIXES = ("sk-ant-admin01-", "sk-ant-api01-")
MAX_KEY_FILE_BYTES = 4096
REDACTOR = Redactor()  # for option errors: the key is not known yet, anything shaped like one goes


def default_state_dir() -> Path:
    """$CCL_STATE_DIR, else the XDG state directory."""
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "claude-compliance-logs"


@dataclass
class Settings:
    api_url: str
    state_dir: Path
    key_file: Path | None
    since: datetime
    overlap: float
    reconcile_every: float
    interval: float
    once: bool
    max_rpm: int
    replay_on_start: float | None
    max_retry_time: float
    refused_retry: float
    request_timeout: float
    log_level: str
    log_format: str
    filters: list[tuple[str, str]] = field(default_factory=list)
    until: datetime | None = None
    restart: bool = False
    since_text: str = ""
    until_text: str = ""
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    allow_readable_key_file: bool = False

    def read_key(self) -> str:
        """The key, from --key-file (read again on each call, so a rotated file is picked up) or env."""
        if self.key_file is not None:
            key = self._read_key_file(self.key_file)
            source = f"--key-file {self.key_file}"
        else:
            key = os.environ.get(KEY_ENV, "").strip()
            source = KEY_ENV
        if not key:
            raise UsageError(
                f"no Compliance API key: set {KEY_ENV} or pass --key-file PATH "
                "(a key is never accepted as a command-line argument)"
            )
        if not key.isascii() or any(ch.isspace() or not ch.isprintable() for ch in key):
            raise UsageError(f"the key in {source} contains spaces, line breaks or non-ASCII characters")
        return key

    def _read_key_file(self, path: Path) -> str:
        try:
            raw, info = read_regular(path, MAX_KEY_FILE_BYTES)
        except NotARegularFile as exc:
            raise UsageError(f"--key-file {exc.strerror}: give the path of the file that holds the key") from None
        except OSError as exc:
            raise UsageError(f"cannot read --key-file {path}: {exc.strerror}") from None
        if info.st_mode & (stat.S_IRGRP | stat.S_IROTH) and not self.allow_readable_key_file:
            raise UsageError(
                f"--key-file {path} can be read by other users (mode {stat.S_IMODE(info.st_mode):04o}): chmod 600 it "
                "(Kubernetes: defaultMode 0400 on the secret volume), or pass --allow-readable-key-file"
            )
        try:
            return raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise UsageError(f"the key in --key-file {path} contains non-ASCII characters") from None

    def key_warnings(self, key: str) -> list[str]:
        warnings = []
        if not key.startswith(COMPLIANCE_KEY_PREFIXES):
            warnings.append(
                "the key does not start with sk-ant-api01- (Compliance Access Key) or sk-ant-admin01- (Admin "
                "key); the API will likely refuse it"
            )
        if self.key_file is not None and self.allow_readable_key_file:
            warnings.append(f"--key-file {self.key_file} may be readable by other users (--allow-readable-key-file)")
        return warnings


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except TimeFormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_duration(text: str) -> float:
    value = _duration(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than zero")
    if value > MAX_DURATION_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r} is longer than 10 years")
    return value


def _instant_text(text: str) -> str:
    try:
        parse_instant(text)
    except TimeFormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    if value > 1_000_000_000:
        raise argparse.ArgumentTypeError(f"{text!r} is too large")
    return value


def _line_bytes(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1024:
        raise argparse.ArgumentTypeError(f"{text!r} is too small (at least 1024 bytes)")
    return value


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34, width=100)


KEY_OPTION_NAMES = ("--key", "--api-key", "--anthropic-key", "--compliance-key")
KEY_ADVICE = (f"a key is never accepted as an argument (arguments show in `ps` and shell history): set {KEY_ENV} "
              "or pass --key-file PATH")


class OptionParser(argparse.ArgumentParser):
    """argparse with what an operator expects of the collector's options.

    An error is one line (not the whole usage first) and exits 2. An option is matched by its full
    name only: with prefix matching, `--key sk-ant-...` would be taken for `--key-file`. Anything
    shaped like a key on the command line is refused, never echoed.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        for arg in args or ():
            if KEY_SHAPED.search(arg) or arg.split("=", 1)[0] in KEY_OPTION_NAMES:
                self.error(KEY_ADVICE)
        return super().parse_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {REDACTOR.text(message)} (`{self.prog} --help` lists every option)\n")


COLLECT_DESCRIPTION = """\
Reads the Compliance API Activity Feed (GET /v1/compliance/activities) and writes each activity
to stdout as one JSON line, exactly as the API returned it. Logs go to stderr as JSON lines.
Run it as Vector's exec source (streaming mode), or by hand with --once.

The key is read from $ANTHROPIC_COMPLIANCE_KEY or --key-file; it is never an argument. The file is
read again before every request: replace it (mode 0600) to rotate the key without a restart.
"""

COLLECT_EPILOG = """\
exit codes:
  0  done (--once), or stopped by SIGTERM/SIGINT after saving
  1  failed while running (API kept failing or looping, nothing answering at --api-url on the first
     request, stdout closed, disk full with --once, ...)
  2  usage or bad input (options, a key on the command line, missing or readable key file, http://
     to another host, corrupt or locked state, state written by a newer collector)
  3  refused by the API: bad key (401/404), missing scope (403), Compliance API not enabled (400)
     (in follow mode a refusal is logged as ERROR and retried every --refused-retry instead)

examples:
  ANTHROPIC_COMPLIANCE_KEY=sk-ant-api01-... python -m collector --once --state-dir ./state
  python -m collector --key-file /etc/vector/anthropic.key --state-dir /var/lib/vector/claude
"""


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key-file", type=Path, metavar="PATH",
                        help=f"read the key from this file instead of ${KEY_ENV}")
    parser.add_argument("--allow-readable-key-file", action="store_true",
                        help="accept a --key-file that other users can read (refused by default: chmod 600 it)")
    parser.add_argument("--api-url", default=os.environ.get(API_URL_ENV, DEFAULT_API_URL), metavar="URL",
                        help=f"API base URL (env {API_URL_ENV}; default {DEFAULT_API_URL}). ANTHROPIC_BASE_URL, which "
                        "SDKs use for gateways, is deliberately not read")
    parser.add_argument("--allow-insecure-url", action="store_true",
                        help="accept a plain http:// --api-url on a host other than this one (the key then travels "
                        "in clear; refused by default)")
    parser.add_argument("--state-dir", type=Path, metavar="DIR",
                        default=default_state_dir(),
                        help=f"where the cursor and recent ids are kept (env {STATE_DIR_ENV}; default %(default)s)")
    parser.add_argument("--organization-id", action="append", default=[], metavar="ID",
                        help="only this organization (org_... or UUID); repeatable")
    types = parser.add_mutually_exclusive_group()
    types.add_argument("--activity-type", action="append", default=[], metavar="TYPE",
                       help="only this activity type; repeatable")
    types.add_argument("--exclude-activity-type", action="append", default=[], metavar="TYPE",
                       help="every type but this one; repeatable")
    parser.add_argument("--max-rpm", type=_non_negative_int, default=60, metavar="N",
                        help="requests per minute this collector may send (default 60; the org-wide 600/min is shared "
                        "by every key and tool; 0 = no budget)")
    parser.add_argument("--request-timeout", type=positive_duration, default=60.0, metavar="SECONDS",
                        help="the most one HTTP request may take, from connecting to the last byte (default 60)")
    parser.add_argument("--max-line-bytes", type=_line_bytes, default=DEFAULT_MAX_LINE_BYTES, metavar="BYTES",
                        help="log an ERROR naming any activity whose line is longer than this; the line is still "
                        f"emitted (default {DEFAULT_MAX_LINE_BYTES}, 16 MiB; keep Vector's framing max_length above "
                        "it)")
    parser.add_argument("--max-retry-time", type=positive_duration, default=300.0, metavar="DURATION",
                        help="--once and backfill: give up after retrying this long, exit 1 (default 5m); "
                        "follow mode retries forever")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="DEBUG, INFO (default), WARNING or ERROR; any case")
    parser.add_argument("--log-format", default="auto", choices=["auto", "json", "text"],
                        help="auto (default): text on a terminal, JSON lines otherwise (what Vector reads)")
    parser.add_argument("--version", action="version", version=f"claude-compliance-logs {__version__}")


def collect_parser(prog: str) -> argparse.ArgumentParser:
    parser = OptionParser(prog=prog, description=COLLECT_DESCRIPTION, epilog=COLLECT_EPILOG)
    add_connection_options(parser)
    parser.add_argument("--once", action="store_true",
                        help="catch up to the present (with the overlap re-poll), save, exit 0")
    parser.add_argument("--interval", type=positive_duration, default=15.0, metavar="SECONDS",
                        help="follow mode: pause between polls (default 15)")
    parser.add_argument("--since", type=_instant_text, default="1h", metavar="TIME",
                        help="first run only (empty state): start here; RFC 3339 or a duration ago like 2h "
                        "(default 1h)")
    parser.add_argument("--overlap", type=positive_duration, default=900.0, metavar="DURATION",
                        help="how far back the re-poll for late-indexed activities reads (default 15m)")
    parser.add_argument("--reconcile-every", type=positive_duration, default=300.0, metavar="DURATION",
                        help="how often the overlap re-poll runs in follow mode (default 5m; every --once run "
                        "does one)")
    parser.add_argument("--replay-on-start", type=positive_duration, default=None, metavar="DURATION",
                        help="re-emit this much recent history once at start, for operators who prefer duplicates "
                        "to the small window an abrupt Vector crash can lose (default off)")
    parser.add_argument("--refused-retry", type=positive_duration, default=300.0, metavar="DURATION",
                        help="follow mode: after a refusal (401/403/404/not enabled), retry this slowly (default 5m)")
    return parser


BACKFILL_DESCRIPTION = """\
Walks older activities between --since and --until (newest first, by cursor) and writes them to
stdout with the same one-activity-per-line contract. Progress is saved after every page: run the
same command again to resume. It does not deduplicate against the live collector; send it through
the same Vector (its dedupe on id) or to a file. Datadog drops logs older than 18 hours at intake:
vector.toml routes such activities to the archive sink.
"""


def backfill_parser(prog: str) -> argparse.ArgumentParser:
    parser = OptionParser(prog=prog, description=BACKFILL_DESCRIPTION, epilog=COLLECT_EPILOG.split("examples:")[0])
    add_connection_options(parser)
    parser.add_argument("--since", type=_instant_text, required=True, metavar="TIME",
                        help="oldest point to read (RFC 3339 or a duration ago like 7d); required")
    parser.add_argument("--until", type=_instant_text, default=None, metavar="TIME",
                        help="newest point, exclusive (default: when the backfill first started)")
    parser.add_argument("--restart", action="store_true",
                        help="discard an unfinished or finished backfill in the state dir and start over")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    now = datetime.now(UTC)
    filters: list[tuple[str, str]] = []
    filters += [("organization_ids[]", value) for value in args.organization_id]
    filters += [("activity_types[]", value) for value in args.activity_type]
    filters += [("exclude_activity_types[]", value) for value in args.exclude_activity_type]
    overlap = getattr(args, "overlap", 900.0)
    if overlap <= 60:
        raise UsageError("--overlap must be longer than 1 minute (the API's documented indexing lag)")
    check_api_url(args.api_url, args.allow_insecure_url)
    try:
        since = parse_instant(args.since, now)
        until = parse_instant(args.until, now) if getattr(args, "until", None) else None
    except TimeFormatError as exc:
        raise UsageError(str(exc)) from None
    if until is not None and until <= since:
        raise UsageError(f"--until ({args.until}) must be later than --since ({args.since})")
    if since > now + timedelta(minutes=5):
        raise UsageError(f"--since {args.since} is in the future")
    return Settings(
        api_url=args.api_url,
        state_dir=args.state_dir,
        key_file=args.key_file,
        since=since,
        until=until,
        overlap=overlap,
        reconcile_every=getattr(args, "reconcile_every", 300.0),
        interval=getattr(args, "interval", 15.0),
        once=getattr(args, "once", True),
        max_rpm=args.max_rpm,
        replay_on_start=getattr(args, "replay_on_start", None),
        max_retry_time=args.max_retry_time,
        refused_retry=getattr(args, "refused_retry", 300.0),
        request_timeout=args.request_timeout,
        log_level=args.log_level,
        log_format=args.log_format,
        filters=filters,
        restart=getattr(args, "restart", False),
        since_text=args.since,
        until_text=getattr(args, "until", None) or "",
        max_line_bytes=args.max_line_bytes,
        allow_readable_key_file=args.allow_readable_key_file,
    )


def check_api_url(url: str, allow_insecure: bool) -> None:
    """Refuses a URL the key must not be sent to: not http(s), or plain http to another machine."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError as exc:
        raise UsageError(f"--api-url {url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise UsageError(f"--api-url {url!r} must be an https:// URL with a host, like {DEFAULT_API_URL}")
    if any(ch.isspace() or not ch.isprintable() for ch in url) or parts.username or parts.password:
        raise UsageError(f"--api-url {url!r} holds spaces, control characters or credentials")
    if parts.scheme == "http" and not _is_loopback(host) and not allow_insecure:
        raise UsageError(
            f"--api-url {url} is plain http:// to another host: the key would travel in clear. Use https://, "
            "or pass --allow-insecure-url if the network path is protected some other way"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
