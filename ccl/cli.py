"""The `ccl` command line: parses options and delegates; no logic lives here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ccl.detection.stream.external_sort import DEFAULT_SORT_BUFFER
from collector import __version__
from collector import cli as collector_cli

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="claude-compliance-logs")
def cli() -> None:
    """claude-compliance-logs: collect Anthropic's Compliance API Activity Feed into Vector and Datadog.

    \b
    Start here:
      ccl simulate --port 8900 --scenario sso-brute-force   # a fake API on 127.0.0.1 (another shell)
      export CCL_API_URL=http://127.0.0.1:8900 ANTHROPIC_COMPLIANCE_KEY=sk-ant-api01-demo-key-not-real
      ccl collect --once > activities.ndjson                # read the feed once, NDJSON on stdout
      ccl status                                            # where the collector stands
      ccl simulate --datadog                                # a fake Datadog, for ccl plan and ccl deploy
    """


@cli.command(context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def collect(args: tuple[str, ...]) -> None:
    """Read the Activity Feed to stdout, one activity per line (same as `python -m collector`).

    Run `ccl collect --help` for every option.
    """
    sys.exit(collector_cli.collect_main(list(args), "ccl collect"))


@cli.command(context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def backfill(args: tuple[str, ...]) -> None:
    """Walk older activities between --since and --until, resumably.

    Run `ccl backfill --help` for every option.
    """
    sys.exit(collector_cli.backfill_main(list(args), "ccl backfill"))


@cli.command(context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def status(args: tuple[str, ...]) -> None:
    """Describe a collector's state directory; --check: healthy or not, exit 0 or 1 (for probes).

    Run `ccl status --help` for every option (the same as `python -m collector status`).
    """
    sys.exit(collector_cli.status_main(list(args), "ccl status"))


@cli.command()
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="port on 127.0.0.1 (0 picks a free one)  [default: 8900; 8901 with --datadog]")
@click.option("--seed", type=int, default=0, show_default=True, help="same seed, same organization and history")
@click.option("--rate", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="background activities per second (demo profile)")
@click.option("--profile", type=click.Choice(["demo", "enterprise"]), default="demo", show_default=True,
              help="demo: 40 people, every activity type; enterprise: the benign days of a 5,000-person "
                   "organization at the rates the README lists (--rate is then ignored)")
@click.option("--history", default="2h", show_default=True, help="how much past activity exists at start")
@click.option("--scenario", "scenarios", multiple=True, metavar="NAME",
              help="attack story to place on the timeline (repeatable; 'all' for every one)")
@click.option("--faults", default="", metavar="SPEC",
              help="e.g. '429=0.1,503@3,drop@5-6,not-enabled'; see `ccl simulate --list-faults`")
@click.option("--late-fraction", type=click.FloatRange(0, 1), default=0.02, show_default=True,
              help="share of activities indexed late (up to the documented minute)")
@click.option("--rate-limit", type=click.IntRange(min=1), default=600, show_default=True,
              help="requests per minute before 429")
@click.option("--list-faults", is_flag=True, help="list fault kinds and scenarios, then exit")
@click.option("--datadog", is_flag=True,
              help="serve a fake Datadog API instead (pipelines, dashboards, monitors, rules), to try "
                   "`ccl plan` and `ccl deploy` without an account; prints the variables to export")
def simulate(datadog: bool, **options: Any) -> None:
    """Serve a fake Compliance API on 127.0.0.1 that keeps the real contract.

    \b
    With --datadog, a fake Datadog API instead, for plan and deploy:
      ccl simulate --datadog &     # prints: export DD_API_URL=... DD_API_KEY=... DD_APP_KEY=...
    """
    from ccl.commands.simulate import run_fake_datadog, run_simulate

    port = options.pop("port")
    if datadog:
        sys.exit(run_fake_datadog(8901 if port is None else port))
    sys.exit(run_simulate(port=8900 if port is None else port, **options))


@cli.command()
@click.argument("source", default="-", metavar="[FILE|-]")
@click.option("--geoip-db", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="PATH",
              help="a MaxMind City mmdb (GeoLite2-City, GeoIP2-City): add network.client.geoip as Vector would")
def normalize(source: str, geoip_db: Path | None) -> None:
    """Normalize raw activities (NDJSON) with vector/normalize.vrl, as Vector does.

    \b
    Reads FILE (or stdin), writes one normalized event per line: Datadog's attributes (evt.*,
    usr.*, network.client.ip, http.useragent_details, ocsf.*), evt.outcome, the timestamp from
    created_at, and the raw fields. The VRL is the production file, run by Vector's VRL engine.

    \b
      ccl collect --once | ccl normalize --geoip-db GeoLite2-City.mmdb | jq .evt
    """
    from ccl.commands.normalize import run_normalize

    sys.exit(run_normalize(source, geoip_db))


@cli.command("vector-test")
@click.argument("configs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--enrichment-table", "tables", multiple=True, metavar="NAME=PATH",
              help="use this mmdb for a geoip enrichment table (e.g. geoip_city=GeoIP2-City-Test.mmdb)")
@click.option("--name", "only", metavar="TEXT", help="run only tests whose name contains TEXT")
def vector_test(configs: tuple[Path, ...], tables: tuple[str, ...], only: str | None) -> None:
    """Run Vector config unit tests ([[tests]]) without Vector, over Vector's VRL engine.

    \b
    The same files `vector test` takes, loaded as one config; paths in `file = ...` are relative
    to the current directory, as in Vector. Every option is first checked against Vector 0.57's
    option reference, as Vector does on load (problems as file:line). Exit 1 if a test fails, 2 if
    the config is unusable.
    \b
      ccl vector-test vector.toml vector/geoip-off.toml vector/tests.toml
    """
    from ccl.commands.vector_test import run_vector_test

    sys.exit(run_vector_test(configs, tables, only))


PATHS = click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PATH...]")
GEOIP = click.option("--geoip-db", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="PATH",
                     help="a MaxMind City mmdb, to add network.client.geoip while normalizing")


@cli.command()
@PATHS
def validate(paths: tuple[Path, ...]) -> None:
    """Check pipelines, dashboards, rules and monitors: schema, queries, names, windows, tests.

    \b
    PATH: files or directories; default pipelines/ dashboards/ detections/ monitors/ under the
    current directory. Every problem is reported as `file:line: what is wrong, and the fix`;
    exit 2 if there is any.
    """
    from ccl.commands.validate import run_validate

    sys.exit(run_validate(paths))


@cli.command()
@PATHS
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("out"), show_default=True,
              help="directory for pipelines/, dashboards/, rules/ and monitors/ JSON")
def render(paths: tuple[Path, ...], out: Path) -> None:
    """Write the exact Datadog API payloads, deterministic byte for byte.

    PATH: files or directories; default pipelines/ dashboards/ detections/ monitors/ under the
    current directory. Everything is validated first.
    """
    from ccl.commands.render import run_render

    sys.exit(run_render(paths, out))


@cli.command()
@click.option("--events", "inputs", required=True, multiple=True, metavar="PATH",
              help="NDJSON of raw activities (normalized on the way) or of normalized events: a file, a "
                   "directory (every file under it, e.g. Vector's archive) or - for stdin; gzip and zstd are "
                   "read as they are; repeat for several")
@click.option("--rules", "rules_dir", type=click.Path(exists=True, path_type=Path), default=Path("detections"),
              show_default=True, help="rules directory or file")
@GEOIP
@click.option("--jobs", type=click.IntRange(min=0), default=None, metavar="N",
              help="processes that parse and normalize beside the one that runs the rules; 0 for none "
                   "(default: the number of CPUs; on normalized input one of them rests while the rules "
                   "run alongside the reading)")
@click.option("--sort-buffer", type=click.IntRange(min=1), default=DEFAULT_SORT_BUFFER, show_default=True,
              metavar="EVENTS", help="events sorted in memory when the input is out of time order (beyond, "
                                     "sorted runs go to temporary files in $TMPDIR and are merged); about 1 KB "
                                     "of memory per event")
@click.option("--whole-input", is_flag=True, hidden=True,
              help="the path before streaming: every event in memory (for benchmarks and equivalence tests)")
def detect(inputs: tuple[str, ...], rules_dir: Path, geoip_db: Path | None, jobs: int | None, sort_buffer: int,
           whole_input: bool) -> None:
    """Run the rules offline, with Datadog's detection semantics; one JSON signal per line.

    \b
      ccl collect --once > activities.ndjson
      ccl detect --events activities.ndjson --geoip-db GeoLite2-City.mmdb
      ccl detect --events /var/lib/vector/claude-compliance-logs/archive/ --events backfill.ndjson.gz

    Each signal: rule, severity, group, first_seen, last_seen, count, activity_ids. Input may be in
    any order and of any size: memory stays bounded. In time order (oldest or newest first, or
    out of order by at most 20,000 events, as a collector's pages) it goes through the rules while
    read; otherwise it is sorted by time, out of core past --sort-buffer (a file whose order breaks
    late is read a second time).
    Lines no rule can match are skipped before they are parsed or normalized.
    Run from the repository root (rules from detections/) or give --rules.
    """
    from ccl.commands.detect import run_detect
    from ccl.detection.stream.detect import StreamSettings

    settings = StreamSettings(jobs=jobs, sort_buffer=sort_buffer, geoip_db=geoip_db)
    sys.exit(run_detect(list(inputs), rules_dir, settings, whole_input))


@cli.command()
@PATHS
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("docs/rules.md"),
              show_default=True, help="the markdown page to write")
def docs(paths: tuple[Path, ...], out: Path) -> None:
    """Write the rule table, the coverage summary and the actor matrix as one markdown page.

    \b
      ccl docs --out docs/rules.md

    Each rule's method, severities, why (severity_reason), nearest Datadog or Panther rule
    (nearest), MITRE tags and overlapped Datadog default rules; then which security-relevant
    activity types the rules name and their tests exercise; then rules x actor kinds. It runs every
    rule's tests first (about 20 s) and refuses to write if one fails. PATH: rule files or
    directories (default detections/).
    """
    from ccl.commands.docs import run_docs

    sys.exit(run_docs(paths, out))


@cli.command()
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--install", metavar="SPEC",
              help="the pip requirement CI installs ccl from, written to requirements.txt "
                   "(default: claude-compliance-logs[tool] at this version, once it is on PyPI)")
@click.option("--force", is_flag=True, help="write into a non-empty DIR: add the missing files, never overwrite one")
def init(directory: Path, install: str | None, force: bool) -> None:
    """Create a detections repository for your team in DIR.

    \b
    One example of each kind (pipeline with Datadog's samples as its tests, dashboard, monitor,
    rule with its tests), the JSON Schemas for editors, a GitHub Actions workflow (validate and
    test on pull requests, plan as a comment, deploy on main, one deploy at a time) and a README.
    Refuses a non-empty DIR (one holding only .git is empty) unless --force.
    \b
      ccl init ../claude-detections && cd ../claude-detections && ccl validate && ccl test
    """
    from ccl.commands.init import run_init

    sys.exit(run_init(directory, install, force))


SITE = click.option("--site", metavar="SITE", help="Datadog site, e.g. datadoghq.eu (default $DD_SITE, else "
                    "datadoghq.com); $DD_API_URL overrides the API URL")
ONLY = click.option("--only", type=click.Choice(["pipelines", "dashboards", "rules", "monitors"]),
                    help="only this kind of object")
PRUNE = click.option("--prune", is_flag=True, help="delete ccl's objects whose file is gone, and identical duplicates "
                     "of ccl's objects (keeping the oldest); never anything else")
DEFAULTS = click.option("--disable-overlapping-defaults", "disable_defaults", is_flag=True,
                        help="disable Datadog's default rules that our rules supersede (they cannot be deleted)")


@cli.command("test")
@PATHS
@click.option("--coverage", is_flag=True, help="list security-relevant activity types with and without a rule")
@click.option("--remote", is_flag=True, help="also ask Datadog's rule test endpoint whether each test event "
                                             "matches each query, and report disagreements with the offline matcher")
@GEOIP
@SITE
def test_command(paths: tuple[Path, ...], coverage: bool, remote: bool, geoip_db: Path | None,
                 site: str | None) -> None:
    """Run every rule's embedded tests (and the pipeline's) through the normalizer and the engine.

    Exit 1 if a test fails, 2 if the assets do not validate. With --remote, DD_API_KEY and
    DD_APP_KEY (permission security_monitoring_rules_write) come from the environment.
    """
    from ccl.commands.test import run_test

    code = run_test(paths, coverage, geoip_db)
    if remote and code == 0:
        from ccl.commands.deploy import run_remote_test

        code = run_remote_test(site, paths)
    sys.exit(code)


@cli.command()
@PRUNE
@ONLY
@click.option("--json", "as_json", is_flag=True, help='machine-readable: [{"kind", "key", "action", "remote_id"}]')
@click.option("--verbose", is_flag=True, help="list unchanged objects too")
@DEFAULTS
@SITE
def plan(prune: bool, only: str | None, as_json: bool, verbose: bool, disable_defaults: bool,
         site: str | None) -> None:
    """Show what `ccl deploy` with the same flags would change in Datadog, and why.

    \b
    Keys: DD_API_KEY and DD_APP_KEY (or DD_APPLICATION_KEY) from the environment, never arguments.
    Only objects carrying the exact key of one of our files (or ccl's marker) are ever updated or
    deleted; objects that merely resemble ours are listed in the notes and left alone.
    """
    from ccl.commands.deploy import run_plan

    sys.exit(run_plan(site, prune, only, as_json, disable_defaults, verbose))


@cli.command()
@click.option("--yes", is_flag=True, help="apply without asking (required without a terminal, e.g. in CI)")
@PRUNE
@ONLY
@DEFAULTS
@SITE
def deploy(yes: bool, prune: bool, only: str | None, disable_defaults: bool, site: str | None) -> None:
    """Apply the plan: create and update what changed; delete only with --prune, only what ccl owns.

    \b
    Rules go through Datadog's validation endpoint first; a refused rule is reported with its
    file and Datadog's message, and left as it is. Each key is looked up again right before it is
    created, and each write is read back and compared. A second run after any failure completes it.
    """
    from ccl.commands.deploy import run_deploy

    sys.exit(run_deploy(site, prune, only, yes, disable_defaults))


def main() -> None:
    cli()
