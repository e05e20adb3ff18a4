"""Collector throughput and memory: `make bench`.

Serves pre-rendered Compliance API pages from a separate process (so the server costs almost
nothing and the figure is the collector's), then runs, against the same pages:
  - the collector, as Vector runs it: `python -m collector --once --max-rpm 0 --since 30d`;
  - a naive baseline: httpx + json.loads + print(json.dumps(...)) per activity, no state at all.
Prints activities per second, peak RSS and the ratio to the baseline, and checks that the
collector emitted every activity exactly once. Target: at least 50,000 activities/s.

    python bench/bench_collector.py [--sizes 200000,1000000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ccl.simulator.generator import ActivityFactory
from ccl.simulator.population import Population

PAGE_SIZE = 5000
TEMPLATES = 4000
KEY = "sk-ant-api01-" + "bench-key-not-real-0000"
EMPTY_PAGE = b'{"data":[],"has_more":false,"first_id":null,"last_id":null}'

BASELINE = r"""
import json, os, sys, httpx
url = os.environ["CCL_API_URL"] + "/v1/compliance/activities"
headers = {"x-api-key": os.environ["ANTHROPIC_COMPLIANCE_KEY"]}
params = {"limit": 5000, "created_at.gte": "2000-01-01T00:00:00Z"}
with httpx.Client(timeout=60) as client:
    while True:
        page = client.get(url, params=params, headers=headers).json()
        for activity in page["data"]:
            print(json.dumps(activity))
        if not page["has_more"]:
            break
        params["after_id"] = page["last_id"]
"""


def render_pages(count: int) -> list[bytes]:
    """`count` realistic activities, newest first, all older than the overlap window."""
    rng = random.Random(1)
    factory = ActivityFactory(Population(rng), rng)
    now = time.time()
    templates = [factory.make(factory.random_type(), "2026-01-01T00:00:00Z") for _ in range(TEMPLATES)]
    newest = now - 3600  # outside the 15-minute overlap: the re-poll finds nothing, as in steady state
    spacing = (25 * 86400) / count
    pages: list[bytes] = []
    for page_number in range((count + PAGE_SIZE - 1) // PAGE_SIZE):
        rows = []
        for index in range(page_number * PAGE_SIZE, min(count, (page_number + 1) * PAGE_SIZE)):
            activity = dict(templates[index % TEMPLATES])
            activity["id"] = f"activity_bench{index:012d}"
            moment = datetime.fromtimestamp(newest - index * spacing, UTC)
            activity["created_at"] = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            rows.append(activity)
        has_more = (page_number + 1) * PAGE_SIZE < count
        body = {"data": rows, "has_more": has_more, "first_id": f"cur_first_{page_number}",
                "last_id": f"cur_last_{page_number}"}
        pages.append(json.dumps(body, separators=(",", ":")).encode())
    return pages


def serve(count: int, port_pipe) -> None:
    # Rendered here, not in the parent: a child forked from a big parent inherits its peak RSS.
    started = time.perf_counter()
    pages = render_pages(count)
    print(f"  rendered {sum(map(len, pages)) / 2**20:,.0f} MiB of pages in {time.perf_counter() - started:.1f} s",
          flush=True)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            body = EMPTY_PAGE
            if "before_id" in query or "created_at.lt" in query:
                body = EMPTY_PAGE  # catch-up after the first run and the overlap re-poll: nothing newer
            elif "after_id" in query:
                number = int(query["after_id"][0].rsplit("_", 1)[1]) + 1
                body = pages[number] if number < len(pages) else EMPTY_PAGE
            else:
                body = pages[0]
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.send_header("request-id", "req_bench")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_pipe.send(server.server_address[1])
    server.serve_forever()


def measure(command: list[str], env: dict[str, str], out_path: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MiB and exit code of one child process writing stdout to a file."""
    with out_path.open("wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.stderr.write(child.stderr.read().decode()[-2000:])
    child.stderr.close()
    return elapsed, usage.ru_maxrss / 1024, child.returncode


def bench(count: int) -> None:
    print(f"\n{count:,} activities ({(count + PAGE_SIZE - 1) // PAGE_SIZE} pages of {PAGE_SIZE})", flush=True)
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    server = context.Process(target=serve, args=(count, sender), daemon=True)
    server.start()
    port = receiver.recv()
    try:
        env = {**os.environ, "CCL_API_URL": f"http://127.0.0.1:{port}", "ANTHROPIC_COMPLIANCE_KEY": KEY}
        with tempfile.TemporaryDirectory() as work:
            work_dir = Path(work)
            collector_out = work_dir / "collector.ndjson"
            command = [sys.executable, "-m", "collector", "--once", "--max-rpm", "0", "--since", "30d",
                       "--state-dir", str(work_dir / "state"), "--log-level", "warning"]
            seconds, rss, code = measure(command, env, collector_out)
            if code != 0:
                raise SystemExit(f"the collector failed with exit code {code}")
            emitted = verify(collector_out, count)
            base_seconds, base_rss, base_code = measure([sys.executable, "-c", BASELINE], env,
                                                        work_dir / "baseline.ndjson")
            if base_code != 0:
                raise SystemExit(f"the baseline failed with exit code {base_code}")
    finally:
        server.terminate()
        server.join()
    rate, base_rate = emitted / seconds, count / base_seconds
    print(f"  collector: {rate:>10,.0f} activities/s  {seconds:6.2f} s  peak RSS {rss:7.1f} MiB  "
          f"(every activity exactly once: yes)")
    print(f"  baseline:  {base_rate:>10,.0f} activities/s  {base_seconds:6.2f} s  peak RSS {base_rss:7.1f} MiB  "
          f"(httpx + json + print, no state)")
    verdict = "meets" if rate >= 50_000 else "MISSES"
    print(f"  ratio collector/baseline: {rate / base_rate:.2f}x; {verdict} the 50,000/s target", flush=True)


def verify(path: Path, expected: int) -> int:
    ids = set()
    lines = 0
    with path.open("rb") as handle:
        for line in handle:
            lines += 1
            start = line.index(b'"id":"') + 6
            ids.add(line[start:line.index(b'"', start)])
    if lines != expected or len(ids) != expected:
        raise SystemExit(f"the collector emitted {lines} lines with {len(ids)} distinct ids; expected {expected}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200000,1000000", help="comma-separated activity counts")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    print(f"Python {sys.version.split()[0]} on {os.cpu_count()} cores")
    for size in sizes:
        bench(size)


if __name__ == "__main__":
    main()
