"""`ccl simulate`: run the fake Compliance API (or, with --datadog, the fake Datadog API) in the
foreground until interrupted."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

from ccl.simulator import FaultPlan, FaultSpecError, Simulator
from ccl.simulator.faults import KINDS
from ccl.simulator.scenarios import SCENARIOS, describe
from collector.timeparse import TimeFormatError, parse_duration

EXAMPLE_KEY = "sk-ant-api01-demo-key-not-real"
# The fake Datadog accepts exactly these (as Datadog accepts only an org's own keys); shaped like
# Datadog's (32 and 40 characters) and plainly not real.
FAKE_DD_API_KEY = "fakeddapikey" + "0" * 20
FAKE_DD_APP_KEY = "fakeddappkey" + "0" * 28


def run_simulate(port: int, seed: int, rate: float, history: str, scenarios: tuple[str, ...], faults: str,
                 late_fraction: float, rate_limit: int, list_faults: bool, profile: str = "demo") -> int:
    if list_faults:
        print("fault kinds (--faults KIND, KIND=probability, KIND@N or KIND@N-M, comma-separated):")
        for kind, meaning in KINDS.items():
            print(f"  {kind:<20} {meaning}")
        print("\nscenarios (--scenario NAME):")
        for name, text in describe().items():
            print(f"  {name:<20} {text}")
        return 0
    try:
        history_seconds = parse_duration(history)
        plan = FaultPlan.parse(faults, seed)
        names = list(SCENARIOS) if "all" in scenarios else list(scenarios)
        simulator = Simulator(seed=seed, rate=rate, history=history_seconds, scenarios=names, faults=plan,
                              late_fraction=late_fraction, rate_limit=rate_limit, profile=profile)
    except (TimeFormatError, FaultSpecError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        simulator.start(port)
    except OSError as error:
        print(f"error: cannot listen on 127.0.0.1:{port}: {error.strerror}; try another --port, or 0",
              file=sys.stderr)
        return 2
    _announce(simulator, names, faults)
    _serve_until_stopped()
    simulator.stop()
    print(f"simulator stopped after {simulator.api.requests_seen} requests", file=sys.stderr)
    return 0


def run_fake_datadog(port: int) -> int:
    from ccl.datadog.fake import FakeDatadog

    fake = FakeDatadog(FAKE_DD_API_KEY, FAKE_DD_APP_KEY)
    try:
        fake.start(port)
    except OSError as error:
        print(f"error: cannot listen on 127.0.0.1:{port}: {error.strerror}; try another --port, or 0",
              file=sys.stderr)
        return 2
    lines = [
        f"fake Datadog API listening on {fake.url} (state in memory: gone when it stops)",
        "  it holds Datadog's read-only Claude Compliance integration pipeline, one of its default rules,",
        "  and another team's dashboard named like ours (which ccl leaves alone). Only these keys work; try:",
        f"    export DD_API_URL={fake.url} DD_API_KEY={FAKE_DD_API_KEY} DD_APP_KEY={FAKE_DD_APP_KEY}",
        "    ccl plan && ccl deploy --yes && ccl plan     # from a repository root (this one, or `ccl init`'s)",
        "  Ctrl-C stops it.",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
    _serve_until_stopped()
    fake.stop()
    print(f"fake Datadog stopped after {len(fake.requests)} requests", file=sys.stderr)
    return 0


def _serve_until_stopped() -> None:
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()


def _announce(simulator: Simulator, scenarios: list[str], faults: str) -> None:
    lines = [
        f"Compliance API simulator listening on {simulator.url}",
        f"  {len(simulator.store):,} activities in history, "
        + ("the enterprise profile's benign days" if simulator.profile else f"{simulator.rate:g} new per second")
        + (f", scenarios: {', '.join(scenarios)}" if scenarios else "")
        + (f", faults: {faults}" if faults else ""),
        "  any key starting with sk-ant-api01- or sk-ant-admin01- is accepted; try:",
        f"    export CCL_API_URL={simulator.url} ANTHROPIC_COMPLIANCE_KEY={EXAMPLE_KEY}",
        "    ccl collect --once --state-dir /tmp/ccl-state > /tmp/activities.ndjson",
        "  Ctrl-C stops it.",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)


