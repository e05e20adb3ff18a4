"""Which attributes exist on a normalized event, so that rules and dashboards name real ones."""

from __future__ import annotations

from functools import cache

from ccl.content.catalog import activity_types

# What vector/normalize.vrl (and Datadog's pipeline) add. A prefix covers everything under it.
NORMALIZED = {
    "evt.name", "evt.outcome", "usr.email", "usr.id", "usr.identity", "usr.kind", "network.client.ip",
    "network.client.geoip",
    "http.useragent", "http.useragent_details", "ocsf", "status", "service", "ddsource", "timestamp",
    "ccl", "activity_status", "activity_message", "activity_host", "activity_service", "activity_timestamp",
}
# The raw activity: common fields and every actor type's fields (compliance-api.md, 3.2).
COMMON = {"id", "type", "created_at", "organization_id", "organization_uuid", "actor", "workspace_id"}
ACTOR_FIELDS = {
    "type", "email_address", "user_id", "ip_address", "user_agent", "api_key_id", "admin_api_key_id",
    "unauthenticated_email_address", "service", "directory_id", "workos_event_id", "idp_connection_type",
    "service_account_id", "issuer", "subject", "audience", "provider", "external_client_id", "kid_hash",
}
# Added by Datadog itself (Cloud SIEM threat intelligence); tests add them explicitly.
DATADOG_ENRICHMENT = {"threat_intel"}


@cache
def raw_fields() -> frozenset[str]:
    return frozenset({field for entry in activity_types().values() for field in entry.get("fields", [])})


def is_known(path: str) -> bool:
    """True if `path` (without @) is produced by normalization, the raw activity or Datadog."""
    path = path.removeprefix("@")
    for prefix in NORMALIZED | DATADOG_ENRICHMENT:
        if path == prefix or path.startswith(prefix + "."):
            return True
    first, _, rest = path.partition(".")
    if first == "actor":
        return not rest or rest.split(".")[0] in ACTOR_FIELDS
    return first in COMMON or first in raw_fields()
