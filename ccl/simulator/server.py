"""`ccl simulate`: a fake Compliance API on 127.0.0.1, with history, live traffic and scenarios."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ccl.simulator.api import Answer, ComplianceApi
from ccl.simulator.enterprise import PEOPLE, EnterpriseProfile
from ccl.simulator.faults import FaultPlan
from ccl.simulator.generator import ActivityFactory
from ccl.simulator.hostile import DRIP_INTERVAL, huge_chunks
from ccl.simulator.population import Population
from ccl.simulator.scenarios import SCENARIOS
from ccl.simulator.store import ActivityStore

# Most rows are queryable within a second or two; a few take up to the documented minute, and
# those fall behind a cursor that has already moved past their created_at.
USUAL_DELAY = (0.0, 1.5)
LATE_DELAY = (8.0, 50.0)
SCENARIO_END_BEFORE_START = 300.0
# demo: a 40-person organization at --rate activities per second, every documented type in the mix;
# enterprise: the benign days of a 5,000-person organization (rates in ccl/simulator/enterprise.py).
PROFILES = ("demo", "enterprise")


def stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Simulator:
    def __init__(
        self,
        seed: int = 0,
        rate: float = 1.0,
        history: float = 7200.0,
        scenarios: list[str] | tuple[str, ...] = (),
        faults: FaultPlan | None = None,
        late_fraction: float = 0.02,
        rate_limit: int = 600,
        record_requests: bool = True,
        timeout_delay: float = 65.0,
        usual_delay: tuple[float, float] = USUAL_DELAY,
        clock: Any = time.time,
        profile: str = "demo",
        people: int | None = None,
    ):
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        unknown = [name for name in scenarios if name not in SCENARIOS]
        if unknown:
            raise ValueError(f"unknown scenario {unknown[0]!r}; known: {', '.join(SCENARIOS)}")
        self.rng = random.Random(seed)
        self.clock = clock
        self.rate = rate
        self.late_fraction = late_fraction
        self.timeout_delay = timeout_delay
        self.usual_delay = usual_delay
        self.record_requests = record_requests
        self.profile = EnterpriseProfile(seed, people or PEOPLE) if profile == "enterprise" else None
        if self.profile is not None:
            self.population, self.factory = self.profile.population, self.profile.factory
        else:
            self.population = Population(self.rng)
            self.factory = ActivityFactory(self.population, self.rng)
        self._profile_stream: Any = None
        self._profile_next: dict[str, Any] | None = None
        self.store = ActivityStore()
        self.api = ComplianceApi(self.store, faults or FaultPlan(), rate_limit, self._record_request,
                                 random.Random(seed + 1))
        self.started_at = clock()
        self._generated_until = self.started_at - history
        self._generate_lock = threading.Lock()
        self.generate_until(self.started_at)
        for name in scenarios:
            self.add_scenario(name)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- data --------------------------------------------------------------------------------

    def generate_until(self, now: float) -> None:
        """Background traffic up to `now`: the profile's days, or `rate` per second (Poisson arrivals)."""
        if self.profile is not None:
            self._follow_profile(now)
            return
        if self.rate <= 0:
            return
        with self._generate_lock:
            moment = self._generated_until
            while True:
                moment += self.rng.expovariate(self.rate)
                if moment > now:
                    break
                self.add(self.factory.make(self.factory.random_type(), stamp(moment)))
            self._generated_until = now

    def _follow_profile(self, now: float) -> None:
        assert self.profile is not None
        with self._generate_lock:
            if self._profile_stream is None:
                self._profile_stream = self.profile.activities(self._generated_until)
                self._profile_next = next(self._profile_stream)
            while self._profile_next is not None and \
                    datetime.fromisoformat(self._profile_next["created_at"]).timestamp() <= now:
                self.add(self._profile_next)
                self._profile_next = next(self._profile_stream, None)
            self._generated_until = now

    def add(self, activity: dict[str, Any], delay: float | None = None) -> dict[str, Any]:
        if delay is None:
            late = self.rng.random() < self.late_fraction
            delay = self.rng.uniform(*(LATE_DELAY if late else self.usual_delay))
        created = datetime.fromisoformat(activity["created_at"]).timestamp()
        self.store.add(activity, created + delay)
        return activity

    def add_scenario(self, name: str, end: float | None = None) -> list[dict[str, Any]]:
        timeline = SCENARIOS[name](self.factory)
        span = max(offset for offset, _ in timeline)
        start = (end if end is not None else self.started_at - SCENARIO_END_BEFORE_START) - span
        placed = []
        for offset, activity in timeline:
            activity["created_at"] = stamp(start + offset)
            placed.append(self.add(activity, delay=self.rng.uniform(*self.usual_delay)))
        return placed

    def _record_request(self, key_id: str | None, user_agent: str | None, client: str, target: str,
                        status: int, request_id: str, now: float) -> None:
        if not self.record_requests:
            return
        actor = {"type": "api_actor", "api_key_id": key_id, "ip_address": client, "user_agent": user_agent}
        self.add(self.factory.make("compliance_api_accessed", stamp(now), actor=actor, org=False,
                                   request_id=request_id, request_method="GET", status_code=status, url=target))

    # -- serving -----------------------------------------------------------------------------

    def answer(self, method: str, target: str, headers: dict[str, str], client: str) -> Answer:
        now = self.clock()
        self.generate_until(now)
        return self.api.answer(method, target, {k.lower(): v for k, v in headers.items()}, client, now)

    def start(self, port: int = 0) -> Simulator:
        simulator = self

        class Handler(_Handler):
            sim = simulator

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="simulator", daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Simulator:
        return self if self._server else self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class _Dripping:
    """Writes what it is given one byte at a time, each after a pause: headers and body alike."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, data: bytes) -> int:
        for index in range(len(data)):
            self._stream.write(data[index:index + 1])
            self._stream.flush()
            time.sleep(DRIP_INTERVAL)
        return len(data)

    def flush(self) -> None:
        self._stream.flush()


class _Handler(BaseHTTPRequestHandler):
    sim: Simulator
    protocol_version = "HTTP/1.1"
    server_version = "ccl-simulator"
    sys_version = ""

    def handle(self) -> None:
        # A client killed mid-response (the crash tests do that on purpose) is not the server's problem.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        answer = self.sim.answer(method, self.path, dict(self.headers.items()), self.client_address[0])
        if answer.action == "drop":
            self.close_connection = True
            return
        if answer.action == "timeout":
            time.sleep(self.sim.timeout_delay)
            self.close_connection = True
            return
        if answer.action == "huge":
            self._send_huge(answer)
            return
        if answer.action == "drip":
            self.wfile = _Dripping(self.wfile)  # type: ignore[assignment]
            self.close_connection = True
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def _send_huge(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        for chunk in huge_chunks(answer.rows):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header tells the API's time; the simulator's clock is that time (tests move it).
        return super().date_time_string(self.sim.clock() if timestamp is None else timestamp)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the collector's own logs tell the story
