"""The four kinds of Datadog objects ccl manages: how to list, own, create, update and delete them."""

from __future__ import annotations

from typing import Any

from ccl.datadog.client import DatadogClient, DatadogError
from ccl.datadog.ownership import Claim, Ownership, age_seconds, description_claim, sort_out, tag_claim
from ccl.datadog.render import SOURCE, rule_update_payload

RECENT_PAGE = 2  # rules per request when looking for those created since the last look (usually one)


class Kind:
    name = ""
    label = ""

    def __init__(self, client: DatadogClient):
        self.client = client

    def list_remote(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def claim(self, remote: dict[str, Any]) -> Claim | None:
        """What the object says about its owner; None for objects ccl never manages."""
        raise NotImplementedError

    def created(self, remote: dict[str, Any]) -> Any:
        """Creation time as Datadog gives it (None when it gives none): the oldest duplicate is kept."""
        return None

    def ownership(self, remote: list[dict[str, Any]], local_keys: set[str]) -> Ownership:
        return sort_out(remote, self.claim, self.remote_id, self.created, local_keys)

    def complete(self, remote: dict[str, Any]) -> dict[str, Any]:
        """The whole object, when its listing holds only a summary."""
        return remote

    def recent(self, since: Any) -> list[dict[str, Any]]:
        """Every object created after `since` (a creation time as `created` gives it); here, all of them."""
        return self.list_remote()

    def get(self, remote_id: str) -> dict[str, Any]:
        path = f"{self.path}/{remote_id}"
        return _expect(self.client.request("GET", path), dict, f"GET {path}")

    def title(self, obj: dict[str, Any]) -> str:
        return str(obj.get("name", ""))

    def remote_id(self, remote: dict[str, Any]) -> str:
        return str(remote["id"])

    path = ""

    def create(self, payload: dict[str, Any]) -> str:
        return _created_id(self.client.request("POST", self.path, body=payload), self.path)

    def update(self, remote_id: str, payload: dict[str, Any]) -> None:
        # PUT replaces the whole object, so the whole payload is always sent.
        self.client.request("PUT", f"{self.path}/{remote_id}", body=payload)

    def delete(self, remote_id: str) -> None:
        self.client.request("DELETE", f"{self.path}/{remote_id}")

    def comparable_remote(self, remote: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
        return remote


def _expect(value: Any, kind: type, what: str) -> Any:
    """Datadog's answer, if it has the expected shape; a clear error otherwise (a proxy, a wrong URL)."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise DatadogError(f"{what}: Datadog answered with a {type(value).__name__}, not a {kind.__name__}; "
                           "check DD_SITE / DD_API_URL")
    return value


def _objects(items: Any, what: str) -> list[dict[str, Any]]:
    return [item for item in _expect(items, list, what) if isinstance(item, dict)]


class Rules(Kind):
    name, label = "rule", "rules"
    path = "/api/v2/security_monitoring/rules"

    def list_remote(self) -> list[dict[str, Any]]:
        rules, page = [], 0
        while True:
            data = self._page({"page[size]": 100, "page[number]": page})
            rules.extend(data)
            if len(data) < 100:
                return rules
            page += 1

    def recent(self, since: Any) -> list[dict[str, Any]]:
        """Rules created after `since` (newest first, a few per request), and a few older ones.

        An org holds a thousand default rules: listing them all before each create would cost a
        dozen requests per rule, where this costs one (`sort=-creation_date`, SecurityMonitoringRuleSort).
        """
        if not isinstance(since, int | float):
            return self.list_remote()
        rules, page = [], 0
        while True:
            data = self._page({"page[size]": RECENT_PAGE, "page[number]": page, "sort": "-creation_date"})
            rules.extend(data)
            if len(data) < RECENT_PAGE or any(age_seconds(self.created(rule)) <= age_seconds(since) for rule in data):
                return rules
            page += 1

    def _page(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        body = _expect(self.client.request("GET", self.path, params=params), dict, f"GET {self.path}")
        return _objects(body.get("data"), f"GET {self.path}")

    def claim(self, remote: dict[str, Any]) -> Claim | None:
        return None if remote.get("isDefault") else tag_claim(remote.get("tags"))

    def created(self, remote: dict[str, Any]) -> Any:
        return remote.get("createdAt")  # epoch milliseconds (SecurityMonitoringStandardRuleResponse)

    def validate(self, payload: dict[str, Any]) -> None:
        self.client.request("POST", f"{self.path}/validation", body=payload)

    def update(self, remote_id: str, payload: dict[str, Any]) -> None:
        self.client.request("PUT", f"{self.path}/{remote_id}", body=rule_update_payload(payload))

    def disable(self, remote_id: str) -> None:
        self.client.request("PUT", f"{self.path}/{remote_id}", body={"isEnabled": False})

    def comparable_remote(self, remote: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
        # Datadog adds its own default tags (and may order tags its way): compare ours as a set.
        defaults = set(remote.get("defaultTags") or []) - set(ours.get("tags") or [])
        return {**remote, "tags": sorted(tag for tag in remote.get("tags") or [] if tag not in defaults)}

    def test(self, payload: dict[str, Any], query_payloads: list[dict[str, Any]]) -> list[bool]:
        body = _expect(self.client.request("POST", f"{self.path}/test",
                                           body={"rule": payload, "ruleQueryPayloads": query_payloads}),
                       dict, f"POST {self.path}/test")
        return list(_expect(body.get("results"), list, f"POST {self.path}/test"))


def is_default_on_our_source(remote: dict[str, Any]) -> bool:
    return bool(remote.get("isDefault")) and any(
        f"source:{SOURCE}" in str(query.get("query", "")) for query in remote.get("queries") or [])


class Pipelines(Kind):
    name, label = "pipeline", "pipelines"
    path = "/api/v1/logs/config/pipelines"

    def list_remote(self) -> list[dict[str, Any]]:
        return _objects(self.client.request("GET", self.path), f"GET {self.path}")

    def claim(self, remote: dict[str, Any]) -> Claim | None:
        return None if remote.get("is_read_only") else description_claim(remote.get("description"))

    # create(): Datadog appends a new pipeline at the end of the processing order, so the order of
    # everyone else's pipelines is never touched; update() keeps its position. Pipelines have no
    # creation date: the earliest in the processing order counts as the oldest.


def is_integration_pipeline_for_our_source(remote: dict[str, Any]) -> bool:
    return bool(remote.get("is_read_only")) and f"source:{SOURCE}" in str((remote.get("filter") or {}).get("query"))


class Dashboards(Kind):
    name, label = "dashboard", "dashboards"
    path = "/api/v1/dashboard"

    def title(self, obj: dict[str, Any]) -> str:
        return str(obj.get("title", ""))

    def list_remote(self) -> list[dict[str, Any]]:
        summaries, start = [], 0
        while True:
            body = _expect(self.client.request("GET", self.path, params={"count": 100, "start": start}), dict,
                           f"GET {self.path}")
            page = _objects(body.get("dashboards"), f"GET {self.path}")
            summaries.extend(page)
            if len(page) < 100:
                break
            start += 100
        return summaries

    def claim(self, remote: dict[str, Any]) -> Claim | None:
        return description_claim(remote.get("description"))

    def created(self, remote: dict[str, Any]) -> Any:
        return remote.get("created_at")  # ISO 8601 (DashboardSummaryDefinition)

    def complete(self, remote: dict[str, Any]) -> dict[str, Any]:
        return self.get(self.remote_id(remote))  # the listing gives summaries, without widgets


class Monitors(Kind):
    name, label = "monitor", "monitors"
    path = "/api/v1/monitor"

    def list_remote(self) -> list[dict[str, Any]]:
        monitors, page = [], 0
        while True:
            batch = _objects(self.client.request("GET", self.path, params={"page": page, "page_size": 1000}),
                             f"GET {self.path}")
            monitors.extend(batch)
            if len(batch) < 1000:
                return monitors
            page += 1

    def claim(self, remote: dict[str, Any]) -> Claim | None:
        return tag_claim(remote.get("tags"))

    def created(self, remote: dict[str, Any]) -> Any:
        return remote.get("created")  # ISO 8601 (Monitor)


def _created_id(body: Any, path: str) -> str:
    if not isinstance(body, dict) or "id" not in body:
        raise DatadogError(f"POST {path}: Datadog's answer has no id; the object may exist now, run `ccl plan` "
                           "to see")
    return str(body["id"])


KINDS: dict[str, type[Kind]] = {"pipeline": Pipelines, "dashboard": Dashboards, "monitor": Monitors, "rule": Rules}
ONLY_CHOICES = {"pipelines": "pipeline", "dashboards": "dashboard", "monitors": "monitor", "rules": "rule"}
