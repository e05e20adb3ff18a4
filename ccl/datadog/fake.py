"""A local fake of the Datadog API endpoints ccl uses, on 127.0.0.1: `ccl simulate --datadog`, the
demo's deploy, the tests, and the recording of cassettes.

It keeps state like Datadog does (ids, authors, timestamps, versions, default tags, server
defaults that ccl does not send), refuses keys other than its own with 403, holds Datadog's
read-only integration pipeline and a default rule on source:claude-compliance-logs, and an
unmanaged dashboard named like ours, and refuses the rule shapes no public example accepts
(`_shape_problem`, with its sources). Its rule test endpoint evaluates queries with ccl's own
matcher, so it is a fake, not an oracle: the real check is `ccl test --remote` against an org.
State lives in memory: it is gone when the process stops.

The attributes under "TEST-ONLY fault injection" below are not Datadog behaviour: tests set them
to make it fail (429/5xx/403 once, a refused rule, an outage, dropped writes, a barrier before
creates). Nothing sets them when it is served by `ccl simulate --datadog`.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ccl.detection.query.match import compile_query
from ccl.detection.rules import WINDOW_VALUES

EPOCH_MS = 1767225600000  # fixed, so that re-recorded cassettes only change where behaviour does


class FakeDatadog:
    def __init__(self, api_key: str, app_key: str):
        self.keys = (api_key, app_key)
        self.lock = threading.Lock()
        self.counter = 0
        self.rules: dict[str, dict[str, Any]] = {}
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.pipeline_order: list[str] = []
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.monitors: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for tests to read
        # -- TEST-ONLY fault injection (not Datadog behaviour; `ccl simulate --datadog` sets none) --
        self.faults: list[tuple[str, str, int]] = []  # (method, path prefix, status), used once each
        self.forbidden: set[tuple[str, str]] = set()  # (method, path prefix) answered 403
        self.reject_rules: dict[str, str] = {}  # rule name -> validation error
        # Every request of these methods answered with this status (an outage), and writes
        # acknowledged with Datadog's usual answer but never applied (a broken proxy, a replica
        # that drops writes).
        self.failing: tuple[int, set[str]] | None = None
        self.unapplied_writes = False
        # Called (outside the lock) before each create, e.g. a barrier that lines up the creates of
        # two deploys.
        self.before_create: Callable[[str], None] | None = None
        self._seed()
        self._server: ThreadingHTTPServer | None = None

    # -- state --------------------------------------------------------------------------------

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def _seed(self) -> None:
        integration = {"id": "integration-claude-compliance", "type": "pipeline", "name": "Claude Compliance Logs",
                       "is_enabled": True, "is_read_only": True,
                       "filter": {"query": "source:claude-compliance-logs"}, "processors": []}
        nginx = {"id": "user-nginx", "type": "pipeline", "name": "nginx", "is_enabled": True, "is_read_only": False,
                 "filter": {"query": "source:nginx"}, "processors": [], "description": ""}
        for pipeline in (nginx, integration):
            self.pipelines[pipeline["id"]] = pipeline
            self.pipeline_order.append(pipeline["id"])
        self.rules["def-000-wwq"] = {
            "id": "def-000-wwq", "name": "Anthropic Compliance audit-log forwarding disabled", "isDefault": True,
            "isEnabled": True, "type": "log_detection", "tags": ["source:claude-compliance-logs"],
            "queries": [{"name": "a", "query": "source:claude-compliance-logs @evt.name:org_compliance_api_settings_"
                                               "updated @compliance_api_logging_enabled:false"}],
            "cases": [{"status": "critical", "condition": "a > 0"}], "message": "", "version": 3}
        self.dashboards["own-clone"] = {
            "id": "own-clone", "title": "Claude Compliance Logs - Overview", "description": "our team's own copy",
            "layout_type": "ordered", "widgets": [], "author_handle": "someone@example.com"}

    # -- HTTP ---------------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeDatadog:
        """Serve on 127.0.0.1:`port` (0: a free port) in a background thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body, headers = fake.answer(method, self.path, dict(self.headers.items()), raw)
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def answer(self, method: str, target: str, headers: dict[str, str], raw: bytes):
        parts = urlsplit(target)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        lower = {k.lower(): v for k, v in headers.items()}
        if self.before_create is not None and method == "POST" and self._is_collection(path):
            self.before_create(path)
        with self.lock:
            self.requests.append((method, path))
            if (lower.get("dd-api-key"), lower.get("dd-application-key")) != self.keys:
                return 403, {"errors": ["Forbidden"]}, {}
            for fault in self.faults:
                if fault[0] == method and path.startswith(fault[1]):
                    self.faults.remove(fault)
                    if fault[2] == 429:
                        return 429, {"errors": ["Too many requests"]}, {
                            "X-RateLimit-Limit": "60", "X-RateLimit-Period": "60", "X-RateLimit-Remaining": "0",
                            "X-RateLimit-Reset": "1", "X-RateLimit-Name": "security_monitoring_rules"}
                    return fault[2], {"errors": ["Internal Server Error"]}, {}
            if any(method == m and path.startswith(p) for m, p in self.forbidden):
                return 403, {"errors": ["Forbidden"]}, {}
            if self.failing is not None and method in self.failing[1]:
                return self.failing[0], {"errors": ["Internal Server Error"]}, {}
            body = json.loads(raw) if raw else None
            if self.unapplied_writes and method != "GET":
                return self._acknowledge_only(method, path, query, body)
            return self._route(method, path, query, body)

    @staticmethod
    def _is_collection(path: str) -> bool:
        return path.rstrip("/") in ("/api/v2/security_monitoring/rules", "/api/v1/logs/config/pipelines",
                                    "/api/v1/dashboard", "/api/v1/monitor")

    def _acknowledge_only(self, method: str, path: str, query: dict[str, str], body: Any):
        """Datadog's answer to a write, computed on a copy of the state that is then thrown away."""
        saved = copy.deepcopy((self.rules, self.pipelines, self.pipeline_order, self.dashboards, self.monitors))
        try:
            return self._route(method, path, query, body)
        finally:  # ids keep advancing: an acknowledged create names an id that never exists
            self.rules, self.pipelines, self.pipeline_order, self.dashboards, self.monitors = saved

    def _route(self, method: str, path: str, query: dict[str, str], body: Any):
        segments = path.strip("/").split("/")
        if path.startswith("/api/v2/security_monitoring/rules"):
            return self._rules(method, segments[4:], query, body)
        if path.startswith("/api/v1/logs/config/pipelines"):
            return self._collection(method, segments[5:], body, self.pipelines, self._new_pipeline, list_as=None)
        if path.startswith("/api/v1/dashboard"):
            if method == "GET" and len(segments) == 3:
                start, count = int(query.get("start", 0)), int(query.get("count", 100))
                # The fields of DashboardSummaryDefinition (datadog-api-client-python).
                summaries = [{key: d.get(key) for key in ("id", "title", "description", "url", "author_handle",
                                                          "created_at", "modified_at", "layout_type",
                                                          "is_read_only")}
                             for d in list(self.dashboards.values())[start:start + count]]
                return 200, {"dashboards": summaries}, {}
            return self._collection(method, segments[3:], body, self.dashboards, self._new_dashboard, list_as=None)
        if path.startswith("/api/v1/monitor"):
            if method == "GET" and len(segments) == 3:
                page, size = int(query.get("page", 0)), int(query.get("page_size", 100))
                return 200, list(self.monitors.values())[page * size:(page + 1) * size], {}
            return self._collection(method, segments[3:], body, self.monitors, self._new_monitor, list_as=None)
        return 404, {"errors": ["Not found"]}, {}

    def _collection(self, method, rest, body, store, factory, list_as):
        if not rest:
            if method == "GET":
                return 200, list(store.values()), {}
            if method == "POST":
                created = factory(body)
                store[str(created["id"])] = created
                if store is self.pipelines:
                    self.pipeline_order.append(str(created["id"]))  # appended, as Datadog does
                return 200, created, {}
        else:
            key = rest[0]
            if key not in store:
                return 404, {"errors": ["Not found"]}, {}
            if method == "GET":
                return 200, store[key], {}
            if method == "PUT":
                if store[key].get("is_read_only"):
                    return 400, {"errors": ["Cannot modify a read-only pipeline"]}, {}
                replaced = factory(body, existing=store[key])
                store[key] = replaced
                return 200, replaced, {}
            if method == "DELETE":
                del store[key]
                if store is self.pipelines:
                    self.pipeline_order.remove(key)
                return 200, {"deleted_dashboard_id": key} if store is self.dashboards else {}, {}
        return 405, {"errors": ["Method not allowed"]}, {}

    def _new_pipeline(self, body, existing=None):
        return {**copy.deepcopy(body), "id": existing["id"] if existing else f"pipeline-{self._next()}",
                "type": "pipeline", "is_read_only": False}

    def _new_dashboard(self, body, existing=None):
        dashboard = copy.deepcopy(body)
        self._number_widgets(dashboard.get("widgets", []))
        identifier = existing["id"] if existing else f"abc-def-{self._next():03d}"
        return {**dashboard, "id": identifier, "url": f"/dashboard/{identifier}", "author_handle": "ci@example.com",
                "author_name": "CI", "created_at": existing["created_at"] if existing else self._now(),
                "modified_at": f"2026-01-01T00:00:{self.counter % 60:02d}+00:00", "is_read_only": False}

    def _now(self) -> str:
        """A creation time that grows with each object, in Datadog's format ("2023-02-16T21:47:50.216943+00:00",
        as in datadog-api-client-python's cassette test_get_all_dashboards_returns_ok_response.yaml; Dashboard,
        DashboardSummaryDefinition and Monitor carry it), so that the oldest of two copies can be told."""
        return datetime.fromtimestamp(EPOCH_MS / 1000 + self.counter, UTC).isoformat(timespec="microseconds")

    def _number_widgets(self, widgets):
        for widget in widgets:
            widget["id"] = self._next()
            self._number_widgets(widget.get("definition", {}).get("widgets", []))

    def _new_monitor(self, body, existing=None):
        monitor = copy.deepcopy(body)
        options = {"new_host_delay": 300, "notify_audit": False, "require_full_window": False, "silenced": {},
                   "include_tags": True, **monitor.get("options", {})}
        identifier = existing["id"] if existing else 1000 + self._next()
        return {**monitor, "options": options, "id": identifier,
                "created": existing["created"] if existing else self._now(), "modified": "2026-01-01T00:00:00+00:00",
                "creator": {"email": "ci@example.com"}, "overall_state": "No Data", "multi": False,
                "restricted_roles": None, "deleted": None}

    # -- rules --------------------------------------------------------------------------------

    def _rules(self, method, rest, query, body):
        if not rest:
            if method == "GET":
                size, number = int(query.get("page[size]", 10)), int(query.get("page[number]", 0))
                rules = list(self.rules.values())
                if query.get("sort") in ("creation_date", "-creation_date"):  # SecurityMonitoringRuleSort
                    rules.sort(key=lambda rule: rule.get("createdAt", 0), reverse=query["sort"].startswith("-"))
                rules = rules[number * size:(number + 1) * size]
                return 200, {"data": rules, "meta": {"page": {"total_count": len(self.rules)}}}, {}
            if method == "POST":
                problem = self._invalid(body)
                if problem:
                    return 400, {"errors": ["Invalid rule configuration", problem]}, {}
                identifier = f"rule-{self._next():04d}"
                rule = self._stored_rule(body, identifier, 1, EPOCH_MS + 1000 * self.counter)
                self.rules[rule["id"]] = rule
                return 200, rule, {}
        elif rest == ["validation"] and method == "POST":
            problem = self._invalid(body)
            return (400, {"errors": ["Invalid rule configuration", problem]}, {}) if problem else (204, None, {})
        elif rest == ["test"] and method == "POST":
            return 200, {"results": self._test(body)}, {}
        else:
            key = rest[0]
            if key not in self.rules:
                return 404, {"errors": ["Not found"]}, {}
            rule = self.rules[key]
            if method == "GET":
                return 200, rule, {}
            if method == "PUT":
                if "type" in body:
                    # SecurityMonitoringRuleUpdatePayload has no `type`; terraform-provider-datadog's
                    # cassettes PUT rules without it. Datadog's wording for it is not public.
                    return 400, {"errors": ["Invalid rule configuration", "type cannot be updated"]}, {}
                if rule.get("isDefault") and set(body) - {"isEnabled", "tags", "cases"}:
                    return 400, {"errors": ["Default rules can only be enabled, disabled or tagged"]}, {}
                if not rule.get("isDefault") and (problem := _shape_problem(body, body.get("options") or {})):
                    return 400, {"errors": ["Invalid rule configuration", problem]}, {}
                updated = {**rule, **copy.deepcopy(body)} if rule.get("isDefault") else \
                    self._stored_rule(body, key, rule["version"] + 1, rule["createdAt"])
                self.rules[key] = {**updated, "version": rule["version"] + 1}
                return 200, self.rules[key], {}
            if method == "DELETE":
                if rule.get("isDefault"):
                    return 400, {"errors": ["Default rules cannot be deleted"]}, {}
                del self.rules[key]
                return 204, None, {}
        return 405, {"errors": ["Method not allowed"]}, {}

    def _invalid(self, body) -> str | None:
        if body.get("name") in self.reject_rules:
            return self.reject_rules[body["name"]]
        options = body.get("options") or {}
        for key in ("evaluationWindow", "keepAlive", "maxSignalDuration"):
            if key in options and options[key] not in WINDOW_VALUES:
                return f"Invalid options.{key}: {options[key]}"
        return _shape_problem(body, options)

    def _stored_rule(self, body, identifier, version, created_ms):
        # createdAt: epoch milliseconds (SecurityMonitoringStandardRuleResponse.created_at).
        rule = copy.deepcopy(body)
        for query in rule.get("queries", []):
            query.setdefault("metrics", [])
        for case in rule.get("cases", []):
            case.setdefault("actions", [])
        default_tags = ["source:claude-compliance-logs", "security:attack"]
        return {**rule, "id": identifier, "version": version, "createdAt": created_ms,
                "updatedAt": created_ms + version, "creationAuthorId": 42, "isDefault": False, "isDeleted": False,
                "filters": [],
                "defaultTags": default_tags, "tags": sorted(set(rule.get("tags", [])) | set(default_tags))}

    def _test(self, body) -> list[bool]:
        rule = body["rule"]
        results = []
        for entry in body["ruleQueryPayloads"]:
            matcher = compile_query(rule["queries"][entry["index"]]["query"])
            results.append(matcher(entry["payload"]) == entry["expectedResult"])
        return results


def _shape_problem(body: dict[str, Any], options: dict[str, Any]) -> str | None:
    """Shapes of a rule that differ from every payload Datadog is publicly shown to accept.

    The accepted shapes are those of datadog-api-client-python's rule scenarios and cassettes and of
    terraform-provider-datadog's cassettes: a cardinality query has one `distinctFields` entry
    (TestAccDatadogSecurityMonitoringRule_Basic), a geo_data (impossible travel) query names
    @network.client.geoip in `metrics`/`metric` (test_create_a_detection_rule_with_type_impossible_travel),
    a sequence_detection rule has a top-level evaluationWindow of 0 and a case whose condition names
    the last step (TestAccDatadogSecurityMonitoringRule_SequenceDetection). The first element of the
    `errors` list, "Invalid rule configuration", is Datadog's (test_create_a_detection_rule_returns_bad_
    request_response); the details here are ours, Datadog's wording for these is not public.
    """
    for index, query in enumerate(body.get("queries") or []):
        aggregation = query.get("aggregation", "count")
        if aggregation == "cardinality" and len(query.get("distinctFields") or []) != 1:
            return f"queries[{index}]: a cardinality query counts exactly one distinct field"
        if aggregation == "geo_data" and not (query.get("metrics") or query.get("metric")):
            return f"queries[{index}]: a geo_data query needs metrics: [\"@network.client.geoip\"]"
    if options.get("detectionMethod") == "sequence_detection":
        if options.get("evaluationWindow", 0) != 0:
            return "options.evaluationWindow: a sequence_detection rule evaluates per step; it must be 0"
        steps = (options.get("sequenceDetectionOptions") or {}).get("steps") or []
        last = steps[-1].get("name") if steps else None
        for index, case in enumerate(body.get("cases") or []):
            if not str(case.get("condition") or "").startswith(f"{last} "):
                return f"cases[{index}].condition: a sequence case names its last step, e.g. \"{last} > 0\""
    return None
